//! std::sync's blocking primitives, where waiting parks the coroutine instead of the thread.
//!
//! A `std::sync::Mutex` held by one coroutine while it waits on a socket blocks every other
//! coroutine that reaches for it, and the worker thread they run on: with few workers, that is a
//! deadlock. greennet's [`Mutex`], [`RwLock`], [`Condvar`], [`Barrier`], [`Once`],
//! [`OnceLock`], [`LazyLock`] and [`mpsc`] channels park only the waiting coroutine (or, on a plain thread, the thread), with std's signatures and poisoning.
//! What never blocks ([`Arc`], [`atomic`], the poison and error types) is std's own, re-exported,
//! so `use greennet::sync::...` can replace `use std::sync::...`.
//!
//! ```
//! use greennet::sync::{Arc, Mutex};
//! use greennet::thread;
//!
//! let counter = Arc::new(Mutex::new(0));
//! let handles: Vec<_> = (0..10)
//!     .map(|_| {
//!         let counter = counter.clone();
//!         thread::spawn(move || {
//!             let mut n = counter.lock().unwrap();
//!             thread::yield_now(); // other coroutines run; they wait for the lock by parking
//!             *n += 1;
//!         })
//!     })
//!     .collect();
//! handles.into_iter().for_each(|h| h.join().unwrap());
//! assert_eq!(*counter.lock().unwrap(), 10);
//! ```

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use std::sync::{atomic, Arc, LockResult, PoisonError, TryLockError, TryLockResult, Weak};

pub mod mpsc;
mod once;

pub use once::{LazyLock, Once, OnceLock, OnceState};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::waiters::Waiters;

/// std's poisoning, shared by [`Mutex`] and [`RwLock`]: a lock is poisoned when a guard is
/// dropped by a panic that started while the guard was held.
struct Poison(AtomicBool);

/// Remembers whether the thread was already panicking when a guard was taken.
struct PoisonGuard {
    panicking: bool,
}

impl Poison {
    const fn new() -> Poison {
        Poison(AtomicBool::new(false))
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn clear(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    fn guard(&self) -> PoisonGuard {
        PoisonGuard {
            panicking: std::thread::panicking(),
        }
    }

    fn done(&self, guard: &PoisonGuard) {
        if !guard.panicking && std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// `Ok(value)`, or the same value in a `PoisonError` if the lock was poisoned.
fn poison_result<G>(poisoned: bool, value: G) -> LockResult<G> {
    if poisoned {
        Err(PoisonError::new(value))
    } else {
        Ok(value)
    }
}

/// `Debug` and `Display` for guards: they show the protected value.
macro_rules! guard_fmt {
    ($($guard:ident),*) => {$(
        impl<T: ?Sized + fmt::Debug> fmt::Debug for $guard<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&**self, f)
            }
        }

        impl<T: ?Sized + fmt::Display> fmt::Display for $guard<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                (**self).fmt(f)
            }
        }
    )*};
}

// Declared after `guard_fmt!`, which it uses.
mod rwlock;

/// A mutual-exclusion lock like `std::sync::Mutex`, whose `lock` parks the coroutine.
///
/// The guard may be held across socket calls and sleeps: coroutines waiting for the lock park,
/// and their workers run other coroutines. Poisoning is std's: a panic while the guard is held
/// marks the mutex, and later `lock` calls return `Err(PoisonError)` holding the guard.
pub struct Mutex<T: ?Sized> {
    locked: AtomicBool,
    poison: Poison,
    waiters: Waiters,
    data: UnsafeCell<T>,
}

// SAFETY: as for std's Mutex, the lock hands out access to `T` to one holder at a time, so the
// mutex can be shared between threads whenever `T` can be sent between them.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: see above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T: ?Sized> std::panic::UnwindSafe for Mutex<T> {}
impl<T: ?Sized> std::panic::RefUnwindSafe for Mutex<T> {}

/// Proof of holding a [`Mutex`]; the lock is released when it is dropped.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized + 'a> {
    lock: &'a Mutex<T>,
    poison: PoisonGuard,
    /// Like std's guard, not `Send`.
    _not_send: std::marker::PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`, so it is `Sync` exactly when `T` is, as in std.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `t`.
    pub const fn new(t: T) -> Mutex<T> {
        Mutex {
            locked: AtomicBool::new(false),
            poison: Poison::new(),
            waiters: Waiters::new(),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the mutex and returns its value (`Err` if poisoned, still holding the value).
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.get();
        poison_result(poisoned, self.data.into_inner())
    }
}

impl<T: ?Sized> Mutex<T> {
    fn try_acquire(&self) -> bool {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn guard(&self) -> LockResult<MutexGuard<'_, T>> {
        let guard = MutexGuard {
            lock: self,
            poison: self.poison.guard(),
            _not_send: std::marker::PhantomData,
        };
        poison_result(self.poison.get(), guard)
    }

    /// Acquires the mutex, parking the coroutine (or thread) until it is free.
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.waiters
            .wait_for(None, || self.try_acquire().then_some(()))
            .expect("a wait without a deadline only ends when ready");
        self.guard()
    }

    /// Acquires the mutex if it is free right now.
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        if !self.try_acquire() {
            return Err(TryLockError::WouldBlock);
        }
        self.guard().map_err(TryLockError::from)
    }

    /// Whether a holder panicked.
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison flag.
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// A mutable reference to the value; no locking is needed since the borrow is exclusive.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poison.get();
        poison_result(poisoned, self.data.get_mut())
    }

    fn unlock(&self) {
        self.locked.store(false, Ordering::SeqCst);
        self.waiters.wake_one();
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(t: T) -> Mutex<T> {
        Mutex::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned());
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard proves this holder has exclusive access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves this holder has exclusive access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.poison.done(&self.poison);
        self.lock.unlock();
    }
}

guard_fmt!(MutexGuard);

/// Whether a timed [`Condvar`] wait ended by timing out (std's type has a private constructor,
/// so greennet has its own with the same method).
#[derive(Debug, PartialEq, Eq, Copy, Clone)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the wait ended because the timeout passed.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable like `std::sync::Condvar`, used with greennet's [`Mutex`].
///
/// Waits may wake spuriously, as std's may: wait in a loop, or use
/// [`wait_while`](Condvar::wait_while).
pub struct Condvar {
    waiters: Waiters,
}

impl Condvar {
    /// A new condition variable.
    pub const fn new() -> Condvar {
        Condvar {
            waiters: Waiters::new(),
        }
    }

    /// Releases the guard's mutex, parks until notified, and takes the mutex back.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        self.wait_until(guard, None).0
    }

    /// Waits while `condition` holds for the protected value.
    pub fn wait_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`wait`](Condvar::wait), giving up after about `dur`.
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let deadline = Instant::now().checked_add(dur);
        let (result, timed_out) = self.wait_until(guard, deadline);
        match result {
            Ok(guard) => Ok((guard, WaitTimeoutResult(timed_out))),
            Err(poisoned) => Err(PoisonError::new((
                poisoned.into_inner(),
                WaitTimeoutResult(timed_out),
            ))),
        }
    }

    /// Like [`wait_while`](Condvar::wait_while), giving up after about `dur`.
    pub fn wait_timeout_while<'a, T, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = Instant::now().checked_add(dur);
        while condition(&mut *guard) {
            let (result, timed_out) = self.wait_until(guard, deadline);
            guard = match result {
                Ok(guard) => guard,
                Err(poisoned) => {
                    return Err(PoisonError::new((
                        poisoned.into_inner(),
                        WaitTimeoutResult(timed_out),
                    )))
                }
            };
            if timed_out {
                let still = condition(&mut *guard);
                return Ok((guard, WaitTimeoutResult(still)));
            }
        }
        Ok((guard, WaitTimeoutResult(false)))
    }

    fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (LockResult<MutexGuard<'a, T>>, bool) {
        let mutex = guard.lock;
        // Queue up before releasing the mutex, so a notify sent right after cannot be missed.
        let waiter = self.waiters.register();
        drop(guard);
        let woken = self.waiters.park(&waiter, deadline);
        (mutex.lock(), !woken)
    }

    /// Wakes one waiting coroutine or thread, if any.
    pub fn notify_one(&self) {
        self.waiters.wake_one();
    }

    /// Wakes every waiting coroutine and thread.
    pub fn notify_all(&self) {
        self.waiters.wake_all();
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

/// Lets a fixed number of coroutines (or threads) wait until all of them have arrived, like
/// `std::sync::Barrier`.
pub struct Barrier {
    n: usize,
    state: Mutex<(usize, usize)>, // (arrived in this generation, generation)
    all_arrived: Condvar,
}

/// What [`Barrier::wait`] returns: one waiter per generation is the leader.
#[derive(Debug)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this waiter was chosen as the generation's leader.
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` parties (0 and 1 never wait).
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n,
            state: Mutex::new((0, 0)),
            all_arrived: Condvar::new(),
        }
    }

    /// Parks until all `n` parties have called `wait`; the last to arrive is the leader.
    pub fn wait(&self) -> BarrierWaitResult {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = state.1;
        state.0 += 1;
        if state.0 < self.n {
            let _state = self
                .all_arrived
                .wait_while(state, |s| s.1 == generation)
                .unwrap_or_else(PoisonError::into_inner);
            BarrierWaitResult(false)
        } else {
            *state = (0, generation.wrapping_add(1));
            self.all_arrived.notify_all();
            BarrierWaitResult(true)
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").finish_non_exhaustive()
    }
}
