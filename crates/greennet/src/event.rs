//! Signalling between coroutines: a flag to wait for ([`Event`]) and a value to wait for
//! ([`AsyncResult`]), gevent's `gevent.event`.
//!
//! Both wake every waiter at once, and work the same from coroutines (which park) and plain
//! threads (which block).
//!
//! ```
//! use greennet::event::Event;
//! use greennet::sync::Arc;
//! use greennet::thread;
//!
//! greennet::run(|| {
//!     let go = Arc::new(Event::new());
//!     let runners: Vec<_> = (0..3)
//!         .map(|_| {
//!             let go = go.clone();
//!             thread::spawn(move || go.wait())
//!         })
//!         .collect();
//!     go.set(); // all three start
//!     runners.into_iter().for_each(|r| r.join().unwrap());
//! });
//! ```

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use crate::lock::{deadline_after, relock, wait_once};
use crate::sync::{Condvar, Mutex};

/// A flag that callers can wait for, gevent's `Event`: [`set`](Event::set) raises it and wakes
/// every waiter, [`clear`](Event::clear) lowers it again.
///
/// A waiter woken by `set` returns even if the flag is cleared again before it runs, as Python's
/// `threading.Event`; so `set` followed at once by `clear` still releases everyone waiting.
///
/// ```
/// use greennet::event::Event;
/// use greennet::sync::Arc;
/// use greennet::thread;
/// use std::time::Duration;
///
/// greennet::run(|| {
///     let ready = Arc::new(Event::new());
///     assert!(!ready.wait_timeout(Duration::from_millis(10)));
///     let setter = {
///         let ready = ready.clone();
///         thread::spawn(move || ready.set())
///     };
///     ready.wait();
///     assert!(ready.is_set());
///     setter.join().unwrap();
///     ready.clear();
///     assert!(!ready.is_set());
/// });
/// ```
pub struct Event {
    state: Mutex<EventState>,
    changed: Condvar,
}

struct EventState {
    set: bool,
    /// Counts the times the flag was raised, so a waiter can tell it was set while it slept
    /// even if it has been cleared since.
    raised: u64,
}

impl Event {
    /// A new event whose flag is down.
    pub const fn new() -> Event {
        Event {
            state: Mutex::new(EventState {
                set: false,
                raised: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Raises the flag and wakes every waiter; later waits return at once until
    /// [`clear`](Event::clear).
    pub fn set(&self) {
        let mut state = relock(&self.state);
        if state.set {
            return;
        }
        state.set = true;
        state.raised = state.raised.wrapping_add(1);
        drop(state);
        self.changed.notify_all();
    }

    /// Lowers the flag, so later waits park until the next [`set`](Event::set).
    pub fn clear(&self) {
        relock(&self.state).set = false;
    }

    /// Whether the flag is raised.
    pub fn is_set(&self) -> bool {
        relock(&self.state).set
    }

    /// Parks until the flag is raised; returns at once if it already is.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Like [`wait`](Event::wait), giving up after about `timeout`; `true` if the flag was
    /// raised, `false` if the time ran out first.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline_after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let mut state = relock(&self.state);
        let raised = state.raised;
        let mut expired = false;
        loop {
            if state.set || state.raised != raised {
                return true;
            }
            if expired {
                return false;
            }
            (state, expired) = wait_once(&self.changed, state, deadline);
        }
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

/// A result that arrives once and is read by any number of waiters, gevent's `AsyncResult`.
///
/// A producer calls [`set`](AsyncResult::set) or [`set_err`](AsyncResult::set_err); every
/// caller of [`get`](AsyncResult::get), before or after, receives a clone of it.
///
/// Unlike gevent, which lets a later `set` overwrite the value, the first result is final:
/// setting again leaves it unchanged and returns [`AlreadySet`] holding the refused value, so
/// every reader sees the same result.
///
/// ```
/// use greennet::event::AsyncResult;
/// use greennet::sync::Arc;
/// use greennet::thread;
///
/// greennet::run(|| {
///     let answer = Arc::new(AsyncResult::<u32, String>::new());
///     let readers: Vec<_> = (0..3)
///         .map(|_| {
///             let answer = answer.clone();
///             thread::spawn(move || answer.get())
///         })
///         .collect();
///     answer.set(42).unwrap();
///     assert!(answer.set(7).is_err()); // the first value stays
///     for reader in readers {
///         assert_eq!(reader.join().unwrap(), Ok(42));
///     }
/// });
/// ```
pub struct AsyncResult<T, E> {
    result: Mutex<Option<Result<T, E>>>,
    settled: Condvar,
}

impl<T, E> AsyncResult<T, E> {
    /// A result not yet set.
    pub const fn new() -> AsyncResult<T, E> {
        AsyncResult {
            result: Mutex::new(None),
            settled: Condvar::new(),
        }
    }

    /// Stores the success value `value` and wakes every waiter. If a result was already stored,
    /// it stays, and `value` is handed back in the error.
    pub fn set(&self, value: T) -> Result<(), AlreadySet<T>> {
        self.settle(value, Ok)
    }

    /// Stores the error `error` and wakes every waiter. If a result was already stored, it
    /// stays, and `error` is handed back in the error.
    pub fn set_err(&self, error: E) -> Result<(), AlreadySet<E>> {
        self.settle(error, Err)
    }

    /// Whether a result has been stored.
    pub fn ready(&self) -> bool {
        relock(&self.result).is_some()
    }

    /// Parks until a result has been stored, without reading it.
    pub fn wait(&self) {
        let mut result = relock(&self.result);
        while result.is_none() {
            (result, _) = wait_once(&self.settled, result, None);
        }
    }

    /// Like [`wait`](AsyncResult::wait), giving up after about `timeout`; `true` if a result is
    /// stored.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        let mut result = relock(&self.result);
        let mut expired = false;
        while result.is_none() {
            if expired {
                return false;
            }
            (result, expired) = wait_once(&self.settled, result, deadline);
        }
        true
    }

    fn settle<V>(&self, value: V, outcome: fn(V) -> Result<T, E>) -> Result<(), AlreadySet<V>> {
        let mut result = relock(&self.result);
        if result.is_some() {
            return Err(AlreadySet(value));
        }
        *result = Some(outcome(value));
        drop(result);
        self.settled.notify_all();
        Ok(())
    }
}

impl<T: Clone, E: Clone> AsyncResult<T, E> {
    /// Parks until a result has been stored and returns a clone of it.
    pub fn get(&self) -> Result<T, E> {
        let mut result = relock(&self.result);
        loop {
            if let Some(outcome) = &*result {
                return outcome.clone();
            }
            (result, _) = wait_once(&self.settled, result, None);
        }
    }

    /// Like [`get`](AsyncResult::get), giving up after about `timeout`; `None` if no result was
    /// stored in time.
    pub fn get_timeout(&self, timeout: Duration) -> Option<Result<T, E>> {
        let deadline = deadline_after(timeout);
        let mut result = relock(&self.result);
        let mut expired = false;
        loop {
            if let Some(outcome) = &*result {
                return Some(outcome.clone());
            }
            if expired {
                return None;
            }
            (result, expired) = wait_once(&self.settled, result, deadline);
        }
    }

    /// A clone of the result if one is stored, without waiting.
    pub fn try_get(&self) -> Option<Result<T, E>> {
        relock(&self.result).clone()
    }
}

impl<T, E> Default for AsyncResult<T, E> {
    fn default() -> AsyncResult<T, E> {
        AsyncResult::new()
    }
}

impl<T, E> fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish_non_exhaustive()
    }
}

/// An [`AsyncResult`] already held a result; this holds the value that was refused.
#[derive(Clone, PartialEq, Eq)]
pub struct AlreadySet<V>(pub V);

impl<V> AlreadySet<V> {
    /// The refused value.
    pub fn into_inner(self) -> V {
        self.0
    }
}

impl<V> fmt::Debug for AlreadySet<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlreadySet").finish_non_exhaustive()
    }
}

impl<V> fmt::Display for AlreadySet<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the result was already set")
    }
}

impl<V> Error for AlreadySet<V> {}
