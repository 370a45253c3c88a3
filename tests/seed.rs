//! The seed pair: `green_hello.rs` must stay `threaded_baseline.rs` with only its `use` lines and
//! `#[green::main]` changed, and both must answer a real HTTP client on loopback.
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/examples.rs"]
mod support;
use support::start;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The file without the lines a migration is allowed to change.
fn migration_invariant(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("use ") && l.trim() != "#[green::main]")
        .map(str::to_owned)
        .collect()
}

#[test]
fn green_hello_is_the_baseline_with_only_use_lines_and_the_attribute_changed() {
    let dir = examples_dir();
    let baseline = migration_invariant(&dir.join("threaded_baseline.rs"));
    let green = migration_invariant(&dir.join("green_hello.rs"));
    assert_eq!(
        baseline, green,
        "the two seed examples differ beyond the migration"
    );
    let green_text = std::fs::read_to_string(dir.join("green_hello.rs")).unwrap();
    assert!(green_text.contains("\n#[green::main]\nfn main()"));
    assert!(green_text.contains("use greennet::net::"));
}

fn curl(addr: &str) -> String {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--include", "--max-time", "10"])
        .arg(format!("http://{addr}/"))
        .output()
        .expect("curl is required for this test (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn serves_hello(name: &str) {
    let (_server, addr) = start(name);
    for _ in 0..20 {
        let answer = curl(&addr);
        assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer:?}");
        assert!(
            answer.contains("Content-Type: text/plain\r\n"),
            "{answer:?}"
        );
        assert!(answer.contains("Content-Length: 5\r\n"), "{answer:?}");
        assert!(answer.ends_with("\r\n\r\nhello"), "{answer:?}");
    }
}

#[test]
fn threaded_baseline_answers_curl() {
    serves_hello("threaded_baseline");
}

#[test]
fn green_hello_answers_curl() {
    serves_hello("green_hello");
}

#[test]
fn green_hello_serves_many_clients_at_once() {
    let (_server, addr) = start("green_hello");
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut c = std::net::TcpStream::connect(&addr).unwrap();
                c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .unwrap();
                c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let mut answer = String::new();
                c.read_to_string(&mut answer).unwrap();
                answer
            })
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap().ends_with("\r\n\r\nhello"));
    }
}
