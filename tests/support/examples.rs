//! For the tests of the `examples` package: where cargo put the example binaries.
#![allow(dead_code)] // each test binary uses only part of this module
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The example binary cargo built next to the running test's own executable (`cargo test` on
/// the `examples` package builds every example first).
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} is not built", path.display());
    path
}

/// A running example, killed when dropped.
pub struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an example server on an ephemeral port (its first argument `0`) and returns it with
/// the address from its first line, `listening on ADDRESS`.
pub fn start(name: &str) -> (Running, String) {
    let mut child = Command::new(example_binary(name))
        .arg("0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    (running, addr)
}

/// Runs an example to its end with `args` and returns its exit status, stdout and stderr;
/// panics if it runs longer than `limit`. For examples whose few lines of output fit in the
/// pipes, so that waiting before reading cannot block the child.
pub fn run_to_end(name: &str, args: &[&str], limit: Duration) -> (ExitStatus, String, String) {
    let mut child = Command::new(example_binary(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the {name} example did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let mut out = child.stdout.take().unwrap();
    out.read_to_string(&mut stdout).unwrap();
    let mut err = child.stderr.take().unwrap();
    err.read_to_string(&mut stderr).unwrap();
    (status, stdout, stderr)
}
