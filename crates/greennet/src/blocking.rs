//! A pool of plain threads for calls that must block: gevent's `ThreadPool`.
//!
//! A coroutine that calls a blocking function (a C library, a file system call, a name lookup)
//! holds its whole worker thread until it returns. [`blocking`] runs such a call on a pool
//! thread instead and parks only the calling coroutine. greennet itself uses the pool to resolve
//! host names.

use crate::green::alarm;
use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// The most threads the pool runs at once; further calls queue until one is free.
pub const MAX_THREADS: usize = 64;

/// How long an idle pool thread waits for work before it exits.
const IDLE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(State::default()),
        work: Condvar::new(),
    })
}

impl Pool {
    fn submit(&'static self, job: Job) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.queue.push_back(job);
        if state.idle > 0 {
            drop(state);
            self.work.notify_one();
            return;
        }
        if state.threads < MAX_THREADS {
            state.threads += 1;
            drop(state);
            let spawned = std::thread::Builder::new()
                .name("greennet-blocking".into())
                .spawn(move || self.serve());
            if let Err(e) = spawned {
                // The job stays queued for the threads already running (there is at least one
                // unless this was the first; then the caller would wait forever, so say so).
                tracing::error!(error = %e, "cannot start a blocking-pool thread");
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.threads -= 1;
                if state.threads == 0 {
                    // Run it here rather than never: the caller is blocked anyway.
                    if let Some(job) = state.queue.pop_back() {
                        drop(state);
                        job();
                    }
                }
            }
        }
    }

    fn serve(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            state.idle += 1;
            let (next, timeout) = self
                .work
                .wait_timeout(state, IDLE)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                state.threads -= 1;
                return;
            }
        }
    }
}

/// Runs `f` on the blocking thread pool and returns its result, parking only the calling
/// coroutine while it runs. On a plain thread it simply calls `f`.
///
/// # Panics
///
/// If `f` panics, `blocking` panics with the same payload in the caller.
///
/// ```
/// let digest = greennet::run(|| {
///     // Imagine a slow C library call here: the worker keeps running other coroutines.
///     greennet::blocking(|| (1..=20u64).product::<u64>())
/// });
/// assert_eq!(digest, 2_432_902_008_176_640_000);
/// ```
pub fn blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    if !may::coroutine::is_coroutine() {
        return f();
    }
    struct Slot<R> {
        result: Mutex<Option<std::thread::Result<R>>>,
        done: Arc<may::sync::Blocker>,
    }
    let slot = Arc::new(Slot {
        result: Mutex::new(None),
        done: may::sync::Blocker::current(),
    });
    let theirs = slot.clone();
    pool().submit(Box::new(move || {
        let result = catch_unwind(AssertUnwindSafe(f));
        *theirs.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        theirs.done.unpark();
    }));
    // A kill or a timeout ends the caller's wait (see `crate::timeout`); the job still runs to
    // its end on the pool, and its result is dropped.
    let mut wait = crate::interrupt::begin(None);
    let _alarm = wait
        .limit()
        .map(|d| alarm::set(d, alarm::Wake::Blocker(slot.done.clone())));
    wait.arm(|| alarm::Wake::Blocker(slot.done.clone()));
    loop {
        if let Some(result) = slot.result.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return result.unwrap_or_else(|payload| resume_unwind(payload));
        }
        wait.check();
        let _ = crate::monitor::switch(|| slot.done.park(None));
    }
}
