//! The blocking monitor, on a one-worker runtime with the monitor on. The runtime is configured
//! once per process, so this file is a test binary of its own, with a single test.
use greennet::thread;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::{span, Event, Level, Metadata, Subscriber};

/// A tracing subscriber that keeps the text of every warning and error.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    fn monitor_reports(&self) -> Vec<String> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|text| text.contains("greennet monitor"))
            .cloned()
            .collect()
    }
}

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?}; ", field.name(), value));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

#[test]
fn the_monitor_names_the_coroutine_that_blocks_its_worker_and_nothing_else() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    let max = Duration::from_millis(100);
    let config = greennet::runtime::Builder::new()
        .workers(1)
        .monitor(true)
        .max_blocking_time(max)
        .start()
        .unwrap();
    assert_eq!(config.monitor, Some(max));
    // The same settings again are accepted; a different one is refused.
    assert!(greennet::runtime::Builder::new()
        .monitor(true)
        .start()
        .is_ok());
    assert!(greennet::runtime::Builder::new()
        .monitor(false)
        .start()
        .is_err());

    let (done_tx, done_rx) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        greennet::run(scenario);
        done_tx.send(()).unwrap();
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(60)).is_ok(),
        "the scenario hung"
    );
    runner.join().unwrap();

    let reports = capture.monitor_reports();
    assert_eq!(
        reports.len(),
        1,
        "one report for one blocking episode: {reports:#?}"
    );
    let report = &reports[0];
    for expected in [
        "coroutine=\"the-blocker\"",
        "spawned_at=tests/monitor.rs:",
        // std::thread::sleep is nanosleep(2) or clock_nanosleep(2) underneath.
        "nanosleep",
        "without yielding",
    ] {
        assert!(
            report.contains(expected),
            "{expected:?} missing from {report}"
        );
    }
    let held: u64 = report
        .split("held_ms=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no held_ms in {report}"));
    assert!((100..=500).contains(&held), "held_ms={held}");
}

/// On the one worker: a coroutine that works for a long time but yields often, an idle spell,
/// and then a coroutine that blocks the worker in `std::thread::sleep` for 500 ms while another
/// keeps a 5 ms beat.
fn scenario() {
    // Busy for 400 ms, but yielding every millisecond or so: never reported.
    let busy = thread::Builder::new()
        .name("polite".into())
        .spawn(|| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(400) {
                let spin = Instant::now();
                while spin.elapsed() < Duration::from_micros(500) {
                    std::hint::spin_loop();
                }
                thread::yield_now();
            }
        })
        .unwrap();
    busy.join().unwrap();
    // Every coroutine parked for 300 ms: an idle worker is not a blocked one.
    thread::sleep(Duration::from_millis(300));

    let beat = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (ticking_tx, ticking_rx) = greennet::sync::mpsc::channel();
    let ticker = {
        let (beat, stop) = (beat.clone(), stop.clone());
        thread::Builder::new()
            .name("ticker".into())
            .spawn(move || {
                let mut ticks = 0;
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(5));
                    beat.lock().unwrap().push(Instant::now());
                    ticks += 1;
                    if ticks == 3 {
                        let _ = ticking_tx.send(());
                    }
                }
            })
            .unwrap()
    };
    ticking_rx.recv().unwrap();
    let blocker = thread::Builder::new()
        .name("the-blocker".into())
        .spawn(|| {
            let started = Instant::now();
            std::thread::sleep(Duration::from_millis(500));
            (started, Instant::now())
        })
        .unwrap();
    let (blocked_from, blocked_to) = blocker.join().unwrap();
    // The ticker carries on once the worker is free again.
    let resumed = loop {
        if let Some(&last) = beat.lock().unwrap().last() {
            if last > blocked_to {
                break last;
            }
        }
        thread::sleep(Duration::from_millis(1));
    };
    stop.store(true, Ordering::SeqCst);
    ticker.join().unwrap();
    assert!(resumed > blocked_to);
    // And nothing ticked while the worker was blocked.
    let during = beat
        .lock()
        .unwrap()
        .iter()
        .filter(|&&t| t > blocked_from + Duration::from_millis(20) && t < blocked_to)
        .count();
    assert_eq!(during, 0, "the worker was not blocked after all");
}
