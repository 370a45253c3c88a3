use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{poison_result, LockResult, Poison, PoisonGuard, TryLockError, TryLockResult};
use crate::waiters::Waiters;

const WRITER: usize = 1 << (usize::BITS - 1);

/// A reader-writer lock like `std::sync::RwLock`, whose waits park the coroutine.
///
/// Many readers or one writer hold it at a time. A waiting writer keeps new readers out, so
/// writers are not starved. Poisoning is std's: a panic while a write guard is held poisons it.
///
/// ```
/// use greennet::sync::RwLock;
///
/// let config = RwLock::new(String::from("v1"));
/// assert_eq!(*config.read().unwrap(), "v1");
/// *config.write().unwrap() = String::from("v2");
/// assert_eq!(*config.read().unwrap(), "v2");
/// ```
pub struct RwLock<T: ?Sized> {
    /// Reader count, or `WRITER` when a writer holds it.
    state: AtomicUsize,
    writers_waiting: AtomicUsize,
    poison: Poison,
    readers: Waiters,
    writers: Waiters,
    data: UnsafeCell<T>,
}

// SAFETY: as std's RwLock: readers share `&T` across threads (needs `Sync`), a writer gets `&mut T`
// from any thread (needs `Send`).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: see above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T: ?Sized> std::panic::UnwindSafe for RwLock<T> {}
impl<T: ?Sized> std::panic::RefUnwindSafe for RwLock<T> {}

/// Shared access to an [`RwLock`]'s value, released when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized + 'a> {
    lock: &'a RwLock<T>,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Exclusive access to an [`RwLock`]'s value, released when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized + 'a> {
    lock: &'a RwLock<T>,
    poison: PoisonGuard,
    _not_send: std::marker::PhantomData<*const ()>,
}

// SAFETY: shared guards hand out `&T` only, as std's.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: see above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// A new unlocked lock holding `t`.
    pub const fn new(t: T) -> RwLock<T> {
        RwLock {
            state: AtomicUsize::new(0),
            writers_waiting: AtomicUsize::new(0),
            poison: Poison::new(),
            readers: Waiters::new(),
            writers: Waiters::new(),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the lock and returns its value (`Err` if poisoned, still holding the value).
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.get();
        poison_result(poisoned, self.data.into_inner())
    }
}

impl<T: ?Sized> RwLock<T> {
    fn try_acquire_read(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & WRITER != 0 || self.writers_waiting.load(Ordering::SeqCst) != 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    fn try_acquire_write(&self) -> bool {
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn poison<G>(&self, guard: G) -> LockResult<G> {
        poison_result(self.poison.get(), guard)
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            lock: self,
            _not_send: std::marker::PhantomData,
        }
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            lock: self,
            poison: self.poison.guard(),
            _not_send: std::marker::PhantomData,
        }
    }

    /// Acquires shared access, parking while a writer holds or waits for the lock.
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        self.readers
            .wait_for(None, || self.try_acquire_read().then_some(()))
            .expect("a wait without a deadline only ends when ready");
        self.poison(self.read_guard())
    }

    /// Acquires shared access if it is available right now.
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if !self.try_acquire_read() {
            return Err(TryLockError::WouldBlock);
        }
        self.poison(self.read_guard()).map_err(TryLockError::from)
    }

    /// Acquires exclusive access, parking until every other holder is gone.
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        // Counted as waiting until this returns or unwinds (a kill or a timeout can end the
        // wait), so readers never wait for a writer that is gone.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.writers_waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(&self.writers_waiting);
        self.writers
            .wait_for(None, || self.try_acquire_write().then_some(()))
            .expect("a wait without a deadline only ends when ready");
        drop(waiting);
        self.poison(self.write_guard())
    }

    /// Acquires exclusive access if it is available right now.
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if !self.try_acquire_write() {
            return Err(TryLockError::WouldBlock);
        }
        self.poison(self.write_guard()).map_err(TryLockError::from)
    }

    /// Whether a writer panicked.
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

    fn wake_after_release(&self) {
        // A writer first; if none is waiting, every reader.
        if !self.writers.wake_one() {
            self.readers.wake_all();
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(t: T) -> RwLock<T> {
        RwLock::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned());
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a read guard means no writer holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        if self.lock.state.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.lock.wake_after_release();
        }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a write guard means exclusive access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a write guard means exclusive access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.poison.done(&self.poison);
        self.lock.state.store(0, Ordering::SeqCst);
        self.lock.wake_after_release();
    }
}

guard_fmt!(RwLockReadGuard, RwLockWriteGuard);
