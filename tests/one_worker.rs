//! On a runtime with a single worker thread, a coroutine sleeping in greennet::thread::sleep
//! must not hold up another: the second one runs (and does socket I/O) while the first sleeps.
use greennet::net::{TcpListener, TcpStream};
use greennet::thread;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

#[green::test(workers = 1)]
fn sleeping_coroutine_does_not_hold_up_another() {
    assert_eq!(greennet::runtime::config().unwrap().workers, 1);
    let order = Arc::new(Mutex::new(Vec::new()));

    let sleeper = {
        let order = order.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(500));
            order.lock().unwrap().push("sleeper");
        })
    };
    let talker = {
        let order = order.clone();
        thread::spawn(move || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = thread::spawn(move || {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0; 4];
                conn.read_exact(&mut buf).unwrap();
                conn.write_all(&buf).unwrap();
            });
            let mut client = TcpStream::connect(addr).unwrap();
            client.write_all(b"ping").unwrap();
            let mut buf = [0; 4];
            client.read_exact(&mut buf).unwrap();
            server.join().unwrap();
            assert_eq!(&buf, b"ping");
            order.lock().unwrap().push("talker");
        })
    };
    talker.join().unwrap();
    sleeper.join().unwrap();
    // With a worker-blocking sleep, the talker could only run after the sleeper woke.
    assert_eq!(*order.lock().unwrap(), ["talker", "sleeper"]);
}

#[green::test(workers = 1)]
fn the_single_worker_is_shared_by_many() {
    let handles: Vec<_> = (0..200)
        .map(|i| {
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                i
            })
        })
        .collect();
    let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..200).sum());
}

#[test]
fn a_yield_loop_lets_new_coroutines_start() {
    // This plain test may start the runtime before the others: configure it the same way.
    greennet::runtime::Builder::new()
        .workers(1)
        .start()
        .unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let spinner = thread::spawn(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let setter = {
                let flag = flag.clone();
                // Spawned while this coroutine holds the only worker and never parks.
                thread::spawn(move || flag.store(true, Ordering::Release))
            };
            while !flag.load(Ordering::Acquire) {
                thread::yield_now();
            }
            setter.join().unwrap();
        });
        spinner.join().unwrap();
        done_tx.send(()).unwrap();
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(20)).is_ok(),
        "a coroutine looping on yield_now starved a new coroutine"
    );
}

#[green::test(workers = 1)]
fn blocking_calls_leave_the_worker_free() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let slow = {
        let order = order.clone();
        thread::spawn(move || {
            // A call that blocks its thread: on the pool, it must not stop the other coroutine.
            greennet::blocking(|| std::thread::sleep(Duration::from_millis(300)));
            order.lock().unwrap().push("blocking call");
        })
    };
    let quick = {
        let order = order.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            order.lock().unwrap().push("quick");
        })
    };
    quick.join().unwrap();
    slow.join().unwrap();
    assert_eq!(*order.lock().unwrap(), ["quick", "blocking call"]);
}

#[green::test(workers = 1)]
fn blocking_returns_values_and_panics() {
    assert_eq!(greennet::blocking(|| 6 * 7), 42);
    let caught = std::panic::catch_unwind(|| greennet::blocking(|| panic!("in the pool")));
    assert!(caught.is_err());
}

#[green::test(workers = 1)]
fn host_names_resolve_in_a_coroutine() {
    let listener = TcpListener::bind("localhost:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"hi").unwrap();
    });
    let mut c = TcpStream::connect(("localhost", port)).unwrap();
    let mut hi = [0; 2];
    c.read_exact(&mut hi).unwrap();
    server.join().unwrap();
    assert_eq!(&hi, b"hi");
    // Errors are std's own.
    let ours = TcpStream::connect("localhost").unwrap_err();
    let std = std::net::TcpStream::connect("localhost").unwrap_err();
    assert_eq!(
        (ours.kind(), ours.to_string()),
        (std.kind(), std.to_string())
    );
}

#[green::test(workers = 1)]
fn a_mutex_held_across_a_sleep_does_not_deadlock_the_worker() {
    // With std's Mutex this deadlocks the only worker: the second locker blocks the thread
    // that the holder needs in order to wake up and unlock.
    let m = Arc::new(greennet::sync::Mutex::new(0));
    let holder = {
        let m = m.clone();
        thread::spawn(move || {
            let mut g = m.lock().unwrap();
            thread::sleep(Duration::from_millis(50));
            *g += 1;
        })
    };
    thread::sleep(Duration::from_millis(5));
    let waiter = {
        let m = m.clone();
        thread::spawn(move || *m.lock().unwrap() += 1)
    };
    holder.join().unwrap();
    waiter.join().unwrap();
    assert_eq!(*m.lock().unwrap(), 2);
}

#[green::test(workers = 1)]
fn a_channel_receiver_parks_without_blocking_the_worker() {
    let (tx, rx) = greennet::sync::mpsc::channel();
    let receiver = thread::spawn(move || rx.recv().unwrap());
    // The sender runs on the same single worker while the receiver waits.
    thread::spawn(move || tx.send("through"))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(receiver.join().unwrap(), "through");
}

#[green::test(workers = 1)]
fn a_parked_initialiser_does_not_block_the_worker() {
    // With std's OnceLock the second caller would block the only worker in a futex while the
    // initialiser sleeps on it: a deadlock.
    static CELL: greennet::sync::OnceLock<u32> = greennet::sync::OnceLock::new();
    let first = thread::spawn(|| {
        *CELL.get_or_init(|| {
            thread::sleep(Duration::from_millis(50));
            7
        })
    });
    thread::sleep(Duration::from_millis(5));
    let second = thread::spawn(|| *CELL.get_or_init(|| 8));
    assert_eq!(first.join().unwrap(), 7);
    assert_eq!(second.join().unwrap(), 7);
}
