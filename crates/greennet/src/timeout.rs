//! Time limits on any blocking greennet work, gevent's `Timeout`.
//!
//! [`timeout`](crate::timeout()) runs a closure and gives up on it at a deadline; [`Timeout`] is the
//! guard form, for a block of code inside a function. Whatever the closure is waiting for when
//! the deadline passes (a socket read or accept, a sleep, a lock, a channel, a join, a pool
//! map, the blocking pool) stops waiting at once and unwinds, so its destructors run, and
//! `timeout` returns `Err(Elapsed)`. Work that never waits (a CPU loop) is not interrupted: like
//! gevent, greennet can only take control back where the code would park.
//!
//! What is left behind:
//! - A socket whose read, write, accept or connect was interrupted is unchanged by it: the call
//!   had transferred nothing when it parked. The socket stays open and usable, unless the closure
//!   owned it, in which case unwinding drops and closes it.
//! - Coroutines the closure spawned keep running (they are not part of it); a `join` on one of
//!   them is what gets interrupted.
//! - A job handed to [`blocking`](crate::blocking()) runs to its end on its pool thread; its
//!   result is dropped.
//!
//! Timeouts nest: each wait honours the earliest deadline of every active timeout, and the
//! unwind is caught by the timeout that expired, passing through inner ones.
//!
//! ```
//! use greennet::net::TcpListener;
//! use std::time::Duration;
//!
//! greennet::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     // Nobody connects: the accept is abandoned after 50 ms.
//!     let result = greennet::timeout(Duration::from_millis(50), || listener.accept());
//!     assert!(result.is_err());
//!     // The listener is untouched and still accepts.
//!     assert!(listener.local_addr().is_ok());
//! });
//! ```

use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::interrupt;

/// The error of a time limit that ran out, and the payload of the unwind that carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Elapsed {
    token: u64,
}

impl Elapsed {
    pub(crate) fn new(token: u64) -> Elapsed {
        Elapsed { token }
    }
}

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Elapsed").finish_non_exhaustive()
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// A time limit for the rest of the current scope: gevent's `with Timeout(seconds):`.
///
/// While the guard lives, every greennet wait in this coroutine (or thread) ends at its deadline
/// by unwinding with an [`Elapsed`] payload. Catch that unwind with [`Timeout::run`] (which is
/// what [`timeout`](crate::timeout()) does), or let it end the coroutine: its `join` then returns
/// `Err` holding the `Elapsed`. Dropping the guard, on either path, removes the limit.
///
/// ```
/// use greennet::sync::mpsc;
/// use greennet::timeout::Timeout;
/// use std::time::Duration;
///
/// greennet::run(|| {
///     let (_tx, rx) = mpsc::channel::<u32>();
///     let limit = Timeout::start(Duration::from_millis(20));
///     // Nothing is ever sent: the receive gives up when the guard's deadline passes.
///     let outcome = limit.run(|| rx.recv());
///     assert!(outcome.is_err());
/// });
/// ```
pub struct Timeout {
    deadline: Instant,
    token: u64,
    /// The limit belongs to the coroutine or thread that started it.
    _here: std::marker::PhantomData<*const ()>,
}

impl Timeout {
    /// Starts a limit of `dur` from now for the current coroutine or thread.
    pub fn start(dur: Duration) -> Timeout {
        // A duration too long to represent is as good as no limit; keep it far away instead.
        let deadline = Instant::now()
            .checked_add(dur)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        Timeout::at(deadline)
    }

    /// Starts a limit that expires at `deadline`.
    pub fn at(deadline: Instant) -> Timeout {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let token = NEXT.fetch_add(1, Ordering::Relaxed);
        interrupt::push_deadline(deadline, token);
        Timeout {
            deadline,
            token,
            _here: std::marker::PhantomData,
        }
    }

    /// When this limit expires.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Runs `f` under this limit and ends it: `Err(Elapsed)` if the limit expired while `f` was
    /// waiting. An unwind for any other reason (a panic, an outer timeout, a kill) goes on up.
    pub fn run<R>(self, f: impl FnOnce() -> R) -> Result<R, Elapsed> {
        let token = self.token;
        let result = catch_unwind(AssertUnwindSafe(f));
        drop(self);
        match result {
            Ok(r) => Ok(r),
            Err(payload) => match payload.downcast::<Elapsed>() {
                Ok(elapsed) if elapsed.token == token => Err(*elapsed),
                Ok(other) => resume_unwind(other),
                Err(payload) => resume_unwind(payload),
            },
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        interrupt::pop_deadline(self.token);
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Runs `f`, giving up on whatever it is waiting for once `dur` has passed.
///
/// Returns `Ok` with `f`'s value, or `Err(Elapsed)` if the limit expired while `f` waited in a
/// greennet call (see the [module](mod@crate::timeout) for what is left behind). Works in coroutines
/// and on plain threads.
///
/// ```
/// use std::time::Duration;
///
/// let slow = greennet::timeout(Duration::from_millis(20), || {
///     greennet::thread::sleep(Duration::from_secs(10));
/// });
/// assert!(slow.is_err());
/// let quick = greennet::timeout(Duration::from_secs(10), || 6 * 7);
/// assert_eq!(quick, Ok(42));
/// ```
pub fn timeout<R>(dur: Duration, f: impl FnOnce() -> R) -> Result<R, Elapsed> {
    Timeout::start(dur).run(f)
}
