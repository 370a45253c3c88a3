//! The web_app example as a user meets it: started as a program, asked with curl.
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/examples.rs"]
mod support;
use support::start;

/// curl's output (the head included) for `args`, within 10 s.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--include", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is required for this test (.ci/run installs it)");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn web_app_answers_curl() {
    let (_app, addr) = start("web_app");

    let index = curl(&[&format!("http://{addr}/")]);
    assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
    assert!(index.ends_with("\r\n\r\nhello"), "{index}");

    let user = curl(&[&format!("http://{addr}/users/42")]);
    assert!(
        user.contains(r#"{"id": "42", "name": "user 42"}"#),
        "{user}"
    );

    let echo = curl(&[
        "--data-binary",
        "round trip",
        &format!("http://{addr}/echo"),
    ]);
    assert!(echo.ends_with("\r\n\r\nround trip"), "{echo}");

    let missing = curl(&[&format!("http://{addr}/nowhere")]);
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");

    // Ten /slow requests at once, each waiting ~100 ms on the upstream: together well under
    // the second they would take one after another.
    let url = format!("http://{addr}/slow");
    let started = Instant::now();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || curl(&[&url]))
        })
        .collect();
    for call in calls {
        let answer = call.join().unwrap();
        assert!(answer.ends_with("upstream says: all good\n"), "{answer}");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(900), "{took:?}");
}
