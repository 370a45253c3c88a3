//! The real functions behind the hooks: system calls made directly, so that nothing here can
//! come back into a hook, and, for the few that are library code rather than system calls
//! (`poll` and `select` wrappers, `getaddrinfo`), the next definition after ours, from `dlsym`.

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void, CStr};
use std::sync::OnceLock;

use libc::{addrinfo, fd_set, msghdr, nfds_t, pollfd, sockaddr, socklen_t, timespec, timeval};

/// A raw system call, with libc's convention for the result: `-1` with `errno` set on failure.
macro_rules! syscall {
    ($nr:expr $(, $arg:expr)*) => {
        // SAFETY (for every use): the arguments are exactly those the caller of the hook passed
        // for the same call, whose validity is the caller's contract, as it would be for libc.
        unsafe { libc::syscall($nr $(, $arg)*) } as c_long
    };
}

pub(crate) fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize {
    syscall!(libc::SYS_read, fd, buf, n) as isize
}

pub(crate) fn write(fd: c_int, buf: *const c_void, n: usize) -> isize {
    syscall!(libc::SYS_write, fd, buf, n) as isize
}

pub(crate) fn readv(fd: c_int, iov: *const libc::iovec, count: c_int) -> isize {
    syscall!(libc::SYS_readv, fd, iov, count) as isize
}

pub(crate) fn writev(fd: c_int, iov: *const libc::iovec, count: c_int) -> isize {
    syscall!(libc::SYS_writev, fd, iov, count) as isize
}

pub(crate) fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: usize,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> isize {
    syscall!(libc::SYS_recvfrom, fd, buf, n, flags, addr, len) as isize
}

pub(crate) fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: usize,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> isize {
    syscall!(libc::SYS_sendto, fd, buf, n, flags, addr, len) as isize
}

pub(crate) fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> isize {
    syscall!(libc::SYS_recvmsg, fd, msg, flags) as isize
}

pub(crate) fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> isize {
    syscall!(libc::SYS_sendmsg, fd, msg, flags) as isize
}

pub(crate) fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    syscall!(libc::SYS_socket, domain, ty, protocol) as c_int
}

pub(crate) fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    syscall!(libc::SYS_connect, fd, addr, len) as c_int
}

pub(crate) fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    syscall!(libc::SYS_accept4, fd, addr, len, flags) as c_int
}

pub(crate) fn close(fd: c_int) -> c_int {
    syscall!(libc::SYS_close, fd) as c_int
}

pub(crate) fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    syscall!(libc::SYS_fcntl, fd, cmd, arg) as c_int
}

pub(crate) fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    syscall!(libc::SYS_ioctl, fd, request, arg) as c_int
}

pub(crate) fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    syscall!(libc::SYS_setsockopt, fd, level, name, value, len) as c_int
}

pub(crate) fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    syscall!(libc::SYS_getsockopt, fd, level, name, value, len) as c_int
}

pub(crate) fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    syscall!(libc::SYS_getpeername, fd, addr, len) as c_int
}

pub(crate) fn dup(fd: c_int) -> c_int {
    syscall!(libc::SYS_dup, fd) as c_int
}

pub(crate) fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    syscall!(libc::SYS_dup3, old, new, flags) as c_int
}

pub(crate) fn fstat_mode(fd: c_int) -> Option<libc::mode_t> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    let r = syscall!(libc::SYS_fstat, fd, st.as_mut_ptr());
    // SAFETY: the kernel filled the struct when fstat succeeded; it was zeroed otherwise.
    (r == 0).then(|| unsafe { st.assume_init() }.st_mode)
}

pub(crate) fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    syscall!(libc::SYS_nanosleep, req, rem) as c_int
}

pub(crate) fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    // This system call returns the error number rather than setting errno, as the libc
    // function does.
    let r = syscall!(libc::SYS_clock_nanosleep, clock, flags, req, rem);
    if r == -1 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    } else {
        r as c_int
    }
}

/// The next definition of `name` after this program's own: libc's.
fn next<T: Copy>(name: &CStr) -> Option<T> {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name has no other precondition.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    if found.is_null() {
        return None;
    }
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: T is the function pointer type of the C declaration of `name` (each caller
    // below names its own), and a symbol's address is a valid pointer to that function.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&found) })
}

type PollFn = unsafe extern "C" fn(*mut pollfd, nfds_t, c_int) -> c_int;
type SelectFn =
    unsafe extern "C" fn(c_int, *mut fd_set, *mut fd_set, *mut fd_set, *mut timeval) -> c_int;
type GetaddrinfoFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;
type SleepFn = unsafe extern "C" fn(c_uint) -> c_uint;
type UsleepFn = unsafe extern "C" fn(libc::useconds_t) -> c_int;

pub(crate) fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    static F: OnceLock<Option<PollFn>> = OnceLock::new();
    match F.get_or_init(|| next(c"poll")) {
        // SAFETY: the caller's own arguments, passed on unchanged.
        Some(f) => unsafe { f(fds, n, timeout) },
        None => unavailable(),
    }
}

pub(crate) fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    static F: OnceLock<Option<SelectFn>> = OnceLock::new();
    match F.get_or_init(|| next(c"select")) {
        // SAFETY: the caller's own arguments, passed on unchanged.
        Some(f) => unsafe { f(n, r, w, e, tv) },
        None => unavailable(),
    }
}

pub(crate) fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    static F: OnceLock<Option<GetaddrinfoFn>> = OnceLock::new();
    match F.get_or_init(|| next(c"getaddrinfo")) {
        // SAFETY: the caller's own arguments (or owned copies of them), passed on unchanged.
        Some(f) => unsafe { f(node, service, hints, res) },
        None => libc::EAI_SYSTEM,
    }
}

pub(crate) fn sleep(secs: c_uint) -> c_uint {
    static F: OnceLock<Option<SleepFn>> = OnceLock::new();
    match F.get_or_init(|| next(c"sleep")) {
        // SAFETY: a plain integer argument.
        Some(f) => unsafe { f(secs) },
        None => secs,
    }
}

pub(crate) fn usleep(us: libc::useconds_t) -> c_int {
    static F: OnceLock<Option<UsleepFn>> = OnceLock::new();
    match F.get_or_init(|| next(c"usleep")) {
        // SAFETY: a plain integer argument.
        Some(f) => unsafe { f(us) },
        None => unavailable(),
    }
}

/// `-1` with `ENOSYS`: libc does not have the function (it always does on glibc and musl).
fn unavailable() -> c_int {
    super::set_errno(libc::ENOSYS);
    -1
}
