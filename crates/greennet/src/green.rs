//! The green core: the one place where a blocking call becomes a parked coroutine.
//!
//! Every socket of greennet keeps its file descriptor in non-blocking mode and wraps it in
//! [`Green`]. A blocking method hands its single syscall to [`Green::io`], which tries it and, on
//! `WouldBlock`, waits until the descriptor is ready and tries again:
//!
//! * inside a coroutine, on may's event loop (the worker thread runs other coroutines meanwhile);
//! * on a plain thread, in `ppoll(2)`, exactly as a blocking std call would block that thread.
//!
//! This module also owns std's timeout rules (an expired timeout is `WouldBlock`) and the
//! user's own non-blocking flag, which `try_clone`d handles share as they do in std.
//!
//! may keeps a single waiter slot per registered descriptor: a second coroutine waiting on the
//! same registration silently replaces (and loses) the first. So each direction (read, write) of
//! a handle has its own registration, the write one on a `dup` of the descriptor made the first
//! time a write has to wait, and within one direction only the coroutine holding that direction's
//! turn waits on the event loop while the others queue behind it in FIFO order, each giving up
//! at its own deadline.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use may::io::{CoIo, WaitIo, WaitIoWaker};
use once_cell::sync::OnceCell;

use crate::interrupt;
#[cfg(all(feature = "patch", target_os = "linux"))]
use crate::patch::internal;
use crate::waiters::Waiters;

/// Runs greennet's own use of a descriptor (may's registration sets `O_NONBLOCK`): without the
/// `patch` feature there is nothing to tell apart from the caller's.
#[cfg(not(all(feature = "patch", target_os = "linux")))]
fn internal<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// The epoll events after which a socket may stay readable (at its end, or with an error)
/// without any further event.
#[cfg(target_os = "linux")]
const HANG_UP: usize = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as usize;

/// Elsewhere may's events are kqueue's, and reads always try first (see `Green::read_stream`).
#[cfg(not(target_os = "linux"))]
const HANG_UP: usize = 0;

/// Which readiness a call waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Readable: `read`, `recv`, `accept`.
    Read,
    /// Writable: `write`, `send`, `connect`.
    Write,
}

/// Counts the changes of any handle's blocking mode or read timeout. Each handle keeps a copy
/// of its own two (see `Green::mode`), good while this count is what it was when the copy
/// was made: those settings change rarely, and reading them from the state the handle shares
/// with its clones costs a busy server a cache miss per request, while this one count, read by
/// every wait, stays in the cache.
static MODE_CHANGES: AtomicU64 = AtomicU64::new(1);

/// Notes a change of some handle's blocking mode or read timeout (see [`MODE_CHANGES`]), after
/// the change itself.
fn mode_changed() {
    MODE_CHANGES.fetch_add(1, Ordering::SeqCst);
}

/// The state that `try_clone`d handles share, as the kernel shares it between std's clones.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    nonblocking: AtomicBool,
    /// Timeouts in nanoseconds; 0 means none (std rejects a zero timeout, so 0 is free).
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

impl Shared {
    pub(crate) fn nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    pub(crate) fn set_nonblocking(&self, on: bool) {
        if self.nonblocking.swap(on, Ordering::SeqCst) != on {
            mode_changed();
        }
    }

    fn timeout_cell(&self, dir: Dir) -> &AtomicU64 {
        match dir {
            Dir::Read => &self.read_timeout,
            Dir::Write => &self.write_timeout,
        }
    }

    pub(crate) fn timeout(&self, dir: Dir) -> Option<Duration> {
        match self.timeout_cell(dir).load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Caches a timeout the kernel reported (`None`: no timeout).
    pub(crate) fn cache_timeout(&self, dir: Dir, dur: Option<Duration>) {
        // 0 stands for "none"; saturate absurdly long timeouts (584 years) instead of wrapping.
        let ns = dur.map_or(0, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        let old = self.timeout_cell(dir).swap(ns, Ordering::SeqCst);
        if dir == Dir::Read && old != ns {
            mode_changed();
        }
    }

    /// A fresh `Shared` for a socket adopted from elsewhere, taking over the timeouts the
    /// kernel holds for it (a std socket may have had them set before it came to greennet).
    pub(crate) fn adopted(fd: RawFd, nonblocking: bool) -> Shared {
        let shared = Shared::default();
        shared.set_nonblocking(nonblocking);
        // SAFETY: the caller's handle owns `fd` and keeps it open during this call.
        let sock = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&sock);
        // Not a socket with timeouts (or an error): no timeouts, as for a new socket.
        shared.cache_timeout(Dir::Read, sock.read_timeout().ok().flatten());
        shared.cache_timeout(Dir::Write, sock.write_timeout().ok().flatten());
        shared
    }
}

/// std's error for a zero timeout.
pub(crate) fn zero_timeout() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot set a 0 duration timeout",
    )
}

/// The std socket types whose read and write timeouts greennet mirrors. Timeouts are set through
/// std (so validation, rounding and the kernel's `SO_RCVTIMEO`/`SO_SNDTIMEO` are std's, and they
/// survive conversions back to std), and the value the kernel reports back (rounded to its clock
/// tick, as std's getter shows it) is cached for the green core's own deadlines.
pub(crate) trait StdTimeouts {
    fn set_std_timeout(&self, dir: Dir, dur: Option<Duration>) -> io::Result<()>;
    fn std_timeout(&self, dir: Dir) -> io::Result<Option<Duration>>;
}

macro_rules! std_timeouts {
    ($($t:ty),*) => {$(
        impl StdTimeouts for $t {
            fn set_std_timeout(&self, dir: Dir, dur: Option<Duration>) -> io::Result<()> {
                match dir {
                    Dir::Read => self.set_read_timeout(dur),
                    Dir::Write => self.set_write_timeout(dur),
                }
            }

            fn std_timeout(&self, dir: Dir) -> io::Result<Option<Duration>> {
                match dir {
                    Dir::Read => self.read_timeout(),
                    Dir::Write => self.write_timeout(),
                }
            }
        }
    )*};
}

std_timeouts!(
    std::net::TcpStream,
    std::net::UdpSocket,
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixDatagram
);

impl<T: AsRawFd + StdTimeouts> Green<T> {
    /// Sets a read or write timeout exactly as std does, and caches it for waiting.
    pub(crate) fn set_timeout(&self, dir: Dir, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_std_timeout(dir, dur)?;
        self.shared.cache_timeout(dir, self.inner.std_timeout(dir)?);
        Ok(())
    }

    /// The timeout as std reports it (from the kernel).
    pub(crate) fn timeout(&self, dir: Dir) -> io::Result<Option<Duration>> {
        self.inner.std_timeout(dir)
    }
}

/// What an expired read or write timeout returns on Linux: the `EAGAIN` std reports.
fn timed_out() -> io::Error {
    io::Error::from_raw_os_error(libc::EAGAIN)
}

/// A descriptor as may's `CoIo` wants it: only its number. The owner closes it.
#[derive(Debug)]
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// The right to be the one coroutine of a direction that waits on the event loop. The others
/// queue for it, first come first served, each within its own deadline.
struct Turn {
    taken: AtomicBool,
    queue: Waiters,
}

/// Gives the turn back when dropped.
struct TurnGuard<'a>(&'a Turn);

impl Turn {
    const fn new() -> Turn {
        Turn {
            taken: AtomicBool::new(false),
            queue: Waiters::new(),
        }
    }

    /// Takes the turn, or gives up at the deadline (`None`).
    fn take(&self, deadline: Option<Instant>) -> Option<TurnGuard<'_>> {
        self.queue.wait_for(deadline, || {
            self.taken
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
                .then(|| TurnGuard(self))
        })
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.0.taken.store(false, Ordering::SeqCst);
        self.0.queue.wake_one();
    }
}

/// What a handle needs once a coroutine has to wait on it, made on first use.
struct Waits {
    /// One turn per direction.
    turns: [Turn; 2],
    /// The alarm last set for each registration (primary, secondary), kept after its wait
    /// ends so that the next wait can reuse it (see `Claim::alarm_by`). Dropped, and so
    /// cancelled, before the registrations are.
    alarms: [Mutex<Option<alarm::Guard>>; 2],
    /// The registration of the handle's own descriptor, used by whichever direction needs it
    /// first; `owner` says which (0 = free).
    primary: CoIo<Fd>,
    owner: AtomicU8,
    /// Counts the waits on `primary` that have returned, each of which cleared its event flag.
    /// A try that read this count beforehand and finds it unchanged once it holds `primary`
    /// knows no event since the try was consumed: any readiness that arrived after the try is
    /// still in the flag, so the coroutine can wait without trying again first.
    primary_waits: AtomicU64,
    /// A registration of a `dup`, for the other direction while both wait at once. Kept once
    /// made: a socket that waited both ways at once is likely to do so again.
    secondary: OnceCell<(CoIo<Fd>, OwnedFd)>,
    /// Set by a read of a byte stream that came back short (so the kernel had no more to give
    /// at that moment) to `primary_waits` as read before it, plus one; 0 when the last read was
    /// not short. While `primary_waits` still has that value, no wait has cleared `primary`'s
    /// event flag since, so any byte that arrived after that read has left an event in the flag
    /// and the next read can wait first instead of making a system call to hear `EAGAIN`.
    drained: AtomicU64,
    /// Names `primary` for [`interrupt::Wait::arm_kept`]: unique among all registrations ever
    /// made in the process, and never 0.
    key: u64,
    /// Set once a wait on `primary` has seen the peer hang up, the read side shut down or an
    /// error (`EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`): no event need follow such a state, so from
    /// then on every read tries first. Stored before `primary_waits` counts the wait that saw it.
    hung_up: AtomicBool,
}

/// The registration a direction holder waits on, released when dropped.
enum Claim<'a> {
    Primary(&'a Waits),
    Secondary(&'a Waits, &'a CoIo<Fd>),
    /// No second descriptor could be had (the process is out of descriptors).
    Neither,
}

impl Claim<'_> {
    /// Makes sure an alarm wakes this registration by `limit`, and says when it will. An alarm
    /// still pending that goes off no later than `limit` is kept: a steady connection whose
    /// every wait has the same far deadline (an idle timeout, say) sets one alarm per timeout
    /// period instead of one per wait, and the wake it gets early costs one more try.
    fn alarm_by(&self, limit: Instant, now: Instant) -> Option<Instant> {
        let (io, slot) = match self {
            Claim::Primary(waits) => (&waits.primary, &waits.alarms[0]),
            Claim::Secondary(waits, io) => (*io, &waits.alarms[1]),
            Claim::Neither => return None,
        };
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = slot.as_ref() {
            let at = kept.deadline();
            if at <= limit && at > now {
                return Some(at);
            }
        }
        *slot = Some(alarm::set(limit, alarm::Wake::Io(io.waker())));
        Some(limit)
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Claim::Primary(waits) = self {
            waits.owner.store(0, Ordering::Release);
        }
    }
}

impl Waits {
    fn claim(&self, dir: Dir) -> Claim<'_> {
        let me = dir as u8 + 1;
        if self
            .owner
            .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Claim::Primary(self);
        }
        let made = self.secondary.get_or_try_init(|| {
            let dup = internal(|| dup_cloexec(self.primary.as_raw_fd()))?;
            let io = internal(|| CoIo::new(Fd(dup.as_raw_fd()))).map_err(io::Error::from)?;
            Ok::<_, io::Error>((io, dup))
        });
        match made {
            Ok((io, _)) => Claim::Secondary(self, io),
            Err(e) => {
                tracing::debug!(error = %e, "no second registration; polling for readiness");
                Claim::Neither
            }
        }
    }
}

/// Makes a std handle `T` cooperative. Field order matters: the registrations are dropped (and
/// so removed from the event loop) before `inner` closes the descriptor.
pub(crate) struct Green<T: AsRawFd> {
    waits: OnceCell<Waits>,
    shared: Arc<Shared>,
    /// A copy of what waits need from `shared` (see [`Green::mode`]): [`MODE_CHANGES`] when
    /// it was made, shifted left by 2, then whether the handle has a read timeout (bit 1) and
    /// whether it is in non-blocking mode (bit 0). 0 until the first copy.
    mode: AtomicU64,
    inner: T,
}

/// What a wait needs to know of a handle's settings.
#[derive(Clone, Copy)]
struct Mode {
    nonblocking: bool,
    read_timeout: bool,
}

// may's registration holds timer state in a `RefCell`, which makes it `!RefUnwindSafe`. A panic
// cannot leave a `Green` half-updated: the registration either exists or not, and the direction
// locks are released by their guards. So `Green` is as unwind-safe as the handle it wraps, which
// keeps greennet's sockets as unwind-safe as std's.
impl<T: AsRawFd + std::panic::UnwindSafe> std::panic::UnwindSafe for Green<T> {}
impl<T: AsRawFd + std::panic::RefUnwindSafe> std::panic::RefUnwindSafe for Green<T> {}

impl<T: AsRawFd> Green<T> {
    /// Wraps a handle whose descriptor is already in non-blocking mode.
    pub(crate) fn new(inner: T, shared: Arc<Shared>) -> Self {
        Green {
            waits: OnceCell::new(),
            shared,
            mode: AtomicU64::new(0),
            inner,
        }
    }

    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Whether the handle is in non-blocking mode and has a read timeout, from the handle's
    /// copy while no handle's settings have changed since it was made, or else from `shared`.
    /// A change made before this is called is seen: it counts in [`MODE_CHANGES`] after it is
    /// stored, and a copy made before the count was bumped no longer matches it.
    #[inline]
    fn mode(&self) -> Mode {
        let changes = MODE_CHANGES.load(Ordering::SeqCst);
        let kept = self.mode.load(Ordering::Relaxed);
        if kept >> 2 == changes {
            return Mode {
                nonblocking: kept & 1 != 0,
                read_timeout: kept & 2 != 0,
            };
        }
        let mode = Mode {
            nonblocking: self.shared.nonblocking(),
            read_timeout: self.shared.timeout(Dir::Read).is_some(),
        };
        let copy = changes << 2 | u64::from(mode.read_timeout) << 1 | u64::from(mode.nonblocking);
        self.mode.store(copy, Ordering::Relaxed);
        mode
    }

    /// Gives the handle back, removing its registrations first.
    pub(crate) fn into_inner(self) -> T {
        let Green { waits, inner, .. } = self;
        drop(waits);
        inner
    }

    /// Runs `op` as a blocking call would: retries it until it stops saying `WouldBlock`, parking
    /// the coroutine (or polling, on a plain thread) in between, within the handle's timeout.
    #[inline]
    pub(crate) fn io<R>(&self, dir: Dir, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.io_before(dir, || None, op)
    }

    /// [`io`](Green::io) with a deadline of the caller's as well as the handle's timeout:
    /// running out of the caller's time is `TimedOut`, of the handle's, std's `WouldBlock`.
    /// `until` is asked for that deadline only if the call has to wait.
    #[inline]
    pub(crate) fn io_before<R>(
        &self,
        dir: Dir,
        until: impl FnOnce() -> Option<Instant>,
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.try_then_wait(dir, until, None, op)
    }

    /// [`io_before`](Green::io_before), with the caller's interruption context if it has one.
    #[inline]
    fn try_then_wait<R>(
        &self,
        dir: Dir,
        until: impl FnOnce() -> Option<Instant>,
        context: Option<&interrupt::Snapshot>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let seen = self
            .waits
            .get()
            .map(|w| w.primary_waits.load(Ordering::SeqCst));
        match op(&self.inner) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.mode().nonblocking => {}
            done => return done,
        }
        self.wait_first(dir, until, context, seen, true, op)
    }

    /// The waiting part of [`io_before`](Green::io_before), entered after a try that would
    /// have blocked (or, from [`read_stream`](Green::read_stream), a read known to have drained
    /// the socket); `seen` is `primary_waits` as read before that try.
    fn wait_first<R>(
        &self,
        dir: Dir,
        until: impl FnOnce() -> Option<Instant>,
        context: Option<&interrupt::Snapshot>,
        seen: Option<u64>,
        attempted: bool,
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let own = if dir == Dir::Read && !self.mode().read_timeout {
            None
        } else {
            self.shared
                .timeout(dir)
                .and_then(|t| Instant::now().checked_add(t))
        };
        let until = until();
        let deadline = match (own, until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match self.wait_then_retry(dir, deadline, context, seen, attempted, op) {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if until.is_some_and(|u| own.is_none_or(|o| u <= o)) {
                    Err(io::ErrorKind::TimedOut.into())
                } else {
                    Err(timed_out())
                }
            }
            other => other,
        }
    }

    /// [`io_before`](Green::io_before) for reads of a byte stream (TCP, Unix stream) into `len`
    /// bytes of buffer. A read that fills less than its buffer has drained the socket, and the
    /// next read on a handle whose last read did so (with no wait in between) skips the system
    /// call that would only say `EAGAIN` and waits for readiness first, as tokio does. Only a
    /// coroutine in blocking mode waits first, and only on Linux, where a hang-up is told apart
    /// (`Waits::hung_up`): a non-blocking handle and a plain thread always try the read.
    /// `context`, if given, is the calling coroutine's interruption context, which the wait
    /// then need not look up.
    #[inline]
    pub(crate) fn read_stream(
        &self,
        len: usize,
        until: impl FnOnce() -> Option<Instant>,
        context: Option<&interrupt::Snapshot>,
        mut op: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let read = |inner: &T| {
            let Some(waits) = self.waits.get() else {
                return op(inner);
            };
            let before = waits.primary_waits.load(Ordering::SeqCst);
            let result = op(inner);
            let short = matches!(result, Ok(n) if n > 0 && n < len);
            waits
                .drained
                .store(if short { before + 1 } else { 0 }, Ordering::Relaxed);
            result
        };
        let drained = self
            .waits
            .get()
            .filter(|w| !w.hung_up.load(Ordering::SeqCst))
            .map(|w| w.drained.load(Ordering::Relaxed))
            .filter(|&mark| mark != 0)
            .map(|mark| mark - 1);
        match drained {
            Some(seen)
                if cfg!(target_os = "linux")
                    && len > 0
                    && !self.mode().nonblocking
                    && may::coroutine::is_coroutine() =>
            {
                self.wait_first(Dir::Read, until, context, Some(seen), false, read)
            }
            _ => self.try_then_wait(Dir::Read, until, context, read),
        }
    }

    /// The retry loop with an explicit deadline; an expired deadline is `TimedOut` here and each
    /// caller maps it to the error std gives for that call.
    pub(crate) fn io_until<R>(
        &self,
        dir: Dir,
        deadline: Option<Instant>,
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.wait_then_retry(dir, deadline, None, None, false, op)
    }

    /// `io_until` after a failed try; `seen` is `primary_waits` as read before that try, if the
    /// handle was registered then. `attempted` says whether this call has made its operation
    /// yet: a read that waits first has not, and makes it once before it gives up at its
    /// deadline, as a blocking call that found its data there would have returned it.
    fn wait_then_retry<R>(
        &self,
        dir: Dir,
        deadline: Option<Instant>,
        context: Option<&interrupt::Snapshot>,
        seen: Option<u64>,
        mut attempted: bool,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        // A timeout around the caller (crate::timeout) may end the wait sooner than `deadline`.
        let mut wait = match context {
            Some(context) => context.begin(deadline),
            None => interrupt::begin(deadline),
        };
        let limit = wait.limit();
        if !may::coroutine::is_coroutine() {
            loop {
                match op(&self.inner) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    done => return done,
                }
                wait.check();
                if let Err(e) = poll(self.inner.as_raw_fd(), dir, limit) {
                    wait.check();
                    return Err(e);
                }
            }
        }
        let waits = self.waits()?;
        let Some(_turn) = waits.turns[dir as usize].take(limit) else {
            wait.check();
            return Err(io::ErrorKind::TimedOut.into());
        };
        let claim = waits.claim(dir);
        match &claim {
            // The primary registration is the one a coroutine that keeps using a socket (a
            // server's connection) waits on every time.
            Claim::Primary(waits) => {
                wait.arm_kept(waits.key, || alarm::Wake::Io(waits.primary.waker()));
            }
            Claim::Secondary(_, io) => wait.arm(|| alarm::Wake::Io(io.waker())),
            Claim::Neither => {}
        }
        // The caller's failed try still counts if `primary` existed before it and no wait on
        // `primary` has cleared its flag since (see `Waits::primary_waits`); otherwise an event
        // may have been consumed in between, and only a fresh try can tell.
        let mut tried = matches!(claim, Claim::Primary(_))
            && seen.is_some_and(|n| n == waits.primary_waits.load(Ordering::SeqCst));
        // When the alarm that wakes this wait goes off: at `limit`, or sooner if an earlier
        // alarm was kept, in which case another is set once it has gone off.
        let mut alarm: Option<Instant> = None;
        loop {
            if !tried {
                attempted = true;
                match op(&self.inner) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    done => return done,
                }
            }
            tried = false;
            wait.check();
            if let Some(limit) = limit {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    if !attempted {
                        match op(&self.inner) {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            done => return done,
                        }
                    }
                    return Err(io::ErrorKind::TimedOut.into());
                }
                if alarm.is_none_or(|at| at <= now) {
                    alarm = claim.alarm_by(limit, now);
                }
            }
            match &claim {
                // Returns at once if an event arrived since the last wait; spurious wakes (the
                // other direction's events, the alarm) only cost one more try.
                Claim::Primary(waits) => {
                    let events = crate::monitor::switch(|| waits.primary.wait_io());
                    if events & HANG_UP != 0 {
                        waits.hung_up.store(true, Ordering::SeqCst);
                    }
                    // After the flag was cleared and before the claim is released.
                    waits.primary_waits.fetch_add(1, Ordering::SeqCst);
                }
                Claim::Secondary(_, io) => {
                    crate::monitor::switch(|| io.wait_io());
                }
                Claim::Neither => crate::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    fn waits(&self) -> io::Result<&Waits> {
        // Registration must not race: may drops a registration that fails (say with EEXIST
        // because another coroutine registered the descriptor first), and dropping it removes
        // the descriptor from epoll, silently undoing the other coroutine's registration. The
        // cell lets one caller register while others wait for it (only for one epoll_ctl; no
        // coroutine switch happens inside).
        self.waits.get_or_try_init(|| {
            Ok(Waits {
                turns: [Turn::new(), Turn::new()],
                alarms: [Mutex::new(None), Mutex::new(None)],
                primary: internal(|| CoIo::new(Fd(self.inner.as_raw_fd())))
                    .map_err(io::Error::from)?,
                owner: AtomicU8::new(0),
                primary_waits: AtomicU64::new(0),
                key: {
                    static KEYS: AtomicU64 = AtomicU64::new(1);
                    KEYS.fetch_add(1, Ordering::Relaxed)
                },
                secondary: OnceCell::new(),
                drained: AtomicU64::new(0),
                hung_up: AtomicBool::new(false),
            })
        })
    }
}

impl<T: AsRawFd + std::fmt::Debug> std::fmt::Debug for Green<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`, which the caller's handle keeps open.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a freshly created descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Sets or clears `O_NONBLOCK` on a descriptor.
pub(crate) fn set_fd_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    let mut on = libc::c_int::from(on);
    // SAFETY: FIONBIO reads one int through a valid pointer; `fd` is open (borrowed from a live
    // handle by every caller).
    if unsafe { libc::ioctl(fd, libc::FIONBIO, &mut on) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Blocks this (plain) thread until `fd` is ready for `dir` or the deadline passes.
fn poll(fd: RawFd, dir: Dir, deadline: Option<Instant>) -> io::Result<()> {
    let events = match dir {
        Dir::Read => libc::POLLIN,
        Dir::Write => libc::POLLOUT,
    };
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(libc::timespec {
                    tv_sec: left.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                    tv_nsec: libc::c_long::from(left.subsec_nanos() as i32),
                }),
                _ => return Err(io::ErrorKind::TimedOut.into()),
            },
        };
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let ts = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: one valid pollfd, a valid or null timespec, and a null signal mask.
        let n = unsafe { libc::ppoll(&mut pfd, 1, ts, std::ptr::null()) };
        match n {
            // Ready (or an error/hang-up condition, which the retried syscall will report).
            1.. => return Ok(()),
            0 => {} // timed out: the loop rechecks the deadline
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Deadlines for coroutines waiting on the event loop, from one thread of our own.
///
/// may's `wait_io` has no timeout, so a waiter with a deadline registers its waker here; when the
/// deadline passes, the alarm thread wakes it, and the retry loop sees the expired deadline.
pub(crate) mod alarm {
    use super::*;
    use std::collections::BTreeMap;

    /// Whom an alarm wakes.
    pub(crate) enum Wake {
        /// A coroutine waiting on the event loop.
        Io(WaitIoWaker),
        /// A parked coroutine. Unparked from this (non-worker) thread, it goes through may's
        /// global queue, which makes its worker also poll for I/O and take new coroutines.
        Coroutine(may::coroutine::Coroutine),
        /// A coroutine or thread parked on a may `Blocker` (the sync primitives' timeouts).
        Blocker(Arc<may::sync::Blocker>),
    }

    impl Wake {
        pub(crate) fn wake(self) {
            match self {
                Wake::Io(waker) => waker.wakeup(),
                Wake::Coroutine(co) => co.unpark(),
                Wake::Blocker(blocker) => blocker.unpark(),
            }
        }
    }

    struct State {
        /// Pending alarms by (deadline, id); the id makes equal deadlines distinct.
        due: BTreeMap<(Instant, u64), Wake>,
        next_id: u64,
    }

    struct Alarm {
        state: Mutex<State>,
        changed: Condvar,
    }

    fn alarm() -> &'static Alarm {
        static ALARM: OnceLock<&'static Alarm> = OnceLock::new();
        ALARM.get_or_init(|| {
            let alarm: &'static Alarm = Box::leak(Box::new(Alarm {
                state: Mutex::new(State {
                    due: BTreeMap::new(),
                    next_id: 0,
                }),
                changed: Condvar::new(),
            }));
            // A plain thread, never a worker: what it wakes is scheduled through may's global
            // queues (see `Wake::Coroutine`).
            std::thread::Builder::new()
                .name("greennet-alarm".into())
                .spawn(move || alarm.run())
                .expect("greennet: cannot start the timeout thread");
            alarm
        })
    }

    impl Alarm {
        fn run(&self) {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let now = Instant::now();
                while let Some(entry) = state.due.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    entry.remove().wake();
                }
                state = match state.due.first_key_value() {
                    Some((&(when, _), _)) => {
                        let wait = when.saturating_duration_since(now);
                        self.changed
                            .wait_timeout(state, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                    None => self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
                };
            }
        }
    }

    /// Cancels its alarm when dropped.
    pub(crate) struct Guard((Instant, u64));

    impl Guard {
        /// When the alarm goes off.
        pub(crate) fn deadline(&self) -> Instant {
            self.0 .0
        }
    }

    pub(crate) fn set(deadline: Instant, waker: Wake) -> Guard {
        let alarm = alarm();
        let mut state = alarm.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = (deadline, state.next_id);
        state.next_id += 1;
        let earliest = state.due.first_key_value().is_none_or(|(k, _)| key < *k);
        state.due.insert(key, waker);
        drop(state);
        if earliest {
            alarm.changed.notify_one();
        }
        Guard(key)
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            let mut state = alarm().state.lock().unwrap_or_else(|e| e.into_inner());
            state.due.remove(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `fd` is registered in any of this process's epoll instances.
    fn registered(fd: RawFd) -> bool {
        let wanted = format!("tfd: {fd:>8} ");
        std::fs::read_dir("/proc/self/fdinfo")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .any(|info| info.lines().any(|l| l.starts_with(&wanted)))
    }

    #[test]
    fn racing_first_waits_leave_the_descriptor_registered() {
        // Regression: may removes a descriptor from epoll when a registration of it fails, so
        // two handles' first waits racing to register it used to undo each other, and the
        // waiter then slept forever.
        crate::runtime::ensure_started().unwrap();
        for round in 0..200 {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let green = Green::new(listener, Arc::default());
            let start = std::sync::Barrier::new(4);
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        start.wait();
                        green.waits().unwrap();
                    });
                }
            });
            let fd = green.get_ref().as_raw_fd();
            assert!(registered(fd), "round {round}: fd {fd} fell out of epoll");
        }
    }
}
