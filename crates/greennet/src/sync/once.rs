//! One-time initialisation whose waiters park: `Once`, `OnceLock`, `LazyLock`.
//!
//! std's versions block a second caller's thread while the first runs the initialiser. If the
//! initialiser waits on a socket (say, it connects to a database), the blocked thread may be the
//! very worker it needs. Here a greennet [`Mutex`] serialises initialisers, so late callers park;
//! std's own cell then stores the value and keeps std's poisoning and panic messages.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Mutex;

pub use std::sync::OnceState;

/// Runs a one-time initialisation, like `std::sync::Once`.
///
/// ```
/// use greennet::sync::Once;
///
/// static INIT: Once = Once::new();
/// let mut runs = 0;
/// INIT.call_once(|| runs += 1);
/// INIT.call_once(|| runs += 1);
/// assert_eq!(runs, 1);
/// ```
pub struct Once {
    turn: Mutex<()>,
    inner: std::sync::Once,
}

impl Once {
    /// A new `Once` that has not run.
    #[allow(clippy::new_without_default)] // as std: `Once` has no `Default`
    pub const fn new() -> Once {
        Once {
            turn: Mutex::new(()),
            inner: std::sync::Once::new(),
        }
    }

    /// Runs `f` if no call has completed yet; other callers park until it has.
    ///
    /// # Panics
    ///
    /// If an earlier initialiser panicked (the `Once` is poisoned), as std.
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.inner.is_completed() {
            return;
        }
        let _turn = self.turn.lock();
        self.inner.call_once(f);
    }

    /// Like [`call_once`](Once::call_once), but also runs after a poisoning, telling `f` so.
    pub fn call_once_force<F: FnOnce(&OnceState)>(&self, f: F) {
        if self.inner.is_completed() {
            return;
        }
        let _turn = self.turn.lock();
        self.inner.call_once_force(f);
    }

    /// Whether a call has completed.
    pub fn is_completed(&self) -> bool {
        self.inner.is_completed()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once").finish_non_exhaustive()
    }
}

/// A cell written once, like `std::sync::OnceLock`.
///
/// ```
/// use greennet::sync::OnceLock;
///
/// static GREETING: OnceLock<String> = OnceLock::new();
/// assert_eq!(GREETING.get_or_init(|| "hello".to_string()), "hello");
/// assert!(GREETING.set("again".to_string()).is_err());
/// ```
pub struct OnceLock<T> {
    turn: Mutex<()>,
    inner: std::sync::OnceLock<T>,
}

impl<T> OnceLock<T> {
    /// An empty cell.
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            turn: Mutex::new(()),
            inner: std::sync::OnceLock::new(),
        }
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        self.inner.get()
    }

    /// The value, mutably, if set.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.inner.get_mut()
    }

    /// Sets the value if the cell is empty; otherwise gives `value` back.
    pub fn set(&self, value: T) -> Result<(), T> {
        if self.inner.get().is_some() {
            return Err(value);
        }
        let _turn = self.turn.lock();
        self.inner.set(value)
    }

    /// The value, running `f` to make it if the cell is empty; other callers park meanwhile.
    /// If `f` panics, the cell stays empty and the panic goes to the caller.
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        if let Some(value) = self.inner.get() {
            return value;
        }
        let _turn = self.turn.lock();
        self.inner.get_or_init(f)
    }

    /// Consumes the cell and returns its value, if set.
    pub fn into_inner(self) -> Option<T> {
        self.inner.into_inner()
    }

    /// Empties the cell and returns its value, if set.
    pub fn take(&mut self) -> Option<T> {
        self.inner.take()
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> OnceLock<T> {
        OnceLock {
            turn: Mutex::new(()),
            inner: std::sync::OnceLock::from(value),
        }
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> OnceLock<T> {
        OnceLock {
            turn: Mutex::new(()),
            inner: self.inner.clone(),
        }
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.inner == other.inner
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// A value made on first use, like `std::sync::LazyLock`.
///
/// ```
/// use greennet::sync::LazyLock;
///
/// static TABLE: LazyLock<Vec<u32>> = LazyLock::new(|| (0..4).map(|i| i * i).collect());
/// assert_eq!(TABLE[3], 9);
/// ```
pub struct LazyLock<T, F = fn() -> T> {
    turn: Mutex<()>,
    ready: AtomicBool,
    inner: std::sync::LazyLock<T, F>,
}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    /// A lazy value that `f` will make on first use.
    pub const fn new(f: F) -> LazyLock<T, F> {
        LazyLock {
            turn: Mutex::new(()),
            ready: AtomicBool::new(false),
            inner: std::sync::LazyLock::new(f),
        }
    }

    /// Makes the value if needed and returns it; other callers park while it is being made.
    ///
    /// # Panics
    ///
    /// If the initialiser panics now, or panicked before (the lock is then poisoned), as std.
    pub fn force(this: &LazyLock<T, F>) -> &T {
        if !this.ready.load(Ordering::Acquire) {
            let _turn = this.turn.lock();
            std::sync::LazyLock::force(&this.inner);
            this.ready.store(true, Ordering::Release);
        }
        std::sync::LazyLock::force(&this.inner)
    }
}

impl<T, F: FnOnce() -> T> Deref for LazyLock<T, F> {
    type Target = T;

    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T: Default> Default for LazyLock<T> {
    fn default() -> LazyLock<T> {
        LazyLock::new(T::default)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyLock<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}
