//! Queues for handing work between coroutines, gevent's `gevent.queue`: [`Queue`] (first in,
//! first out), [`LifoQueue`] (last in, first out), [`PriorityQueue`] (smallest first) and the
//! rendezvous [`Channel`].
//!
//! A queue is shared by reference (`&self` methods; wrap it in an [`Arc`](crate::sync::Arc)), and
//! any number of coroutines and plain threads may put and get. Getting from an empty queue, or
//! putting into a full bounded one, parks the caller. Like Python's `queue.Queue`, every queue
//! counts unfinished tasks: [`task_done`](Queue::task_done) marks one done and
//! [`join`](Queue::join) waits for all of them.
//!
//! ```
//! use greennet::queue::Queue;
//! use greennet::sync::atomic::{AtomicU64, Ordering};
//! use greennet::sync::Arc;
//! use greennet::thread;
//! use std::num::NonZeroUsize;
//!
//! greennet::run(|| {
//!     let jobs = Arc::new(Queue::bounded(NonZeroUsize::new(10).unwrap()));
//!     let total = Arc::new(AtomicU64::new(0));
//!     for _ in 0..3 {
//!         let (jobs, total) = (jobs.clone(), total.clone());
//!         thread::spawn(move || loop {
//!             let n = jobs.get();
//!             total.fetch_add(n, Ordering::Relaxed); // the work
//!             jobs.task_done().unwrap();
//!         });
//!     }
//!     for n in 1..=100 {
//!         jobs.put(n); // parks while ten jobs are waiting
//!     }
//!     jobs.join(); // every job has been handled
//!     assert_eq!(total.load(Ordering::Relaxed), 5050);
//! });
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::error::Error;
use std::fmt;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use crate::lock::{deadline_after, relock, wait_once};
use crate::sync::{Condvar, Mutex};

/// The container behind a queue; it alone decides the order items come out in.
trait Store: Default {
    type Item;
    fn push(&mut self, item: Self::Item);
    fn pop(&mut self) -> Option<Self::Item>;
    fn len(&self) -> usize;
}

impl<T> Store for VecDeque<T> {
    type Item = T;
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
}

impl<T> Store for Vec<T> {
    type Item = T;
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// `BinaryHeap` is a max-heap; `Reverse` makes it yield the smallest item, as Python's `heapq`.
impl<T: Ord> Store for BinaryHeap<Reverse<T>> {
    type Item = T;
    fn push(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        BinaryHeap::pop(self).map(|Reverse(item)| item)
    }
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
}

/// The one implementation of all three queues.
struct Inner<S> {
    state: Mutex<State<S>>,
    capacity: Option<NonZeroUsize>,
    /// Getters wait here; each put wakes one.
    not_empty: Condvar,
    /// Putters to a full bounded queue wait here; each get wakes one.
    not_full: Condvar,
    /// Callers of `join` wait here for the unfinished count to reach zero.
    all_done: Condvar,
}

struct State<S> {
    items: S,
    /// Items put and not yet marked done by `task_done`.
    unfinished: usize,
}

impl<S: Store> Inner<S> {
    fn new(capacity: Option<NonZeroUsize>) -> Inner<S> {
        Inner {
            state: Mutex::new(State {
                items: S::default(),
                unfinished: 0,
            }),
            capacity,
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
        }
    }

    fn full(&self, state: &State<S>) -> bool {
        self.capacity
            .is_some_and(|capacity| state.items.len() >= capacity.get())
    }

    fn put_until(&self, item: S::Item, deadline: Option<Instant>) -> Result<(), Full<S::Item>> {
        let mut state = relock(&self.state);
        let mut expired = false;
        while self.full(&state) {
            if expired {
                return Err(Full(item));
            }
            (state, expired) = wait_once(&self.not_full, state, deadline);
        }
        state.items.push(item);
        state.unfinished = state.unfinished.saturating_add(1);
        drop(state);
        self.not_empty.notify_one();
        Ok(())
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<S::Item, Empty> {
        let mut state = relock(&self.state);
        let mut expired = false;
        loop {
            if let Some(item) = state.items.pop() {
                drop(state);
                if self.capacity.is_some() {
                    self.not_full.notify_one();
                }
                return Ok(item);
            }
            if expired {
                return Err(Empty(()));
            }
            (state, expired) = wait_once(&self.not_empty, state, deadline);
        }
    }

    fn len(&self) -> usize {
        relock(&self.state).items.len()
    }

    fn is_full(&self) -> bool {
        self.full(&relock(&self.state))
    }

    fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut state = relock(&self.state);
        if state.unfinished == 0 {
            return Err(TaskDoneError(()));
        }
        state.unfinished -= 1;
        let all_done = state.unfinished == 0;
        drop(state);
        if all_done {
            self.all_done.notify_all();
        }
        Ok(())
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        let mut state = relock(&self.state);
        let mut expired = false;
        while state.unfinished > 0 {
            if expired {
                return false;
            }
            (state, expired) = wait_once(&self.all_done, state, deadline);
        }
        true
    }
}

impl<S: Store> Inner<S> {
    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = relock(&self.state);
        f.debug_struct(name)
            .field("len", &state.items.len())
            .field("capacity", &self.capacity)
            .field("unfinished", &state.unfinished)
            .finish_non_exhaustive()
    }
}

/// The public methods of [`Queue`], [`LifoQueue`] and [`PriorityQueue`], which differ only in
/// their store.
macro_rules! queue_api {
    ($name:ident<$t:ident $(: $bound:path)?>, $order:literal) => {
        impl<$t $(: $bound)?> $name<$t> {
            /// An unbounded queue: [`put`](Self::put) never waits.
            pub fn new() -> Self {
                $name { inner: Inner::new(None) }
            }

            /// A queue holding at most `capacity` items: [`put`](Self::put) waits while it is
            /// full. (For a queue that holds nothing and hands each item straight to a getter,
            /// use [`Channel`].)
            pub fn bounded(capacity: NonZeroUsize) -> Self {
                $name { inner: Inner::new(Some(capacity)) }
            }

            /// Adds `item`, parking while the queue is full.
            pub fn put(&self, item: $t) {
                let mut item = item;
                // Without a deadline, the wait only ends with room.
                while let Err(Full(refused)) = self.inner.put_until(item, None) {
                    item = refused;
                }
            }

            /// Adds `item`, parking for at most about `timeout` while the queue is full; if
            /// there is still no room, the item comes back in [`Full`].
            pub fn put_timeout(&self, item: $t, timeout: Duration) -> Result<(), Full<$t>> {
                self.inner.put_until(item, deadline_after(timeout))
            }

            /// Adds `item` if there is room right now; otherwise it comes back in [`Full`].
            pub fn try_put(&self, item: $t) -> Result<(), Full<$t>> {
                self.inner.put_until(item, Some(Instant::now()))
            }

            #[doc = concat!(
                "Removes and returns the ", $order, " item, parking while the queue is empty."
            )]
            pub fn get(&self) -> $t {
                // Without a deadline, the wait only ends with an item.
                loop {
                    if let Ok(item) = self.inner.get_until(None) {
                        return item;
                    }
                }
            }

            #[doc = concat!(
                "Removes and returns the ", $order, " item, parking for at most about `timeout` ",
                "while the queue is empty."
            )]
            pub fn get_timeout(&self, timeout: Duration) -> Result<$t, Empty> {
                self.inner.get_until(deadline_after(timeout))
            }

            #[doc = concat!("Removes and returns the ", $order, " item if there is one right now.")]
            pub fn try_get(&self) -> Result<$t, Empty> {
                self.inner.get_until(Some(Instant::now()))
            }

            /// How many items the queue holds.
            pub fn len(&self) -> usize {
                self.inner.len()
            }

            /// Whether the queue holds no items.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether a bounded queue holds as many items as it may (never, for an unbounded
            /// one).
            pub fn is_full(&self) -> bool {
                self.inner.is_full()
            }

            /// The most items the queue may hold; `None` if it is unbounded.
            pub fn capacity(&self) -> Option<usize> {
                self.inner.capacity.map(NonZeroUsize::get)
            }

            /// Marks one item taken from the queue as fully handled. Each put adds one
            /// unfinished task; when `task_done` has been called once for each, callers of
            /// [`join`](Self::join) return. Calling it more often than items were put is
            /// refused with [`TaskDoneError`].
            pub fn task_done(&self) -> Result<(), TaskDoneError> {
                self.inner.task_done()
            }

            /// Parks until every item ever put has been marked done with
            /// [`task_done`](Self::task_done).
            pub fn join(&self) {
                while !self.inner.join_until(None) {}
            }

            /// Like [`join`](Self::join), giving up after about `timeout`; `true` if every
            /// item was marked done.
            pub fn join_timeout(&self, timeout: Duration) -> bool {
                self.inner.join_until(deadline_after(timeout))
            }
        }

        impl<$t $(: $bound)?> Default for $name<$t> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<$t $(: $bound)?> fmt::Debug for $name<$t> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.inner.debug(stringify!($name), f)
            }
        }
    };
}

/// A first-in, first-out queue, gevent's `Queue`: [`get`](Queue::get) returns the oldest item.
///
/// ```
/// use greennet::queue::Queue;
/// use greennet::sync::Arc;
/// use greennet::thread;
///
/// greennet::run(|| {
///     let q = Arc::new(Queue::new());
///     let producer = {
///         let q = q.clone();
///         thread::spawn(move || (1..=3).for_each(|n| q.put(n)))
///     };
///     let got: Vec<i32> = (0..3).map(|_| q.get()).collect();
///     assert_eq!(got, [1, 2, 3]);
///     producer.join().unwrap();
/// });
/// ```
pub struct Queue<T> {
    inner: Inner<VecDeque<T>>,
}

queue_api!(Queue<T>, "oldest");

/// A last-in, first-out queue (a stack), gevent's `LifoQueue`: [`get`](LifoQueue::get) returns
/// the newest item.
///
/// ```
/// use greennet::queue::LifoQueue;
///
/// let q = LifoQueue::new();
/// (1..=3).for_each(|n| q.put(n));
/// let got: Vec<i32> = (0..3).map(|_| q.get()).collect();
/// assert_eq!(got, [3, 2, 1]);
/// ```
pub struct LifoQueue<T> {
    inner: Inner<Vec<T>>,
}

queue_api!(LifoQueue<T>, "newest");

/// A queue that returns its smallest item first, by `Ord`, gevent's `PriorityQueue` (which, like
/// Python's, keeps a `heapq` min-heap). Wrap items in [`std::cmp::Reverse`] to get the largest
/// first. Equal items come out in no particular order.
///
/// ```
/// use greennet::queue::PriorityQueue;
///
/// greennet::run(|| {
///     let q = PriorityQueue::new();
///     for job in [(2, "later"), (1, "urgent"), (3, "whenever")] {
///         q.put(job);
///     }
///     assert_eq!(q.get(), (1, "urgent"));
///     assert_eq!(q.get(), (2, "later"));
/// });
/// ```
pub struct PriorityQueue<T> {
    inner: Inner<BinaryHeap<Reverse<T>>>,
}

queue_api!(PriorityQueue<T: Ord>, "smallest");

/// A rendezvous channel, gevent's `Channel`: it holds no items, [`put`](Channel::put) returns
/// only once a getter has taken the item, and [`get`](Channel::get) waits for a putter.
///
/// A [`put_timeout`](Channel::put_timeout) that runs out of time takes its item back, so no
/// getter receives it later; if a getter took it at the last moment, the put reports success.
/// There is no `try_put`: a hand-over needs the getter to run, so it cannot finish without
/// waiting.
///
/// ```
/// use greennet::queue::Channel;
/// use greennet::sync::Arc;
/// use greennet::thread;
///
/// greennet::run(|| {
///     let ch = Arc::new(Channel::new());
///     let consumer = {
///         let ch = ch.clone();
///         thread::spawn(move || ch.get())
///     };
///     ch.put("hello"); // returns once the consumer has it
///     assert_eq!(consumer.join().unwrap(), "hello");
/// });
/// ```
pub struct Channel<T> {
    state: Mutex<Offer<T>>,
    /// Getters wait here for an item on offer; each offer wakes one.
    offered: Condvar,
    /// Putters wait here for the offer slot to be free; each take or withdrawal wakes one.
    slot_free: Condvar,
    /// Putters whose item is on offer wait here for a getter to take it.
    taken: Condvar,
}

/// The one item on offer at a time, labelled with a ticket so its putter can tell whether it
/// is still there.
struct Offer<T> {
    slot: Option<(u64, T)>,
    last_ticket: u64,
}

impl<T> Offer<T> {
    /// Whether the item with `ticket` is still on offer.
    fn offers(&self, ticket: u64) -> bool {
        matches!(self.slot, Some((offered, _)) if offered == ticket)
    }

    /// Takes the item with `ticket` off offer, if it is still there.
    fn withdraw(&mut self, ticket: u64) -> Option<T> {
        self.slot
            .take_if(|(offered, _)| *offered == ticket)
            .map(|(_, item)| item)
    }
}

impl<T> Channel<T> {
    /// A new channel with no one waiting.
    pub const fn new() -> Channel<T> {
        Channel {
            state: Mutex::new(Offer {
                slot: None,
                last_ticket: 0,
            }),
            offered: Condvar::new(),
            slot_free: Condvar::new(),
            taken: Condvar::new(),
        }
    }

    /// Hands `item` to a getter, parking until one has taken it.
    pub fn put(&self, item: T) {
        let mut item = item;
        // Without a deadline, the wait only ends with the item taken.
        while let Err(Full(refused)) = self.put_until(item, None) {
            item = refused;
        }
    }

    /// Like [`put`](Channel::put), giving up after about `timeout`; if no getter took the item
    /// by then, it comes back in [`Full`] and no getter will receive it.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), Full<T>> {
        self.put_until(item, deadline_after(timeout))
    }

    /// Takes an item from a putter, parking until one offers it.
    pub fn get(&self) -> T {
        // Without a deadline, the wait only ends with an item.
        loop {
            if let Ok(item) = self.get_until(None) {
                return item;
            }
        }
    }

    /// Like [`get`](Channel::get), giving up after about `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, Empty> {
        self.get_until(deadline_after(timeout))
    }

    /// Takes an item if a putter is offering one right now.
    pub fn try_get(&self) -> Result<T, Empty> {
        self.get_until(Some(Instant::now()))
    }

    fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), Full<T>> {
        let mut state = relock(&self.state);
        let mut expired = false;
        while state.slot.is_some() {
            if expired {
                return Err(Full(item));
            }
            (state, expired) = wait_once(&self.slot_free, state, deadline);
        }
        state.last_ticket = state.last_ticket.wrapping_add(1);
        let ticket = state.last_ticket;
        state.slot = Some((ticket, item));
        drop(state);
        self.offered.notify_one();

        let _withdraw = WithdrawOnUnwind {
            channel: self,
            ticket,
        };
        let mut state = relock(&self.state);
        loop {
            if expired {
                // Take the item back, unless a getter took it at the last moment.
                return match state.withdraw(ticket) {
                    Some(item) => {
                        drop(state);
                        self.slot_free.notify_one();
                        Err(Full(item))
                    }
                    None => Ok(()),
                };
            }
            if !state.offers(ticket) {
                return Ok(());
            }
            (state, expired) = wait_once(&self.taken, state, deadline);
        }
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, Empty> {
        let mut state = relock(&self.state);
        let mut expired = false;
        loop {
            if let Some((_, item)) = state.slot.take() {
                drop(state);
                self.taken.notify_all();
                self.slot_free.notify_one();
                return Ok(item);
            }
            if expired {
                return Err(Empty(()));
            }
            (state, expired) = wait_once(&self.offered, state, deadline);
        }
    }
}

/// If a putter's wait ends by unwinding (an interrupted coroutine), takes its item off offer so
/// no getter receives an item whose put failed.
struct WithdrawOnUnwind<'a, T> {
    channel: &'a Channel<T>,
    ticket: u64,
}

impl<T> Drop for WithdrawOnUnwind<'_, T> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut state = relock(&self.channel.state);
        if state.withdraw(self.ticket).is_some() {
            drop(state);
            self.channel.slot_free.notify_one();
        }
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Channel<T> {
        Channel::new()
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("offering", &relock(&self.state).slot.is_some())
            .finish_non_exhaustive()
    }
}

/// A put found no room in time (a full queue, or no getter for a [`Channel`]); the item is
/// handed back.
#[derive(Clone, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Full").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no room for the item: the queue is full")
    }
}

impl<T> Error for Full<T> {}

/// A get found no item in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Empty(());

impl fmt::Display for Empty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no item: the queue is empty")
    }
}

impl Error for Empty {}

/// [`task_done`](Queue::task_done) was called more times than items were put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDoneError(());

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done called more times than items were put")
    }
}

impl Error for TaskDoneError {}
