//! Capacity probe for `benches/capacity.sh`: `bench_park N [may]` parks N greennet coroutines
//! (or, with `may`, N coroutines spawned directly on may with the same stack size) and prints the
//! process's resident memory per parked coroutine, or where spawning was refused.
use std::time::Instant;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn report(n: usize, parked: usize, before: u64, after: u64, spawned: std::time::Duration) {
    if parked == n {
        println!(
            "parked {n} rss_per_coroutine_bytes {} spawn_ns {}",
            (after.saturating_sub(before)) * 1024 / n as u64,
            spawned.as_nanos() / n as u128
        );
    }
}

/// The same measurement on raw may, for comparison: what greennet's layer adds per coroutine.
fn raw_may(n: usize) {
    may::config()
        .set_stack_size(greennet::runtime::DEFAULT_STACK_SIZE / std::mem::size_of::<usize>());
    let parent = may::go!(move || {
        may::go!(|| ()).join().unwrap();
        let mut handles = Vec::with_capacity(n);
        let before = rss_kib();
        let start = Instant::now();
        let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..n {
            let started = started.clone();
            handles.push(may::go!(move || {
                started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                may::coroutine::park();
            }));
        }
        // may queues new coroutines: wait until each has run as far as parking.
        while started.load(std::sync::atomic::Ordering::Relaxed) < n {
            may::coroutine::yield_now();
        }
        let spawned = start.elapsed();
        report(n, n, before, rss_kib(), spawned);
        for h in &handles {
            h.coroutine().unpark();
        }
        handles.into_iter().for_each(|h| h.join().unwrap());
    });
    parent.join().unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|p| p.parse().ok()).expect("N");
    if args.next().as_deref() == Some("may") {
        return raw_may(n);
    }
    greennet::run(move || {
        // Warm the runtime (a first spawn, the pools) so the baseline includes it.
        greennet::thread::spawn(|| ()).join().unwrap();
        let mut handles = Vec::with_capacity(n);
        let before = rss_kib();
        let start = Instant::now();
        for i in 0..n {
            // Each child parks as it starts, and `spawn` returns once it has.
            match greennet::thread::Builder::new().spawn(greennet::thread::park) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    println!("refused after {i}: {e}");
                    break;
                }
            }
        }
        let spawned = start.elapsed();
        report(n, handles.len(), before, rss_kib(), spawned);
        for h in &handles {
            h.thread().unpark();
        }
        handles.into_iter().for_each(|h| h.join().unwrap());
    });
}
