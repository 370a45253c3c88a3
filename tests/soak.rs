//! A short soak run: the soak example under its mixed load for a few seconds must end with a
//! PASS verdict (no byte lost, no descriptor or memory leak, nothing stuck). `just soak` is the
//! long form.
use std::time::Duration;

#[path = "support/examples.rs"]
mod support;
use support::run_to_end;

#[test]
fn a_short_soak_passes() {
    // The run takes about 5 s, plus the time its connections take to drain; its watchdog ends
    // it two minutes late at most.
    let (status, stdout, stderr) = run_to_end("soak", &["5"], Duration::from_secs(180));
    let verdict = stdout.lines().last().unwrap_or_default();
    assert!(
        verdict.starts_with("soak: PASS "),
        "{verdict}\n{stdout}\n{stderr}"
    );
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
}
