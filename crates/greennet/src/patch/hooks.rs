//! The definitions that replace libc's. Each keeps libc's signature and contract; see the
//! [module documentation](super) for what changes inside a coroutine.
//!
//! Safety, for every function here: they are called as libc's functions are, by code that
//! upholds libc's contract for the pointers it passes (valid for the stated lengths, or null
//! where libc allows it). The hooks pass those pointers on unchanged to the real call, or, for
//! work moved to another thread (`poll`, `select`, `getaddrinfo`), copy what they point to
//! first, so that the caller's memory is never used after the hook returns.
//!
//! `fcntl` and `ioctl` are variadic in C. On the Linux ABIs greennet supports (x86-64 and
//! AArch64), a variadic integer or pointer argument travels in the same register as a named
//! one, so declaring the optional third argument as a named one reads what the caller passed.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr, CString};
use std::time::Duration;

use libc::{
    addrinfo, fd_set, msghdr, nfds_t, pollfd, sockaddr, socklen_t, ssize_t, timespec, timeval,
};

use super::{
    blocking_io, dont_wait, forget, green_sleep, interruptible, managed, real, set_errno,
    timeval_duration, until, Dir, Known,
};

/// Every hook's address, so that `install` can name them (which keeps them in the program).
pub(super) fn all() -> [usize; 29] {
    [
        socket as *const () as usize,
        connect as *const () as usize,
        accept as *const () as usize,
        accept4 as *const () as usize,
        read as *const () as usize,
        readv as *const () as usize,
        recv as *const () as usize,
        recvfrom as *const () as usize,
        recvmsg as *const () as usize,
        write as *const () as usize,
        writev as *const () as usize,
        send as *const () as usize,
        sendto as *const () as usize,
        sendmsg as *const () as usize,
        poll as *const () as usize,
        select as *const () as usize,
        sleep as *const () as usize,
        usleep as *const () as usize,
        nanosleep as *const () as usize,
        clock_nanosleep as *const () as usize,
        close as *const () as usize,
        fcntl as *const () as usize,
        ioctl as *const () as usize,
        setsockopt as *const () as usize,
        getsockopt as *const () as usize,
        dup as *const () as usize,
        dup2 as *const () as usize,
        dup3 as *const () as usize,
        getaddrinfo as *const () as usize,
    ]
}

#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    let fd = real::socket(domain, ty, protocol);
    if fd >= 0 {
        // A number closed behind the hooks' back (a raw close) may still be in the table.
        forget(fd);
    }
    fd
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let Some(green) = managed(fd).filter(|g| !g.shared().nonblocking()) else {
        return real::connect(fd, addr, len);
    };
    if real::connect(fd, addr, len) == 0 {
        return 0;
    }
    let e = super::errno();
    if e != libc::EINPROGRESS {
        set_errno(e);
        return -1;
    }
    // As a blocking connect: wait until writable, within SO_SNDTIMEO, then report the outcome.
    let deadline = super::deadline_after(green.shared().timeout(Dir::Write));
    interruptible(|| {
        let done = green.io_until(Dir::Write, deadline, |_| {
            let mut err: c_int = 0;
            let mut len = std::mem::size_of::<c_int>() as socklen_t;
            let r = real::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut c_int).cast(),
                &mut len,
            );
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if err != 0 {
                return Err(std::io::Error::from_raw_os_error(err));
            }
            // Writable without an error can still be "not yet" after a spurious wake.
            let mut peer = std::mem::MaybeUninit::<libc::sockaddr_storage>::zeroed();
            let mut peer_len = std::mem::size_of::<libc::sockaddr_storage>() as socklen_t;
            if real::getpeername(fd, peer.as_mut_ptr().cast(), &mut peer_len) < 0 {
                let e = std::io::Error::last_os_error();
                return if e.raw_os_error() == Some(libc::ENOTCONN) {
                    Err(std::io::ErrorKind::WouldBlock.into())
                } else {
                    Err(e)
                };
            }
            Ok(0)
        });
        match done {
            Ok(_) => 0,
            // A blocking connect whose SO_SNDTIMEO runs out reports EINPROGRESS on Linux.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                set_errno(libc::EINPROGRESS);
                -1
            }
            Err(e) => {
                set_errno(e.raw_os_error().unwrap_or(libc::EIO));
                -1
            }
        }
    }) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: the caller's arguments, under the same contract.
    unsafe { accept4(fd, addr, len, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let new = blocking_io(fd, Dir::Read, || {
        real::accept4(fd, addr, len, flags) as isize
    }) as c_int;
    if new >= 0 {
        forget(new);
    }
    new
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: usize) -> ssize_t {
    blocking_io(fd, Dir::Read, || real::read(fd, buf, n))
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, count: c_int) -> ssize_t {
    blocking_io(fd, Dir::Read, || real::readv(fd, iov, count))
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: usize, flags: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, under the same contract; null addresses are allowed.
    unsafe {
        recvfrom(
            fd,
            buf,
            n,
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: usize,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    let op = || real::recvfrom(fd, buf, n, flags, addr, len);
    if dont_wait(flags) {
        return op();
    }
    blocking_io(fd, Dir::Read, op)
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    let op = || real::recvmsg(fd, msg, flags);
    if dont_wait(flags) {
        return op();
    }
    blocking_io(fd, Dir::Read, op)
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: usize) -> ssize_t {
    blocking_io(fd, Dir::Write, || real::write(fd, buf, n))
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, count: c_int) -> ssize_t {
    blocking_io(fd, Dir::Write, || real::writev(fd, iov, count))
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: usize, flags: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, under the same contract; no address is allowed.
    unsafe { sendto(fd, buf, n, flags, std::ptr::null(), 0) }
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: usize,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    let op = || real::sendto(fd, buf, n, flags, addr, len);
    if dont_wait(flags) {
        return op();
    }
    blocking_io(fd, Dir::Write, op)
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    let op = || real::sendmsg(fd, msg, flags);
    if dont_wait(flags) {
        return op();
    }
    blocking_io(fd, Dir::Write, op)
}

/// Runs `job` (a copy of a waiting call's inputs, and the call) on greennet's blocking pool
/// while the coroutine parks.
fn on_pool<R: Send + 'static>(job: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let mut out = None;
    let r = interruptible(|| {
        out = Some(crate::blocking::blocking(job));
        0
    });
    (r == 0).then_some(out).flatten()
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    if timeout == 0 || !may::coroutine::is_coroutine() || (fds.is_null() && n > 0) {
        return real::poll(fds, n, timeout);
    }
    // SAFETY: the caller passes `n` valid pollfds at `fds` (checked non-null above when n > 0).
    let mine: Vec<pollfd> = if n == 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(fds, n as usize) }.to_vec()
    };
    let done = on_pool(move || {
        let mut mine = mine;
        let r = real::poll(mine.as_mut_ptr(), mine.len() as nfds_t, timeout);
        (r, super::errno(), mine)
    });
    match done {
        Some((r, e, mine)) => {
            if r >= 0 && n > 0 {
                // SAFETY: as above; writing back the revents the real poll filled in.
                let theirs = unsafe { std::slice::from_raw_parts_mut(fds, n as usize) };
                for (t, m) in theirs.iter_mut().zip(&mine) {
                    t.revents = m.revents;
                }
            } else if r < 0 {
                set_errno(e);
            }
            r
        }
        None => -1,
    }
}

#[no_mangle]
pub unsafe extern "C" fn select(
    nfds: c_int,
    readfds: *mut fd_set,
    writefds: *mut fd_set,
    exceptfds: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    // SAFETY: the caller's timeval is valid or null.
    let zero = !tv.is_null() && unsafe { (*tv).tv_sec == 0 && (*tv).tv_usec == 0 };
    if zero || !may::coroutine::is_coroutine() {
        return real::select(nfds, readfds, writefds, exceptfds, tv);
    }
    // SAFETY: each set pointer is valid or null, and fd_set is plain data.
    let copy = |set: *mut fd_set| (!set.is_null()).then(|| unsafe { *set });
    let sets = [copy(readfds), copy(writefds), copy(exceptfds)];
    // SAFETY: as above, for the timeval.
    let timeout = (!tv.is_null()).then(|| unsafe { *tv });
    let done = on_pool(move || {
        let mut sets = sets;
        let mut timeout = timeout;
        let ptr = |s: &mut Option<fd_set>| s.as_mut().map_or(std::ptr::null_mut(), |s| s as *mut _);
        let [r, w, e] = &mut sets;
        let r = real::select(
            nfds,
            ptr(r),
            ptr(w),
            ptr(e),
            timeout
                .as_mut()
                .map_or(std::ptr::null_mut(), |t| t as *mut _),
        );
        (r, super::errno(), sets, timeout)
    });
    match done {
        Some((r, e, sets, timeout)) => {
            if r < 0 {
                set_errno(e);
                return r;
            }
            for (theirs, mine) in [readfds, writefds, exceptfds].into_iter().zip(sets) {
                if let Some(mine) = mine {
                    // SAFETY: non-null (a copy was made only then) and valid, as above.
                    unsafe { *theirs = mine };
                }
            }
            if let Some(left) = timeout {
                // SAFETY: non-null, as above. Linux reports the time left, so we do too.
                unsafe { *tv = left };
            }
            r
        }
        None => -1,
    }
}

#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    match green_sleep(Duration::from_secs(u64::from(secs))) {
        Some(0) => 0,
        // Interrupted: report the whole time as left, as an interrupted sleep would.
        Some(_) => secs,
        None => real::sleep(secs),
    }
}

#[no_mangle]
pub unsafe extern "C" fn usleep(us: libc::useconds_t) -> c_int {
    match green_sleep(Duration::from_micros(u64::from(us))) {
        Some(r) => r,
        None => real::usleep(us),
    }
}

#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    if !may::coroutine::is_coroutine() || req.is_null() {
        return real::nanosleep(req, rem);
    }
    // SAFETY: the caller's request is valid (checked non-null above).
    let req = unsafe { *req };
    let (Ok(secs), Ok(nanos)) = (u64::try_from(req.tv_sec), u32::try_from(req.tv_nsec)) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    if nanos >= 1_000_000_000 {
        set_errno(libc::EINVAL);
        return -1;
    }
    let r = green_sleep(Duration::new(secs, nanos)).unwrap_or(0);
    if r == 0 && !rem.is_null() {
        // SAFETY: the caller's remainder pointer is valid when non-null.
        unsafe {
            *rem = timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        };
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let sleepable = matches!(
        clock,
        libc::CLOCK_MONOTONIC | libc::CLOCK_REALTIME | libc::CLOCK_BOOTTIME
    );
    if !may::coroutine::is_coroutine() || req.is_null() || !sleepable {
        return real::clock_nanosleep(clock, flags, req, rem);
    }
    // SAFETY: the caller's request is valid (checked non-null above).
    let req = unsafe { *req };
    let dur = if flags & libc::TIMER_ABSTIME != 0 {
        until(clock, &req)
    } else {
        match (u64::try_from(req.tv_sec), u32::try_from(req.tv_nsec)) {
            (Ok(s), Ok(n)) if n < 1_000_000_000 => Some(Duration::new(s, n)),
            _ => None,
        }
    };
    let Some(dur) = dur else {
        return libc::EINVAL;
    };
    // clock_nanosleep returns its error number instead of setting errno.
    match green_sleep(dur) {
        Some(0) | None => 0,
        Some(_) => super::errno(),
    }
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // Off the event loop before the number can be reused.
    forget(fd);
    real::close(fd)
}

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    if super::is_internal() {
        return real::fcntl(fd, cmd, arg);
    }
    match cmd {
        libc::F_GETFL => {
            let flags = real::fcntl(fd, cmd, arg);
            match super::lookup(fd) {
                // The caller's own view of O_NONBLOCK.
                Some(Known::Managed(green)) if flags >= 0 => {
                    if green.shared().nonblocking() {
                        flags | libc::O_NONBLOCK
                    } else {
                        flags & !libc::O_NONBLOCK
                    }
                }
                _ => flags,
            }
        }
        libc::F_SETFL => match super::lookup(fd) {
            Some(Known::Managed(green)) => {
                let r = real::fcntl(fd, cmd, arg | libc::O_NONBLOCK as c_ulong);
                if r >= 0 {
                    green
                        .shared()
                        .set_nonblocking(arg & libc::O_NONBLOCK as c_ulong != 0);
                }
                r
            }
            _ => {
                // What the table knew about the flag may no longer hold.
                forget(fd);
                real::fcntl(fd, cmd, arg)
            }
        },
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let new = real::fcntl(fd, cmd, arg);
            duplicated(fd, new);
            new
        }
        _ => real::fcntl(fd, cmd, arg),
    }
}

#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    if super::is_internal() {
        return real::ioctl(fd, request, arg);
    }
    if request == libc::FIONBIO as c_ulong && !arg.is_null() {
        if let Some(Known::Managed(green)) = super::lookup(fd) {
            // SAFETY: FIONBIO's argument is a pointer to an int.
            let on = unsafe { *arg.cast::<c_int>() } != 0;
            // The descriptor stays non-blocking underneath; the caller's view changes.
            green.shared().set_nonblocking(on);
            return 0;
        }
        forget(fd);
    }
    real::ioctl(fd, request, arg)
}

#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    let r = real::setsockopt(fd, level, name, value, len);
    let timeout = level == libc::SOL_SOCKET
        && matches!(name, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO)
        && !value.is_null()
        && len as usize >= std::mem::size_of::<timeval>();
    if r == 0 && timeout {
        if let Some(Known::Managed(green)) = super::lookup(fd) {
            // SAFETY: the kernel accepted it as a timeval, so it is one.
            let tv = unsafe { *value.cast::<timeval>() };
            let dir = if name == libc::SO_RCVTIMEO {
                Dir::Read
            } else {
                Dir::Write
            };
            green.shared().cache_timeout(dir, timeval_duration(&tv));
        }
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    // The kernel holds the same timeouts the hooks use, so its answer is the caller's.
    real::getsockopt(fd, level, name, value, len)
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let new = real::dup(fd);
    duplicated(fd, new);
    new
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // dup2 onto itself only checks that the descriptor is open.
        return if real::fcntl(old, libc::F_GETFD, 0) < 0 {
            -1
        } else {
            old
        };
    }
    // SAFETY: plain integers.
    unsafe { dup3(old, new, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    forget(new);
    let r = real::dup3(old, new, flags);
    duplicated(old, r);
    r
}

/// `new` shares `old`'s open file description (and so its O_NONBLOCK flag): if `old` is
/// managed, `new` is too, with the same caller's view and timeouts.
fn duplicated(old: c_int, new: c_int) {
    if new < 0 {
        return;
    }
    super::forget(new);
    if let Some(Known::Managed(green)) = super::lookup(old) {
        let copy = crate::green::Green::new(super::Sock(new), green.shared().clone());
        let mut table = super::table_write();
        super::store(
            &mut table,
            new,
            Some(Known::Managed(std::sync::Arc::new(copy))),
        );
    }
}

#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    if !may::coroutine::is_coroutine() || res.is_null() {
        return real::getaddrinfo(node, service, hints, res);
    }
    // Owned copies of the inputs, for the pool thread.
    // SAFETY: node and service are NUL-terminated strings or null.
    let copy = |s: *const c_char| (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_owned());
    let (node, service) = (copy(node), copy(service));
    // SAFETY: hints is a valid addrinfo or null; only its four plain fields are read.
    let hints = (!hints.is_null()).then(|| unsafe {
        (
            (*hints).ai_flags,
            (*hints).ai_family,
            (*hints).ai_socktype,
            (*hints).ai_protocol,
        )
    });
    let done = on_pool(move || {
        let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        // SAFETY: addrinfo is plain data for which all zeroes is the empty hint.
        let mut h: addrinfo = unsafe { std::mem::zeroed() };
        if let Some((flags, family, socktype, protocol)) = hints {
            h.ai_flags = flags;
            h.ai_family = family;
            h.ai_socktype = socktype;
            h.ai_protocol = protocol;
        }
        let mut out: *mut addrinfo = std::ptr::null_mut();
        let hp = if hints.is_some() {
            &h as *const _
        } else {
            std::ptr::null()
        };
        let r = real::getaddrinfo(ptr(&node), ptr(&service), hp, &mut out);
        (r, super::errno(), Answer(out))
    });
    match done {
        Some((r, e, mut answer)) => {
            if r == libc::EAI_SYSTEM {
                set_errno(e);
            }
            // SAFETY: res is valid (checked non-null above); the list is now the caller's, to
            // free with freeaddrinfo as usual.
            unsafe { *res = std::mem::replace(&mut answer.0, std::ptr::null_mut()) };
            r
        }
        // Interrupted (errno says how): the lookup's list, if any, is freed on the pool.
        None => libc::EAI_SYSTEM,
    }
}

/// A list from the real getaddrinfo, freed if nobody takes it.
struct Answer(*mut addrinfo);

// SAFETY: the list is plain heap memory owned by whoever holds this; it is used by one thread
// at a time.
unsafe impl Send for Answer {}

impl Drop for Answer {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a list the real getaddrinfo returned and nobody else holds.
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}
