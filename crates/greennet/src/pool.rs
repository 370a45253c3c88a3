//! Run many tasks as coroutines, at most a fixed number at once, and collect their results.
//!
//! A [`Pool`] is gevent's `Pool`: it has `size` slots, [`spawn`](Pool::spawn) waits for a free
//! one and starts the task in a coroutine, and the slot comes back when the task ends, however
//! it ends. [`map`](Pool::map), [`imap`](Pool::imap) and [`imap_unordered`](Pool::imap_unordered)
//! run a function over many items that way; [`apply`](Pool::apply) runs one call and waits for
//! it. A [`Group`] is the same without the cap (gevent's `Group`): it tracks its tasks so that
//! you can [`join`](Pool::join) or [`kill`](Pool::kill) them together. Both work from coroutines
//! and from plain threads; waiting parks only the caller.
//!
//! ```
//! use greennet::pool::Pool;
//! use greennet::thread;
//! use std::time::Duration;
//!
//! greennet::run(|| {
//!     // A hundred 10 ms "requests", ten at a time: about 100 ms instead of a second.
//!     let pool = Pool::new(10);
//!     let squares = pool.map(1..=100u64, |n| {
//!         thread::sleep(Duration::from_millis(10));
//!         n * n
//!     });
//!     assert_eq!(squares.len(), 100);
//!     assert_eq!(squares[9], 100);
//! });
//! ```
//!
//! # Panics
//!
//! A task's panic is caught in its coroutine (the panic hook has already printed it) and goes to
//! whoever waits for that task:
//! - [`spawn`](Pool::spawn): [`JoinHandle::join`] returns `Err` with the payload, as for a
//!   thread. If the handle is dropped without being joined, the pool keeps the payload and the
//!   next [`join`](Pool::join) or successful [`join_timeout`](Pool::join_timeout) resumes it in
//!   its caller. It keeps only the first such payload; later ones are dropped.
//! - [`apply`](Pool::apply) resumes the panic in its caller with the original payload.
//! - [`map`](Pool::map), [`imap`](Pool::imap), [`imap_unordered`](Pool::imap_unordered): once
//!   one of their tasks has panicked they start no further item (the rest of the input is
//!   dropped unprocessed), wait until every task they already started has ended, drop the
//!   results not yet handed out (and the payloads of any further panics), and then resume the
//!   panic in the caller with its original payload. `map` and `imap` resume the panic of the earliest item,
//!   in input order, that panicked, and `imap` first yields every result before it;
//!   `imap_unordered` resumes the first panic it receives. Nothing is left running.
//!
//! A killed task counts as a panic whose payload is [`thread::Killed`]: its `join` returns that
//! payload, and `map`, `imap`, `imap_unordered` and `apply` resume it. [`join`](Pool::join)
//! never resumes it, since the pool's own [`kill`](Pool::kill) is what usually causes it.
//!
//! An `imap` or `imap_unordered` iterator dropped before its end starts no further item; the
//! tasks it had started keep running in the pool until they end (`join` waits for them), their
//! results are dropped, and their panics are kept for `join` as a dropped handle's are. The same
//! happens when the caller of `map`, or of an iterator's `next`, unwinds out of its wait because
//! it was killed or a timeout of its own expired.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::iter::FusedIterator;
use std::ops::Deref;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::sync::{mpsc, Condvar, Mutex, MutexGuard, PoisonError};
use crate::thread::{self, Thread};

/// What a panic carries.
type Payload = Box<dyn Any + Send + 'static>;

/// One item's call, ready to run in a task.
type Job<R> = Box<dyn FnOnce() -> R + Send + 'static>;

/// A set of coroutines of which at most `size` run at once.
///
/// Cloning a `Pool` gives another handle to the same pool, so tasks can spawn into the pool they
/// run in. See the [module documentation](crate::pool) for what happens when a task panics.
///
/// ```
/// use greennet::pool::Pool;
///
/// greennet::run(|| {
///     let pool = Pool::new(2);
///     let handles: Vec<_> = (0..5).map(|i| pool.spawn(move || i * 10)).collect();
///     let total: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
///     assert_eq!(total, 100);
///     assert_eq!(pool.free_count(), 2);
/// });
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` for a [`Group`].
    size: Option<usize>,
    state: Mutex<State>,
    /// Notified once per released slot; a waiter that does not use the slot passes it on.
    slot_freed: Condvar,
    /// Notified whenever a task ends, for [`Pool::join`].
    task_ended: Condvar,
    /// The first panic that nobody else can receive, kept for [`Pool::join`]. A std lock: it is
    /// only held to swap the value, and it is taken inside a task after its closure has ended,
    /// where a greennet wait is best avoided.
    failure: std::sync::Mutex<Option<Payload>>,
}

struct State {
    /// Tasks are numbered in the order they took their slot.
    next_id: u64,
    /// The tasks holding a slot, by number; `len()` is the number of slots taken.
    running: BTreeMap<u64, Arc<dyn Kill>>,
}

impl Pool {
    /// A pool that runs at most `size` tasks at once.
    ///
    /// A pool needs at least one slot to make progress, so a `size` of 0 makes a pool of one.
    pub fn new(size: usize) -> Pool {
        Pool::with_size(Some(size.max(1)))
    }

    fn with_size(size: Option<usize>) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                size,
                state: Mutex::new(State {
                    next_id: 0,
                    running: BTreeMap::new(),
                }),
                slot_freed: Condvar::new(),
                task_ended: Condvar::new(),
                failure: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Waits for a free slot, then starts `f` in a coroutine that holds the slot until it ends.
    ///
    /// The slot is released when `f` returns, panics, or is killed. `f`'s panic goes to the
    /// handle's [`join`](JoinHandle::join); if the handle is dropped first, to [`Pool::join`].
    ///
    /// A task that spawns into its own full pool waits for one of the other tasks to end, so a
    /// pool whose every task does that at once waits forever.
    ///
    /// # Panics
    ///
    /// If the coroutine cannot be created, as [`thread::spawn`] does; the slot is released.
    pub fn spawn<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let task = Task::new();
        let mut slot = self.wait_for_slot(task.clone());
        let (ended_tx, ended) = mpsc::channel();
        slot.ended = Some((ended_tx, 0));
        let (handle, thread) = self.launch(slot, task, f);
        JoinHandle {
            handle,
            ended,
            finished: std::cell::Cell::new(false),
            thread,
        }
    }

    /// Runs `f` on every item, at most `size` calls at once, and returns the results in the
    /// order of the items.
    ///
    /// Each call runs in a task of the pool. The caller starts the calls and collects their
    /// results: it waits for a slot only while none of its own calls runs, and otherwise starts
    /// another call whenever one of its own ends or it finds a slot free. Called from one of the
    /// pool's own tasks, its calls still need slots of their own, as with
    /// [`spawn`](Pool::spawn).
    ///
    /// # Panics
    ///
    /// If a call panics, `map` starts no further item, waits for the calls already running,
    /// drops their results, and resumes the panic of the earliest item that panicked with its
    /// original payload (see the [module documentation](crate::pool#panics)).
    ///
    /// ```
    /// use greennet::pool::Pool;
    ///
    /// greennet::run(|| {
    ///     let lengths = Pool::new(4).map(["a", "bb", "ccc"], |s| s.len());
    ///     assert_eq!(lengths, [1, 2, 3]);
    /// });
    /// ```
    pub fn map<T, R, F>(&self, items: impl IntoIterator<Item = T>, f: F) -> Vec<R>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        let mut batch = Batch::new(self, items, f);
        let mut results: Vec<Option<R>> = Vec::new();
        let mut panic: Option<(usize, Payload)> = None;
        while let Some((index, result)) = batch.next_ended() {
            match result {
                Ok(value) => {
                    if results.len() <= index {
                        results.resize_with(index + 1, || None);
                    }
                    results[index] = Some(value);
                }
                Err(payload) => {
                    if panic.as_ref().is_none_or(|(first, _)| index < *first) {
                        panic = Some((index, payload));
                    }
                }
            }
        }
        if let Some((_, payload)) = panic {
            resume_unwind(payload);
        }
        // Every item ran and none panicked, so every place is filled.
        results.into_iter().flatten().collect()
    }

    /// Like [`map`](Pool::map), but returns an iterator that yields each result, in the order of
    /// the items, as soon as it and the ones before it are ready.
    ///
    /// The iterator does the work of `map` on demand: each call to `next` starts calls for as
    /// many items as there are free slots, then waits for the next result. Results that finish
    /// ahead of their turn are kept until it comes. For panics, and for an iterator dropped
    /// before its end, see the [module documentation](crate::pool#panics).
    ///
    /// ```
    /// use greennet::pool::Pool;
    /// use greennet::thread;
    /// use std::time::Duration;
    ///
    /// greennet::run(|| {
    ///     let pool = Pool::new(3);
    ///     let delays = [30u64, 10, 20];
    ///     let order: Vec<u64> = pool
    ///         .imap(delays, |ms| {
    ///             thread::sleep(Duration::from_millis(ms));
    ///             ms
    ///         })
    ///         .collect();
    ///     assert_eq!(order, [30, 10, 20]);
    /// });
    /// ```
    pub fn imap<'a, I, T, R, F>(&self, items: I, f: F) -> Imap<'a, R>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        Imap {
            batch: Batch::new(self, items, f),
            ready: BTreeMap::new(),
            next: 0,
        }
    }

    /// Like [`imap`](Pool::imap), but yields the results in the order the calls finish.
    ///
    /// ```
    /// use greennet::pool::Pool;
    /// use greennet::thread;
    /// use std::time::Duration;
    ///
    /// greennet::run(|| {
    ///     let pool = Pool::new(3);
    ///     let first = pool
    ///         .imap_unordered([300u64, 1, 200], |ms| {
    ///             thread::sleep(Duration::from_millis(ms));
    ///             ms
    ///         })
    ///         .next();
    ///     assert_eq!(first, Some(1));
    /// });
    /// ```
    pub fn imap_unordered<'a, I, T, R, F>(&self, items: I, f: F) -> ImapUnordered<'a, R>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        ImapUnordered {
            batch: Batch::new(self, items, f),
        }
    }

    /// Runs `f` in a task of the pool, waits for it, and returns its value.
    ///
    /// Called from one of this pool's own tasks, it runs `f` right there: that task already holds
    /// a slot, and waiting for another could wait forever in a full pool.
    ///
    /// # Panics
    ///
    /// With `f`'s panic, resumed with its original payload.
    ///
    /// ```
    /// use greennet::pool::Pool;
    ///
    /// greennet::run(|| {
    ///     let pool = Pool::new(1);
    ///     assert_eq!(pool.apply(|| 6 * 7), 42);
    /// });
    /// ```
    pub fn apply<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if current_task(&self.inner).is_some() {
            return f();
        }
        self.spawn(f)
            .join()
            .unwrap_or_else(|payload| resume_unwind(payload))
    }

    /// Waits until every task spawned so far has ended.
    ///
    /// Tasks spawned while it waits are not waited for. Called from one of this pool's own
    /// tasks, it does not wait for that task itself.
    ///
    /// # Panics
    ///
    /// If a task whose [`JoinHandle`] was dropped without being joined panicked (killed tasks
    /// aside), `join` resumes the first such panic once the waiting is over, with its original
    /// payload. The payload is then gone: a second `join` does not repeat it.
    ///
    /// ```
    /// use greennet::pool::Group;
    /// use greennet::sync::atomic::{AtomicUsize, Ordering};
    /// use greennet::sync::Arc;
    ///
    /// greennet::run(|| {
    ///     let group = Group::new();
    ///     let done = Arc::new(AtomicUsize::new(0));
    ///     for _ in 0..10 {
    ///         let done = done.clone();
    ///         group.spawn(move || done.fetch_add(1, Ordering::Relaxed));
    ///     }
    ///     group.join();
    ///     assert_eq!(done.load(Ordering::Relaxed), 10);
    /// });
    /// ```
    pub fn join(&self) {
        self.wait_for_tasks(None);
    }

    /// Like [`join`](Pool::join), giving up after about `timeout`; returns whether every task
    /// spawned before the call has ended.
    ///
    /// # Panics
    ///
    /// As [`join`](Pool::join), when it returns `true`.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.wait_for_tasks(Some(timeout))
    }

    /// How many tasks could start right now without waiting (`usize::MAX` for a [`Group`]).
    pub fn free_count(&self) -> usize {
        match self.inner.size {
            None => usize::MAX,
            Some(size) => size.saturating_sub(self.inner.lock().running.len()),
        }
    }

    /// Waits until at least one slot is free; returns at once for a [`Group`].
    ///
    /// It takes no slot, so another caller may take the free one before this caller spawns.
    pub fn wait_available(&self) {
        let (state, waited) = self.inner.until_free(self.inner.lock());
        drop(state);
        if waited {
            // The wake-up that ended the wait was meant for a caller that takes the slot.
            self.inner.slot_freed.notify_one();
        }
    }

    /// Asks every running task to stop, and returns without waiting for them.
    ///
    /// Each task unwinds from its next greennet blocking call (see
    /// [`thread::JoinHandle::kill`]); its `join` then returns `Err` with a [`thread::Killed`]
    /// payload. Follow with [`join`](Pool::join) to wait until they are gone. Tasks started
    /// after the call are not affected, and called from one of this pool's own tasks, `kill`
    /// spares that task.
    pub fn kill(&self) {
        let me = current_task(&self.inner);
        let tasks: Vec<Arc<dyn Kill>> = self
            .inner
            .lock()
            .running
            .iter()
            .filter(|(&id, _)| Some(id) != me)
            .map(|(_, task)| Arc::clone(task))
            .collect();
        for task in tasks {
            task.kill();
        }
    }

    fn wait_for_slot(&self, task: Arc<dyn Kill>) -> Slot {
        let (state, _) = self.inner.until_free(self.inner.lock());
        self.occupy(state, task)
    }

    fn try_slot(&self, task: Arc<dyn Kill>) -> Option<Slot> {
        let state = self.inner.lock();
        let full = self
            .inner
            .size
            .is_some_and(|size| state.running.len() >= size);
        (!full).then(|| self.occupy(state, task))
    }

    /// Takes a slot (the caller checked there is one) and releases the lock before returning,
    /// since dropping the slot takes the lock again.
    fn occupy(&self, mut state: MutexGuard<'_, State>, task: Arc<dyn Kill>) -> Slot {
        let id = state.next_id;
        state.next_id += 1;
        state.running.insert(id, task);
        drop(state);
        Slot {
            pool: Arc::clone(&self.inner),
            id,
            ended: None,
        }
    }

    /// Starts `job` in a coroutine that owns `slot`.
    fn launch<R, J>(&self, slot: Slot, task: Arc<Task<R>>, job: J) -> (Handle<R>, Thread)
    where
        J: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let their_task = Arc::clone(&task);
        let pool = Arc::clone(&self.inner);
        let coroutine = thread::spawn(move || {
            // may drops a coroutine's local storage once the coroutine has ended, whichever way
            // it ended (a stack overflow included), so that is where the slot is released.
            SLOT.with(|current| *current.borrow_mut() = Some(slot));
            match catch_unwind(AssertUnwindSafe(job)) {
                Ok(value) => Some(value),
                Err(payload) => {
                    their_task.panicked(payload, &pool);
                    None
                }
            }
        });
        let thread = coroutine.thread().clone();
        task.started(coroutine);
        let handle = Handle {
            task,
            pool: Arc::clone(&self.inner),
        };
        (handle, thread)
    }

    fn wait_for_tasks(&self, timeout: Option<Duration>) -> bool {
        let me = current_task(&self.inner);
        let state = self.inner.lock();
        let until = state.next_id;
        let busy = |state: &mut State| state.running.range(..until).any(|(&id, _)| Some(id) != me);
        let ended = &self.inner.task_ended;
        let finished = match timeout {
            None => {
                drop(
                    ended
                        .wait_while(state, busy)
                        .unwrap_or_else(PoisonError::into_inner),
                );
                true
            }
            Some(timeout) => {
                let (state, result) = ended
                    .wait_timeout_while(state, timeout, busy)
                    .unwrap_or_else(PoisonError::into_inner);
                drop(state);
                !result.timed_out()
            }
        };
        if finished {
            let failure = self.inner.failure().take();
            if let Some(payload) = failure {
                resume_unwind(payload);
            }
        }
        finished
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.inner.size)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failure(&self) -> std::sync::MutexGuard<'_, Option<Payload>> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a slot is free; also says whether it had to wait, and so may have taken a
    /// wake-up meant for a slot.
    fn until_free<'a>(&'a self, mut state: MutexGuard<'a, State>) -> (MutexGuard<'a, State>, bool) {
        let Some(size) = self.size else {
            return (state, false);
        };
        let mut waited = false;
        let _pass_on = PassOnIfUnwinding(&self.slot_freed);
        while state.running.len() >= size {
            waited = true;
            state = self
                .slot_freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        (state, waited)
    }

    fn release(&self, id: u64, ended: Option<(mpsc::Sender<usize>, usize)>) {
        let mut state = self.lock();
        let task = state.running.remove(&id);
        if let Some((ended, index)) = ended {
            // Told under the lock, so that whoever sees the slot free also sees the task ended,
            // and the other way round. The waiting side may be gone: nothing to tell then.
            let _ = ended.send(index);
        }
        drop(state);
        // The last reference to the task may go here: drop it outside the lock.
        drop(task);
        if self.size.is_some() {
            self.slot_freed.notify_one();
        }
        self.task_ended.notify_all();
    }

    /// Keeps `payload` for [`Pool::join`] unless it is a kill or one is kept already.
    fn keep_failure(&self, payload: Payload) {
        if payload.is::<thread::Killed>() {
            return;
        }
        let mut failure = self.failure();
        if failure.is_none() {
            *failure = Some(payload);
        }
    }
}

/// Hands a slot wake-up on to the next waiter if the waiting caller unwinds (it was killed), in
/// case the wake-up had already reached it.
struct PassOnIfUnwinding<'a>(&'a Condvar);

impl Drop for PassOnIfUnwinding<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.notify_one();
        }
    }
}

/// A taken slot, owned by its task's coroutine; dropping it releases the slot and then tells the
/// waiting side (a [`JoinHandle`] or a [`Batch`]) that the task has ended.
struct Slot {
    pool: Arc<Inner>,
    id: u64,
    ended: Option<(mpsc::Sender<usize>, usize)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pool.release(self.id, self.ended.take());
    }
}

may::coroutine_local!(static SLOT: RefCell<Option<Slot>> = RefCell::new(None));

/// The number of the calling task, if it is one of `pool`'s tasks.
fn current_task(pool: &Arc<Inner>) -> Option<u64> {
    SLOT.with(|slot| {
        slot.borrow()
            .as_ref()
            .filter(|slot| Arc::ptr_eq(&slot.pool, pool))
            .map(|slot| slot.id)
    })
}

/// What the pool can do to a running task without knowing its result type.
trait Kill: Send + Sync {
    fn kill(&self);
}

/// One task, shared by its coroutine, the pool (while it runs) and whoever waits for it. Its
/// lock is std's: it is held only to move values in and out, never across a wait.
struct Task<R> {
    state: std::sync::Mutex<TaskState<R>>,
}

struct TaskState<R> {
    /// Set as soon as the coroutine is spawned; taken to join it once the task has ended.
    coroutine: Option<thread::JoinHandle<Option<R>>>,
    /// The task's panic, until its waiter takes it.
    panic: Option<Payload>,
    /// Nobody will wait for the task any more.
    detached: bool,
    /// A kill asked for before the coroutine was set.
    kill: bool,
}

impl<R> Task<R> {
    fn new() -> Arc<Task<R>> {
        Arc::new(Task {
            state: std::sync::Mutex::new(TaskState {
                coroutine: None,
                panic: None,
                detached: false,
                kill: false,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TaskState<R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn started(&self, coroutine: thread::JoinHandle<Option<R>>) {
        let mut state = self.lock();
        if state.kill {
            coroutine.kill();
        }
        state.coroutine = Some(coroutine);
    }

    /// Called in the task's coroutine: the payload goes to the waiter, or if there is none, to
    /// the pool.
    fn panicked(&self, payload: Payload, pool: &Inner) {
        let mut state = self.lock();
        if state.detached {
            drop(state);
            pool.keep_failure(payload);
        } else {
            state.panic = Some(payload);
        }
    }

    fn kill(&self) {
        let mut state = self.lock();
        state.kill = true;
        if let Some(coroutine) = &state.coroutine {
            coroutine.kill();
        }
    }

    fn detach(&self, pool: &Inner) {
        let mut state = self.lock();
        state.detached = true;
        let payload = state.panic.take();
        drop(state);
        if let Some(payload) = payload {
            pool.keep_failure(payload);
        }
    }
}

impl<R: Send> Kill for Task<R> {
    fn kill(&self) {
        Task::kill(self);
    }
}

/// The waiting side's hold on a task; dropping it detaches the task.
struct Handle<R> {
    task: Arc<Task<R>>,
    pool: Arc<Inner>,
}

impl<R> Handle<R> {
    /// The task's value or panic; call it once the task has ended.
    fn take_result(&self) -> thread::Result<R> {
        let coroutine = self.task.lock().coroutine.take();
        let Some(coroutine) = coroutine else {
            return Err(Box::new(
                "greennet::pool: the task's result was taken already",
            ));
        };
        match coroutine.join() {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(self
                .task
                .lock()
                .panic
                .take()
                .unwrap_or_else(|| Box::new("greennet::pool: the task panicked"))),
            // Not caught by the task itself: a stack overflow, or a kill after its closure ended.
            Err(payload) => Err(payload),
        }
    }
}

impl<R> Drop for Handle<R> {
    fn drop(&mut self) {
        self.task.detach(&self.pool);
    }
}

/// An owned permission to wait for a task of a [`Pool`] and take its result.
///
/// Dropping it detaches the task, which keeps running and keeps its slot until it ends; a panic
/// of a detached task is resumed by [`Pool::join`].
pub struct JoinHandle<R> {
    handle: Handle<R>,
    /// Told when the task has ended and released its slot.
    ended: mpsc::Receiver<usize>,
    /// `ended` has told.
    finished: std::cell::Cell<bool>,
    thread: Thread,
}

impl<R> JoinHandle<R> {
    /// Waits for the task to end and returns its value, or the payload of its panic.
    ///
    /// When it returns, the task's slot is free again. A killed task's payload is a
    /// [`thread::Killed`].
    pub fn join(self) -> thread::Result<R> {
        if !self.finished.get() {
            // `Err` means the task's side is gone, which also means it has ended.
            let _ = self.ended.recv();
        }
        self.handle.take_result()
    }

    /// Like [`join`](JoinHandle::join), but gives up after about `timeout`: `Err` gives the
    /// handle back, still joinable, if the task is still running then.
    pub fn join_timeout(self, timeout: Duration) -> Result<thread::Result<R>, JoinHandle<R>> {
        if !self.finished.get() {
            if let Err(mpsc::RecvTimeoutError::Timeout) = self.ended.recv_timeout(timeout) {
                return Err(self);
            }
        }
        Ok(self.handle.take_result())
    }

    /// Whether the task has ended and released its slot.
    pub fn is_finished(&self) -> bool {
        if !self.finished.get() {
            // `Disconnected` also means the task's side is gone.
            let told = !matches!(self.ended.try_recv(), Err(mpsc::TryRecvError::Empty));
            self.finished.set(told);
        }
        self.finished.get()
    }

    /// The handle of the task's coroutine.
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Asks the task to stop: it unwinds from its next greennet blocking call, as
    /// [`thread::JoinHandle::kill`] describes, and [`join`](JoinHandle::join) then returns `Err`
    /// with a [`thread::Killed`] payload. A task that has ended is not affected.
    pub fn kill(&self) {
        self.handle.task.kill();
    }
}

impl<R> fmt::Debug for JoinHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

/// An unbounded [`Pool`]: a set of tasks to join or kill together, gevent's `Group`.
///
/// It dereferences to a `Pool` with no size limit, so every `Pool` method applies, and a
/// function that takes `&Pool` accepts `&Group`. [`spawn`](Pool::spawn) never waits and
/// [`free_count`](Pool::free_count) is `usize::MAX`.
///
/// ```
/// use greennet::pool::Group;
/// use greennet::thread;
/// use std::time::Duration;
///
/// greennet::run(|| {
///     let group = Group::new();
///     for _ in 0..1000 {
///         group.spawn(|| thread::sleep(Duration::from_millis(20)));
///     }
///     // All thousand sleep at once.
///     assert!(group.join_timeout(Duration::from_secs(10)));
/// });
/// ```
#[derive(Clone, Debug)]
pub struct Group(Pool);

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group(Pool::with_size(None))
    }
}

impl Default for Group {
    fn default() -> Group {
        Group::new()
    }
}

impl Deref for Group {
    type Target = Pool;

    fn deref(&self) -> &Pool {
        &self.0
    }
}

/// The engine of `map`, `imap` and `imap_unordered`: starts an item's call whenever a slot is
/// free, and hands back each call's result as it ends.
struct Batch<'a, R> {
    pool: Pool,
    jobs: Box<dyn Iterator<Item = Job<R>> + 'a>,
    /// A job taken from `jobs` that found no free slot yet.
    waiting: Option<Job<R>>,
    /// No further job starts: the input is exhausted, or a call panicked.
    stopped: bool,
    started: usize,
    /// The running calls, by item index.
    running: HashMap<usize, Handle<R>>,
    ended_tx: mpsc::Sender<usize>,
    ended_rx: mpsc::Receiver<usize>,
}

impl<'a, R: Send + 'static> Batch<'a, R> {
    fn new<I, T, F>(pool: &Pool, items: I, f: F) -> Batch<'a, R>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: Send + 'static,
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let jobs = items.into_iter().map(move |item| {
            let f = Arc::clone(&f);
            Box::new(move || f(item)) as Job<R>
        });
        let (ended_tx, ended_rx) = mpsc::channel();
        Batch {
            pool: pool.clone(),
            jobs: Box::new(jobs),
            waiting: None,
            stopped: false,
            started: 0,
            running: HashMap::new(),
            ended_tx,
            ended_rx,
        }
    }

    /// Starts calls while slots are free. With none of its own calls running it waits for a
    /// slot, since no end of its own would wake it; otherwise it takes only free ones, and
    /// refills when one of its calls ends.
    fn start_more(&mut self) {
        while !self.stopped {
            let Some(job) = self.waiting.take().or_else(|| self.jobs.next()) else {
                self.stopped = true;
                return;
            };
            let task = Task::new();
            let slot = if self.running.is_empty() {
                Some(self.pool.wait_for_slot(task.clone()))
            } else {
                self.pool.try_slot(task.clone())
            };
            let Some(mut slot) = slot else {
                self.waiting = Some(job);
                return;
            };
            let index = self.started;
            self.started += 1;
            slot.ended = Some((self.ended_tx.clone(), index));
            let (handle, _) = self.pool.launch(slot, task, job);
            self.running.insert(index, handle);
        }
    }

    /// Starts what it can, then waits for one of its calls to end and returns the item's index
    /// and the call's result; `None` once nothing runs and nothing is left to start.
    fn next_ended(&mut self) -> Option<(usize, thread::Result<R>)> {
        self.start_more();
        while !self.running.is_empty() {
            let index = self.ended_rx.recv().ok()?;
            if let Some(handle) = self.running.remove(&index) {
                let result = handle.take_result();
                if result.is_err() {
                    self.stopped = true;
                }
                return Some((index, result));
            }
        }
        None
    }

    /// Starts nothing more and waits for the running calls, dropping their results.
    fn finish(&mut self) {
        self.stopped = true;
        self.waiting = None;
        while self.next_ended().is_some() {}
    }
}

/// The iterator [`Pool::imap`] returns: results in the order of the items.
pub struct Imap<'a, R> {
    batch: Batch<'a, R>,
    /// Results that finished ahead of their turn, by item index.
    ready: BTreeMap<usize, thread::Result<R>>,
    next: usize,
}

impl<R: Send + 'static> Iterator for Imap<'_, R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        loop {
            if let Some(result) = self.ready.remove(&self.next) {
                self.next += 1;
                match result {
                    Ok(value) => return Some(value),
                    Err(payload) => {
                        self.batch.finish();
                        self.ready.clear();
                        resume_unwind(payload);
                    }
                }
            }
            let (index, result) = self.batch.next_ended()?;
            self.ready.insert(index, result);
        }
    }
}

impl<R: Send + 'static> FusedIterator for Imap<'_, R> {}

impl<R> fmt::Debug for Imap<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("pool", &self.batch.pool)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// The iterator [`Pool::imap_unordered`] returns: results in the order the calls finish.
pub struct ImapUnordered<'a, R> {
    batch: Batch<'a, R>,
}

impl<R: Send + 'static> Iterator for ImapUnordered<'_, R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        let (_, result) = self.batch.next_ended()?;
        match result {
            Ok(value) => Some(value),
            Err(payload) => {
                self.batch.finish();
                resume_unwind(payload);
            }
        }
    }
}

impl<R: Send + 'static> FusedIterator for ImapUnordered<'_, R> {}

impl<R> fmt::Debug for ImapUnordered<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("pool", &self.batch.pool)
            .finish_non_exhaustive()
    }
}
