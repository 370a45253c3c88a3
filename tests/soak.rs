//! A short soak run: the soak example under its mixed load for a few seconds must end with a
//! PASS verdict (no byte lost, no descriptor or memory leak, nothing stuck). `just soak` is the
//! long form.
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/examples.rs"]
mod support;
use support::example_binary;

#[test]
fn a_short_soak_passes() {
    let mut child = Command::new(example_binary("soak"))
        .arg("5")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The run takes about 5 s, plus the time its connections take to drain; its watchdog ends
    // it two minutes late at most. Its few lines of output fit in the pipes meanwhile.
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the soak run did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
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
    let verdict = stdout.lines().last().unwrap_or_default();
    assert!(
        verdict.starts_with("soak: PASS "),
        "{verdict}\n{stdout}\n{stderr}"
    );
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
}
