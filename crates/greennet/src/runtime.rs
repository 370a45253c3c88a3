//! The coroutine runtime: how many worker threads run coroutines, how big their stacks are, and
//! whether the blocking monitor watches them.
//!
//! greennet runs on one process-wide may scheduler. It starts the first time anything needs it
//! (`greennet::run`, `#[green::main]`, `thread::spawn`, a socket that has to wait), and its
//! configuration is fixed from then on. Configure it before that, in one of three ways, highest
//! precedence first:
//!
//! 1. in code: [`Builder`], or the options of `#[green::main(workers = 4, stack_size = 65536)]`;
//! 2. in the environment: `GREENNET_WORKERS`, `GREENNET_STACK_SIZE` (bytes), `GREENNET_MONITOR`
//!    (`1` turns the blocking monitor on) and `GREENNET_MAX_BLOCKING_TIME` (milliseconds);
//! 3. the defaults: one worker per available core ([`std::thread::available_parallelism`]),
//!    [`DEFAULT_STACK_SIZE`] bytes of stack per coroutine, and the monitor off (with
//!    [`DEFAULT_MAX_BLOCKING_TIME`] when it is on).
//!
//! Asking for a setting that differs from the running one, once the runtime has started, is an
//! error ([`Builder::start`] returns it; [`Builder::run`] panics with it), never a silent no-op.
//!
//! ```
//! let answer = greennet::runtime::Builder::new()
//!     .stack_size(64 * 1024)
//!     .run(|| 6 * 7);
//! assert_eq!(answer, 42);
//! ```

use std::io;
use std::num::NonZeroUsize;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The coroutine stack size used when neither code nor `GREENNET_STACK_SIZE` sets one: 64 KiB.
///
/// A stack costs only the memory its coroutine touches (the rest is reserved address space), so
/// this is sized for headroom rather than for the common case. Measured with may's stack-usage
/// tracing (an odd stack size in words makes may report the peak): the seed's hello handler
/// (accept, a 1 KiB read, five writes) peaks at 7.9 KB in a release build but 38 KB in a debug
/// build, past may's own 32 KiB default; a panic printed with `RUST_BACKTRACE=1` peaks at 20 KB
/// (release) to 22 KB (debug). 64 KiB covers all of these with room to spare. Raise it for deep
/// recursion or large stack buffers.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

/// The settings the runtime is running with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Worker threads that run coroutines.
    pub workers: usize,
    /// Default coroutine stack size, in bytes.
    pub stack_size: usize,
    /// The blocking monitor's `max_blocking_time` when the monitor is on, `None` when it is off.
    pub monitor: Option<Duration>,
}

/// How long a coroutine may hold its worker without yielding before the blocking monitor
/// reports it, unless `GREENNET_MAX_BLOCKING_TIME` or [`Builder::max_blocking_time`] says
/// otherwise: 100 ms.
pub const DEFAULT_MAX_BLOCKING_TIME: Duration = Duration::from_millis(100);

/// Configures the runtime before it starts.
///
/// Settings left unset come from the environment (`GREENNET_WORKERS`, `GREENNET_STACK_SIZE`) and
/// then from the defaults; see the [module documentation](self).
#[derive(Clone, Debug, Default)]
pub struct Builder {
    workers: Option<usize>,
    stack_size: Option<usize>,
    monitor: Option<bool>,
    max_blocking_time: Option<Duration>,
}

impl Builder {
    /// A builder with nothing set.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Sets the number of worker threads that run coroutines (at least 1).
    pub fn workers(mut self, workers: usize) -> Builder {
        self.workers = Some(workers);
        self
    }

    /// Sets the default stack size of a coroutine, in bytes, as `std::thread::Builder` does.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Turns the blocking monitor on or off (default: off, or `GREENNET_MONITOR=1`).
    ///
    /// On, a thread of the runtime's own checks the workers a few times per
    /// [`max_blocking_time`](Builder::max_blocking_time), and a coroutine that has held its
    /// worker longer than that without yielding (a blocking call greennet does not know, a long
    /// computation) is reported at warn level through `tracing`: its name, id and spawn site,
    /// how long it has held the worker, and the system call the worker is stuck in. Reports are
    /// rate-limited (one per blocking episode, at most 5 a second). Off, it costs one load of a
    /// flag per coroutine switch. See docs/operations.md.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// greennet::runtime::Builder::new()
    ///     .monitor(true)
    ///     .max_blocking_time(Duration::from_millis(50))
    ///     .run(|| {
    ///         // Reported: this holds the worker for 200 ms.
    ///         std::thread::sleep(Duration::from_millis(200));
    ///     });
    /// ```
    pub fn monitor(mut self, on: bool) -> Builder {
        self.monitor = Some(on);
        self
    }

    /// Sets how long a coroutine may hold its worker before the monitor reports it (default
    /// [`DEFAULT_MAX_BLOCKING_TIME`], or `GREENNET_MAX_BLOCKING_TIME` in milliseconds). It
    /// does not turn the monitor on.
    pub fn max_blocking_time(mut self, limit: Duration) -> Builder {
        self.max_blocking_time = Some(limit);
        self
    }

    /// Starts the runtime with these settings, or checks them against the running runtime.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if a setting (here or in the environment) is malformed or zero, and `Other`
    /// if the runtime already runs with a different setting than one set here.
    pub fn start(self) -> io::Result<Config> {
        start(&self)
    }

    /// Starts the runtime (see [`start`](Builder::start)) and runs `f` on it as [`run`] does.
    ///
    /// # Panics
    ///
    /// If the runtime cannot be configured as asked, with the reason; and with `f`'s own panic if
    /// `f` panics.
    pub fn run<F, R>(self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        if let Err(e) = start(&self) {
            panic!("greennet: {e}");
        }
        run(f)
    }
}

/// Runs `f` as a coroutine, waits for it and returns its value; the function form of
/// `#[green::main]`.
///
/// Called on a plain thread, it starts the runtime if needed (configured from the environment and
/// defaults), runs `f` on a coroutine and blocks the thread until `f` returns. Called inside a
/// coroutine, it simply calls `f`. `f` may borrow from the caller, like a scoped thread.
///
/// # Panics
///
/// If `f` panics, `run` panics with the same payload once `f` has unwound (the message is printed
/// once, as for any panicking coroutine). If the runtime cannot start, `run` panics with the
/// reason.
///
/// ```
/// let words = vec!["green", "threads"];
/// let joined = greennet::run(|| words.join(" "));
/// assert_eq!(joined, "green threads");
/// ```
pub fn run<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    if may::coroutine::is_coroutine() {
        return f();
    }
    if let Err(e) = ensure_started() {
        panic!("greennet: {e}");
    }
    // Name the coroutine after the calling thread, so `main`'s body panics as thread 'main' would.
    let mut builder = crate::thread::Builder::new();
    if let Some(name) = std::thread::current().name() {
        builder = builder.name(name.to_owned());
    }
    crate::thread::scope(|s| {
        match builder
            .spawn_scoped(s, f)
            .expect("failed to spawn thread")
            .join()
        {
            Ok(value) => value,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    })
}

/// The running configuration, if the runtime has started.
pub fn config() -> Option<Config> {
    ACTIVE.get().copied()
}

static ACTIVE: OnceLock<Config> = OnceLock::new();

/// Starts the runtime with the environment and defaults, unless it runs already.
pub(crate) fn ensure_started() -> io::Result<Config> {
    match ACTIVE.get() {
        Some(active) => Ok(*active),
        None => start(&Builder::new()),
    }
}

fn start(wanted: &Builder) -> io::Result<Config> {
    static STARTING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(active) = ACTIVE.get() {
        return check_matches(wanted, active).map(|()| *active);
    }
    let config = Config {
        workers: setting(wanted.workers, "GREENNET_WORKERS", "worker threads")?
            .unwrap_or_else(default_workers),
        stack_size: setting(wanted.stack_size, "GREENNET_STACK_SIZE", "stack bytes")?
            .unwrap_or(DEFAULT_STACK_SIZE),
        monitor: monitor_setting(wanted)?,
    };
    may::config()
        .set_workers(config.workers)
        .set_stack_size(stack_words(config.stack_size))
        // may pins worker N to core N by default. Threads std starts are not pinned, and a
        // pinned worker cannot move off a core that another process keeps busy: with a client
        // or a build on the same machine, coroutines were seen to run many times slower
        // pinned than a plain thread beside them. Served HTTP throughput measured the same
        // either way on an otherwise idle machine.
        .set_worker_pin(false);
    crate::thread::install_panic_hook();
    #[cfg(all(feature = "patch", target_os = "linux"))]
    crate::patch::install();
    if let Some(max) = config.monitor {
        crate::monitor::start(max)?;
    }
    tracing::debug!(
        workers = config.workers,
        stack_size = config.stack_size,
        "greennet runtime configured"
    );
    ACTIVE
        .set(config)
        .expect("only set under the STARTING lock");
    Ok(config)
}

fn check_matches(wanted: &Builder, active: &Config) -> io::Result<()> {
    let clash = |what: &str, asked: usize, running: usize| {
        io::Error::other(format!(
            "the runtime already started with {what} = {running}; it cannot change to {asked}. \
             Configure it before the first coroutine, socket wait or `greennet::run`"
        ))
    };
    match (wanted.workers, wanted.stack_size) {
        (Some(w), _) if w != active.workers => return Err(clash("workers", w, active.workers)),
        (_, Some(s)) if s != active.stack_size => {
            return Err(clash("stack_size", s, active.stack_size))
        }
        _ => {}
    }
    let asked_monitor = match (wanted.monitor, wanted.max_blocking_time) {
        (Some(false), _) => Some(None),
        (Some(true), max) => Some(Some(
            max.or(active.monitor).unwrap_or(DEFAULT_MAX_BLOCKING_TIME),
        )),
        (None, Some(max)) if active.monitor.is_some() => Some(Some(max)),
        _ => None,
    };
    match asked_monitor {
        Some(asked) if asked != active.monitor => Err(io::Error::other(format!(
            "the runtime already started with the blocking monitor {}; it cannot change to {}. \
             Configure it before the first coroutine, socket wait or `greennet::run`",
            describe_monitor(active.monitor),
            describe_monitor(asked),
        ))),
        _ => Ok(()),
    }
}

fn describe_monitor(monitor: Option<Duration>) -> String {
    match monitor {
        Some(max) => format!("on (max_blocking_time {max:?})"),
        None => "off".into(),
    }
}

/// The monitor's setting: from the builder, else `GREENNET_MONITOR` and
/// `GREENNET_MAX_BLOCKING_TIME`, else off.
fn monitor_setting(wanted: &Builder) -> io::Result<Option<Duration>> {
    let on = match wanted.monitor {
        Some(on) => on,
        None => match std::env::var("GREENNET_MONITOR") {
            Err(std::env::VarError::NotPresent) => false,
            Ok(text) => match text.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "on" | "yes" => true,
                "0" | "false" | "off" | "no" | "" => false,
                _ => return Err(bad_env("GREENNET_MONITOR", &text, "1 or 0")),
            },
            Err(std::env::VarError::NotUnicode(text)) => {
                return Err(bad_env(
                    "GREENNET_MONITOR",
                    &text.to_string_lossy(),
                    "1 or 0",
                ))
            }
        },
    };
    if !on {
        return Ok(None);
    }
    let max = match wanted.max_blocking_time {
        Some(max) => max,
        None => setting(None, "GREENNET_MAX_BLOCKING_TIME", "milliseconds")?
            .map_or(DEFAULT_MAX_BLOCKING_TIME, |ms| {
                Duration::from_millis(ms as u64)
            }),
    };
    if max.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the runtime builder asks for a max_blocking_time of 0; it must be positive",
        ));
    }
    Ok(Some(max))
}

fn bad_env(var: &str, text: &str, wanted: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{var}={text:?} is not valid: use {wanted}"),
    )
}

/// A setting from code, else from the environment; `None` means "use the default".
fn setting(code: Option<usize>, var: &str, unit: &str) -> io::Result<Option<usize>> {
    let (value, source) = match code {
        Some(v) => (v, "the runtime builder".to_string()),
        None => match std::env::var(var) {
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Ok(text) => match text.trim().parse::<usize>() {
                Ok(v) => (v, var.to_string()),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{var}={text:?} is not a whole number of {unit}"),
                    ))
                }
            },
            Err(std::env::VarError::NotUnicode(text)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{var}={text:?} is not a whole number of {unit}"),
                ))
            }
        },
    };
    if value == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{source} asks for 0 {unit}; it must be at least 1"),
        ));
    }
    Ok(Some(value))
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// may counts stacks in machine words and treats an odd count as a request to trace stack usage
/// (printing it on exit), so round bytes up to an even number of words.
pub(crate) fn stack_words(bytes: usize) -> usize {
    let word = std::mem::size_of::<usize>();
    let words = bytes.div_ceil(word);
    words + (words & 1)
}
