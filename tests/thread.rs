//! greennet::thread against std::thread's contract, run on the shared default runtime.
use greennet::thread;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[test]
fn ten_thousand_sleepers_finish_together() {
    const N: usize = 10_000;
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let done = done.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(200));
                done.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let took = start.elapsed();
    assert_eq!(done.load(Ordering::Relaxed), N);
    assert!(
        took >= Duration::from_millis(200),
        "slept too little: {took:?}"
    );
    // In sequence this would take 2,000 s; together it is 200 ms plus spawning. The bound is
    // generous for a loaded 2-core CI machine.
    assert!(
        took < Duration::from_secs(20),
        "sleepers ran one after another: {took:?}"
    );
}

#[green::test]
fn sleepers_inside_a_coroutine_finish_together() {
    let start = Instant::now();
    let handles: Vec<_> = (0..1_000)
        .map(|_| thread::spawn(|| thread::sleep(Duration::from_millis(100))))
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_panic_crosses_join_and_others_keep_running() {
    let survivor = thread::spawn(|| {
        thread::sleep(Duration::from_millis(50));
        "still here"
    });
    let failed = thread::Builder::new()
        .name("doomed".into())
        .spawn(|| -> u32 { panic!("deliberate failure {}", 7) })
        .unwrap();
    let payload = failed.join().unwrap_err();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap();
    assert_eq!(message, "deliberate failure 7");
    assert_eq!(survivor.join().unwrap(), "still here");
    // The runtime is unharmed.
    assert_eq!(thread::spawn(|| 1 + 1).join().unwrap(), 2);
}

#[test]
fn scoped_coroutines_borrow_from_the_callers_stack() {
    let numbers: Vec<u64> = (1..=100).collect();
    let mut halves = [0u64; 2];
    let total = thread::scope(|s| {
        let (left, right) = halves.split_at_mut(1);
        let (a, b) = numbers.split_at(50);
        s.spawn(|| left[0] = a.iter().sum());
        let h = s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            right[0] = b.iter().sum();
            b.len()
        });
        assert_eq!(h.join().unwrap(), 50);
        numbers.len()
    });
    assert_eq!(total, 100);
    assert_eq!(halves, [1275, 3775]);
}

#[test]
fn scope_waits_for_unjoined_coroutines() {
    let finished = AtomicUsize::new(0);
    thread::scope(|s| {
        for i in 0..50 {
            let finished = &finished;
            s.spawn(move || {
                thread::sleep(Duration::from_millis(i % 5));
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    assert_eq!(finished.load(Ordering::SeqCst), 50);
}

#[test]
fn an_unjoined_scoped_panic_makes_scope_panic() {
    let result = std::panic::catch_unwind(|| {
        thread::scope(|s| {
            s.spawn(|| panic!("inside the scope"));
        })
    });
    let payload = result.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"a scoped thread panicked")
    );
}

#[test]
fn spawn_and_join_from_a_plain_thread() {
    // This test's own thread is a plain OS thread: join blocks it until the coroutine ends.
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let me = thread::current();
        tx.send((me.id(), me.name().map(str::to_owned))).unwrap();
        thread::sleep(Duration::from_millis(30));
        99
    });
    let (id, name) = rx.recv().unwrap();
    assert_eq!(h.thread().id(), id);
    assert_eq!(name, None);
    assert!(!h.is_finished() || h.thread().id() == id);
    assert_eq!(h.join().unwrap(), 99);
}

#[test]
fn names_ids_and_current() {
    let h = thread::Builder::new()
        .name("named-one".into())
        .spawn(thread::current)
        .unwrap();
    let inner = h.thread().clone();
    let seen = h.join().unwrap();
    assert_eq!(seen.name(), Some("named-one"));
    assert_eq!(seen.id(), inner.id());
    let other = thread::spawn(|| thread::current().id()).join().unwrap();
    assert_ne!(other, inner.id());
    // On a plain thread, current() describes that thread, with a stable id.
    let me = thread::current();
    assert_eq!(me.id(), thread::current().id());
    assert_eq!(me.name(), std::thread::current().name());
    assert!(format!("{:?}", me.id()).starts_with("ThreadId("));
}

#[test]
fn park_and_unpark_between_coroutines() {
    let (tx, rx) = mpsc::channel();
    let parked = thread::spawn(move || {
        tx.send(thread::current()).unwrap();
        thread::park();
        "woken"
    });
    let handle = rx.recv().unwrap();
    thread::sleep(Duration::from_millis(20));
    handle.unpark();
    assert_eq!(parked.join().unwrap(), "woken");
}

#[test]
fn an_unpark_before_park_is_kept() {
    let h = thread::spawn(|| {
        thread::current().unpark();
        let start = Instant::now();
        thread::park(); // the token is already there
        start.elapsed()
    });
    assert!(h.join().unwrap() < Duration::from_secs(5));
}

#[test]
fn park_timeout_returns_in_coroutines_and_threads() {
    let in_coroutine = thread::spawn(|| {
        let start = Instant::now();
        thread::park_timeout(Duration::from_millis(30));
        start.elapsed()
    })
    .join()
    .unwrap();
    assert!(
        in_coroutine >= Duration::from_millis(25),
        "{in_coroutine:?}"
    );
    assert!(in_coroutine < Duration::from_secs(5));
    let start = Instant::now();
    thread::park_timeout(Duration::from_millis(30));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn sub_millisecond_sleeps_end() {
    let took = thread::spawn(|| {
        let start = Instant::now();
        for _ in 0..20 {
            thread::sleep(Duration::from_micros(100));
        }
        thread::sleep(Duration::ZERO);
        start.elapsed()
    })
    .join()
    .unwrap();
    assert!(took >= Duration::from_micros(2_000));
    assert!(took < Duration::from_secs(5));
}

#[test]
fn plain_thread_sleep_is_std_sleep() {
    let start = Instant::now();
    thread::sleep(Duration::from_millis(30));
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn refused_stack_is_an_error_not_an_abort() {
    // No machine can map a 64 TiB stack: the OS refuses, and Builder::spawn says so.
    let err = thread::Builder::new()
        .stack_size(1 << 46)
        .spawn(|| ())
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
    assert!(err.to_string().contains("coroutine stack"), "{err}");
    // The free function panics with std's message.
    let panicked = std::panic::catch_unwind(|| {
        greennet::run(|| {
            let b = thread::Builder::new().stack_size(1 << 46);
            b.spawn(|| ()).expect("failed to spawn thread")
        })
    });
    assert!(panicked.is_err());
    // And the runtime still works afterwards.
    assert_eq!(thread::spawn(|| 5).join().unwrap(), 5);
}

#[test]
fn run_returns_the_value_and_borrows() {
    let words = [String::from("a"), String::from("b")];
    let joined = greennet::run(|| words.concat());
    assert_eq!(joined, "ab");
}

#[test]
#[should_panic(expected = "run body panicked")]
fn run_reraises_the_panic() {
    greennet::run(|| panic!("run body panicked"));
}

#[test]
fn reexports_are_std_items() {
    let n: std::num::NonZeroUsize = thread::available_parallelism().unwrap();
    assert!(n.get() >= 1);
    assert!(!thread::panicking());
    let _: fn() -> thread::Result<()> = || Ok(());
    thread_local!(static X: u8 = const { 1 });
    let key: &'static thread::LocalKey<u8> = &X;
    assert_eq!(key.with(|x| *x), 1);
}

#[test]
fn handles_have_std_auto_traits() {
    // As std: handles are Send and Sync; Thread and Builder are also unwind-safe, JoinHandle
    // (a cell awaiting the result) is not.
    fn send_sync<T: Send + Sync>() {}
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    send_sync::<thread::Thread>();
    send_sync::<thread::ThreadId>();
    send_sync::<thread::JoinHandle<u8>>();
    send_sync::<thread::Builder>();
    unwind_safe::<thread::Thread>();
    unwind_safe::<thread::ThreadId>();
    unwind_safe::<thread::Builder>();
}
