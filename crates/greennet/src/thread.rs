//! std::thread's API, where every "thread" is a coroutine.
//!
//! [`spawn`] starts a may coroutine instead of an OS thread: it costs a small stack and no
//! kernel thread, so a server can run one per connection by the tens of thousands. Signatures
//! are std's, so code written for `std::thread` compiles unchanged after swapping the `use` line.
//!
//! ```
//! use greennet::thread;
//! use std::time::Duration;
//!
//! let handles: Vec<_> = (0..100)
//!     .map(|i| thread::spawn(move || { thread::sleep(Duration::from_millis(10)); i * 2 }))
//!     .collect();
//! let total: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
//! assert_eq!(total, 9900);
//! ```
//!
//! # Where a coroutine is not a thread
//!
//! greennet removes may's hazards that std's API rules out: [`spawn`] is safe; a panic is caught,
//! printed like a std thread's and handed to [`JoinHandle::join`]; a stack overflow hits a guard
//! page and stops the process with a message instead of corrupting memory; stack sizes are bytes,
//! as in std; and a refused stack is an `io::Error` from [`Builder::spawn`].
//!
//! What remains, and is the price of running many coroutines on few threads:
//! - **Thread-locals** (`thread_local!`, and anything built on them) belong to the worker thread,
//!   not to the coroutine. A coroutine can move to another worker whenever it waits, and other
//!   coroutines on the same worker see the same values. Do not hold a thread-local borrow across
//!   a call that can wait. Nor is a `with` after a wait safe in the same function as one before
//!   it: the compiler takes a function to stay on one thread and may reuse the thread-local's
//!   address it computed before the wait, which by then belongs to another thread. Reach
//!   thread-locals from coroutine code through `#[inline(never)]` functions, as greennet does.
//! - **Blocking calls outside greennet** (std's sockets, std's `Mutex` while another coroutine
//!   holds it, a CPU-bound loop) hold the whole worker and every coroutine queued on it. Use
//!   greennet's types, or move such work to a real thread.
//! - **Stack size** is fixed when the coroutine starts ([`runtime::DEFAULT_STACK_SIZE`] unless
//!   set); deep recursion needs [`Builder::stack_size`] or `GREENNET_STACK_SIZE`.
//!
//! Outside a coroutine (on a plain thread) [`sleep`], [`park`] and [`park_timeout`] are std's own.
//!
//! [`runtime::DEFAULT_STACK_SIZE`]: crate::runtime::DEFAULT_STACK_SIZE

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::green::alarm::{self, Wake};
use crate::interrupt::{self, Interrupt};
use crate::waiters::Waiters;

pub use std::thread::{available_parallelism, panicking, AccessError, LocalKey, Result};

/// A unique identifier for a coroutine or thread, never reused within a process.
///
/// greennet numbers coroutines and the plain threads that call [`current`] from one counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadId(NonZeroU64);

impl ThreadId {
    fn new() -> ThreadId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        ThreadId(NonZeroU64::new(id).expect("ThreadId counter overflowed"))
    }
}

/// A handle to a coroutine (or to a plain thread), as std's `Thread` is to a thread.
#[derive(Clone)]
pub struct Thread {
    inner: Arc<ThreadInner>,
}

struct ThreadInner {
    name: Option<String>,
    id: ThreadId,
    kind: Kind,
    /// Where greennet's spawn was called, for the blocking monitor's reports.
    spawned_at: Option<&'static Location<'static>>,
}

enum Kind {
    /// Filled by whichever comes first: the spawner once may returns, or the coroutine itself.
    /// The interrupt is how `JoinHandle::kill` reaches it.
    Coroutine(OnceLock<may::coroutine::Coroutine>, Interrupt),
    Os(std::thread::Thread),
}

impl Thread {
    fn coroutine(name: Option<String>, spawned_at: Option<&'static Location<'static>>) -> Thread {
        Thread {
            inner: Arc::new(ThreadInner {
                name,
                id: ThreadId::new(),
                kind: Kind::Coroutine(OnceLock::new(), Interrupt::new()),
                spawned_at,
            }),
        }
    }

    /// Where the coroutine was spawned, if greennet spawned it.
    pub(crate) fn spawned_at(&self) -> Option<&'static Location<'static>> {
        self.inner.spawned_at
    }

    fn bind(&self, co: &may::coroutine::Coroutine) {
        if let Kind::Coroutine(cell, _) = &self.inner.kind {
            let _ = cell.set(co.clone());
        }
    }

    pub(crate) fn interrupt(&self) -> Option<&Interrupt> {
        match &self.inner.kind {
            Kind::Coroutine(_, interrupt) => Some(interrupt),
            Kind::Os(_) => None,
        }
    }

    /// The coroutine's name, if it was given one with [`Builder::name`].
    ///
    /// For a plain thread this is the thread's own name (`Some("main")` for the main thread).
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// The coroutine's unique identifier.
    pub fn id(&self) -> ThreadId {
        self.inner.id
    }

    /// Wakes the coroutine if it is blocked in [`park`], or makes its next `park` return at once.
    pub fn unpark(&self) {
        match &self.inner.kind {
            Kind::Coroutine(co, _) => {
                if let Some(co) = co.get() {
                    co.unpark();
                }
            }
            Kind::Os(thread) => thread.unpark(),
        }
    }
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

may::coroutine_local!(static CURRENT: RefCell<Option<Thread>> = RefCell::new(None));

/// The handle of the coroutine (or plain thread) that calls it.
pub fn current() -> Thread {
    if may::coroutine::is_coroutine() {
        CURRENT.with(|cur| {
            cur.borrow_mut()
                .get_or_insert_with(|| {
                    // A coroutine greennet did not spawn (may's own `go!`): describe it now.
                    let co = may::coroutine::current();
                    let thread = Thread::coroutine(co.name().map(str::to_owned), None);
                    thread.bind(&co);
                    thread
                })
                .clone()
        })
    } else {
        thread_local!(static OS: Thread = {
            let std = std::thread::current();
            Thread {
                inner: Arc::new(ThreadInner {
                    name: std.name().map(str::to_owned),
                    id: ThreadId::new(),
                    kind: Kind::Os(std),
                    spawned_at: None,
                }),
            }
        });
        OS.with(Thread::clone)
    }
}

/// Puts the current coroutine to sleep for at least `dur`, letting its worker run others.
///
/// On a plain thread this is `std::thread::sleep`.
///
/// ```
/// use greennet::thread;
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// let sleepers: Vec<_> = (0..1000)
///     .map(|_| thread::spawn(|| thread::sleep(Duration::from_millis(50))))
///     .collect();
/// sleepers.into_iter().for_each(|h| h.join().unwrap());
/// // A thousand sleeps, side by side.
/// assert!(start.elapsed() < Duration::from_secs(10));
/// ```
pub fn sleep(dur: Duration) {
    let coroutine = may::coroutine::is_coroutine();
    if !coroutine && interrupt::limit(None).is_none() {
        return std::thread::sleep(dur);
    }
    if dur.is_zero() {
        if coroutine {
            yield_now();
        }
        return interrupt::check();
    }
    // On greennet's alarm thread rather than may's timer, so a kill or a timeout can end it.
    // A duration too long to represent sleeps until interrupted, as std's practically does.
    let end = Instant::now().checked_add(dur);
    let blocker = may::sync::Blocker::current();
    let mut wait = interrupt::begin(end);
    let _alarm = wait
        .limit()
        .map(|d| alarm::set(d, Wake::Blocker(blocker.clone())));
    wait.arm(|| Wake::Blocker(blocker.clone()));
    loop {
        wait.check();
        if end.is_some_and(|e| Instant::now() >= e) {
            return;
        }
        let _ = crate::monitor::switch(|| blocker.park(None));
    }
}

/// Lets the worker run other coroutines before this one continues.
///
/// A coroutine that loops on `yield_now` still lets newly spawned coroutines start and lets its
/// worker poll for I/O: may's own yield only rotates the worker's local queue, so at most every
/// [`FAIR_YIELD_INTERVAL`] a yield on a worker steps out through may's global queue instead.
/// That step costs a wake-up from another thread and uses the coroutine's park token, so a later
/// [`park`] may return spuriously, which std's contract allows. On a plain thread this is
/// `std::thread::yield_now`.
pub fn yield_now() {
    if !may::coroutine::is_coroutine() {
        return std::thread::yield_now();
    }
    if !fair_step_due() {
        return crate::monitor::switch(may::coroutine::yield_now);
    }
    let wake = crate::green::alarm::Wake::Coroutine(may::coroutine::current());
    let _alarm = crate::green::alarm::set(Instant::now(), wake);
    // Returns when the alarm thread unparks us (or at once if a token was already there).
    crate::monitor::switch(may::coroutine::park);
}

/// Whether this worker's [`yield_now`] should step out through may's global queue now.
///
/// Never inlined, like every function here that reaches a thread-local from a coroutine: a
/// coroutine can move to another worker thread whenever it waits, while code inlined into a
/// caller may keep using the thread-local address it computed before the wait (the compiler
/// takes the thread to be the same for the whole call), and so touch another thread's copy.
#[inline(never)]
fn fair_step_due() -> bool {
    thread_local! {
        static YIELDS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        static LAST_FAIR: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    }
    // Look at the clock only every 32nd yield, and step out only if the interval has passed.
    let count = YIELDS.with(|n| {
        n.set(n.get().wrapping_add(1));
        n.get()
    });
    let now = (count.is_multiple_of(32)).then(Instant::now);
    now.is_some_and(|now| {
        LAST_FAIR.with(|last| match last.get() {
            Some(at) if now.duration_since(at) < FAIR_YIELD_INTERVAL => false,
            _ => {
                last.set(Some(now));
                true
            }
        })
    })
}

/// How often, at most, [`yield_now`] on one worker steps out through may's global queue so that
/// new coroutines and I/O cannot be starved by a yield loop. Each step costs tens of microseconds
/// (a wake from another thread); 10 ms bounds that to well under 1% of a spinning worker, and
/// bounds the delay a yield loop can impose on new work to about the same as Go's preemption.
pub const FAIR_YIELD_INTERVAL: Duration = Duration::from_millis(10);

/// Blocks the current coroutine until its [`Thread::unpark`] is called (or spuriously).
///
/// As in std, each handle holds one token: an `unpark` that comes first makes the next `park`
/// return at once, and `park` may also return spuriously, so wait for a condition in a loop.
/// On a plain thread this is `std::thread::park`.
///
/// ```
/// use greennet::thread;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let ready = Arc::new(AtomicBool::new(false));
/// let waiter = {
///     let ready = ready.clone();
///     thread::spawn(move || {
///         while !ready.load(Ordering::Acquire) {
///             thread::park();
///         }
///     })
/// };
/// ready.store(true, Ordering::Release);
/// waiter.thread().unpark();
/// waiter.join().unwrap();
/// ```
pub fn park() {
    park_until(None);
}

/// Like [`park`], but returns after at most about `dur`.
pub fn park_timeout(dur: Duration) {
    if dur.is_zero() {
        return interrupt::check();
    }
    // A duration too long to represent is a plain park.
    park_until(Instant::now().checked_add(dur));
}

/// Parks until unparked, or the deadline, or an active timeout's, or a kill.
fn park_until(own: Option<Instant>) {
    let mut wait = interrupt::begin(own);
    let deadline = wait.limit();
    if may::coroutine::is_coroutine() {
        wait.arm(|| Wake::Coroutine(may::coroutine::current()));
        if !wait.pending() {
            match deadline {
                // On greennet's alarm thread, as `sleep` and socket waits are, not may's timed
                // park: a test of 1,000 coroutines in timed parks cut short by early unparks
                // hung once with may's timer. The alarm unparks through the same token as
                // `Thread::unpark`, so one that goes off just as the park ends early leaves a
                // token behind and the next park returns at once: a spurious wake-up, which
                // `park` allows.
                Some(d) => {
                    if d > Instant::now() {
                        let _alarm = alarm::set(d, Wake::Coroutine(may::coroutine::current()));
                        crate::monitor::switch(may::coroutine::park);
                    }
                }
                None => crate::monitor::switch(may::coroutine::park),
            }
        }
    } else {
        match deadline {
            Some(d) => std::thread::park_timeout(d.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
    }
    wait.check();
}

/// Where a coroutine's result (or panic) waits for `join`.
struct Packet<'scope, T> {
    scope: Option<Arc<ScopeData>>,
    result: Mutex<Option<Result<T>>>,
    _marker: PhantomData<&'scope ()>,
}

impl<T> Drop for Packet<'_, T> {
    fn drop(&mut self) {
        let result = self.result.get_mut().unwrap_or_else(|e| e.into_inner());
        // A scoped coroutine whose panic nobody collected makes `scope` panic, as in std.
        if let (Some(scope), Some(Err(_))) = (&self.scope, result.as_ref()) {
            scope.a_coroutine_panicked.store(true, Ordering::Relaxed);
        }
    }
}

/// Kept in the coroutine's local storage, which may drops on the worker thread once the
/// coroutine has ended, however it ended. A coroutine that overflowed its stack never returns to
/// our code (its frames are abandoned at the guard page), so this is where that is reported, and
/// where a scope learns that one of its coroutines is gone.
struct ExitGuard {
    thread: Thread,
    stack_size: usize,
    returned: bool,
    scope: Option<Arc<ScopeData>>,
    finished: Arc<Finished>,
}

/// Set once a coroutine has ended, whichever way it ended; `join` waits on it.
struct Finished {
    done: AtomicBool,
    waiters: Waiters,
}

impl Finished {
    /// Waits until the coroutine has ended (`true`) or the deadline passes (`false`).
    fn wait(&self, deadline: Option<Instant>) -> bool {
        self.waiters
            .wait_for(deadline, || self.done.load(Ordering::Acquire).then_some(()))
            .is_some()
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // Runs on the worker once the coroutine is gone (an overflowed one never said so).
        crate::monitor::leave();
        if !self.returned {
            let message = overflow_message(&self.thread, self.stack_size);
            tracing::error!(id = ?self.thread.id(), name = self.thread.name(), "{message}");
            // Like std's report of a thread's overflow: straight to stderr, subscriber or not.
            use std::io::Write;
            let _ = writeln!(std::io::stderr().lock(), "{message}");
            if let Some(scope) = &self.scope {
                scope.a_coroutine_panicked.store(true, Ordering::Relaxed);
            }
        }
        tracing::trace!(id = ?self.thread.id(), name = self.thread.name(), "coroutine exited");
        if let Some(scope) = &self.scope {
            scope.finished();
        }
        self.finished.done.store(true, Ordering::Release);
        self.finished.waiters.wake_all();
    }
}

may::coroutine_local!(static EXIT: RefCell<Option<ExitGuard>> = RefCell::new(None));

fn overflow_message(thread: &Thread, stack_size: usize) -> String {
    format!(
        "coroutine '{}' has overflowed its stack of {stack_size} bytes; raise it with \
         greennet::thread::Builder::stack_size, or for every coroutine with \
         GREENNET_STACK_SIZE, #[green::main(stack_size = ...)] or runtime::Builder::stack_size",
        thread.name().unwrap_or("<unnamed>")
    )
}

/// Configures a coroutine before it starts, like `std::thread::Builder`.
///
/// ```
/// use greennet::thread;
///
/// let handle = thread::Builder::new()
///     .name("worker".into())
///     .stack_size(256 * 1024)
///     .spawn(|| thread::current().name().map(str::to_owned))?;
/// assert_eq!(handle.join().unwrap().as_deref(), Some("worker"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and the runtime's default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the coroutine; the name shows in panic messages and [`Thread::name`].
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Sets the coroutine's stack size in bytes (rounded up to whole pages).
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Starts a coroutine running `f` and returns its handle.
    ///
    /// # Errors
    ///
    /// If the runtime cannot start, or the OS refuses the coroutine's stack (memory, or the
    /// kernel's limit on memory mappings), the error says why.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_in(None, Location::caller(), f).map(JoinHandle)
    }

    /// Starts a coroutine in `scope`; it may borrow anything that outlives the scope.
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Builder::spawn).
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_in(Some(scope.data.clone()), Location::caller(), f)
            .map(ScopedJoinHandle)
    }

    fn spawn_in<'scope, F, T>(
        self,
        scope: Option<Arc<ScopeData>>,
        at: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinInner<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let config = crate::runtime::ensure_started()?;
        let thread = Thread::coroutine(self.name.clone(), Some(at));
        if let Some(scope) = &scope {
            scope.num_running.fetch_add(1, Ordering::Relaxed);
        }
        let packet: Arc<Packet<'scope, T>> = Arc::new(Packet {
            scope: scope.clone(),
            result: Mutex::new(None),
            _marker: PhantomData,
        });

        let stack_size = self.stack_size.unwrap_or(config.stack_size);
        let finished = Arc::new(Finished {
            done: AtomicBool::new(false),
            waiters: Waiters::new(),
        });
        let their_finished = finished.clone();
        let their_thread = thread.clone();
        let their_packet = packet.clone();
        let local = may::coroutine::is_coroutine();
        let main = move || {
            if local {
                // Started inside `spawn` (below), on the spawner's OS thread: the spawner's
                // "quiet while allocating" flag is not about this coroutine.
                set_spawning(false);
                // Step straight back out to the spawner. may's yield queues this coroutine on
                // its worker's own queue (no system call, and other workers can steal it), so
                // the spawner carries on at once, as after std's spawn.
                may::coroutine::yield_now();
            }
            their_thread.bind(&may::coroutine::current());
            interrupt::install(their_thread.clone());
            CURRENT.with(|cur| *cur.borrow_mut() = Some(their_thread.clone()));
            // A span per coroutine, for subscribers that want trace-level detail: entered while
            // the coroutine runs, left while it is parked (see `monitor::switch`).
            let span = tracing::trace_span!(
                "coroutine",
                id = ?their_thread.id(),
                name = their_thread.name()
            );
            EXIT.with(|exit| {
                *exit.borrow_mut() = Some(ExitGuard {
                    thread: their_thread,
                    stack_size,
                    returned: false,
                    scope,
                    finished: their_finished,
                })
            });
            let _in_span = crate::monitor::coroutine_span(span);
            crate::monitor::enter();
            tracing::trace!("coroutine started");
            // The panic hook has printed the message by the time this returns an Err.
            let result = catch_unwind(AssertUnwindSafe(f));
            match &result {
                Ok(_) => tracing::trace!("coroutine returned"),
                Err(payload) if Killed::is(&**payload) => tracing::debug!("coroutine killed"),
                Err(payload) => {
                    tracing::debug!(panic = panic_message(&**payload), "coroutine panicked")
                }
            }
            crate::monitor::leave();
            *their_packet
                .result
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(result);
            // The result may borrow from a scope's caller: release it before the scope can end.
            drop(their_packet);
            EXIT.with(|exit| {
                if let Some(guard) = exit.borrow_mut().as_mut() {
                    guard.returned = true;
                }
            });
        };
        let main: Box<dyn FnOnce() + Send + 'scope> = Box::new(main);
        // SAFETY: only the lifetime is changed. An unscoped closure is 'static already. A scoped
        // one borrows data that outlives 'scope, and `scope` does not return before every packet
        // of the scope is dropped, which happens at the end of `main`, after its last use of
        // borrowed data.
        let main: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(main) };

        let mut builder = may::coroutine::Builder::new();
        if let Some(name) = self.name {
            builder = builder.name(name);
        }
        builder = builder.stack_size(crate::runtime::stack_words(stack_size));
        // may allocates the stack inside `spawn` and panics if the OS refuses it; turn that into
        // the io::Error std returns when it cannot create a thread (quietly: the panic is ours to
        // translate, not the user's to see).
        //
        // Inside a coroutine, the new one is entered at once (`spawn_local`) only to queue itself
        // on this worker (see the top of `main`). may's `spawn` would instead push it to a
        // round-robin global queue and wake the other worker through its eventfd: a cross-thread
        // wake-up per spawn, 30 µs per spawn+join here against well under 1 µs this way
        // (docs/benchmarks.md). From a plain thread there is no worker to queue it on.
        set_spawning(true);
        let spawned = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: may marks spawning unsafe for two hazards. Stack overflow: every stack has a
            // guard page, so overflow is reported instead of corrupting memory. Thread-local
            // storage seen across worker migrations: documented on this module as the one
            // difference from std threads that remains. `spawn_local` adds no hazard of its own:
            // it runs the coroutine through may's ordinary `run_coroutine`, the same step a
            // worker takes, only from the current coroutine's worker.
            unsafe {
                if local {
                    // The new coroutine runs on this worker until its first yield.
                    crate::monitor::switch(|| builder.spawn_local(main))
                } else {
                    builder.spawn(main)
                }
            }
        }));
        set_spawning(false);
        let handle = match spawned {
            Ok(Ok(handle)) => handle,
            // The closure never ran and is gone, so no guard will end this coroutine's place in
            // its scope: do it here.
            Ok(Err(e)) => {
                spawn_failed(&packet);
                return Err(e);
            }
            Err(payload) => {
                spawn_failed(&packet);
                return Err(stack_refused(stack_size, panic_message(&*payload)));
            }
        };
        thread.bind(handle.coroutine());
        tracing::trace!(
            id = ?thread.id(),
            name = thread.name(),
            spawned_at = %at,
            "coroutine spawned"
        );
        Ok(JoinInner {
            handle,
            thread,
            stack_size,
            packet,
            finished,
        })
    }
}

thread_local! {
    /// Set while may allocates a coroutine stack, so the panic hook stays quiet about a refusal
    /// that `spawn` turns into an `io::Error`.
    static SPAWNING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Never inlined (see [`fair_step_due`]).
#[inline(never)]
fn set_spawning(on: bool) {
    SPAWNING.with(|s| s.set(on));
}

/// Never inlined (see [`fair_step_due`]).
#[inline(never)]
fn spawning() -> bool {
    SPAWNING.with(|s| s.get())
}

/// The error for a stack the OS refused, naming the kernel's mapping limit when that is the
/// cause: each coroutine stack is two mappings (the stack and its guard page), so the default
/// `vm.max_map_count` of 65,530 allows about 32,700 live coroutines.
fn stack_refused(stack_size: usize, reason: &str) -> io::Error {
    let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok());
    let in_use = std::fs::read_to_string("/proc/self/maps")
        .map(|maps| maps.lines().count())
        .ok();
    let message = match (limit, in_use) {
        (Some(limit), Some(in_use)) if in_use + 8 >= limit => format!(
            "cannot create a coroutine stack: the process has {in_use} memory mappings and the \
             kernel allows {limit} (vm.max_map_count); each coroutine stack takes two. Raise \
             the limit, e.g. `sysctl -w vm.max_map_count={}`, or run fewer coroutines at once",
            limit.saturating_mul(4)
        ),
        _ => format!("cannot create a coroutine stack of {stack_size} bytes: {reason}"),
    };
    io::Error::new(io::ErrorKind::OutOfMemory, message)
}

fn spawn_failed<T>(packet: &Packet<'_, T>) {
    if let Some(scope) = &packet.scope {
        scope.finished();
    }
}

/// Starts a coroutine running `f` and returns a handle to join it.
///
/// Called from a plain thread it works too: the coroutine runs on the runtime (started on first
/// use) and `join` blocks the calling thread.
///
/// ```
/// use greennet::thread;
///
/// let handle = thread::spawn(|| "done");
/// assert_eq!(handle.join().unwrap(), "done");
/// ```
///
/// # Panics
///
/// If the coroutine cannot be created (see [`Builder::spawn`]), with the reason, exactly as
/// `std::thread::spawn` does for threads.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).expect("failed to spawn thread")
}

struct JoinInner<'scope, T> {
    handle: may::coroutine::JoinHandle<()>,
    thread: Thread,
    stack_size: usize,
    packet: Arc<Packet<'scope, T>>,
    finished: Arc<Finished>,
}

impl<'scope, T> JoinInner<'scope, T> {
    /// Joins if the coroutine ends before the deadline; otherwise gives the handle back.
    fn join_until(self, deadline: Option<Instant>) -> std::result::Result<Result<T>, Self> {
        if self.finished.wait(deadline) {
            Ok(self.take())
        } else {
            Err(self)
        }
    }

    fn join(self) -> Result<T> {
        self.finished.wait(None);
        self.take()
    }

    fn kill(&self) {
        if let Some(interrupt) = self.thread.interrupt() {
            tracing::debug!(id = ?self.thread.id(), name = self.thread.name(), "killing coroutine");
            interrupt.kill();
        }
    }

    fn take(self) -> Result<T> {
        // may's own result says nothing ours does not: a panic was caught inside the coroutine.
        // The coroutine has ended (`finished`), so this returns at once.
        let _ = crate::monitor::switch(|| self.handle.join());
        let taken = self
            .packet
            .result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // No result: the coroutine never returned, because it overflowed its stack.
        taken.unwrap_or_else(|| Err(Box::new(overflow_message(&self.thread, self.stack_size))))
    }

    /// True once `join` would not wait: the same signal `join` waits for.
    fn is_finished(&self) -> bool {
        self.finished.done.load(Ordering::Acquire)
    }
}

/// An owned permission to join a coroutine (wait for it and take its result).
///
/// Dropping it detaches the coroutine, which keeps running.
pub struct JoinHandle<T>(JoinInner<'static, T>);

impl<T> JoinHandle<T> {
    /// Waits for the coroutine to finish and returns its value, or the payload of its panic.
    ///
    /// In a coroutine this parks only the caller; on a plain thread it blocks the thread.
    pub fn join(self) -> Result<T> {
        self.0.join()
    }

    /// The handle of the coroutine.
    pub fn thread(&self) -> &Thread {
        &self.0.thread
    }

    /// Whether the coroutine has finished running its closure.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// Like [`join`](Self::join), but gives up after about `dur`: `Err` gives the handle back,
    /// still joinable, if the coroutine is still running then. gevent's `join(timeout)`.
    ///
    /// ```
    /// use greennet::thread;
    /// use std::time::Duration;
    ///
    /// greennet::run(|| {
    ///     let slow = thread::spawn(|| thread::sleep(Duration::from_secs(1)));
    ///     let slow = slow.join_timeout(Duration::from_millis(10)).unwrap_err();
    ///     slow.kill();
    ///     assert!(slow.join().is_err());
    /// });
    /// ```
    pub fn join_timeout(self, dur: Duration) -> std::result::Result<Result<T>, JoinHandle<T>> {
        self.0
            .join_until(Instant::now().checked_add(dur))
            .map_err(JoinHandle)
    }

    /// Asks the coroutine to stop, gevent's `Greenlet.kill`: it unwinds from the greennet wait it
    /// is parked in, or from the next one it reaches, running its destructors on the way (so
    /// its sockets close). Its `join` then returns `Err` with a [`Killed`] payload, unless it
    /// finished first. The kill is not forgotten: if the coroutine catches the unwind, its next
    /// wait unwinds again. Code that never waits (a pure computation) is not interrupted.
    /// Returns at once; `join` waits for the end.
    pub fn kill(&self) {
        self.0.kill();
    }
}

/// The payload of a killed coroutine's unwind, which its `join` returns as the `Err`.
/// See [`JoinHandle::kill`].
#[derive(Clone, PartialEq, Eq)]
pub struct Killed {
    _private: (),
}

impl Killed {
    pub(crate) fn new() -> Killed {
        Killed { _private: () }
    }

    /// Whether a `join` error (or any unwind payload) is a kill.
    pub fn is(payload: &(dyn Any + Send)) -> bool {
        payload.is::<Killed>()
    }
}

impl fmt::Debug for Killed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Killed")
    }
}

impl fmt::Display for Killed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("coroutine killed")
    }
}

impl std::error::Error for Killed {}

/// Spawns `f` to start after `delay`, gevent's `spawn_later`. Killing the handle before then
/// means `f` never runs.
///
/// # Panics
///
/// As [`spawn`], if the coroutine cannot be created.
#[track_caller]
pub fn spawn_later<F, T>(delay: Duration, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn(move || {
        sleep(delay);
        f()
    })
}

/// Joins every handle, giving up at the end of `timeout` (`None`: no limit), gevent's
/// `joinall`. The answers come in the handles' order: `Ok` with the coroutine's result, or
/// `Err` with its handle, still joinable, if it had not finished by the deadline.
///
/// ```
/// use greennet::thread;
/// use std::time::Duration;
///
/// greennet::run(|| {
///     let quick = thread::spawn(|| 1);
///     let slow = thread::spawn(|| {
///         thread::sleep(Duration::from_secs(1));
///         2
///     });
///     let mut done = thread::joinall(vec![quick, slow], Some(Duration::from_millis(50)));
///     let slow = done.pop().unwrap().unwrap_err();
///     assert_eq!(done.pop().unwrap().unwrap().unwrap(), 1);
///     slow.kill();
/// });
/// ```
pub fn joinall<T>(
    handles: impl IntoIterator<Item = JoinHandle<T>>,
    timeout: Option<Duration>,
) -> Vec<std::result::Result<Result<T>, JoinHandle<T>>> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    handles
        .into_iter()
        .map(|h| h.0.join_until(deadline).map_err(JoinHandle))
        .collect()
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").finish_non_exhaustive()
    }
}

/// The bookkeeping shared by a scope and its coroutines.
struct ScopeData {
    num_running: AtomicUsize,
    a_coroutine_panicked: AtomicBool,
    main: Arc<may::sync::Blocker>,
}

impl ScopeData {
    fn finished(&self) {
        if self.num_running.fetch_sub(1, Ordering::Release) == 1 {
            self.main.unpark();
        }
    }
}

/// A scope to spawn coroutines that borrow from the caller; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope> Scope<'scope, '_> {
    /// Starts a coroutine in this scope; it is joined, at the latest, when the scope ends.
    ///
    /// # Panics
    ///
    /// If the coroutine cannot be created, as [`spawn`] does.
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        Builder::new()
            .spawn_scoped(self, f)
            .expect("failed to spawn thread")
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field(
                "num_running",
                &self.data.num_running.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

/// An owned permission to join a scoped coroutine.
pub struct ScopedJoinHandle<'scope, T>(JoinInner<'scope, T>);

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the coroutine to finish and returns its value, or the payload of its panic.
    pub fn join(self) -> Result<T> {
        self.0.join()
    }

    /// The handle of the coroutine.
    pub fn thread(&self) -> &Thread {
        &self.0.thread
    }

    /// Whether the coroutine has finished running its closure.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle").finish_non_exhaustive()
    }
}

/// Creates a scope in which coroutines may borrow non-`'static` data; every coroutine spawned in
/// it is joined before `scope` returns.
///
/// # Panics
///
/// If `f` panics, or if a coroutine spawned in the scope panicked and was not joined.
///
/// ```
/// let mut counts = [0u32; 4];
/// greennet::thread::scope(|s| {
///     for (i, slot) in counts.iter_mut().enumerate() {
///         s.spawn(move || *slot = i as u32 * 10);
///     }
/// });
/// assert_eq!(counts, [0, 10, 20, 30]);
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            num_running: AtomicUsize::new(0),
            a_coroutine_panicked: AtomicBool::new(false),
            main: may::sync::Blocker::current(),
        }),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    while scope.data.num_running.load(Ordering::Acquire) != 0 {
        // The blocker keeps an unpark that comes before this park, so no wake is lost.
        let _ = crate::monitor::switch(|| scope.data.main.park(None));
    }
    match result {
        Err(payload) => resume_unwind(payload),
        Ok(_) if scope.data.a_coroutine_panicked.load(Ordering::Relaxed) => {
            panic!("a scoped thread panicked")
        }
        Ok(value) => value,
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

/// Makes a coroutine's panic print as std prints a thread's: `thread '<name>' panicked at ...`,
/// naming the coroutine rather than the worker thread it happened to run on. Panics outside
/// coroutines go to the hook that was installed before.
pub(crate) fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if spawning() {
            return;
        }
        if !may::coroutine::is_coroutine() {
            return previous(info);
        }
        static FIRST: AtomicBool = AtomicBool::new(true);
        let thread = current();
        let name = thread.name().unwrap_or("<unnamed>");
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let message = panic_message(info.payload());
        let backtrace = std::backtrace::Backtrace::capture();
        let mut out = format!("\nthread '{name}' panicked at {location}:\n{message}\n");
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            out.push_str(&format!("stack backtrace:\n{backtrace}"));
        } else if FIRST.swap(false, Ordering::Relaxed) {
            out.push_str(
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
            );
        }
        // One write, so concurrent panics do not interleave line by line.
        use std::io::Write;
        let _ = std::io::stderr()
            .lock()
            .write_all(out.trim_start().as_bytes());
    }));
}
