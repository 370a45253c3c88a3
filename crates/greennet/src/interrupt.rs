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

use std::borrow::Cow;
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
    waker: Mutex<Armed>,
}

/// How a kill wakes the coroutine.
#[derive(Default)]
struct Armed {
    wake: Option<Wake>,
    /// Nonzero when `wake` was left in place after its wait ended ([`Wait::arm_kept`]): the
    /// key of the registration it wakes, so that the next wait on the same one can keep it.
    kept: u64,
}

impl Interrupt {
    pub(crate) fn new() -> Interrupt {
        Interrupt {
            killed: AtomicBool::new(false),
            waker: Mutex::new(Armed::default()),
        }
    }

    fn waker(&self) -> std::sync::MutexGuard<'_, Armed> {
        self.waker.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Marks the coroutine killed and wakes it if it is parked in a greennet wait.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let waker = std::mem::take(&mut *self.waker()).wake;
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
pub(crate) struct Wait<'a> {
    thread: Option<Cow<'a, Thread>>,
    earliest: Option<(Instant, u64)>,
    own: Option<Instant>,
    armed: bool,
}

/// Begins a wait whose own deadline is `own`.
pub(crate) fn begin(own: Option<Instant>) -> Wait<'static> {
    let (thread, earliest) = CONTEXT.with(|c| {
        let c = c.borrow();
        (c.thread.clone(), c.earliest())
    });
    Wait {
        thread: thread.map(Cow::Owned),
        earliest,
        own,
        armed: false,
    }
}

/// The current coroutine's (or thread's) interruption context, looked up once for a run of
/// waits during which it does not change: while none of the timeouts active when it was taken
/// has ended and no other has started, except for ones that start and end between the waits
/// (a timeout is a scope of code, so a function that returns has ended the ones it started).
///
/// A wait's lookup is a coroutine-local map's, and every line of that map and of the context it
/// holds has been pushed out of the cache by the time a busy server's connection waits again:
/// a server that waits once per request looks its context up once per connection instead.
pub(crate) struct Snapshot {
    thread: Option<Thread>,
    earliest: Option<(Instant, u64)>,
}

/// Takes a [`Snapshot`] of the current coroutine's interruption context.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn snapshot() -> Snapshot {
    CONTEXT.with(|c| {
        let c = c.borrow();
        Snapshot {
            thread: c.thread.clone(),
            earliest: c.earliest(),
        }
    })
}

impl Snapshot {
    /// [`begin`] from the snapshot: the same `Wait` without the lookup.
    pub(crate) fn begin(&self, own: Option<Instant>) -> Wait<'_> {
        Wait {
            thread: self.thread.as_ref().map(Cow::Borrowed),
            earliest: self.earliest,
            own,
            armed: false,
        }
    }
}

impl Wait<'_> {
    /// When the wait must end: its own deadline or an active timeout's, whichever is first.
    pub(crate) fn limit(&self) -> Option<Instant> {
        earlier(self.own, self.earliest.map(|(d, _)| d))
    }

    /// Registers how to wake this coroutine if it is killed while parked. Call
    /// [`pending`](Wait::pending) or [`check`](Wait::check) after this and before parking, so a
    /// kill that came first is not missed.
    pub(crate) fn arm(&mut self, waker: impl FnOnce() -> Wake) {
        if let Some(i) = self.thread.as_deref().and_then(Thread::interrupt) {
            *i.waker() = Armed {
                wake: Some(waker()),
                kept: 0,
            };
            self.armed = true;
        }
    }

    /// [`arm`](Wait::arm) for a wait on a registration that the same coroutine is likely to
    /// wait on again next (a connection's socket), named by `key`: a key unique to that
    /// registration for the life of the process, never 0. The waker stays in place after the
    /// wait ends, and the next wait with the same key finds it there. This saves the second
    /// visit per wait to the coroutine's interruption state, which a busy server pays for with
    /// a cache miss.
    ///
    /// A waker left in place may later be woken by a kill while the coroutine is not waiting
    /// on that registration; that only makes the registration's next wait return at once, to
    /// try its operation again, which every greennet wait is ready for. A wait elsewhere arms
    /// its own waker first, so a kill never wakes the wrong one while the coroutine waits.
    pub(crate) fn arm_kept(&mut self, key: u64, waker: impl FnOnce() -> Wake) {
        debug_assert_ne!(key, 0);
        if let Some(i) = self.thread.as_deref().and_then(Thread::interrupt) {
            let mut armed = i.waker();
            if armed.kept != key || armed.wake.is_none() {
                *armed = Armed {
                    wake: Some(waker()),
                    kept: key,
                };
            }
        }
    }

    fn cause(&self) -> Option<Cause> {
        if std::thread::panicking() {
            // A destructor that waits during an unwind must be allowed to finish.
            return None;
        }
        if self
            .thread
            .as_deref()
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

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(i) = self.thread.as_deref().and_then(Thread::interrupt) {
                *i.waker() = Armed::default();
            }
        }
    }
}
