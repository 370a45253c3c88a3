//! Semaphores: a counter of permits that coroutines and threads take and give back, gevent's
//! `gevent.lock.Semaphore` and `BoundedSemaphore`.
//!
//! A semaphore caps how many callers do something at once, such as how many connections a
//! crawler keeps open. [`acquire`](Semaphore::acquire) takes a permit, parking while there is
//! none, and returns a guard that gives the permit back when it is dropped.
//!
//! ```
//! use greennet::lock::Semaphore;
//! use greennet::sync::Arc;
//! use greennet::thread;
//!
//! greennet::run(|| {
//!     let connections = Arc::new(Semaphore::new(2));
//!     let workers: Vec<_> = (0..10)
//!         .map(|_| {
//!             let connections = connections.clone();
//!             thread::spawn(move || {
//!                 let _permit = connections.acquire();
//!                 // At most two coroutines are here at any moment.
//!             })
//!         })
//!         .collect();
//!     workers.into_iter().for_each(|w| w.join().unwrap());
//!     assert_eq!(connections.available_permits(), 2);
//! });
//! ```

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// The counter both semaphores are built on.
struct Permits {
    count: Mutex<usize>,
    /// `Some(n)` for a [`BoundedSemaphore`]: releasing never raises the count past `n`.
    bound: Option<usize>,
    /// Acquirers wait here; each release wakes one.
    released: Condvar,
    /// Callers of `wait`, who take nothing, wait here; each release wakes them all, so they never
    /// swallow the wake an acquirer needs.
    watchers: Condvar,
}

impl Permits {
    const fn new(count: usize, bound: Option<usize>) -> Permits {
        Permits {
            count: Mutex::new(count),
            bound,
            released: Condvar::new(),
            watchers: Condvar::new(),
        }
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<SemaphoreGuard<'_>> {
        let mut count = relock(&self.count);
        let mut expired = false;
        loop {
            if *count > 0 {
                *count -= 1;
                return Some(SemaphoreGuard { permits: self });
            }
            if expired {
                return None;
            }
            (count, expired) = wait_once(&self.released, count, deadline);
        }
    }

    fn acquire(&self) -> SemaphoreGuard<'_> {
        // Without a deadline, the wait only ends with a permit.
        loop {
            if let Some(guard) = self.acquire_until(None) {
                return guard;
            }
        }
    }

    fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        let mut count = relock(&self.count);
        if *count == 0 {
            return None;
        }
        *count -= 1;
        Some(SemaphoreGuard { permits: self })
    }

    fn release(&self) -> Result<(), ReleaseError> {
        let mut count = relock(&self.count);
        if self.bound.is_some_and(|bound| *count >= bound) {
            return Err(ReleaseError(()));
        }
        *count = count.saturating_add(1);
        drop(count);
        self.released.notify_one();
        self.watchers.notify_all();
        Ok(())
    }

    fn available(&self) -> usize {
        *relock(&self.count)
    }

    fn wait(&self) -> usize {
        let mut count = relock(&self.count);
        while *count == 0 {
            (count, _) = wait_once(&self.watchers, count, None);
        }
        *count
    }
}

impl Permits {
    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(name);
        d.field("available_permits", &self.available());
        if let Some(bound) = self.bound {
            d.field("bound", &bound);
        }
        d.finish()
    }
}

/// A counter of permits, gevent's `Semaphore`: [`acquire`](Semaphore::acquire) takes one,
/// parking the coroutine (or plain thread) while there are none, and the returned guard puts it
/// back when dropped.
///
/// [`release`](Semaphore::release) adds a permit by hand and may raise the count past its
/// starting value; use [`BoundedSemaphore`] to catch releases that were never acquired.
/// Waiting acquirers are served in the order they started waiting, though a caller arriving just
/// as a permit is released may take it first.
///
/// ```
/// use greennet::lock::Semaphore;
/// use std::time::Duration;
///
/// greennet::run(|| {
///     let sem = Semaphore::new(1);
///     let held = sem.acquire();
///     assert!(sem.try_acquire().is_none());
///     assert!(sem.acquire_timeout(Duration::from_millis(10)).is_none());
///     drop(held);
///     assert!(sem.try_acquire().is_some());
/// });
/// ```
pub struct Semaphore {
    permits: Permits,
}

impl Semaphore {
    /// A semaphore holding `permits` permits (0 makes every acquirer wait for a
    /// [`release`](Semaphore::release)).
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: Permits::new(permits, None),
        }
    }

    /// Takes a permit, parking until one is available; the guard returns it when dropped.
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.permits.acquire()
    }

    /// Takes a permit, parking for at most about `timeout`; `None` if none became available.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.permits.acquire_until(deadline_after(timeout))
    }

    /// Takes a permit if one is available right now.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.permits.try_acquire()
    }

    /// Adds a permit and wakes one waiting acquirer: the manual counterpart of dropping a guard
    /// (pair it with [`SemaphoreGuard::forget`]). The count saturates at `usize::MAX`.
    pub fn release(&self) {
        // Only a bounded semaphore refuses a release.
        let _ = self.permits.release();
    }

    /// How many permits could be taken right now.
    pub fn available_permits(&self) -> usize {
        self.permits.available()
    }

    /// Parks until at least one permit is available, without taking it, and returns how many
    /// there are (gevent's `wait`). Another caller may take the permit before this one uses it.
    pub fn wait(&self) -> usize {
        self.permits.wait()
    }
}

impl Default for Semaphore {
    /// A semaphore with one permit, as gevent's default.
    fn default() -> Semaphore {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.permits.debug("Semaphore", f)
    }
}

/// A [`Semaphore`] that refuses to hold more permits than it started with, gevent's
/// `BoundedSemaphore`: a [`release`](BoundedSemaphore::release) that would exceed the starting
/// count returns [`ReleaseError`] and leaves the count alone.
///
/// ```
/// use greennet::lock::BoundedSemaphore;
///
/// let sem = BoundedSemaphore::new(1);
/// assert!(sem.release().is_err()); // nothing was acquired
/// let permit = sem.acquire();
/// permit.forget();
/// assert_eq!(sem.available_permits(), 0);
/// assert!(sem.release().is_ok());
/// assert_eq!(sem.available_permits(), 1);
/// ```
pub struct BoundedSemaphore {
    permits: Permits,
}

impl BoundedSemaphore {
    /// A semaphore holding `permits` permits, which is also the most it will ever hold.
    pub const fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            permits: Permits::new(permits, Some(permits)),
        }
    }

    /// Takes a permit, parking until one is available; the guard returns it when dropped.
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.permits.acquire()
    }

    /// Takes a permit, parking for at most about `timeout`; `None` if none became available.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.permits.acquire_until(deadline_after(timeout))
    }

    /// Takes a permit if one is available right now.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.permits.try_acquire()
    }

    /// Gives back a permit taken without a guard (see [`SemaphoreGuard::forget`]) and wakes one
    /// waiting acquirer. If the semaphore already holds its starting count, nothing changes and
    /// the release is refused with [`ReleaseError`].
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.permits.release()
    }

    /// How many permits could be taken right now.
    pub fn available_permits(&self) -> usize {
        self.permits.available()
    }

    /// Parks until at least one permit is available, without taking it, and returns how many
    /// there are (gevent's `wait`). Another caller may take the permit before this one uses it.
    pub fn wait(&self) -> usize {
        self.permits.wait()
    }
}

impl Default for BoundedSemaphore {
    /// A semaphore with one permit, as gevent's default.
    fn default() -> BoundedSemaphore {
        BoundedSemaphore::new(1)
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.permits.debug("BoundedSemaphore", f)
    }
}

/// A permit taken from a [`Semaphore`] or [`BoundedSemaphore`]; dropping it gives the permit
/// back and wakes one waiting acquirer.
#[must_use = "if unused the permit is given back at once"]
pub struct SemaphoreGuard<'a> {
    permits: &'a Permits,
}

impl SemaphoreGuard<'_> {
    /// Keeps the permit taken: dropping the guard this way gives nothing back, so a later manual
    /// `release` can return it.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        if self.permits.release().is_err() {
            // A manual release already returned this permit; the bound stays as it is.
            tracing::warn!(
                "a BoundedSemaphore permit was released twice; the extra release was ignored"
            );
        }
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}

/// A [`BoundedSemaphore`] was released more times than permits were taken from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseError(());

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released more times than it was acquired")
    }
}

impl Error for ReleaseError {}

// What the toolkit modules (`event`, `lock`, `queue`) share: each is a state behind a greennet
// `Mutex` and a loop of "check the state, else wait on a `Condvar` until notified or the
// deadline".

/// Locks `mutex`, ignoring poison: the toolkit's states stay consistent even if a panic (say, in
/// a user's `Clone` or `Ord`) unwound while one was locked.
pub(crate) fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The deadline `timeout` from now; `None` (wait forever) if that is too far to represent.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Waits on `condvar` once, until notified (perhaps spuriously) or until `deadline`; returns the
/// guard again and whether the deadline has passed. Callers re-check their condition before
/// acting on an expired deadline, so a notification that raced with the deadline is used.
pub(crate) fn wait_once<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
) -> (MutexGuard<'a, T>, bool) {
    // A `notify_one` may have chosen this waiter; if the wait ends by unwinding (an interrupted
    // coroutine), hand the notification on so another waiter acts on it.
    let relay = RelayOnUnwind(condvar);
    let result = match deadline {
        None => (
            condvar.wait(guard).unwrap_or_else(PoisonError::into_inner),
            false,
        ),
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                (guard, true)
            } else {
                let (guard, _) = condvar
                    .wait_timeout(guard, left)
                    .unwrap_or_else(PoisonError::into_inner);
                (guard, Instant::now() >= deadline)
            }
        }
    };
    drop(relay);
    result
}

/// Notifies one more waiter of its condvar if dropped during a panic.
struct RelayOnUnwind<'a>(&'a Condvar);

impl Drop for RelayOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.notify_one();
        }
    }
}
