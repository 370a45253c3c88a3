//! Hammering timeouts: many coroutines whose timed waits are mostly cut short by an early wake.
//! may's own timer was seen to fail under this traffic ("timed park, then early unpark"), so the
//! suite keeps a test of it: every wait must end, early or on time, and nothing may hang.
use greennet::sync::mpsc;
use greennet::thread;
use std::time::Duration;

/// Runs `body` on the runtime, failing (not hanging) if it does not finish within a minute.
fn bounded(body: fn()) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        greennet::run(body);
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(60)).is_ok(),
        "timed waits hung"
    );
}

#[test]
fn channel_timeouts_cut_short_by_early_sends() {
    bounded(|| {
        let pairs: Vec<_> = (0..1_000)
            .map(|i| {
                let (tx, rx) = mpsc::channel::<u32>();
                let waiter = thread::spawn(move || {
                    let mut got = 0;
                    for _ in 0..50 {
                        if rx.recv_timeout(Duration::from_millis(20)).is_ok() {
                            got += 1;
                        }
                    }
                    got
                });
                let sender = thread::spawn(move || {
                    for n in 0..50u32 {
                        if (n + i) % 3 != 0 {
                            let _ = tx.send(n);
                        } else {
                            thread::sleep(Duration::from_millis(1));
                        }
                    }
                });
                (waiter, sender)
            })
            .collect();
        for (waiter, sender) in pairs {
            sender.join().unwrap();
            assert!(waiter.join().unwrap() > 0);
        }
    });
}

#[test]
fn park_timeouts_cut_short_by_early_unparks() {
    bounded(|| {
        let parkers: Vec<_> = (0..1_000)
            .map(|_| {
                thread::spawn(|| {
                    for _ in 0..50 {
                        thread::park_timeout(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        // Unpark each parker repeatedly while it parks with a timeout.
        for _ in 0..20 {
            for p in &parkers {
                p.thread().unpark();
            }
            thread::yield_now();
        }
        parkers.into_iter().for_each(|p| p.join().unwrap());
    });
}

#[test]
fn socket_timeouts_under_load() {
    bounded(|| {
        let listener = greennet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let conns: Vec<_> = (0..200).map(|_| listener.accept().unwrap().0).collect();
            conns
        });
        let clients: Vec<_> = (0..200)
            .map(|_| {
                thread::spawn(move || {
                    let c = greennet::net::TcpStream::connect(addr).unwrap();
                    c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
                    for _ in 0..20 {
                        let err = std::io::Read::read(&mut &c, &mut [0; 1]).unwrap_err();
                        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
                    }
                })
            })
            .collect();
        clients.into_iter().for_each(|c| c.join().unwrap());
        drop(server.join().unwrap());
    });
}
