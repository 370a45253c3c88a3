//! The TLS example end to end: 50 concurrent rustls clients against its rustls server, both on
//! greennet sockets, with a certificate made when it starts.
use std::process::Command;

#[path = "support/examples.rs"]
mod support;
use support::example_binary;

#[test]
fn the_tls_example_echoes_for_every_client() {
    let out = Command::new(example_binary("tls_echo"))
        .arg("50")
        .output()
        .expect("run the tls_echo example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("tls echo: 50 clients, "), "{last}");
}
