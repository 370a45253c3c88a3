//! The blocking monitor: reports a coroutine that holds its worker thread too long.
//!
//! A coroutine that calls a blocking function greennet does not know (a std socket, a file read,
//! `std::thread::sleep`, a long computation) keeps its worker from running any other coroutine.
//! Nothing fails; everything on that worker just stops. The monitor makes that visible: switched
//! on, it notes which coroutine each worker runs and since when, and a thread of its own checks
//! the workers a few times per `max_blocking_time`. A coroutine found holding its worker longer
//! than that gets one warning through `tracing` per episode, naming it (name, id, where it was
//! spawned), how long it has held the worker so far, which worker, and what that thread is doing
//! in the kernel (from `/proc`: the system call it is blocked in, if any).
//!
//! How it knows: every place greennet parks a coroutine (socket waits, the sync primitives,
//! sleep, park, yield, join) goes through [`switch`], which marks the worker free before the
//! coroutine parks and marks it busy with this coroutine when it resumes. So the monitor sees
//! coroutines that park only through greennet; one that parks through may's own API directly is
//! taken for one that never yields (a false report), and a coroutine may started without greennet
//! is not seen at all.
//!
//! Switched off (the default), the cost is one relaxed load of a flag at each park.

use std::cell::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::thread::Thread;

/// Whether the monitor runs; set once, when the runtime starts.
static ON: AtomicBool = AtomicBool::new(false);

/// Whether any coroutine has a span a subscriber wanted; set once, by the first.
static SPANS: AtomicBool = AtomicBool::new(false);

may::coroutine_local!(static SPAN: std::cell::RefCell<Option<tracing::Span>> = std::cell::RefCell::new(None));

/// At most this many reports a second, however many workers are blocked.
const REPORTS_PER_SECOND: u32 = 5;

/// One worker thread's record of what it runs.
struct Slot {
    /// The worker's thread id in the kernel, for `/proc/self/task/<tid>`.
    tid: i64,
    /// The worker's thread name, if it has one.
    thread_name: Option<String>,
    /// Bumped at every change: odd while a coroutine runs, even while the worker is free.
    seq: AtomicU64,
    /// When the running coroutine was resumed, in nanoseconds since [`epoch`].
    since: AtomicU64,
    /// The running coroutine.
    who: Mutex<Option<Thread>>,
}

/// Every worker's slot, in the order workers first ran a greennet coroutine.
static SLOTS: Mutex<Vec<Arc<Slot>>> = Mutex::new(Vec::new());

thread_local! {
    static SLOT: OnceCell<Arc<Slot>> = const { OnceCell::new() };
}

/// The instant the monitor measures from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// This worker thread's slot, registered on first use. Never inlined: [`switch`] calls it
/// before and after a coroutine waits, and the coroutine may come back on another worker
/// thread, whose slot must be looked up afresh rather than through an address computed before.
#[inline(never)]
fn with_slot(f: impl FnOnce(&Slot)) {
    SLOT.with(|cell| {
        let slot = cell.get_or_init(|| {
            let slot = Arc::new(Slot {
                tid: current_tid(),
                thread_name: std::thread::current().name().map(str::to_owned),
                seq: AtomicU64::new(0),
                since: AtomicU64::new(0),
                who: Mutex::new(None),
            });
            SLOTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(slot.clone());
            slot
        });
        f(slot)
    })
}

fn current_tid() -> i64 {
    // SAFETY: gettid takes no arguments, cannot fail and touches no memory.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Turns the monitor on with `max_blocking_time` and starts its thread. Called once, by the
/// runtime's start.
pub(crate) fn start(max_blocking_time: Duration) -> std::io::Result<()> {
    epoch();
    std::thread::Builder::new()
        .name("greennet-monitor".into())
        .spawn(move || watch(max_blocking_time))?;
    ON.store(true, Ordering::SeqCst);
    tracing::debug!(?max_blocking_time, "greennet blocking monitor started");
    Ok(())
}

/// Runs `park`, a call that may switch the current coroutine out, with the worker marked free
/// while it is away.
#[inline]
pub(crate) fn switch<R>(park: impl FnOnce() -> R) -> R {
    let monitor = ON.load(Ordering::Relaxed);
    let spans = SPANS.load(Ordering::Relaxed);
    if !(monitor || spans) || !may::coroutine::is_coroutine() {
        return park();
    }
    if monitor {
        leave();
    }
    // The coroutine's span is left while it is parked, so that whatever else runs on this
    // thread meanwhile is not taken to be inside it.
    let span = if spans {
        SPAN.with(|s| s.borrow().clone())
    } else {
        None
    };
    if let Some(span) = &span {
        span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
    }
    let result = park();
    if let Some(span) = &span {
        span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
    }
    if monitor {
        enter();
    }
    result
}

/// Makes `span` the current coroutine's own span: entered now and until the returned guard is
/// dropped, except while the coroutine is parked. A disabled span (no subscriber wants it)
/// costs nothing further.
pub(crate) fn coroutine_span(span: tracing::Span) -> Option<InSpan> {
    if span.is_disabled() {
        return None;
    }
    SPANS.store(true, Ordering::Relaxed);
    span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
    SPAN.with(|s| *s.borrow_mut() = Some(span.clone()));
    Some(InSpan(span))
}

/// Leaves the coroutine's span when dropped.
pub(crate) struct InSpan(tracing::Span);

impl Drop for InSpan {
    fn drop(&mut self) {
        SPAN.with(|s| s.borrow_mut().take());
        self.0.with_subscriber(|(id, dispatch)| dispatch.exit(id));
    }
}

/// The current coroutine has started or resumed on this worker.
pub(crate) fn enter() {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let me = crate::thread::current();
    with_slot(|slot| {
        *slot.who.lock().unwrap_or_else(|e| e.into_inner()) = Some(me);
        slot.since
            .store(nanos_since_epoch(Instant::now()), Ordering::SeqCst);
        // Odd: running; a new odd number if it was odd already (an enter without a leave).
        let seq = slot.seq.load(Ordering::SeqCst);
        slot.seq.store(
            if seq & 1 == 0 { seq + 1 } else { seq + 2 },
            Ordering::SeqCst,
        );
    });
}

/// The current coroutine is about to park, or has ended: its worker is free.
pub(crate) fn leave() {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    with_slot(|slot| {
        let seq = slot.seq.load(Ordering::SeqCst);
        if seq & 1 == 1 {
            slot.seq.store(seq + 1, Ordering::SeqCst);
        }
        slot.who.lock().unwrap_or_else(|e| e.into_inner()).take();
    });
}

/// The monitor thread: looks at every worker a few times per `max`.
fn watch(max: Duration) {
    let interval = (max / 4).clamp(Duration::from_millis(2), Duration::from_millis(250));
    // The episode (slot, seq) last reported, per slot.
    let mut reported: Vec<u64> = Vec::new();
    let mut budget = Budget::new();
    loop {
        std::thread::sleep(interval);
        let slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        reported.resize(slots.len(), u64::MAX);
        let now = nanos_since_epoch(Instant::now());
        for (slot, last) in slots.iter().zip(reported.iter_mut()) {
            let seq = slot.seq.load(Ordering::SeqCst);
            if seq & 1 == 0 || seq == *last {
                continue;
            }
            let since = slot.since.load(Ordering::SeqCst);
            let who = slot.who.lock().unwrap_or_else(|e| e.into_inner()).clone();
            // Still the same episode once everything is read?
            if slot.seq.load(Ordering::SeqCst) != seq {
                continue;
            }
            let held = Duration::from_nanos(now.saturating_sub(since));
            if held < max {
                continue;
            }
            *last = seq;
            if let Some(suppressed) = budget.take() {
                report(slot, who.as_ref(), held, max, suppressed);
            }
        }
    }
}

/// The rate limit: [`REPORTS_PER_SECOND`], counting what it holds back.
struct Budget {
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    /// `Some(reports held back since the last one)` if a report may go out now.
    fn take(&mut self) -> Option<u64> {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.used = 0;
        }
        if self.used >= REPORTS_PER_SECOND {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

fn report(slot: &Slot, who: Option<&Thread>, held: Duration, max: Duration, suppressed: u64) {
    let name = who.and_then(Thread::name).unwrap_or("<unnamed>");
    let id = who.map(|t| format!("{:?}", t.id())).unwrap_or_default();
    let spawned_at = who
        .and_then(Thread::spawned_at)
        .map(|l| l.to_string())
        .unwrap_or_else(|| "unknown".into());
    let worker = slot.thread_name.as_deref().map_or_else(
        || "a worker thread".to_owned(),
        |n| format!("worker thread '{n}'"),
    );
    let mut doing = kernel_state(slot.tid);
    if let Some(stack) = kernel_stack(slot.tid) {
        doing.push_str(&format!("; kernel stack: {stack}"));
    }
    tracing::warn!(
        coroutine = name,
        id = %id,
        spawned_at = %spawned_at,
        held_ms = held.as_millis() as u64,
        worker = %worker,
        tid = slot.tid,
        kernel = %doing,
        suppressed,
        "greennet monitor: coroutine '{name}' ({id}, spawned at {spawned_at}) has held {worker} \
         (tid {}) for {} ms without yielding (limit {} ms); the worker is {doing}. \
         Every other coroutine on that worker is stalled: move the blocking call into \
         greennet::blocking, or use greennet's own I/O",
        slot.tid,
        held.as_millis(),
        max.as_millis(),
    );
}

/// What a thread is doing, as far as the kernel tells: the system call it is blocked in (with
/// the kernel function it sleeps in), or that it is running in user space.
fn kernel_state(tid: i64) -> String {
    let base = format!("/proc/self/task/{tid}");
    let syscall = std::fs::read_to_string(format!("{base}/syscall")).unwrap_or_default();
    let wchan = std::fs::read_to_string(format!("{base}/wchan"))
        .ok()
        .filter(|w| !w.is_empty() && w != "0");
    let first = syscall.split_whitespace().next().unwrap_or("");
    match first.parse::<i64>() {
        Ok(-1) => "blocked outside a system call".into(),
        Ok(nr) => {
            let mut text = format!("in system call {} ({nr})", syscall_name(nr));
            if let Some(wchan) = wchan {
                text.push_str(&format!(", sleeping in {wchan}"));
            }
            text
        }
        Err(_) if first == "running" => "running (computing, or between system calls)".into(),
        Err(_) => "in an unknown state (/proc not readable)".into(),
    }
}

/// The innermost frames of a thread's kernel stack, innermost first, where the kernel shows it
/// (`/proc/<pid>/task/<tid>/stack` is readable by root only): where in the kernel a blocked
/// worker waits. The thread's own (user-space) stack cannot be taken safely from another
/// thread while it runs.
fn kernel_stack(tid: i64) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/stack")).ok()?;
    let frames: Vec<&str> = text
        .lines()
        .filter_map(|line| {
            let frame = line.split_once("] ").map_or(line, |(_, f)| f);
            let name = frame.split('+').next()?.trim();
            (!name.is_empty()).then_some(name)
        })
        .take(6)
        .collect();
    (!frames.is_empty()).then(|| frames.join(" < "))
}

/// The names of the system calls a blocked worker is most often found in.
fn syscall_name(nr: i64) -> &'static str {
    // The calls only x86-64 has (AArch64 has just their newer forms, listed below).
    #[cfg(target_arch = "x86_64")]
    match nr {
        libc::SYS_poll => return "poll",
        libc::SYS_select => return "select",
        libc::SYS_epoll_wait => return "epoll_wait",
        libc::SYS_accept => return "accept",
        _ => {}
    }
    match nr {
        libc::SYS_read => "read",
        libc::SYS_write => "write",
        libc::SYS_ppoll => "ppoll",
        libc::SYS_pselect6 => "pselect6",
        libc::SYS_nanosleep => "nanosleep",
        libc::SYS_clock_nanosleep => "clock_nanosleep",
        libc::SYS_futex => "futex (a lock or condition variable)",
        libc::SYS_epoll_pwait => "epoll_pwait",
        libc::SYS_connect => "connect",
        libc::SYS_accept4 => "accept4",
        libc::SYS_recvfrom => "recvfrom",
        libc::SYS_recvmsg => "recvmsg",
        libc::SYS_sendto => "sendto",
        libc::SYS_sendmsg => "sendmsg",
        libc::SYS_openat => "openat",
        libc::SYS_fsync => "fsync",
        libc::SYS_wait4 => "wait4",
        libc::SYS_flock => "flock",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_holds_back_and_counts() {
        let mut budget = Budget::new();
        for _ in 0..REPORTS_PER_SECOND {
            assert_eq!(budget.take(), Some(0));
        }
        assert_eq!(budget.take(), None);
        assert_eq!(budget.take(), None);
        budget.window -= Duration::from_secs(2);
        assert_eq!(budget.take(), Some(2));
    }

    #[test]
    fn a_sleeping_thread_is_seen_in_its_system_call() {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let sleeper = std::thread::spawn(move || {
            tid_tx.send(current_tid()).unwrap();
            std::thread::sleep(Duration::from_millis(1000));
        });
        let tid = tid_rx.recv().unwrap();
        // Give it a moment to enter the sleep; the check below retries rather than trusting it.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut state = kernel_state(tid);
        while !state.contains("sleep") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            state = kernel_state(tid);
        }
        sleeper.join().unwrap();
        assert!(state.contains("nanosleep"), "{state}");
    }
}
