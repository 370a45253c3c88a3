//! The scraper example end to end: it serves and fetches its pages, and the pooled run beats the
//! sequential one by far.
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/examples.rs"]
mod support;
use support::example_binary;

/// `digits` digits after the point, and a number.
fn has_decimals(number: &str, digits: usize) -> bool {
    number
        .split_once('.')
        .is_some_and(|(_, d)| d.len() == digits)
        && number.parse::<f64>().is_ok()
}

#[test]
fn the_pooled_scrape_is_much_faster_than_the_sequential_one() {
    let mut child = Command::new(example_binary("scraper"))
        .args(["40", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A few lines of output fit in the pipes, so waiting before reading cannot block the child.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the scraper did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
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
