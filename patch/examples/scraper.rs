//! The patch benchmark's program: ureq, a client crate that knows nothing of greennet, fetches
//! pages from a slow local service, many at a time on a greennet pool. Built with the `patch`
//! feature (the default here), each fetch parks its coroutine; built with
//! `--no-default-features`, each blocks a worker thread. benches/patch.sh times both.
//!
//! Usage: `scraper [PAGES] [CONCURRENCY] [DELAY_MS]` (default 100 100 100).
use std::time::Duration;

#[green::main]
fn main() {
    let arg = |n: usize, default: u64| {
        std::env::args()
            .nth(n)
            .map(|a| a.parse().expect("a whole number"))
            .unwrap_or(default)
    };
    let (pages, concurrency, delay) = (arg(1, 100) as usize, arg(2, 100) as usize, arg(3, 100));
    let addr = greennet_patch_tests::slow_service(Duration::from_millis(delay));
    let took = greennet_patch_tests::scrape(addr, pages, concurrency);
    println!(
        "patch {}: {pages} pages, {concurrency} at a time, {delay} ms each: {} ms",
        if cfg!(feature = "patch") { "on" } else { "off" },
        took.as_millis()
    );
}
