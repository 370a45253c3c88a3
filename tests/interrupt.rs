//! Timeouts and kills on real loopback sockets and on every kind of greennet wait, from
//! coroutines and from plain threads.
use greennet::net::{TcpListener, TcpStream};
use greennet::sync::{mpsc, Mutex};
use greennet::thread::{self, Killed};
use greennet::timeout::{Elapsed, Timeout};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_millis(100);

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Runs `f` under a `LIMIT` timeout and checks it gave up, promptly and not early.
fn gives_up<R: std::fmt::Debug>(f: impl FnOnce() -> R) {
    let start = Instant::now();
    let outcome = greennet::timeout(LIMIT, f);
    let took = start.elapsed();
    assert!(outcome.is_err(), "finished instead: {outcome:?}");
    assert!(took >= LIMIT, "gave up early, after {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "gave up late, after {took:?}"
    );
}

fn read_times_out_and_socket_stays_usable() {
    let (mut client, mut server) = pair();
    let mut buf = [0u8; 16];
    gives_up(|| server.read(&mut buf));
    // Nothing was consumed or broken: the next read gets what is sent next.
    client.write_all(b"after").unwrap();
    let n = server.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
}

#[green::test]
fn a_timeout_ends_a_blocked_read_in_a_coroutine() {
    read_times_out_and_socket_stays_usable();
}

#[test]
fn a_timeout_ends_a_blocked_read_on_a_plain_thread() {
    read_times_out_and_socket_stays_usable();
}

fn accept_times_out_and_listener_stays_usable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    gives_up(|| listener.accept());
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
}

#[green::test]
fn a_timeout_ends_a_blocked_accept_in_a_coroutine() {
    accept_times_out_and_listener_stays_usable();
}

#[test]
fn a_timeout_ends_a_blocked_accept_on_a_plain_thread() {
    accept_times_out_and_listener_stays_usable();
}

#[green::test]
fn a_timeout_ends_sleeps_locks_channels_joins_and_blocking_calls() {
    gives_up(|| thread::sleep(Duration::from_secs(30)));
    // park may return spuriously (std allows it), so park until interrupted.
    gives_up(|| -> () {
        loop {
            thread::park()
        }
    });

    let lock = Arc::new(Mutex::new(0));
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let lock = lock.clone();
        thread::spawn(move || {
            let _guard = lock.lock().unwrap();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
        })
    };
    held_rx.recv().unwrap();
    gives_up(|| lock.lock().map(|_| ()).map_err(|_| ()));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    // The lock is not left marked as waited for or held: it is free now.
    assert_eq!(*lock.lock().unwrap(), 0);

    let (_tx, rx) = mpsc::channel::<u8>();
    gives_up(|| rx.recv());

    let slow = thread::spawn(|| thread::sleep(Duration::from_millis(500)));
    let slow = Arc::new(std::sync::Mutex::new(Some(slow)));
    let taken = slow.clone();
    gives_up(move || taken.lock().unwrap().take().unwrap().join());

    gives_up(|| greennet::blocking(|| std::thread::sleep(Duration::from_millis(500))));
}

#[test]
fn a_timeout_ends_waits_on_a_plain_thread() {
    gives_up(|| thread::sleep(Duration::from_secs(30)));
    let (_tx, rx) = mpsc::channel::<u8>();
    gives_up(|| rx.recv());
}

#[green::test]
fn work_that_finishes_in_time_returns_its_value() {
    let (mut client, mut server) = pair();
    client.write_all(b"ready").unwrap();
    let mut buf = [0u8; 5];
    let got = greennet::timeout(Duration::from_secs(5), || server.read_exact(&mut buf));
    assert!(matches!(got, Ok(Ok(()))));
    assert_eq!(&buf, b"ready");
    // The expired-later timeout is gone: a long wait afterwards is not cut short.
    let start = Instant::now();
    thread::sleep(Duration::from_millis(50));
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[green::test]
fn nested_timeouts_are_caught_by_the_one_that_expired() {
    // The outer limit is the shorter: the inner `timeout` lets its unwind through.
    let start = Instant::now();
    let outer = greennet::timeout(Duration::from_millis(50), || {
        greennet::timeout(Duration::from_secs(10), || {
            thread::sleep(Duration::from_secs(30));
        })
    });
    assert!(outer.is_err());
    assert!(start.elapsed() < Duration::from_secs(5));
    // The inner limit is the shorter: the outer goes on and sees the inner's error.
    let outer = greennet::timeout(Duration::from_secs(10), || {
        greennet::timeout(Duration::from_millis(50), || {
            thread::sleep(Duration::from_secs(30));
        })
    });
    assert!(matches!(outer, Ok(Err(Elapsed { .. }))));
}

#[green::test]
fn an_uncaught_guard_timeout_ends_the_coroutine_with_elapsed() {
    let h = thread::spawn(|| {
        let _limit = Timeout::start(Duration::from_millis(30));
        let (_tx, rx) = mpsc::channel::<u8>();
        let _ = rx.recv();
        unreachable!("the receive cannot succeed");
    });
    let payload = h.join().unwrap_err();
    assert!(payload.is::<Elapsed>());
}

#[green::test]
fn a_guard_timeout_caught_with_run() {
    let limit = Timeout::start(LIMIT);
    let deadline = limit.deadline();
    let outcome = limit.run(|| thread::sleep(Duration::from_secs(30)));
    assert!(outcome.is_err());
    assert!(Instant::now() >= deadline);
}

/// Sets its flag when dropped: shows destructors run on the way out of a kill.
struct Flag(Arc<AtomicBool>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[green::test]
fn kill_ends_a_coroutine_parked_anywhere_and_runs_its_destructors() {
    type Wait = Box<dyn FnOnce() + Send>;
    let held_lock = Arc::new(Mutex::new(()));
    let _held = held_lock.lock().unwrap();
    let waits: Vec<(&str, Wait)> = vec![
        ("read", {
            let (client, mut server) = pair();
            Box::new(move || {
                let _client = client;
                let _ = server.read(&mut [0u8; 8]);
            })
        }),
        ("sleep", Box::new(|| thread::sleep(Duration::from_secs(60)))),
        ("park", Box::new(thread::park)),
        ("recv", {
            let (tx, rx) = mpsc::channel::<u8>();
            Box::new(move || {
                let _tx = tx;
                let _ = rx.recv();
            })
        }),
        ("lock", {
            let lock = held_lock.clone();
            Box::new(move || drop(lock.lock()))
        }),
        ("join", {
            let lock = Arc::new(Mutex::new(()));
            let held = lock.clone();
            Box::new(move || {
                let _mine = held.lock().unwrap();
                let again = thread::spawn(move || drop(lock.lock()));
                let _ = again.join();
            })
        }),
    ];
    for (what, wait) in waits {
        let dropped = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let flag = Flag(dropped.clone());
        let h = thread::spawn(move || {
            let _flag = flag;
            ready_tx.send(()).unwrap();
            wait();
        });
        ready_rx.recv().unwrap();
        thread::sleep(Duration::from_millis(20)); // let it reach its wait
        let start = Instant::now();
        h.kill();
        let payload = h.join().expect_err(what);
        assert!(Killed::is(&*payload), "{what}: not a kill");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{what}: slow kill"
        );
        assert!(
            dropped.load(Ordering::SeqCst),
            "{what}: destructors did not run"
        );
    }
}

#[green::test]
fn a_killed_coroutine_that_catches_the_unwind_is_stopped_again() {
    let h = thread::spawn(|| {
        let caught = std::panic::catch_unwind(|| thread::sleep(Duration::from_secs(60)));
        assert!(caught.is_err());
        thread::sleep(Duration::from_secs(60));
    });
    thread::sleep(Duration::from_millis(20));
    h.kill();
    assert!(Killed::is(&*h.join().unwrap_err()));
}

#[green::test]
fn join_timeout_joinall_and_spawn_later() {
    let slow = thread::spawn(|| {
        thread::sleep(Duration::from_millis(300));
        7
    });
    let slow = slow.join_timeout(Duration::from_millis(10)).unwrap_err();
    assert_eq!(
        slow.join_timeout(Duration::from_secs(5))
            .ok()
            .unwrap()
            .unwrap(),
        7
    );

    let start = Instant::now();
    let later = thread::spawn_later(Duration::from_millis(50), Instant::now);
    assert!(later.join().unwrap() >= start + Duration::from_millis(50));

    let ran = Arc::new(AtomicBool::new(false));
    let never = {
        let ran = ran.clone();
        thread::spawn_later(Duration::from_secs(30), move || {
            ran.store(true, Ordering::SeqCst)
        })
    };
    never.kill();
    assert!(never.join().is_err());
    assert!(!ran.load(Ordering::SeqCst));

    let handles = vec![
        thread::spawn(|| 1),
        thread::spawn(|| {
            thread::sleep(Duration::from_secs(30));
            2
        }),
        thread::spawn(|| 3),
    ];
    let mut done = thread::joinall(handles, Some(Duration::from_millis(50))).into_iter();
    assert_eq!(done.next().unwrap().ok().unwrap().unwrap(), 1);
    let stuck = done.next().unwrap().unwrap_err();
    assert_eq!(done.next().unwrap().ok().unwrap().unwrap(), 3);
    stuck.kill();
    assert!(stuck.join().is_err());
}

/// A reader's kill waker is kept from one read to the next on the same socket; a kill must
/// still end a read after earlier reads, after a wait of another kind in between, and on a
/// second socket.
#[test]
fn kill_ends_a_read_after_earlier_waits_on_the_same_and_other_sockets() {
    greennet::run(|| {
        let (mut a_client, mut a_server) = pair();
        let (mut b_client, mut b_server) = pair();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (stage_tx, stage_rx) = mpsc::channel::<&'static str>();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 1];
            // Three reads that wait on socket A: its waker is kept after the first.
            for _ in 0..3 {
                a_server.read_exact(&mut buf).unwrap();
            }
            // A wait of another kind replaces the kept waker...
            go_rx.recv().unwrap();
            // ...then socket B, then A again, where the kill finds it.
            b_server.read_exact(&mut buf).unwrap();
            stage_tx.send("blocked on A").unwrap();
            let _ = a_server.read_exact(&mut buf);
            unreachable!("the read was killed");
        });
        for _ in 0..3 {
            thread::sleep(Duration::from_millis(5));
            a_client.write_all(b"x").unwrap();
        }
        thread::sleep(Duration::from_millis(5));
        go_tx.send(()).unwrap();
        thread::sleep(Duration::from_millis(5));
        b_client.write_all(b"y").unwrap();
        assert_eq!(stage_rx.recv().unwrap(), "blocked on A");
        // Let the reader park in its read of A, then kill it.
        thread::sleep(Duration::from_millis(20));
        let start = Instant::now();
        reader.kill();
        let err = reader.join().unwrap_err();
        assert!(Killed::is(&*err), "ended some other way");
        assert!(start.elapsed() < Duration::from_secs(3));
    });
}
