//! The scraper example end to end: it serves and fetches its pages, and the pooled run beats the
//! sequential one by far.
use std::time::Duration;

#[path = "support/examples.rs"]
mod support;
use support::run_to_end;

/// `digits` digits after the point, and a number.
fn has_decimals(number: &str, digits: usize) -> bool {
    number
        .split_once('.')
        .is_some_and(|(_, d)| d.len() == digits)
        && number.parse::<f64>().is_ok()
}

#[test]
fn the_pooled_scrape_is_much_faster_than_the_sequential_one() {
    let (status, stdout, stderr) = run_to_end("scraper", &["40", "20"], Duration::from_secs(60));
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");

    let last = stdout.lines().last().unwrap_or_default();
    let parts = last
        .strip_prefix("sequential: ")
        .and_then(|rest| rest.split_once(" s, pooled: "))
        .and_then(|(sequential, rest)| {
            let (pooled, speedup) = rest.split_once(" s, speedup: ")?;
            Some((sequential, pooled, speedup.strip_suffix('x')?))
        });
    let Some((sequential, pooled, speedup)) = parts else {
        panic!("unexpected last line {last:?}\n{stdout}");
    };
    assert!(has_decimals(sequential, 2), "{last:?}");
    assert!(has_decimals(pooled, 2), "{last:?}");
    assert!(has_decimals(speedup, 1), "{last:?}");
    // 40 pages at 20 ms: at least 0.8 s in sequence.
    assert!(sequential.parse::<f64>().unwrap() >= 0.8, "{last:?}");
    let speedup: f64 = speedup.parse().unwrap();
    assert!(speedup > 5.0, "the pool barely helped: {last:?}");
}
