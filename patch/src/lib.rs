//! What the patch suite and its benchmark share: a slow HTTP service on plain threads, and a
//! scraper written against ureq, a client crate that knows nothing of greennet.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

/// Runs `body` as a coroutine on a one-worker runtime (started on first use), where a single
/// call that blocked the thread would stop everything; fails, rather than hangs, after `limit`.
///
/// # Panics
///
/// If `body` panics or does not finish within `limit`.
pub fn on_one_worker(limit: Duration, body: impl FnOnce() + Send + 'static) {
    static START: Once = Once::new();
    START.call_once(|| {
        greennet::runtime::Builder::new()
            .workers(1)
            .start()
            .expect("a one-worker runtime");
    });
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        greennet::run(body);
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(limit).is_ok(),
        "blocked: a call held the only worker (or the body panicked)"
    );
}

/// Starts an HTTP/1.1 service on plain OS threads (a thread per connection, std's sockets)
/// that answers `GET /N` with `page N` after `delay`, one request per connection. Plain
/// threads are outside every coroutine, so it behaves the same with the hooks on or off, and
/// it keeps answering while the scraper's coroutines are blocked (without the hooks).
pub fn slow_service(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the slow service");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let page = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/')
                    .to_owned();
                // The rest of the head.
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if header == "\r\n" || header == "\n" => break,
                        Ok(_) => {}
                    }
                }
                std::thread::sleep(delay);
                let body = format!("page {page}");
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    addr
}

/// Fetches `/0` .. `/pages-1` from `addr` with ureq, `concurrency` at a time on a greennet pool,
/// checks every body, and returns how long it took.
///
/// # Panics
///
/// If a fetch fails or a body is wrong.
pub fn scrape(addr: SocketAddr, pages: usize, concurrency: usize) -> Duration {
    let start = Instant::now();
    let pool = greennet::pool::Pool::new(concurrency);
    let bodies = pool.map(0..pages, move |i| {
        let url = format!("http://{addr}/{i}");
        let body = ureq::get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .into_string()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        (i, body)
    });
    for (i, body) in bodies {
        assert_eq!(body, format!("page {i}"));
    }
    start.elapsed()
}
