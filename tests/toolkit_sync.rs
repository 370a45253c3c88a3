//! gevent's synchronisation toolkit (`greennet::event`, `greennet::queue`, `greennet::lock`):
//! each case runs inside a coroutine and again on a plain thread, and a few cross between
//! coroutines and std threads. Every wait a failure could leave hanging has a timeout.
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use greennet::event::{AlreadySet, AsyncResult, Event};
use greennet::lock::{BoundedSemaphore, Semaphore};
use greennet::queue::{Channel, Full, LifoQueue, PriorityQueue, Queue};
use greennet::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use greennet::sync::{Arc, Barrier};
use greennet::thread;

/// The timeout whose expiry the cases measure.
const SHORT: Duration = Duration::from_millis(100);
/// A bound on waits that should succeed; reaching it means the case failed.
const LONG: Duration = Duration::from_secs(10);

/// The call started at `start` ran out its `timeout`: not early, and not much late.
fn assert_timed_out(start: Instant, timeout: Duration) {
    let took = start.elapsed();
    assert!(
        took >= timeout,
        "gave up after {took:?}, before its {timeout:?}"
    );
    assert!(took < Duration::from_secs(2), "gave up only after {took:?}");
}

fn capacity(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

/// Every item `get` yields, until it yields none.
fn drain<T>(get: impl FnMut() -> Option<T>) -> Vec<T> {
    std::iter::from_fn(get).collect()
}

/// `name => { body }`: one test running `body` in a coroutine, one running it on a plain thread.
macro_rules! in_coroutine_and_thread {
    ($($name:ident => $body:block)*) => {
        mod in_coroutine {
            use super::*;
            $(#[test] fn $name() { greennet::run(|| $body) })*
        }
        mod on_thread {
            use super::*;
            $(#[test] fn $name() $body)*
        }
    };
}

in_coroutine_and_thread! {
    event_set_wakes_every_waiter_and_clear_resets => {
        let event = Arc::new(Event::new());
        let ready = Arc::new(Barrier::new(6));
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let (event, ready) = (event.clone(), ready.clone());
                thread::spawn(move || {
                    ready.wait();
                    event.wait_timeout(LONG)
                })
            })
            .collect();
        ready.wait();
        assert!(!event.is_set());
        event.set();
        assert!(event.is_set());
        for waiter in waiters {
            assert!(waiter.join().unwrap(), "a waiter timed out although the event was set");
        }
        event.wait(); // set: returns at once
        event.clear();
        assert!(!event.is_set());
        let start = Instant::now();
        assert!(!event.wait_timeout(SHORT));
        assert_timed_out(start, SHORT);
    }

    event_crosses_between_coroutines_and_std_threads => {
        let to_thread = Arc::new(Event::new());
        let to_coroutine = Arc::new(Event::new());
        // The std thread reports through an AsyncResult: its `join` would block a worker.
        let thread_woken = Arc::new(AsyncResult::<bool, ()>::new());
        let std_thread = {
            let (to_thread, to_coroutine) = (to_thread.clone(), to_coroutine.clone());
            let thread_woken = thread_woken.clone();
            std::thread::spawn(move || {
                let woken = to_thread.wait_timeout(LONG);
                to_coroutine.set();
                thread_woken.set(woken).unwrap();
            })
        };
        let coroutine = {
            let (to_thread, to_coroutine) = (to_thread.clone(), to_coroutine.clone());
            thread::spawn(move || {
                to_thread.set();
                to_coroutine.wait_timeout(LONG)
            })
        };
        assert_eq!(thread_woken.get_timeout(LONG), Some(Ok(true)));
        assert!(coroutine.join().unwrap());
        std_thread.join().unwrap(); // already done
    }

    async_result_reaches_every_reader_and_keeps_the_first_value => {
        let result = Arc::new(AsyncResult::<u32, String>::new());
        assert!(!result.ready());
        assert_eq!(result.try_get(), None);
        let ready = Arc::new(Barrier::new(11));
        let readers: Vec<_> = (0..10)
            .map(|_| {
                let (result, ready) = (result.clone(), ready.clone());
                thread::spawn(move || {
                    ready.wait();
                    result.get_timeout(LONG)
                })
            })
            .collect();
        ready.wait();
        result.set(42).unwrap();
        for reader in readers {
            assert_eq!(reader.join().unwrap(), Some(Ok(42)));
        }
        assert!(result.ready());
        assert_eq!(result.set(7), Err(AlreadySet(7)));
        assert_eq!(result.set_err("late".into()).unwrap_err().into_inner(), "late");
        assert_eq!(result.get(), Ok(42));
        assert_eq!(result.try_get(), Some(Ok(42)));
    }

    async_result_carries_an_error => {
        let result = Arc::new(AsyncResult::<u32, String>::new());
        let reader = {
            let result = result.clone();
            thread::spawn(move || result.get_timeout(LONG))
        };
        result.set_err("boom".into()).unwrap();
        assert_eq!(reader.join().unwrap(), Some(Err("boom".into())));
        assert_eq!(result.set(1), Err(AlreadySet(1)));
        assert_eq!(result.get(), Err("boom".into()));
        let shown = result.set(2).unwrap_err().to_string();
        assert!(!shown.is_empty());
    }

    async_result_get_timeout_expires_then_a_std_thread_sets_it => {
        let result = Arc::new(AsyncResult::<&str, ()>::new());
        let start = Instant::now();
        assert_eq!(result.get_timeout(SHORT), None);
        assert_timed_out(start, SHORT);
        let start = Instant::now();
        assert!(!result.wait_timeout(SHORT));
        assert_timed_out(start, SHORT);
        let setter = {
            let result = result.clone();
            std::thread::spawn(move || result.set("from a std thread").unwrap())
        };
        assert_eq!(result.get_timeout(LONG), Some(Ok("from a std thread")));
        assert!(result.wait_timeout(LONG));
        setter.join().unwrap();
    }

    queues_give_items_in_their_order => {
        let fifo = Queue::new();
        let lifo = LifoQueue::new();
        let priority = PriorityQueue::new();
        for n in [3, 1, 4, 1, 5, 9, 2, 6] {
            fifo.put(n);
            lifo.put(n);
            priority.put(n);
        }
        assert_eq!(fifo.len(), 8);
        assert_eq!(drain(|| fifo.try_get().ok()), [3, 1, 4, 1, 5, 9, 2, 6]);
        assert_eq!(drain(|| lifo.try_get().ok()), [6, 2, 9, 5, 1, 4, 1, 3]);
        assert_eq!(drain(|| priority.try_get().ok()), [1, 1, 2, 3, 4, 5, 6, 9]);
        assert!(fifo.is_empty() && lifo.is_empty() && priority.is_empty());
        assert_eq!(fifo.capacity(), None);
        assert!(!fifo.is_full());
    }

    queue_hands_items_between_coroutines_in_order => {
        let q = Arc::new(Queue::new());
        let consumer = {
            let q = q.clone();
            thread::spawn(move || {
                (0..100)
                    .map(|_| q.get_timeout(LONG).unwrap())
                    .collect::<Vec<_>>()
            })
        };
        for n in 0..100 {
            q.put(n);
        }
        assert_eq!(consumer.join().unwrap(), (0..100).collect::<Vec<_>>());
    }

    bounded_put_waits_while_full => {
        let q = Arc::new(Queue::bounded(capacity(1)));
        assert_eq!(q.capacity(), Some(1));
        q.put(1);
        assert!(q.is_full());
        assert_eq!(q.try_put(2), Err(Full(2)));
        let started = Arc::new(Event::new());
        let returned = Arc::new(AtomicBool::new(false));
        let putter = {
            let (q, started, returned) = (q.clone(), started.clone(), returned.clone());
            thread::spawn(move || {
                started.set();
                let put = q.put_timeout(2, LONG);
                returned.store(true, Ordering::SeqCst);
                put
            })
        };
        assert!(started.wait_timeout(LONG));
        thread::sleep(Duration::from_millis(50)); // let the putter reach its wait
        assert!(!returned.load(Ordering::SeqCst), "put returned while the queue was full");
        assert_eq!(q.get_timeout(LONG), Ok(1));
        assert_eq!(putter.join().unwrap(), Ok(()));
        assert_eq!(q.get_timeout(LONG), Ok(2));
        assert!(q.is_empty());
    }

    bounded_put_timeout_gives_the_item_back => {
        let q = Queue::bounded(capacity(2));
        q.put("a");
        q.put("b");
        let start = Instant::now();
        let refused = q.put_timeout("c", SHORT).unwrap_err();
        assert_timed_out(start, SHORT);
        assert_eq!(refused.into_inner(), "c");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get(), "a");
        assert_eq!(q.put_timeout("c", SHORT), Ok(()));
    }

    get_timeout_on_an_empty_queue_fails => {
        let q = PriorityQueue::<u8>::new();
        assert!(q.try_get().is_err());
        let start = Instant::now();
        let empty = q.get_timeout(SHORT).unwrap_err();
        assert_timed_out(start, SHORT);
        assert!(!empty.to_string().is_empty());
    }

    join_returns_after_every_task_is_done => {
        let q = Arc::new(Queue::new());
        for n in 0..3 {
            q.put(n);
        }
        let start = Instant::now();
        assert!(!q.join_timeout(SHORT));
        assert_timed_out(start, SHORT);
        let handled = Arc::new(AtomicUsize::new(0));
        let worker = {
            let (q, handled) = (q.clone(), handled.clone());
            thread::spawn(move || {
                for _ in 0..3 {
                    q.get_timeout(LONG).unwrap();
                    thread::yield_now();
                    handled.fetch_add(1, Ordering::SeqCst);
                    q.task_done().unwrap();
                }
            })
        };
        assert!(q.join_timeout(LONG));
        assert_eq!(handled.load(Ordering::SeqCst), 3, "join returned before every task_done");
        q.join(); // nothing unfinished: returns at once
        worker.join().unwrap();
        let too_many = q.task_done().unwrap_err();
        assert!(!too_many.to_string().is_empty());
        q.put(9);
        assert_eq!(q.task_done(), Ok(()));
        assert!(q.task_done().is_err());
    }

    channel_put_returns_only_once_taken => {
        let ch = Arc::new(Channel::new());
        let started = Arc::new(Event::new());
        let returned = Arc::new(AtomicBool::new(false));
        let putter = {
            let (ch, started, returned) = (ch.clone(), started.clone(), returned.clone());
            thread::spawn(move || {
                started.set();
                let put = ch.put_timeout(7, LONG);
                returned.store(true, Ordering::SeqCst);
                put
            })
        };
        assert!(started.wait_timeout(LONG));
        thread::sleep(Duration::from_millis(50)); // let the putter reach its wait
        assert!(!returned.load(Ordering::SeqCst), "put returned before any get");
        assert_eq!(ch.get_timeout(LONG), Ok(7));
        assert_eq!(putter.join().unwrap(), Ok(()));
        assert!(returned.load(Ordering::SeqCst));
    }

    channel_get_waits_for_a_putter => {
        let ch = Arc::new(Channel::new());
        let getter = {
            let ch = ch.clone();
            thread::spawn(move || ch.get_timeout(LONG))
        };
        assert_eq!(ch.put_timeout("hi", LONG), Ok(()));
        assert_eq!(getter.join().unwrap(), Ok("hi"));
        let start = Instant::now();
        assert!(ch.get_timeout(SHORT).is_err());
        assert_timed_out(start, SHORT);
    }

    channel_put_timeout_takes_its_item_back => {
        let ch = Channel::new();
        let start = Instant::now();
        assert_eq!(ch.put_timeout(5, SHORT), Err(Full(5)));
        assert_timed_out(start, SHORT);
        assert!(ch.try_get().is_err(), "a timed-out put left its item behind");
        assert!(ch.get_timeout(Duration::from_millis(20)).is_err());
    }

    channel_timed_puts_and_gets_agree => {
        // Putters give up quickly while getters come and go: every item a put reports as
        // delivered is received exactly once, and no refused item is ever received.
        let ch = Arc::new(Channel::new());
        let putters_done = Arc::new(AtomicBool::new(false));
        let putters: Vec<_> = (0..4)
            .map(|p| {
                let ch = ch.clone();
                thread::spawn(move || {
                    (0..100)
                        .map(|i| p * 1000 + i)
                        .filter(|&item| ch.put_timeout(item, Duration::from_millis(1)).is_ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let getters: Vec<_> = (0..3)
            .map(|_| {
                let (ch, putters_done) = (ch.clone(), putters_done.clone());
                thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match ch.get_timeout(Duration::from_millis(2)) {
                            Ok(item) => got.push(item),
                            Err(_) if putters_done.load(Ordering::SeqCst) => return got,
                            Err(_) => {}
                        }
                    }
                })
            })
            .collect();
        let mut delivered: Vec<_> = putters.into_iter().flat_map(|p| p.join().unwrap()).collect();
        putters_done.store(true, Ordering::SeqCst);
        let mut received: Vec<_> = getters.into_iter().flat_map(|g| g.join().unwrap()).collect();
        delivered.sort_unstable();
        received.sort_unstable();
        assert_eq!(delivered, received);
    }

    semaphore_limits_how_many_hold_a_permit => {
        const PERMITS: usize = 5;
        let sem = Arc::new(Semaphore::new(PERMITS));
        let holding = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let acquired = Arc::new(AtomicUsize::new(0));
        // The first five holders meet here while holding, so the limit is certainly reached.
        let first_batch = Arc::new(Barrier::new(PERMITS));
        let workers: Vec<_> = (0..50)
            .map(|_| {
                let (sem, holding, most) = (sem.clone(), holding.clone(), most.clone());
                let (acquired, first_batch) = (acquired.clone(), first_batch.clone());
                thread::spawn(move || {
                    let _permit = sem.acquire_timeout(LONG).expect("no permit within 10 s");
                    let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    if acquired.fetch_add(1, Ordering::SeqCst) < PERMITS {
                        first_batch.wait();
                    }
                    thread::sleep(Duration::from_millis(1));
                    holding.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(most.load(Ordering::SeqCst), PERMITS);
        assert_eq!(sem.available_permits(), PERMITS);
    }

    semaphore_timeouts_manual_release_and_wait => {
        let sem = Arc::new(Semaphore::new(1));
        let held = sem.acquire();
        assert!(sem.try_acquire().is_none());
        let start = Instant::now();
        assert!(sem.acquire_timeout(SHORT).is_none());
        assert_timed_out(start, SHORT);
        held.forget();
        assert_eq!(sem.available_permits(), 0);
        // One caller waits for a permit without taking it, another takes one.
        let watcher = {
            let sem = sem.clone();
            thread::spawn(move || sem.wait())
        };
        let taker = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire_timeout(LONG).is_some())
        };
        sem.release();
        assert!(taker.join().unwrap());
        assert_eq!(watcher.join().unwrap(), 1);
        sem.release(); // a plain semaphore may grow past its start
        assert_eq!(sem.available_permits(), 2);
    }

    bounded_semaphore_refuses_extra_releases => {
        let sem = BoundedSemaphore::new(2);
        let err = sem.release().unwrap_err();
        assert!(!err.to_string().is_empty());
        assert_eq!(sem.available_permits(), 2);
        let a = sem.acquire_timeout(LONG).unwrap();
        let b = sem.try_acquire().unwrap();
        assert!(sem.try_acquire().is_none());
        a.forget();
        drop(b);
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(sem.release(), Ok(()));
        assert!(sem.release().is_err());
        assert_eq!(sem.available_permits(), 2);
        // A guard dropped after its permit was already released by hand changes nothing.
        let c = sem.acquire();
        sem.release().unwrap();
        drop(c);
        assert_eq!(sem.available_permits(), 2);
    }
}

/// The `#[green::test]` form of a case, crossing to a std thread that waits on a semaphore.
#[green::test]
fn a_std_thread_waits_for_a_permit_a_coroutine_releases() {
    let sem = Arc::new(BoundedSemaphore::new(1));
    let held = sem.acquire();
    let got_permit = Arc::new(AsyncResult::<bool, ()>::new());
    let std_thread = {
        let (sem, got_permit) = (sem.clone(), got_permit.clone());
        std::thread::spawn(move || got_permit.set(sem.acquire_timeout(LONG).is_some()).unwrap())
    };
    thread::sleep(Duration::from_millis(20)); // let the std thread reach its wait
    drop(held);
    assert_eq!(got_permit.get_timeout(LONG), Some(Ok(true)));
    std_thread.join().unwrap(); // already done
}

#[test]
fn toolkit_types_are_send_and_sync_for_send_items() {
    fn send_sync<T: Send + Sync>() {}
    type NotSync = std::cell::Cell<u8>;
    send_sync::<Event>();
    send_sync::<AsyncResult<NotSync, NotSync>>();
    send_sync::<Queue<NotSync>>();
    send_sync::<LifoQueue<NotSync>>();
    send_sync::<PriorityQueue<NotSync>>();
    send_sync::<Channel<NotSync>>();
    send_sync::<Semaphore>();
    send_sync::<BoundedSemaphore>();
}
