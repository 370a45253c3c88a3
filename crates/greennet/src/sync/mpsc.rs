//! std's multi-producer, single-consumer channels, where waiting parks the coroutine.
//!
//! The queue is std's own channel; greennet adds the waiting: a receiver with nothing to take,
//! or a [`SyncSender`] facing a full buffer, parks instead of blocking its worker. The error
//! types are std's, re-exported.
//!
//! ```
//! use greennet::sync::mpsc;
//! use greennet::thread;
//!
//! let (tx, rx) = mpsc::channel();
//! for id in 0..3 {
//!     let tx = tx.clone();
//!     thread::spawn(move || tx.send(id).unwrap());
//! }
//! drop(tx);
//! let mut got: Vec<i32> = rx.iter().collect();
//! got.sort();
//! assert_eq!(got, [0, 1, 2]);
//! ```

use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

use crate::waiters::Waiters;

/// What the two ends share besides std's queue.
struct Shared {
    /// The receiver waits here for a message or a disconnect.
    receiver: Waiters,
    /// Senders of a bounded channel wait here for room (or, for a rendezvous, for their message
    /// to be taken).
    senders: Waiters,
    /// Live sender handles; the last one to go wakes the receiver.
    sender_count: AtomicUsize,
    /// Cleared when the receiver is dropped.
    receiver_alive: AtomicBool,
    /// Messages handed over so far by a rendezvous channel's senders, and taken by its receiver.
    sent: AtomicU64,
    taken: AtomicU64,
    /// `Some(0)` for a rendezvous channel, `Some(n)` bounded, `None` unbounded.
    bound: Option<usize>,
}

impl Shared {
    fn new(bound: Option<usize>) -> Arc<Shared> {
        Arc::new(Shared {
            receiver: Waiters::new(),
            senders: Waiters::new(),
            sender_count: AtomicUsize::new(1),
            receiver_alive: AtomicBool::new(true),
            sent: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            bound,
        })
    }

    fn sender_dropped(&self) {
        if self.sender_count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.receiver.wake_all();
        }
    }
}

/// The sending half of [`channel`]; sending never waits.
pub struct Sender<T> {
    // Dropped by hand before the wake-up, so a woken receiver sees std's disconnect.
    inner: ManuallyDrop<std::sync::mpsc::Sender<T>>,
    shared: Arc<Shared>,
}

/// The sending half of [`sync_channel`]; sending waits while the buffer is full.
pub struct SyncSender<T> {
    inner: ManuallyDrop<std::sync::mpsc::SyncSender<T>>,
    shared: Arc<Shared>,
}

/// The receiving half of a channel.
pub struct Receiver<T> {
    inner: ManuallyDrop<std::sync::mpsc::Receiver<T>>,
    shared: Arc<Shared>,
}

/// An unbounded channel: [`Sender::send`] never waits; [`Receiver::recv`] parks until a message
/// arrives or every sender is gone.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let shared = Shared::new(None);
    (
        Sender {
            inner: ManuallyDrop::new(tx),
            shared: shared.clone(),
        },
        Receiver {
            inner: ManuallyDrop::new(rx),
            shared,
        },
    )
}

/// A channel with room for `bound` messages; [`SyncSender::send`] parks while it is full. With
/// `bound == 0` it is a rendezvous: each `send` returns once the receiver has taken the message.
/// (One difference from std: a rendezvous `send` whose receiver is dropped before taking the
/// message returns `Ok` rather than giving the message back.)
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    // A rendezvous is a one-slot buffer whose sender also waits for the slot to be emptied: std's
    // zero-capacity channel only hands over to a receiver blocked inside std, which ours never is.
    let (tx, rx) = std::sync::mpsc::sync_channel(bound.max(1));
    let shared = Shared::new(Some(bound));
    (
        SyncSender {
            inner: ManuallyDrop::new(tx),
            shared: shared.clone(),
        },
        Receiver {
            inner: ManuallyDrop::new(rx),
            shared,
        },
    )
}

impl<T> Sender<T> {
    /// Queues `t` for the receiver; fails, giving `t` back, only if the receiver is gone.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.inner.send(t)?;
        self.shared.receiver.wake_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.shared.sender_count.fetch_add(1, Ordering::SeqCst);
        Sender {
            inner: ManuallyDrop::new((*self.inner).clone()),
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // SAFETY: `inner` is dropped exactly once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
        self.shared.sender_dropped();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> SyncSender<T> {
    /// Queues `t`, parking while the buffer is full (for a rendezvous channel, until the
    /// receiver has taken it). Fails, giving `t` back, if the receiver is gone.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        let mut pending = Some(t);
        let queued = self.shared.senders.wait_for(None, || {
            match self
                .inner
                .try_send(pending.take().expect("message still pending"))
            {
                Ok(()) => Some(Ok(())),
                Err(TrySendError::Full(t)) => {
                    pending = Some(t);
                    None
                }
                Err(TrySendError::Disconnected(t)) => Some(Err(SendError(t))),
            }
        });
        queued.expect("a wait without a deadline only ends when ready")?;
        self.queued();
        Ok(())
    }

    /// Queues `t` if there is room right now. A rendezvous channel has room when its slot is
    /// empty; the receiver takes the message later.
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        self.inner.try_send(t)?;
        if self.shared.bound == Some(0) {
            self.shared.sent.fetch_add(1, Ordering::SeqCst);
        }
        self.shared.receiver.wake_one();
        Ok(())
    }

    fn queued(&self) {
        let shared = &self.shared;
        if shared.bound != Some(0) {
            shared.receiver.wake_one();
            return;
        }
        // Rendezvous: wait until the receiver has taken this message (or is gone).
        let ticket = shared.sent.fetch_add(1, Ordering::SeqCst) + 1;
        shared.receiver.wake_one();
        shared.senders.wait_for(None, || {
            (shared.taken.load(Ordering::SeqCst) >= ticket
                || !shared.receiver_alive.load(Ordering::SeqCst))
            .then_some(())
        });
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> SyncSender<T> {
        self.shared.sender_count.fetch_add(1, Ordering::SeqCst);
        SyncSender {
            inner: ManuallyDrop::new((*self.inner).clone()),
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for SyncSender<T> {
    fn drop(&mut self) {
        // SAFETY: `inner` is dropped exactly once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
        self.shared.sender_dropped();
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// Takes a message if one is queued right now.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let t = self.inner.try_recv()?;
        self.took();
        Ok(t)
    }

    /// Parks until a message arrives, or fails once every sender is gone and the queue is empty.
    pub fn recv(&self) -> Result<T, RecvError> {
        match self.recv_until(None) {
            Ok(t) => Ok(t),
            Err(_) => Err(RecvError),
        }
    }

    /// Like [`recv`](Receiver::recv), giving up after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_until(Some(deadline)),
            None => self.recv_until(None),
        }
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let outcome = self
            .shared
            .receiver
            .wait_for(deadline, || match self.inner.try_recv() {
                Ok(t) => Some(Ok(t)),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => Some(Err(RecvTimeoutError::Disconnected)),
            });
        match outcome {
            Some(Ok(t)) => {
                self.took();
                Ok(t)
            }
            Some(Err(e)) => Err(e),
            None => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Room has opened (or a rendezvous message was taken): let senders retry.
    fn took(&self) {
        match self.shared.bound {
            None => {}
            Some(0) => {
                self.shared.taken.fetch_add(1, Ordering::SeqCst);
                self.shared.senders.wake_all();
            }
            Some(_) => {
                self.shared.senders.wake_one();
            }
        }
    }

    /// An iterator that parks for each message and ends when every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages queued right now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // SAFETY: `inner` is dropped exactly once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
        // Senders parked on a full buffer or a rendezvous must learn that nobody will take it;
        // std's queue already reports the disconnect when they retry.
        self.shared.receiver_alive.store(false, Ordering::SeqCst);
        self.shared.senders.wake_all();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// Iterator of [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T: 'a> {
    rx: &'a Receiver<T>,
}

/// Iterator of [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T: 'a> {
    rx: &'a Receiver<T>,
}

/// Owning iterator of a [`Receiver`].
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
