//! greennet::pool: the cap on running tasks, result order, panics, joins, kills, and use from
//! plain threads. Every test runs under a watchdog, so a hang fails instead of stalling the run.
use greennet::pool::{Group, Pool};
use greennet::sync::{Condvar, Mutex};
use greennet::thread::{self, Killed};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long any one test may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs `f` on a fresh plain thread (inside a coroutine if `in_coroutine`) and fails if it has
/// not finished within `LIMIT`; a panic in `f` fails the test with its payload.
fn watchdog(in_coroutine: bool, f: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let runner = std::thread::spawn(move || {
        if in_coroutine {
            greennet::run(f);
        } else {
            f();
        }
        drop(done_tx);
    });
    // Disconnected means the runner is done, by returning or by panicking.
    if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(LIMIT) {
        panic!("the test did not finish within {LIMIT:?}");
    }
    runner
        .join()
        .unwrap_or_else(|payload| resume_unwind(payload));
}

fn in_coroutine(f: impl FnOnce() + Send + 'static) {
    watchdog(true, f);
}

/// A latch that tasks wait on until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    /// Waits until the gate opens; `false` if it stayed shut for 10 s.
    fn wait(&self) -> bool {
        let shut = self.0 .0.lock().unwrap();
        let (_open, result) = self
            .0
             .1
            .wait_timeout_while(shut, Duration::from_secs(10), |open| !*open)
            .unwrap();
        !result.timed_out()
    }
}

/// Waits, up to 10 s, until `done` holds.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while !done() {
        if Instant::now() > end {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("<not a string>")
}

/// Counts calls running at once and the most seen.
#[derive(Clone, Default)]
struct Concurrency {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl Concurrency {
    fn enter(&self) {
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, SeqCst);
    }
}

#[test]
fn map_over_ten_thousand_items_never_runs_more_than_the_pool_size() {
    in_coroutine(|| {
        let pool = Pool::new(50);
        let seen = Concurrency::default();
        let counter = seen.clone();
        let doubled = pool.map(0..10_000u32, move |i| {
            counter.enter();
            thread::sleep(Duration::from_millis(1));
            counter.leave();
            i * 2
        });
        assert_eq!(doubled, (0..10_000).map(|i| i * 2).collect::<Vec<_>>());
        let max = seen.max.load(SeqCst);
        assert!(max <= 50, "{max} tasks ran at once in a pool of 50");
        assert_eq!(max, 50, "the pool never filled up");
        assert_eq!(seen.now.load(SeqCst), 0);
        assert_eq!(pool.free_count(), 50);
    });
}

#[test]
fn map_keeps_input_order_when_later_items_finish_first() {
    in_coroutine(|| {
        let pool = Pool::new(8);
        let out = pool.map(0..32u64, |i| {
            thread::sleep(Duration::from_millis(32 - i));
            i
        });
        assert_eq!(out, (0..32).collect::<Vec<_>>());
        let nothing: Vec<u8> = pool.map(Vec::<u8>::new(), |x| x);
        assert!(nothing.is_empty());
    });
}

#[test]
fn imap_yields_in_input_order_without_waiting_for_later_items() {
    in_coroutine(|| {
        let pool = Pool::new(4);
        let last = Gate::default();
        let gate = last.clone();
        let mut results = pool.imap(0..6usize, move |i| {
            if i == 5 {
                // Only opened once the first five have been received.
                return if gate.wait() { i } else { usize::MAX };
            }
            thread::sleep(Duration::from_millis(5 * (5 - i) as u64));
            i
        });
        let first: Vec<usize> = results.by_ref().take(5).collect();
        assert_eq!(first, [0, 1, 2, 3, 4]);
        last.open();
        assert_eq!(results.next(), Some(5));
        assert_eq!(results.next(), None);
        assert_eq!(results.next(), None);
    });
}

#[test]
fn imap_unordered_yields_the_fast_results_first_and_all_of_them() {
    in_coroutine(|| {
        let pool = Pool::new(10);
        let slow = Gate::default();
        let gate = slow.clone();
        let mut results = pool.imap_unordered(0..10usize, move |i| {
            if i == 0 {
                return if gate.wait() { 0 } else { usize::MAX };
            }
            thread::sleep(Duration::from_millis(i as u64));
            i
        });
        let mut fast: Vec<usize> = results.by_ref().take(9).collect();
        fast.sort_unstable();
        assert_eq!(fast, (1..10).collect::<Vec<_>>());
        slow.open();
        assert_eq!(results.next(), Some(0));
        assert_eq!(results.next(), None);
    });
}

#[test]
fn a_panic_in_map_reaches_the_caller_with_its_payload_once_the_others_are_done() {
    in_coroutine(|| {
        let pool = Pool::new(4);
        let seen = Concurrency::default();
        let started = Arc::new(AtomicUsize::new(0));
        let (counter, starts) = (seen.clone(), started.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.map(0..100u32, move |i| {
                starts.fetch_add(1, SeqCst);
                counter.enter();
                thread::sleep(Duration::from_millis(5));
                counter.leave();
                if i == 7 {
                    panic!("item {i} failed");
                }
                i
            })
        }));
        let payload = outcome.expect_err("map returned despite a panicking item");
        assert_eq!(message(&*payload), "item 7 failed");
        assert_eq!(seen.now.load(SeqCst), 0, "map returned while its tasks ran");
        let started = started.load(SeqCst);
        assert!(started < 100, "map kept starting items after the panic");
        assert_eq!(pool.free_count(), 4);
        // The pool is still usable, and the panic is not reported again.
        assert_eq!(pool.map([1, 2], |x| x + 1), [2, 3]);
        pool.join();
    });
}

#[test]
fn map_resumes_the_panic_of_the_earliest_item_that_panicked() {
    in_coroutine(|| {
        let pool = Pool::new(10);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.map(0..10u32, |i| match i {
                // Item 5 fails first in time, item 3 first in input order.
                5 => panic!("item 5"),
                3 => {
                    thread::sleep(Duration::from_millis(30));
                    panic!("item 3")
                }
                _ => i,
            })
        }));
        assert_eq!(message(&*outcome.unwrap_err()), "item 3");
    });
}

#[test]
fn imap_yields_the_results_before_a_panic_then_resumes_it() {
    in_coroutine(|| {
        let pool = Pool::new(2);
        let mut results = pool.imap(0..10u32, |i| {
            if i == 3 {
                panic!("imap item 3");
            }
            i
        });
        let before: Vec<u32> = results.by_ref().take(3).collect();
        assert_eq!(before, [0, 1, 2]);
        let payload = catch_unwind(AssertUnwindSafe(|| results.next())).unwrap_err();
        assert_eq!(message(&*payload), "imap item 3");
        assert_eq!(results.next(), None);
        assert_eq!(pool.free_count(), 2);

        let mut unordered = pool.imap_unordered(0..10u32, |i| {
            if i == 0 {
                panic!("unordered item 0");
            }
            i
        });
        let payload = catch_unwind(AssertUnwindSafe(|| unordered.by_ref().count())).unwrap_err();
        assert_eq!(message(&*payload), "unordered item 0");
        assert_eq!(unordered.next(), None);
        assert_eq!(pool.free_count(), 2);
    });
}

#[test]
fn apply_returns_the_value_and_resumes_a_panic() {
    in_coroutine(|| {
        let pool = Pool::new(1);
        assert_eq!(pool.apply(|| 6 * 7), 42);
        let payload =
            catch_unwind(AssertUnwindSafe(|| pool.apply(|| panic!("applied")))).unwrap_err();
        assert_eq!(message(&*payload), "applied");
        // From a task of its own full pool, apply runs the call in place instead of waiting.
        let inner = pool.clone();
        let nested = pool.spawn(move || inner.apply(|| 5));
        assert_eq!(nested.join().unwrap(), 5);
        assert_eq!(pool.free_count(), 1);
    });
}

#[test]
fn join_waits_for_every_task_spawned_so_far() {
    in_coroutine(|| {
        let pool = Pool::new(5);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..20 {
            let done = done.clone();
            // The handle is dropped: the task runs on, detached.
            pool.spawn(move || {
                thread::sleep(Duration::from_millis(10));
                done.fetch_add(1, SeqCst);
            });
        }
        pool.join();
        assert_eq!(done.load(SeqCst), 20);
        assert_eq!(pool.free_count(), 5);

        let gate = Gate::default();
        let waiting = gate.clone();
        pool.spawn(move || waiting.wait());
        assert!(!pool.join_timeout(Duration::from_millis(50)));
        gate.open();
        assert!(pool.join_timeout(Duration::from_secs(10)));

        // Joined from one of its own tasks, a group does not wait for that task.
        let group = Group::new();
        let same = group.clone();
        let member = group.spawn(move || {
            same.join();
            1
        });
        assert_eq!(member.join().unwrap(), 1);
    });
}

#[test]
fn join_resumes_the_panic_of_a_task_whose_handle_was_dropped() {
    in_coroutine(|| {
        let pool = Pool::new(2);
        drop(pool.spawn(|| panic!("nobody joined me")));
        let payload = catch_unwind(AssertUnwindSafe(|| pool.join())).unwrap_err();
        assert_eq!(message(&*payload), "nobody joined me");
        // Reported once.
        pool.join();
        // A panic that went to its handle is not reported again.
        let seen = pool.spawn(|| panic!("joined"));
        assert_eq!(message(&*seen.join().unwrap_err()), "joined");
        pool.join();
        assert_eq!(pool.free_count(), 2);
    });
}

#[test]
fn free_count_and_wait_available_follow_the_slots() {
    in_coroutine(|| {
        let pool = Pool::new(3);
        assert_eq!(pool.free_count(), 3);
        pool.wait_available();
        let gates: Vec<Gate> = (0..3).map(|_| Gate::default()).collect();
        let mut handles: Vec<_> = gates
            .iter()
            .map(|gate| {
                let gate = gate.clone();
                pool.spawn(move || gate.wait())
            })
            .collect();
        assert_eq!(pool.free_count(), 0);
        let waiter = {
            let pool = pool.clone();
            thread::spawn(move || pool.wait_available())
        };
        thread::sleep(Duration::from_millis(20));
        assert!(
            !waiter.is_finished(),
            "wait_available returned with no slot free"
        );
        gates[1].open();
        waiter.join().unwrap();
        let second = handles.remove(1);
        assert!(second.join().unwrap());
        // After join, the task's slot is free again.
        assert_eq!(pool.free_count(), 1);
        gates[0].open();
        gates[2].open();
        for handle in handles {
            assert!(handle.join().unwrap());
        }
        assert_eq!(pool.free_count(), 3);
    });
}

#[test]
fn many_callers_waiting_for_a_small_pool_all_get_their_turn() {
    in_coroutine(|| {
        let pool = Pool::new(3);
        let seen = Concurrency::default();
        let callers = Group::new();
        for i in 0..300u32 {
            let (pool, seen) = (pool.clone(), seen.clone());
            callers.spawn(move || {
                if i % 10 == 0 {
                    // Waiters that take no slot must not swallow the wake-ups of those that do.
                    pool.wait_available();
                }
                let got = pool.apply(move || {
                    seen.enter();
                    thread::sleep(Duration::from_millis(1));
                    seen.leave();
                    i
                });
                assert_eq!(got, i);
            });
        }
        callers.join();
        assert!(seen.max.load(SeqCst) <= 3);
        assert_eq!(pool.free_count(), 3);
    });
}

#[test]
fn a_size_of_zero_makes_a_pool_of_one() {
    in_coroutine(|| {
        let pool = Pool::new(0);
        assert_eq!(pool.free_count(), 1);
        let seen = Concurrency::default();
        let counter = seen.clone();
        let out = pool.map(0..20, move |i| {
            counter.enter();
            thread::sleep(Duration::from_millis(1));
            counter.leave();
            i
        });
        assert_eq!(out, (0..20).collect::<Vec<_>>());
        assert_eq!(seen.max.load(SeqCst), 1);
    });
}

#[test]
fn a_group_runs_every_task_at_once() {
    in_coroutine(|| {
        let group = Group::new();
        assert_eq!(group.free_count(), usize::MAX);
        group.wait_available();
        let arrived = Arc::new(AtomicUsize::new(0));
        let gate = Gate::default();
        let handles: Vec<_> = (0..1000)
            .map(|_| {
                let (arrived, gate) = (arrived.clone(), gate.clone());
                group.spawn(move || {
                    arrived.fetch_add(1, SeqCst);
                    gate.wait()
                })
            })
            .collect();
        assert!(
            eventually(|| arrived.load(SeqCst) == 1000),
            "only {} of 1000 tasks started",
            arrived.load(SeqCst)
        );
        gate.open();
        group.join();
        assert!(handles.into_iter().all(|h| h.join().unwrap()));
    });
}

#[test]
fn a_pool_works_from_a_plain_thread() {
    watchdog(false, || {
        let pool = Pool::new(4);
        let seen = Concurrency::default();
        let counter = seen.clone();
        let out = pool.map(0..200u32, move |i| {
            counter.enter();
            thread::sleep(Duration::from_millis(1));
            counter.leave();
            i + 1
        });
        assert_eq!(out, (1..=200).collect::<Vec<_>>());
        assert!(seen.max.load(SeqCst) <= 4);
        let ordered: Vec<u32> = pool.imap(0..10u32, |i| i * i).collect();
        assert_eq!(ordered, (0..10).map(|i| i * i).collect::<Vec<_>>());
        assert_eq!(pool.imap_unordered(0..10u32, |i| i).count(), 10);
        assert_eq!(pool.apply(|| "applied"), "applied");
        let handle = pool.spawn(|| thread::sleep(Duration::from_millis(10)));
        pool.wait_available();
        pool.join();
        assert!(handle.is_finished());
        handle.join().unwrap();
        assert_eq!(pool.free_count(), 4);
    });
}

#[test]
fn dropping_an_imap_early_starts_nothing_more_and_join_waits_for_the_rest() {
    in_coroutine(|| {
        let pool = Pool::new(4);
        let started = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let (starts, ends) = (started.clone(), finished.clone());
        let mut results = pool.imap(0..100u32, move |i| {
            starts.fetch_add(1, SeqCst);
            thread::sleep(Duration::from_millis(10));
            ends.fetch_add(1, SeqCst);
            i
        });
        assert_eq!(results.next(), Some(0));
        drop(results);
        pool.join();
        let started = started.load(SeqCst);
        assert!(started < 100, "the dropped iterator kept starting items");
        assert_eq!(finished.load(SeqCst), started);
        assert_eq!(pool.free_count(), 4);
    });
}

#[test]
fn a_join_handle_can_time_out_and_be_joined_later() {
    in_coroutine(|| {
        let pool = Pool::new(1);
        let gate = Gate::default();
        let waiting = gate.clone();
        let handle = pool.spawn(move || waiting.wait());
        let handle = handle
            .join_timeout(Duration::from_millis(20))
            .expect_err("joined a task that was still waiting");
        assert!(!handle.is_finished());
        gate.open();
        let result = handle.join_timeout(Duration::from_secs(10)).unwrap();
        assert!(result.unwrap());
    });
}

#[test]
fn kill_stops_every_running_task_and_join_does_not_report_it() {
    in_coroutine(|| {
        let pool = Pool::new(10);
        let start = Instant::now();
        let handles: Vec<_> = (0..5)
            .map(|_| pool.spawn(|| thread::sleep(Duration::from_secs(60))))
            .collect();
        // A task that has not reached its sleep yet is killed there.
        pool.kill();
        pool.join();
        for handle in handles {
            let payload = handle.join().unwrap_err();
            assert!(Killed::is(&*payload), "{}", message(&*payload));
        }
        assert!(start.elapsed() < Duration::from_secs(30));
        assert_eq!(pool.free_count(), 10);
        // The pool keeps working after a kill.
        assert_eq!(pool.apply(|| 1), 1);
    });
}

#[test]
fn kill_on_one_handle_stops_that_task_only() {
    in_coroutine(|| {
        let pool = Pool::new(2);
        let doomed = pool.spawn(|| thread::sleep(Duration::from_secs(60)));
        let spared = pool.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            "spared"
        });
        doomed.kill();
        assert!(Killed::is(&*doomed.join().unwrap_err()));
        assert_eq!(spared.join().unwrap(), "spared");
    });
}

#[test]
fn a_task_that_kills_its_pool_is_spared() {
    in_coroutine(|| {
        let pool = Pool::new(3);
        let sibling = pool.spawn(|| thread::sleep(Duration::from_secs(60)));
        let same = pool.clone();
        let killer = pool.spawn(move || {
            same.kill();
            thread::sleep(Duration::from_millis(10));
            "still here"
        });
        assert_eq!(killer.join().unwrap(), "still here");
        assert!(Killed::is(&*sibling.join().unwrap_err()));
    });
}

#[test]
fn killing_the_pool_during_map_resumes_the_kill_in_the_caller() {
    in_coroutine(|| {
        let pool = Pool::new(4);
        let mapper = {
            let pool = pool.clone();
            thread::spawn(move || pool.map(0..100u32, |_| thread::sleep(Duration::from_secs(60))))
        };
        assert!(
            eventually(|| pool.free_count() == 0),
            "map never filled the pool"
        );
        pool.kill();
        let payload = mapper.join().unwrap_err();
        assert!(Killed::is(&*payload), "{}", message(&*payload));
        pool.join();
        assert_eq!(pool.free_count(), 4);
    });
}
