//! Capacity probe for `benches/capacity.sh`: `bench_park N` parks N greennet coroutines and
//! prints the process's resident memory per parked coroutine, or where spawning was refused.
use std::time::Instant;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("N");
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
        let after = rss_kib();
        let parked = handles.len();
        if parked == n {
            println!(
                "parked {n} rss_per_coroutine_bytes {} spawn_ns {}",
                (after - before) * 1024 / n as u64,
                spawned.as_nanos() / n as u128
            );
        }
        for h in &handles {
            h.thread().unpark();
        }
        handles.into_iter().for_each(|h| h.join().unwrap());
    });
}
