//! Runs the reuseport example's self-test: two worker processes share one port through
//! SO_REUSEPORT, and connections reach both.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/examples.rs"]
mod support;
use support::example_binary;

#[test]
fn workers_share_one_port() {
    let mut child = Command::new(example_binary("reuseport"))
        .args(["--workers", "2", "--requests", "40"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the self-test did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "self-test failed:\n{stdout}");
    assert!(stdout.contains("ok: 2 workers shared the port"), "{stdout}");
    let answered: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("worker "))
        .filter_map(|l| l.split(' ').nth(2)?.parse::<usize>().ok())
        .sum();
    assert_eq!(answered, 40, "{stdout}");
}
