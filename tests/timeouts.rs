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

/// A socket keeps the alarm of its last timed wait for the next one. A kept alarm that goes
/// off early must not end a longer wait, and one that would go off late must not stretch a
/// shorter one.
#[test]
fn kept_socket_alarms_neither_cut_nor_stretch_later_waits() {
    use greennet::net::{TcpListener, TcpStream};
    use std::io::{ErrorKind, Read, Write};
    use std::time::Instant;
    bounded(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        // Each (delay, byte) is sent that long after the reader asks for it.
        let (go_tx, go_rx) = mpsc::channel::<(u64, u8)>();
        let writer = thread::spawn(move || {
            for (delay, byte) in go_rx {
                thread::sleep(Duration::from_millis(delay));
                server.write_all(&[byte]).unwrap();
            }
        });
        let mut byte = [0u8; 1];
        let timeout = |ms| Some(Duration::from_millis(ms));

        // A wait that ends with data long before its timeout leaves its alarm 400 ms out...
        client.set_read_timeout(timeout(400)).unwrap();
        go_tx.send((20, b'x')).unwrap();
        assert_eq!(client.read(&mut byte).unwrap(), 1);
        // ...which goes off in the middle of this longer wait, and must not end it.
        client.set_read_timeout(timeout(10_000)).unwrap();
        go_tx.send((600, b'a')).unwrap();
        assert_eq!(
            client.read(&mut byte).unwrap(),
            1,
            "an early alarm ended a wait"
        );
        assert_eq!(byte[0], b'a');

        // Now the kept alarm is 10 s out: a 50 ms timeout must still end at 50 ms.
        client.set_read_timeout(timeout(50)).unwrap();
        let started = Instant::now();
        let e = client.read(&mut byte).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a kept later alarm stretched a short timeout"
        );

        // Again, but this time the longer wait times out: the early alarm must neither end it
        // before its time nor leave it without an alarm of its own (which would hang).
        client.set_read_timeout(timeout(400)).unwrap();
        go_tx.send((20, b'y')).unwrap();
        assert_eq!(client.read(&mut byte).unwrap(), 1);
        client.set_read_timeout(timeout(700)).unwrap();
        let started = Instant::now();
        let e = client.read(&mut byte).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        assert!(started.elapsed() >= Duration::from_millis(700));

        // The same holds for the deadline of greennet::timeout.
        client.set_read_timeout(None).unwrap();
        go_tx.send((150, b'b')).unwrap();
        let got = greennet::timeout(Duration::from_secs(10), || client.read(&mut byte));
        assert_eq!(got.unwrap().unwrap(), 1);
        assert_eq!(byte[0], b'b');
        let started = Instant::now();
        let got = greennet::timeout(Duration::from_millis(50), || client.read(&mut byte));
        assert!(got.is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(go_tx);
        writer.join().unwrap();
    });
}
