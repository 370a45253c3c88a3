//! `patch_all` for real (the `patch` feature): libc's blocking socket, sleep and resolver
//! functions, redefined in the program itself, so that code greennet never sees (std's own
//! `std::net`, `std::thread::sleep`, and every crate or C library built on them) parks the
//! calling coroutine instead of blocking its worker.
//!
//! With the feature on, greennet defines `socket`, `connect`, `accept`/`accept4`, `read`,
//! `readv`, `recv`, `recvfrom`, `recvmsg`, `write`, `writev`, `send`, `sendto`, `sendmsg`,
//! `poll`, `select`, `sleep`, `usleep`, `nanosleep`, `clock_nanosleep`, `close`, `fcntl`,
//! `ioctl`, `setsockopt`, `getsockopt`, `dup`, `dup2`, `dup3` and `getaddrinfo` (see
//! [`hooks`]). The linker binds the program's calls (std's, and those of C code linked in) to
//! these definitions ahead of libc's, and the program exports them, so shared libraries loaded
//! later bind to them too. Each reaches the real function by a direct system call, or through
//! `dlsym(RTLD_NEXT, ...)` for the few that are library code.
//!
//! The rules, following libco and libgo, which did this for C++:
//!
//! - Outside a coroutine, every hook behaves as the real function (a socket greennet took over
//!   in a coroutine and then used on a plain thread still blocks that thread as it would).
//! - Inside a coroutine, a blocking call on a socket the caller believes is blocking behaves as
//!   blocking, timeouts included (`SO_RCVTIMEO`, `SO_SNDTIMEO`), but parks only the coroutine.
//!   The first such call takes the socket over: greennet switches the descriptor to non-blocking
//!   mode underneath and from then on keeps the caller's own view of the flag (`fcntl(F_GETFL)`,
//!   `FIONBIO`), as the kernel would have.
//! - A socket the caller made non-blocking keeps non-blocking semantics, and descriptors that are
//!   not sockets (files, pipes, eventfds: may's own machinery among them) are passed straight
//!   through.
//! - `poll` and `select` with a timeout, and `getaddrinfo`, run on greennet's blocking pool; the
//!   sleeps become `greennet::thread::sleep`.
//! - A `greennet::timeout` that expires, or a kill, while a hooked call waits cannot unwind
//!   through the C frames in between: the call fails with `ETIMEDOUT` (or `ECANCELED` for a kill)
//!   instead, and the interruption is raised at the next greennet wait in Rust code.

mod hooks;
mod real;

use std::ffi::c_int;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::green::{Dir, Green, Shared};

/// A descriptor number as greennet's core wants it; the caller owns and closes it.
#[derive(Debug)]
pub(crate) struct Sock(RawFd);

impl AsRawFd for Sock {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// What the hooks know about a descriptor.
#[derive(Clone)]
enum Known {
    /// Not a socket: always passed through.
    Other,
    /// A socket the caller made non-blocking: passed through.
    Nonblocking,
    /// A socket greennet took over: non-blocking underneath, waits park the coroutine.
    Managed(Arc<Green<Sock>>),
}

/// Every descriptor the hooks have looked at, by number; forgotten when it is closed.
static TABLE: RwLock<Vec<Option<Known>>> = RwLock::new(Vec::new());

/// How many descriptors are managed: while none is, calls outside coroutines skip the table.
static MANAGED: AtomicUsize = AtomicUsize::new(0);

fn table_read() -> std::sync::RwLockReadGuard<'static, Vec<Option<Known>>> {
    TABLE.read().unwrap_or_else(|e| e.into_inner())
}

fn table_write() -> std::sync::RwLockWriteGuard<'static, Vec<Option<Known>>> {
    TABLE.write().unwrap_or_else(|e| e.into_inner())
}

fn lookup(fd: RawFd) -> Option<Known> {
    let index = usize::try_from(fd).ok()?;
    table_read().get(index).cloned().flatten()
}

fn store(table: &mut Vec<Option<Known>>, fd: RawFd, known: Option<Known>) {
    let Ok(index) = usize::try_from(fd) else {
        return;
    };
    if index >= table.len() {
        if known.is_none() {
            return;
        }
        table.resize(index + 1, None);
    }
    let was_managed = matches!(table[index], Some(Known::Managed(_)));
    let is_managed = matches!(known, Some(Known::Managed(_)));
    table[index] = known;
    match (was_managed, is_managed) {
        (false, true) => {
            MANAGED.fetch_add(1, Ordering::Relaxed);
        }
        (true, false) => {
            MANAGED.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Forgets `fd` (it is being closed, or replaced). Its registration with may's event loop, if
/// any, goes once no call in progress holds it.
fn forget(fd: RawFd) {
    let old = {
        let mut table = table_write();
        let index = usize::try_from(fd).ok();
        let old = index.and_then(|i| table.get(i).cloned().flatten());
        store(&mut table, fd, None);
        old
    };
    drop(old);
}

/// The managed state of `fd`, taking the socket over if it is one that blocks. Only called
/// inside a coroutine: a descriptor first used on a plain thread is left alone.
fn classify(fd: RawFd) -> Known {
    if let Some(known) = lookup(fd) {
        return known;
    }
    let mut table = table_write();
    if let Some(Some(known)) = usize::try_from(fd).ok().and_then(|i| table.get(i)) {
        return known.clone();
    }
    let known = match real::fstat_mode(fd) {
        Some(mode) if mode & libc::S_IFMT == libc::S_IFSOCK => {
            let flags = real::fcntl(fd, libc::F_GETFL, 0);
            if flags < 0 || flags & libc::O_NONBLOCK != 0 {
                Known::Nonblocking
            } else if real::fcntl(fd, libc::F_SETFL, (flags | libc::O_NONBLOCK) as _) < 0 {
                // Cannot switch it: leave it blocking, as the caller has it.
                Known::Other
            } else {
                Known::Managed(Arc::new(Green::new(Sock(fd), Arc::new(adopted(fd)))))
            }
        }
        Some(_) => Known::Other,
        // Not open: let the real call report EBADF.
        None => return Known::Other,
    };
    store(&mut table, fd, Some(known.clone()));
    known
}

/// The shared state of a socket taken over: blocking, with the timeouts the kernel holds.
fn adopted(fd: RawFd) -> Shared {
    let shared = Shared::default();
    shared.cache_timeout(Dir::Read, socket_timeout(fd, libc::SO_RCVTIMEO));
    shared.cache_timeout(Dir::Write, socket_timeout(fd, libc::SO_SNDTIMEO));
    shared
}

fn socket_timeout(fd: RawFd, name: c_int) -> Option<Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    let r = real::getsockopt(
        fd,
        libc::SOL_SOCKET,
        name,
        (&mut tv as *mut libc::timeval).cast(),
        &mut len,
    );
    (r == 0).then(|| timeval_duration(&tv)).flatten()
}

/// A socket timeout as the kernel states it: zero means none.
fn timeval_duration(tv: &libc::timeval) -> Option<Duration> {
    let secs = u64::try_from(tv.tv_sec).ok()?;
    let micros = u32::try_from(tv.tv_usec).ok()?;
    let d = Duration::from_secs(secs) + Duration::from_micros(u64::from(micros));
    (!d.is_zero()).then_some(d)
}

/// The managed socket behind `fd`, if the hooks have taken it over. Inside a coroutine, a
/// blocking socket seen for the first time is taken over now.
fn managed(fd: RawFd) -> Option<Arc<Green<Sock>>> {
    if may::coroutine::is_coroutine() {
        match classify(fd) {
            Known::Managed(green) => Some(green),
            _ => None,
        }
    } else if MANAGED.load(Ordering::Relaxed) == 0 {
        None
    } else {
        match lookup(fd) {
            Some(Known::Managed(green)) => Some(green),
            _ => None,
        }
    }
}

thread_local! {
    /// Set while greennet itself works on a descriptor (may's registration switches it to
    /// non-blocking mode): the hooks then pass everything straight through, so that greennet's
    /// own `fcntl` is not mistaken for the caller's.
    static INTERNAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` as greennet's own work, which the hooks pass through untouched.
pub(crate) fn internal<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            set_internal(self.0);
        }
    }
    let _reset = Reset(set_internal(true));
    f()
}

/// Sets the mark and returns what it was. Never inlined: a coroutine can move to another worker
/// thread whenever it waits, and code inlined into a caller may keep using a thread-local
/// address computed before the wait, which is another thread's copy after it.
#[inline(never)]
fn set_internal(on: bool) -> bool {
    INTERNAL.with(|i| i.replace(on))
}

/// Never inlined, as [`set_internal`].
#[inline(never)]
fn is_internal() -> bool {
    INTERNAL.with(|i| i.get())
}

pub(crate) fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno, always valid to write.
    unsafe { *libc::__errno_location() = e };
}

/// `errno` as left by the last failed call.
fn errno() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A libc-style result (`-1` and errno on failure) as an `io::Result`.
fn cvt(r: isize) -> std::io::Result<isize> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An `io::Result` back into libc's form.
fn uncvt(r: std::io::Result<isize>) -> isize {
    match r {
        Ok(n) => n,
        Err(e) => {
            set_errno(e.raw_os_error().unwrap_or(match e.kind() {
                std::io::ErrorKind::WouldBlock => libc::EAGAIN,
                std::io::ErrorKind::TimedOut => libc::ETIMEDOUT,
                _ => libc::EIO,
            }));
            -1
        }
    }
}

/// Runs `wait`, which may park the coroutine, and turns an interruption (a greennet timeout
/// that expired, or a kill), which must not unwind through the C frames of the hook's caller,
/// into `ETIMEDOUT` or `ECANCELED`. Anything else that unwinds here is a bug in greennet, and
/// since it cannot go on, the process aborts with a message.
fn interruptible(wait: impl FnOnce() -> isize) -> isize {
    match catch_unwind(AssertUnwindSafe(wait)) {
        Ok(r) => r,
        Err(payload) => {
            let errno = if payload.is::<crate::timeout::Elapsed>() {
                libc::ETIMEDOUT
            } else if crate::thread::Killed::is(&*payload) {
                libc::ECANCELED
            } else {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("greennet patch: a hook panicked ({message}); aborting\n").as_bytes(),
                );
                std::process::abort();
            };
            set_errno(errno);
            -1
        }
    }
}

/// A blocking I/O call on `fd` in direction `dir`: the real call `op` (`-1`/errno on failure),
/// repeated with the coroutine parked in between while the socket is not ready, if the hooks
/// manage `fd`; otherwise `op` once.
fn blocking_io(fd: RawFd, dir: Dir, op: impl Fn() -> isize) -> isize {
    let Some(green) = managed(fd) else {
        return op();
    };
    interruptible(|| uncvt(green.io(dir, |_| cvt(op()))))
}

/// Sleeps `dur` the greennet way inside a coroutine; `None` if the caller is not in one.
fn green_sleep(dur: Duration) -> Option<c_int> {
    if !may::coroutine::is_coroutine() {
        return None;
    }
    let r = interruptible(|| {
        crate::thread::sleep(dur);
        0
    });
    Some(r as c_int)
}

/// The time left until `deadline` on `clock`, as `clock_nanosleep(TIMER_ABSTIME)` measures.
fn until(clock: libc::clockid_t, deadline: &libc::timespec) -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id (the caller's) and a valid out pointer.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return None;
    }
    let to = Duration::new(
        u64::try_from(deadline.tv_sec).ok()?,
        u32::try_from(deadline.tv_nsec).ok()?,
    );
    let from = Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    );
    Some(to.saturating_sub(from))
}

/// Whether `flags` of a send or receive ask for this one call not to block.
fn dont_wait(flags: c_int) -> bool {
    flags & libc::MSG_DONTWAIT != 0
}

/// Keeps the hooks in the program: the runtime calls this when it starts, which makes the
/// linker include this module (and so the definitions that replace libc's) in every program
/// that uses greennet with the feature on.
pub(crate) fn install() {
    let all = std::hint::black_box(hooks::all());
    tracing::debug!(
        functions = all.len(),
        "greennet patch: libc's blocking calls are cooperative in coroutines"
    );
}

/// A monotonic instant `dur` from now, `None` when too far to represent.
fn deadline_after(dur: Option<Duration>) -> Option<Instant> {
    dur.and_then(|d| Instant::now().checked_add(d))
}
