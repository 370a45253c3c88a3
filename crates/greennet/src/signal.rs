//! Graceful shutdown on `SIGINT` and `SIGTERM`, gevent's `signal_handler(SIGTERM, server.stop)`.
//!
//! [`GracefulShutdown`] collects the servers to stop; its [`wait`](GracefulShutdown::wait) parks
//! until Ctrl-C (`SIGINT`) or `kill` (`SIGTERM`) arrives, then stops every server at once, giving
//! running handlers a grace period, and returns the signal. [`wait_for_shutdown`] only waits.
//!
//! ```
//! use greennet::server::StreamServer;
//! use greennet::signal::{GracefulShutdown, Signal};
//! use std::io::Write;
//! use std::time::Duration;
//!
//! greennet::run(|| -> std::io::Result<()> {
//!     let server = StreamServer::bind("127.0.0.1:0", |mut stream, _peer| {
//!         let _ = stream.write_all(b"hello\n");
//!     })?
//!     .start()?;
//!     // From here on SIGINT and SIGTERM no longer end the process; they end `wait`.
//!     let shutdown = GracefulShutdown::new()?.server(server);
//!
//!     // This example signals itself, as `kill -TERM <pid>` would.
//!     // SAFETY: raise(3) has no preconditions.
//!     unsafe { libc::raise(libc::SIGTERM) };
//!
//!     let signal = shutdown.wait(Duration::from_secs(10))?;
//!     assert_eq!(signal, Signal::Terminate);
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! How it works: the first use installs a handler for both signals (once, for the rest of the
//! process) that only records the signal in atomics and writes a byte to a non-blocking socket,
//! the async-signal-safe "self-pipe". A coroutine reads that socket like any greennet socket and
//! wakes every waiter, so waiting parks a coroutine (or blocks a plain thread) and costs nothing
//! meanwhile. Each waiter sees every signal that arrives after its [`GracefulShutdown`] was made,
//! however many wait; a signal that arrives before the first use has its default effect (it ends
//! the process).

use std::fmt;
use std::io::{self, Read};
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::os::unix::net::UnixStream;
use crate::server::ServerHandle;
use crate::sync::{Condvar, Mutex};
use crate::thread;

/// A signal that asks the process to shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGINT`: Ctrl-C in a terminal.
    Interrupt,
    /// `SIGTERM`: `kill`'s default, and how service managers and container runtimes ask a
    /// process to stop.
    Terminate,
}

impl Signal {
    fn from_raw(signum: libc::c_int) -> Signal {
        if signum == libc::SIGINT {
            Signal::Interrupt
        } else {
            Signal::Terminate
        }
    }
}

/// Parks the calling coroutine (or blocks the plain thread) until the process receives
/// `SIGINT` or `SIGTERM`, and returns which.
///
/// Only signals that arrive after the call count; to also catch one that arrives while the
/// program is still starting up, make a [`GracefulShutdown`] first and
/// [`wait`](GracefulShutdown::wait) on it later. The first call (or [`GracefulShutdown::new`])
/// installs the handlers; from then on the two signals no longer end the process by themselves.
///
/// ```no_run
/// use greennet::signal::{self, Signal};
///
/// greennet::run(|| -> std::io::Result<()> {
///     // ... start the work ...
///     match signal::wait_for_shutdown()? {
///         Signal::Interrupt => eprintln!("Ctrl-C: stopping"),
///         _ => eprintln!("asked to stop"),
///     }
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// If the handlers cannot be installed (no descriptors left for the socket pair, no memory for
/// the coroutine that reads it).
pub fn wait_for_shutdown() -> io::Result<Signal> {
    GracefulShutdown::new()?.wait(Duration::ZERO)
}

/// A stop to carry out when a signal arrives: one server's [`ServerHandle::stop`].
type Stop = Box<dyn FnOnce(Duration) -> usize + Send>;

/// The servers to stop when `SIGINT` or `SIGTERM` arrives, and the wait for it.
///
/// Make it before the program reports that it is ready, so that no signal slips between the two;
/// add each server's handle with [`server`](GracefulShutdown::server) and call
/// [`wait`](GracefulShutdown::wait) once everything runs. See the [module documentation](self)
/// for an example.
pub struct GracefulShutdown {
    /// How many signals had arrived when this was made; any more ends the wait.
    seen: usize,
    servers: Vec<Stop>,
}

impl GracefulShutdown {
    /// Installs the signal handlers if this is the first use, and starts counting signals: one
    /// that arrives from now on ends [`wait`](GracefulShutdown::wait), even if it arrives before
    /// `wait` is called. The first use also starts the runtime if it is not running yet (a
    /// coroutine reads the signal socket), so configure the runtime before it.
    ///
    /// # Errors
    ///
    /// As for [`wait_for_shutdown`].
    pub fn new() -> io::Result<GracefulShutdown> {
        install()?;
        Ok(GracefulShutdown {
            seen: RECEIVED.load(Ordering::SeqCst),
            servers: Vec::new(),
        })
    }

    /// Adds a server to stop: a [`StreamServer`](crate::server::StreamServer)'s,
    /// a [`DatagramServer`](crate::server::DatagramServer)'s or an HTTP server's handle.
    pub fn server<A: Send + 'static>(mut self, handle: ServerHandle<A>) -> GracefulShutdown {
        self.servers.push(Box::new(move |grace| handle.stop(grace)));
        self
    }

    /// Waits for `SIGINT` or `SIGTERM`, then stops every server added and returns the signal
    /// (the last one, if several arrived together).
    ///
    /// All servers stop at once, as [`ServerHandle::stop`] describes: each closes its listener,
    /// so new connections are refused; handlers already running get up to `grace` to finish;
    /// those still running then are killed. `wait` returns once every handler has ended. More
    /// signals meanwhile change nothing: the stop runs its course.
    ///
    /// # Errors
    ///
    /// As for [`wait_for_shutdown`], or if the coroutine that reads the signal socket failed (it
    /// logs why).
    pub fn wait(self, grace: Duration) -> io::Result<Signal> {
        let signal = wait_after(self.seen)?;
        let servers = self.servers.len();
        tracing::info!(?signal, servers, ?grace, "shutting down");
        let mut stopping = Vec::new();
        for stop in self.servers {
            // Side by side, so that every listener closes now rather than after the previous
            // server's grace period; without a coroutine to spare, this one stops here.
            let stop = Arc::new(std::sync::Mutex::new(Some(stop)));
            let theirs = stop.clone();
            let spawned = thread::Builder::new()
                .name("greennet-shutdown".into())
                .spawn(move || take(&theirs).map_or(0, |stop| stop(grace)));
            match spawned {
                Ok(handle) => stopping.push(handle),
                Err(_) => log_killed(take(&stop).map_or(0, |stop| stop(grace))),
            }
        }
        for handle in stopping {
            log_killed(handle.join().unwrap_or(0));
        }
        tracing::info!(?signal, servers, "shut down");
        Ok(signal)
    }
}

fn take(stop: &std::sync::Mutex<Option<Stop>>) -> Option<Stop> {
    stop.lock().unwrap_or_else(|e| e.into_inner()).take()
}

fn log_killed(killed: usize) {
    if killed > 0 {
        tracing::warn!(killed, "handlers were still running after the grace period");
    }
}

impl fmt::Debug for GracefulShutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GracefulShutdown")
            .field("servers", &self.servers.len())
            .finish_non_exhaustive()
    }
}

/// How many `SIGINT`s and `SIGTERM`s have arrived; written by the signal handler.
static RECEIVED: AtomicUsize = AtomicUsize::new(0);
/// The number of the last signal that arrived; written by the signal handler.
static LAST: AtomicI32 = AtomicI32::new(0);
/// The write end of the self-pipe (a socket), or -1 before the handlers are installed.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Taken by waiters to check [`RECEIVED`], and by the reader of the self-pipe before it
/// notifies [`ARRIVED`], so that no wake-up falls between a check and a wait.
static STATE: Mutex<Option<io::ErrorKind>> = Mutex::new(None);
static ARRIVED: Condvar = Condvar::new();

/// Installs the handlers and starts the reader of the self-pipe, once per process; later calls
/// return the first call's outcome.
fn install() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), Arc<io::Error>>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| install_once().map_err(Arc::new))
        .clone()
        .map_err(|e| io::Error::new(e.kind(), e))
}

fn install_once() -> io::Result<()> {
    // A socket pair rather than a pipe: the read end is then a greennet socket whose reads park
    // the coroutine. std makes both ends close-on-exec.
    let (reader, writer) = std::os::unix::net::UnixStream::pair()?;
    let reader = UnixStream::from(reader);
    thread::Builder::new()
        .name("greennet-signal".into())
        .spawn(move || read_wake_ups(reader))?;
    // The write end lives as long as the process: the handler may run at any time.
    WAKE_FD.store(writer.into_raw_fd(), Ordering::SeqCst);
    for signum in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero `sigaction` is a valid value of this plain C struct (no handler,
        // no flags, empty mask); the fields that matter are set below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SA_RESTART: other threads' blocking calls carry on instead of failing with EINTR.
        // SA_ONSTACK: run on the alternate signal stack where one is set up, not on a small
        // coroutine stack.
        action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
        // SAFETY: `action` is a valid, initialised struct we own; `on_signal` has the
        // `void (*)(int)` signature that a handler without SA_SIGINFO must have, and does only
        // async-signal-safe things; the old action is not asked for (null is allowed).
        let rc = unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signum, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The signal handler: records the signal and wakes the reader, touching nothing else.
extern "C" fn on_signal(signum: libc::c_int) {
    // SAFETY: __errno_location returns the calling thread's errno, valid for the thread's life;
    // it is saved and restored so that the interrupted code does not see `send`'s errno.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above; reading an int through a valid pointer.
    let saved = unsafe { *errno };
    LAST.store(signum, Ordering::SeqCst);
    RECEIVED.fetch_add(1, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    let byte = 1u8;
    // SAFETY: the sendto system call is async-signal-safe; `byte` is a valid one-byte buffer;
    // `fd` is the write end stored before the handler was installed and never closed; no
    // address. It is made directly rather than through libc's `send`, which the `patch` feature
    // redefines with code that is not safe in a signal handler. MSG_DONTWAIT: a full buffer
    // drops the byte instead of blocking, harmless since unread bytes already wake the reader.
    // MSG_NOSIGNAL: no SIGPIPE, whatever happens.
    unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            (&byte as *const u8).cast::<libc::c_void>(),
            1usize,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::socklen_t,
        );
        *errno = saved;
    }
}

/// The coroutine behind the self-pipe: each time bytes arrive, wakes every waiter.
fn read_wake_ups(mut reader: UnixStream) {
    let mut buf = [0u8; 64];
    loop {
        let failure = match reader.read(&mut buf) {
            Ok(n) if n > 0 => None,
            Ok(_) => Some(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Some(e),
        };
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = failure {
            tracing::error!(error = %e, "greennet::signal: the signal socket failed");
            *state = Some(e.kind());
            drop(state);
            ARRIVED.notify_all();
            return;
        }
        drop(state);
        ARRIVED.notify_all();
    }
}

/// Waits until more than `seen` signals have arrived, and returns the last one.
fn wait_after(seen: usize) -> io::Result<Signal> {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if RECEIVED.load(Ordering::SeqCst) != seen {
            return Ok(Signal::from_raw(LAST.load(Ordering::SeqCst)));
        }
        if let Some(kind) = *state {
            return Err(io::Error::new(
                kind,
                "greennet::signal: the signal socket failed",
            ));
        }
        state = ARRIVED.wait(state).unwrap_or_else(|e| e.into_inner());
    }
}
