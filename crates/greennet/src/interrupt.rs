//! Ending a wait early: the deadlines of [`timeout`](crate::timeout()) and
//! [`Timeout`](crate::timeout::Timeout), and [`JoinHandle::kill`](crate::thread::JoinHandle::kill).
//!
//! Every greennet wait (socket readiness, the sync primitives' queue, sleep, park, join, the
//! blocking pool) takes the earliest deadline of the timeouts active in its coroutine or thread
//! as an extra limit, registers how it can be woken while it is parked, and calls [`check`] when
//! it wakes. `check` starts an unwind (`resume_unwind`, so no panic message) whose payload is
//! [`Elapsed`](crate::timeout::Elapsed) or [`Killed`](crate::thread::Killed); destructors run on
//! the way out, and `timeout` or the coroutine's own boundary catches it. A wait is only ever
//! interrupted where it would otherwise park, before the operation it waits for has done
//! anything, so a socket interrupted this way is left as it was and stays usable.

use std::cell::RefCell;
use std::panic::resume_unwind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::green::alarm::Wake;
use crate::thread::Killed;
use crate::timeout::Elapsed;

/// The part of a coroutine's interruption state that other coroutines touch: whether it was
/// killed, and how to wake it while it is parked.
pub(crate) struct Interrupt {
    /// Read at every wait, so kept outside the lock. Set before the killer takes `waker`, and
    /// read by a waiter after it stores `waker`: one of the two sees the other.
    killed: AtomicBool,
    waker: Mutex<Option<Wake>>,
}

impl Interrupt {
    pub(crate) fn new() -> Arc<Interrupt> {
        Arc::new(Interrupt {
            killed: AtomicBool::new(false),
            waker: Mutex::new(None),
        })
    }

    fn waker(&self) -> std::sync::MutexGuard<'_, Option<Wake>> {
        self.waker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the coroutine killed and wakes it if it is parked in a greennet wait.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let waker = self.waker().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// What the current coroutine or thread knows about its own interruption.
#[derive(Default)]
struct Context {
    /// Set for coroutines spawned by greennet (they can be killed).
    interrupt: Option<Arc<Interrupt>>,
    /// The active timeouts, innermost last: (deadline, token).
    deadlines: Vec<(Instant, u64)>,
}

// may's coroutine-local storage falls back to a thread-local on plain threads.
may::coroutine_local!(static CONTEXT: RefCell<Context> = RefCell::new(Context::default()));

/// Called first thing in a greennet coroutine.
pub(crate) fn install(interrupt: Arc<Interrupt>) {
    CONTEXT.with(|c| c.borrow_mut().interrupt = Some(interrupt));
}

/// Starts a timeout in the current coroutine or thread.
pub(crate) fn push_deadline(deadline: Instant, token: u64) {
    CONTEXT.with(|c| c.borrow_mut().deadlines.push((deadline, token)));
}

/// Ends a timeout (guards may be dropped out of order; the token says which).
pub(crate) fn pop_deadline(token: u64) {
    CONTEXT.with(|c| {
        let deadlines = &mut c.borrow_mut().deadlines;
        // Usually the innermost, the last pushed.
        if deadlines.last().is_some_and(|&(_, t)| t == token) {
            deadlines.pop();
        } else {
            deadlines.retain(|&(_, t)| t != token);
        }
    });
}

/// The earlier of `own` and every active timeout's deadline.
pub(crate) fn limit(own: Option<Instant>) -> Option<Instant> {
    let earliest = CONTEXT.with(|c| c.borrow().deadlines.iter().map(|&(d, _)| d).min());
    match (own, earliest) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

enum Cause {
    Killed,
    Elapsed(u64),
}

fn cause() -> Option<Cause> {
    CONTEXT.with(|c| {
        let c = c.borrow();
        if c.interrupt
            .as_ref()
            .is_some_and(|i| i.killed.load(Ordering::SeqCst))
        {
            return Some(Cause::Killed);
        }
        let now = Instant::now();
        // The earliest expired deadline; on a tie the outermost, whose scope ends the others'.
        c.deadlines
            .iter()
            .enumerate()
            .filter(|(_, (d, _))| *d <= now)
            .min_by_key(|(i, (d, _))| (*d, *i))
            .map(|(_, &(_, token))| Cause::Elapsed(token))
    })
}

/// Whether a wait should stop now (and then call [`check`]). Never true while unwinding: a
/// destructor that waits during the unwind must be allowed to finish.
pub(crate) fn pending() -> bool {
    !std::thread::panicking() && cause().is_some()
}

/// Unwinds out of the current wait if the coroutine was killed or a timeout has expired.
pub(crate) fn check() {
    if std::thread::panicking() {
        return;
    }
    match cause() {
        Some(Cause::Killed) => {
            tracing::debug!("coroutine killed: unwinding");
            resume_unwind(Box::new(Killed::new()))
        }
        Some(Cause::Elapsed(token)) => {
            tracing::debug!(token, "timeout expired: unwinding");
            resume_unwind(Box::new(Elapsed::new(token)))
        }
        None => {}
    }
}

/// Clears the waker registered by [`arm`] when the wait is over.
pub(crate) struct Armed(Option<Arc<Interrupt>>);

/// Registers how to wake the current coroutine if it is killed while parked. Call [`pending`]
/// (or [`check`]) after this and before parking, so a kill that came first is not missed.
pub(crate) fn arm(waker: impl FnOnce() -> Wake) -> Armed {
    let interrupt = CONTEXT.with(|c| c.borrow().interrupt.clone());
    if let Some(i) = &interrupt {
        *i.waker() = Some(waker());
    }
    Armed(interrupt)
}

impl Drop for Armed {
    fn drop(&mut self) {
        if let Some(i) = &self.0 {
            *i.waker() = None;
        }
    }
}
