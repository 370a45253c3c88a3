//! greennet's tracing: the events and spans it emits for coroutines, servers and name
//! resolution, and silence when no subscriber is installed.
use greennet::net::{TcpListener, TcpStream};
use greennet::server::StreamServer;
use greennet::thread;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::{span, Event, Metadata, Subscriber};

/// One event as the subscriber saw it: its level, its fields as text, and the spans entered on
/// its thread when it happened (empty outside any span).
#[derive(Clone, Debug)]
struct Seen {
    level: tracing::Level,
    text: String,
    span: String,
}

/// A subscriber that keeps every event, and tracks entered spans per OS thread.
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Seen>>>,
    spans: Arc<Mutex<HashMap<u64, String>>>,
    next: Arc<AtomicU64>,
}

thread_local! {
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?}; ", field.name(), value));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("greennet") || metadata.target() == "tracing"
    }
    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut text = Text(format!("{}: ", attrs.metadata().name()));
        attrs.record(&mut text);
        self.spans.lock().unwrap().insert(id, text.0);
        span::Id::from_u64(id)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        // Every span entered on this thread, innermost last.
        let span = ENTERED.with(|e| {
            let spans = self.spans.lock().unwrap();
            e.borrow()
                .iter()
                .filter_map(|id| spans.get(id).cloned())
                .collect::<Vec<_>>()
                .join(" > ")
        });
        self.events.lock().unwrap().push(Seen {
            level: *event.metadata().level(),
            text: text.0,
            span,
        });
    }
    fn enter(&self, id: &span::Id) {
        ENTERED.with(|e| e.borrow_mut().push(id.into_u64()));
    }
    fn exit(&self, id: &span::Id) {
        ENTERED.with(|e| {
            let mut e = e.borrow_mut();
            if let Some(at) = e.iter().rposition(|&x| x == id.into_u64()) {
                e.remove(at);
            }
        });
    }
}

impl Capture {
    fn find(&self, needle: &str) -> Vec<Seen> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.text.contains(needle))
            .cloned()
            .collect()
    }
}

const QUIET_CHILD: &str = "GREENNET_TRACING_QUIET_CHILD";

/// Runs the library's noisy paths (spawns, a panic, a kill, a server, a host-name lookup).
fn exercise() {
    greennet::run(|| {
        // A coroutine that panics, and one that is killed.
        let _ = thread::Builder::new()
            .name("doomed".into())
            .spawn(|| panic!("on purpose"))
            .unwrap()
            .join();
        let sleeper = thread::spawn(|| thread::sleep(Duration::from_secs(60)));
        sleeper.kill();
        let _ = sleeper.join();
        // A server that takes one connection and stops.
        let server = StreamServer::bind("127.0.0.1:0", |mut stream: TcpStream, _| {
            let mut byte = [0u8; 1];
            if stream.read_exact(&mut byte).is_ok() {
                let _ = stream.write_all(&byte);
            }
        })
        .unwrap()
        .start()
        .unwrap();
        let mut client = TcpStream::connect(server.local_addr()).unwrap();
        client.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        client.read_exact(&mut byte).unwrap();
        server.stop(Duration::from_secs(1));
        // A host name, resolved on the blocking pool.
        let listener = TcpListener::bind("localhost:0").unwrap();
        drop(listener);
    });
}

/// The subscriber every test of this binary shares (the global default), and a one-worker
/// runtime, so that coroutines share one OS thread and a span leaking from one to another
/// would show.
fn setup() -> &'static Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        tracing::subscriber::set_global_default(capture.clone()).unwrap();
        greennet::runtime::Builder::new()
            .workers(1)
            .start()
            .unwrap();
        capture
    })
}

#[test]
fn coroutines_servers_and_lookups_are_traced() {
    let capture = setup();
    exercise();

    for (needle, level) in [
        ("coroutine spawned", tracing::Level::TRACE),
        ("coroutine started", tracing::Level::TRACE),
        ("coroutine panicked", tracing::Level::DEBUG),
        ("coroutine killed", tracing::Level::DEBUG),
        ("coroutine exited", tracing::Level::TRACE),
        ("stream server started", tracing::Level::DEBUG),
        ("connection accepted", tracing::Level::TRACE),
        ("server stopping", tracing::Level::DEBUG),
        ("server stopped", tracing::Level::DEBUG),
        ("resolving a host name", tracing::Level::DEBUG),
    ] {
        let seen = capture.find(needle);
        assert!(!seen.is_empty(), "no {needle:?} event");
        assert!(
            seen.iter().all(|s| s.level == level),
            "{needle:?}: {seen:?}"
        );
    }
    let panicked = capture
        .find("coroutine panicked")
        .into_iter()
        .find(|s| s.text.contains("on purpose"))
        .expect("the panic's event");
    // Events inside a coroutine carry its span, with its name.
    assert!(
        panicked.span.contains("coroutine") && panicked.span.contains("doomed"),
        "{panicked:?}"
    );
    let lookup = &capture.find("resolving a host name")[0];
    assert!(lookup.text.contains("localhost:0"), "{lookup:?}");
}

/// A coroutine's span is left while it is parked: another coroutine that runs meanwhile on the
/// same worker thread is not inside it, and the first is inside its own again once it resumes.
#[test]
fn a_parked_coroutine_lends_its_span_to_nobody() {
    let capture = setup();
    greennet::run(|| {
        let (parked_tx, parked_rx) = greennet::sync::mpsc::channel::<()>();
        let (go_tx, go_rx) = greennet::sync::mpsc::channel::<()>();
        let first = thread::Builder::new()
            .name("span-first".into())
            .spawn(move || {
                parked_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                tracing::debug!(target: "greennet", "marker: first, resumed");
            })
            .unwrap();
        parked_rx.recv().unwrap();
        tracing::debug!(target: "greennet", "marker: main");
        let second = thread::Builder::new()
            .name("span-second".into())
            .spawn(|| tracing::debug!(target: "greennet", "marker: second"))
            .unwrap();
        second.join().unwrap();
        go_tx.send(()).unwrap();
        first.join().unwrap();
    });
    let second = capture.find("marker: second");
    assert_eq!(second.len(), 1);
    assert!(second[0].span.contains("span-second"), "{:?}", second[0]);
    assert!(!second[0].span.contains("span-first"), "{:?}", second[0]);
    let main = capture.find("marker: main");
    assert_eq!(main.len(), 1);
    assert!(!main[0].span.contains("span-first"), "{:?}", main[0]);
    let first = capture.find("marker: first, resumed");
    assert_eq!(first.len(), 1);
    assert!(first[0].span.contains("span-first"), "{:?}", first[0]);
}

#[test]
fn nothing_is_printed_without_a_subscriber() {
    if std::env::var_os(QUIET_CHILD).is_some() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "quiet_child", "--nocapture", "--test-threads=1"])
        .env(QUIET_CHILD, "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The one thing std itself prints: the deliberate panic's message.
    let unexpected: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.is_empty())
        .filter(|l| {
            !l.contains("on purpose") && !l.contains("panicked at") && !l.contains("RUST_BACKTRACE")
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "printed without a subscriber: {unexpected:#?}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// The child's half of `nothing_is_printed_without_a_subscriber`.
#[test]
fn quiet_child() {
    if std::env::var_os(QUIET_CHILD).is_none() {
        return;
    }
    exercise();
}
