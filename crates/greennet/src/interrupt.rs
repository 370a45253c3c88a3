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
use std::sync::Mutex;
use std::time::Instant;

use crate::green::alarm::Wake;
use crate::thread::{Killed, Thread};
use crate::timeout::Elapsed;

/// The part of a coroutine's interruption state that other coroutines touch: whether it was
/// killed, and how to wake it while it is parked. Lives in the coroutine's `Thread`.
pub(crate) struct Interrupt {
    /// Read at every wait, so kept outside the lock. Set before the killer takes `waker`, and
    /// read by a waiter after it stores `waker`: one of the two sees the other.
    killed: AtomicBool,
    waker: Mutex<Option<Wake>>,
}

impl Interrupt {
    pub(crate) fn new() -> Interrupt {
        Interrupt {
            killed: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }

    fn waker(&self) -> std::sync::MutexGuard<'_, Option<Wake>> {
        self.waker.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
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
    /// Set for coroutines spawned by greennet (they can be killed): its `Thread` holds the
    /// `Interrupt`.
    thread: Option<Thread>,
    /// The active timeouts, innermost last: (deadline, token).
    deadlines: Vec<(Instant, u64)>,
}

impl Context {
    /// The deadline that expires first; on a tie the outermost, whose scope ends the others'.
    fn earliest(&self) -> Option<(Instant, u64)> {
        self.deadlines
            .iter()
            .enumerate()
            .min_by_key(|(i, (d, _))| (*d, *i))
            .map(|(_, &dt)| dt)
    }
}

// may's coroutine-local storage falls back to a thread-local on plain threads.
may::coroutine_local!(static CONTEXT: RefCell<Context> = RefCell::new(Context::default()));

/// Called first thing in a greennet coroutine.
pub(crate) fn install(thread: Thread) {
    CONTEXT.with(|c| c.borrow_mut().thread = Some(thread));
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
    earlier(own, CONTEXT.with(|c| c.borrow().earliest()).map(|(d, _)| d))
}

fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

enum Cause {
    Killed,
    Elapsed(u64),
}

fn unwind(cause: Cause) -> ! {
    match cause {
        Cause::Killed => {
            tracing::debug!("coroutine killed: unwinding");
            resume_unwind(Box::new(Killed::new()))
        }
        Cause::Elapsed(token) => {
            tracing::debug!(token, "timeout expired: unwinding");
            resume_unwind(Box::new(Elapsed::new(token)))
        }
    }
}

/// Unwinds if the current coroutine was killed or a timeout has expired, for code that checks
/// without waiting. Waits use [`Wait`], which looks its context up once.
pub(crate) fn check() {
    let wait = begin(None);
    wait.check();
}

/// One wait's view of its interruption, looked up once when the wait begins. The deadlines
/// cannot change while it lasts: only the waiting coroutine itself starts or ends timeouts.
pub(crate) struct Wait {
    thread: Option<Thread>,
    earliest: Option<(Instant, u64)>,
    own: Option<Instant>,
    armed: bool,
}

/// Begins a wait whose own deadline is `own`.
pub(crate) fn begin(own: Option<Instant>) -> Wait {
    let (thread, earliest) = CONTEXT.with(|c| {
        let c = c.borrow();
        (c.thread.clone(), c.earliest())
    });
    Wait {
        thread,
        earliest,
        own,
        armed: false,
    }
}

impl Wait {
    /// When the wait must end: its own deadline or an active timeout's, whichever is first.
    pub(crate) fn limit(&self) -> Option<Instant> {
        earlier(self.own, self.earliest.map(|(d, _)| d))
    }

    /// Registers how to wake this coroutine if it is killed while parked. Call
    /// [`pending`](Wait::pending) or [`check`](Wait::check) after this and before parking, so a
    /// kill that came first is not missed.
    pub(crate) fn arm(&mut self, waker: impl FnOnce() -> Wake) {
        if let Some(i) = self.thread.as_ref().and_then(Thread::interrupt) {
            *i.waker() = Some(waker());
            self.armed = true;
        }
    }

    fn cause(&self) -> Option<Cause> {
        if std::thread::panicking() {
            // A destructor that waits during an unwind must be allowed to finish.
            return None;
        }
        if self
            .thread
            .as_ref()
            .and_then(Thread::interrupt)
            .is_some_and(Interrupt::killed)
        {
            return Some(Cause::Killed);
        }
        match self.earliest {
            Some((d, token)) if Instant::now() >= d => Some(Cause::Elapsed(token)),
            _ => None,
        }
    }

    /// Whether the wait should stop now (and then call [`check`](Wait::check)).
    pub(crate) fn pending(&self) -> bool {
        self.cause().is_some()
    }

    /// Unwinds out of the wait if the coroutine was killed or a timeout has expired.
    pub(crate) fn check(&self) {
        if let Some(cause) = self.cause() {
            unwind(cause)
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if self.armed {
            if let Some(i) = self.thread.as_ref().and_then(Thread::interrupt) {
                *i.waker() = None;
            }
        }
    }
}
