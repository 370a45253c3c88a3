//! The one wait queue behind every greennet sync primitive and the sockets' turn-taking.
//!
//! A waiter registers, re-checks its condition, and only then parks, so a wake between the check
//! and the park is never lost. It parks on a may `Blocker`, which parks a coroutine (its worker
//! runs others) or, on a plain thread, the thread. Deadlines come from the green core's alarm
//! thread rather than may's timed park.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::green::alarm;
use crate::interrupt;

pub(crate) struct Waiter {
    blocker: Arc<may::sync::Blocker>,
    woken: AtomicBool,
}

/// A FIFO of parked coroutines and threads.
pub(crate) struct Waiters {
    queue: Mutex<VecDeque<Arc<Waiter>>>,
    len: AtomicUsize,
}

impl Waiters {
    pub(crate) const fn new() -> Waiters {
        Waiters {
            queue: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Waiter>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins the queue. Check the condition again after this, then [`park`](Self::park) or
    /// [`cancel`](Self::cancel).
    pub(crate) fn register(&self) -> Arc<Waiter> {
        let waiter = Arc::new(Waiter {
            blocker: may::sync::Blocker::current(),
            woken: AtomicBool::new(false),
        });
        let mut queue = self.queue();
        queue.push_back(waiter.clone());
        self.len.fetch_add(1, Ordering::SeqCst);
        drop(queue);
        // Pairs with the fence in `wake_one` and `wake_all`: either the waker sees this waiter
        // counted, or the caller's re-check (after this returns) sees the waker's change.
        fence(Ordering::SeqCst);
        waiter
    }

    /// Leaves the queue without having been woken. If a wake reached this waiter anyway, it is
    /// passed on to the next one, so none is lost.
    pub(crate) fn cancel(&self, waiter: &Arc<Waiter>) {
        let mut queue = self.queue();
        if let Some(at) = queue.iter().position(|w| Arc::ptr_eq(w, waiter)) {
            queue.remove(at);
            self.len.fetch_sub(1, Ordering::SeqCst);
        } else {
            drop(queue);
            self.wake_one();
        }
    }

    /// Parks until woken (`true`) or until the deadline passes (`false`, and the waiter has left
    /// the queue; a wake that raced with the deadline counts as woken).
    ///
    /// A kill or an expired [`timeout`](crate::timeout()) ends the wait by unwinding (see
    /// `interrupt`), after the waiter has left the queue; a wake that already reached it is passed
    /// on, as by [`cancel`](Self::cancel).
    pub(crate) fn park(&self, waiter: &Arc<Waiter>, deadline: Option<Instant>) -> bool {
        let mut wait = interrupt::begin(deadline);
        let _alarm = wait
            .limit()
            .map(|d| alarm::set(d, alarm::Wake::Blocker(waiter.blocker.clone())));
        wait.arm(|| alarm::Wake::Blocker(waiter.blocker.clone()));
        loop {
            if waiter.woken.load(Ordering::Acquire) {
                return true;
            }
            if wait.pending() {
                self.cancel(waiter);
                wait.check();
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let mut queue = self.queue();
                return match queue.iter().position(|w| Arc::ptr_eq(w, waiter)) {
                    Some(at) => {
                        queue.remove(at);
                        self.len.fetch_sub(1, Ordering::SeqCst);
                        false
                    }
                    None => true,
                };
            }
            let _ = crate::monitor::switch(|| waiter.blocker.park(None));
        }
    }

    /// Wakes the longest waiter, if any; returns whether there was one.
    pub(crate) fn wake_one(&self) -> bool {
        // The caller has just made the condition true, perhaps with a plain release store; the
        // fence keeps that store from being passed by the load of `len` below (a store buffer
        // allows it), which would let a waiter that registered meanwhile miss both the change
        // and the wake. Pairs with the fence in `register`.
        fence(Ordering::SeqCst);
        if self.len.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let next = {
            let mut queue = self.queue();
            let next = queue.pop_front();
            if next.is_some() {
                self.len.fetch_sub(1, Ordering::SeqCst);
            }
            next
        };
        match next {
            Some(waiter) => {
                waiter.woken.store(true, Ordering::Release);
                waiter.blocker.unpark();
                true
            }
            None => false,
        }
    }

    /// Wakes every waiter.
    pub(crate) fn wake_all(&self) {
        // As in `wake_one`.
        fence(Ordering::SeqCst);
        if self.len.load(Ordering::SeqCst) == 0 {
            return;
        }
        let all: Vec<_> = {
            let mut queue = self.queue();
            self.len.store(0, Ordering::SeqCst);
            queue.drain(..).collect()
        };
        for waiter in all {
            waiter.woken.store(true, Ordering::Release);
            waiter.blocker.unpark();
        }
    }

    /// Waits until `ready` returns `Some`, or the deadline passes (`None`).
    pub(crate) fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        loop {
            if let Some(r) = ready() {
                return Some(r);
            }
            let waiter = self.register();
            if let Some(r) = ready() {
                self.cancel(&waiter);
                return Some(r);
            }
            if !self.park(&waiter, deadline) {
                return ready();
            }
        }
    }
}
