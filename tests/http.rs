//! greennet::http: the server against real clients (curl as a child process, raw sockets for
//! what curl will not send), its limits and timeouts, hostile input, and the client against the
//! server. Every test runs under a watchdog and every read has a time limit, so a hang fails
//! instead of stalling the run; each test starts its own server on a port of its own.
use greennet::http::client::{self, Client};
use greennet::http::header::{HeaderName, HeaderValue};
use greennet::http::{Body, Method, Request, Response, Server, StatusCode};
use greennet::net::TcpStream;
use greennet::server::ServerHandle;
use greennet::thread;
use std::io::{Cursor, Read, Write};
use std::net::SocketAddr;
use std::panic::resume_unwind;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long any one test may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(60);

/// The bound on any single read a test makes.
const READ_LIMIT: Duration = Duration::from_secs(5);

/// Runs `f` in a coroutine on a fresh plain thread and fails if it has not finished in `LIMIT`.
fn watchdog(f: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let runner = std::thread::spawn(move || {
        greennet::run(f);
        drop(done_tx);
    });
    if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(LIMIT) {
        panic!("the test did not finish within {LIMIT:?}");
    }
    runner
        .join()
        .unwrap_or_else(|payload| resume_unwind(payload));
}

/// The streamed body `/stream` answers with.
fn stream_bytes() -> Vec<u8> {
    (0..100_000u32).map(|i| (i % 251) as u8).collect()
}

/// The test application: a few routes that show what the server did with the request.
fn app(req: Request<Body>) -> Response<Body> {
    let peer = *req.extensions().get::<SocketAddr>().unwrap();
    match (req.method().clone(), req.uri().path()) {
        (Method::GET | Method::HEAD, "/") => Response::new(Body::from("hello")),
        (_, "/echo") => Response::new(req.into_body()),
        (_, "/peer") => Response::new(Body::from(format!("{}\n", peer.port()))),
        (_, "/stream") => Response::new(Body::from_reader(Cursor::new(stream_bytes()))),
        (_, "/panic") => panic!("the handler panics on purpose"),
        (_, "/close") => Response::builder()
            .header("connection", "close")
            .body(Body::from("bye"))
            .unwrap(),
        (_, "/slow") => {
            thread::sleep(Duration::from_millis(100));
            Response::new(Body::from("slow"))
        }
        (_, path) => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from(format!("not found: {path}")))
            .unwrap(),
    }
}

/// A server for tests: short timeouts, small limits.
fn test_server() -> Server {
    Server::new(app)
        .peer_addr(true)
        .idle_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_millis(500))
        .max_body(4 * 1024 * 1024)
        .max_headers(20)
        .max_head_size(4096)
        .max_request_line(1024)
}

fn start(server: Server) -> (ServerHandle<SocketAddr>, SocketAddr) {
    let handle = server.bind("127.0.0.1:0").unwrap().start().unwrap();
    let addr = handle.local_addr();
    (handle, addr)
}

fn stop(handle: ServerHandle<SocketAddr>) {
    handle.stop(Duration::from_millis(100));
}

// ---------------------------------------------------------------------------------------------
// curl

struct CurlOutput {
    ok: bool,
    stdout: Vec<u8>,
    stderr: String,
}

impl CurlOutput {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs curl with `args` on the blocking pool (so the workers keep serving) and a 10 s limit.
fn curl(args: &[&str]) -> CurlOutput {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = greennet::blocking(move || {
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .args(&args)
            .output()
            .expect("curl is required for this test (.ci/run installs it)")
    });
    CurlOutput {
        ok: out.status.success(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A file of `len` patterned bytes, unique to this test; removed on drop.
struct TempFile(std::path::PathBuf, Vec<u8>);

impl TempFile {
    fn new(tag: &str, len: usize) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "greennet-http-{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        ));
        let bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        TempFile(path, bytes)
    }

    fn arg(&self) -> String {
        format!("@{}", self.0.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn curl_get_head_and_404() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let out = curl(&["--include", &format!("http://{addr}/")]);
        assert!(out.ok, "{}", out.stderr);
        let text = out.text();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("content-length: 5\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nhello"), "{text}");

        let out = curl(&["--head", &format!("http://{addr}/")]);
        assert!(out.ok, "{}", out.stderr);
        let text = out.text();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("content-length: 5\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n"),
            "a HEAD answer has no body: {text}"
        );

        let out = curl(&["--include", &format!("http://{addr}/missing")]);
        assert!(out.text().starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(out.text().ends_with("not found: /missing"));
        stop(server);
    });
}

#[test]
fn curl_reuses_the_connection() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let url = format!("http://{addr}/peer");
        let out = curl(&["--verbose", "--http1.1", &url, &url, &url]);
        assert!(out.ok, "{}", out.stderr);
        assert!(
            out.stderr.contains("Re-using existing connection"),
            "{}",
            out.stderr
        );
        // All three requests came from the same client port: one connection.
        let ports: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(ports.len(), 3, "{ports:?}");
        assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
        stop(server);
    });
}

#[test]
fn curl_posts_with_content_length_and_chunked() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let url = format!("http://{addr}/echo");
        let out = curl(&["--data-binary", "some posted data", &url]);
        assert!(out.ok, "{}", out.stderr);
        assert_eq!(out.text(), "some posted data");

        let file = TempFile::new("chunked", 300_000);
        let out = curl(&[
            "--verbose",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &file.arg(),
            &url,
        ]);
        assert!(out.ok, "{}", out.stderr);
        assert!(
            out.stderr.contains("Transfer-Encoding: chunked"),
            "{}",
            out.stderr
        );
        assert!(out.stdout == file.1, "the chunked upload came back changed");
        stop(server);
    });
}

#[test]
fn curl_expect_continue_accepted_and_refused() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let url = format!("http://{addr}/echo");
        // Over 1 MiB, curl sends `Expect: 100-continue` by itself.
        let file = TempFile::new("expect", 2 * 1024 * 1024);
        let out = curl(&["--verbose", "--data-binary", &file.arg(), &url]);
        assert!(out.ok, "{}", out.stderr);
        assert!(
            out.stderr.contains("Expect: 100-continue"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("HTTP/1.1 100 Continue"),
            "{}",
            out.stderr
        );
        assert!(out.stdout == file.1, "the upload came back changed");
        stop(server);

        // A server with a smaller limit refuses before the body is sent.
        let (server, addr) = start(test_server().max_body(1000));
        let out = curl(&[
            "--verbose",
            "--include",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &file.arg(),
            &format!("http://{addr}/echo"),
        ]);
        assert!(out.text().starts_with("HTTP/1.1 413 "), "{}", out.text());
        assert!(!out.stderr.contains("100 Continue"), "{}", out.stderr);
        stop(server);
    });
}

#[test]
fn curl_http10_plain_keepalive_and_streamed() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let out = curl(&["--http1.0", "--include", &format!("http://{addr}/")]);
        assert!(out.ok, "{}", out.stderr);
        assert!(
            out.text().starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            out.text()
        );
        assert!(
            out.text().contains("connection: close\r\n"),
            "{}",
            out.text()
        );
        assert!(out.text().ends_with("hello"));

        // A streamed body of unknown length reaches an HTTP/1.0 client delimited by the close.
        let out = curl(&["--http1.0", "--include", &format!("http://{addr}/stream")]);
        assert!(out.ok, "{}", out.stderr);
        let text = out.text();
        assert!(!text.contains("transfer-encoding"), "{text}");
        assert!(out.stdout.ends_with(&stream_bytes()));

        // And chunked to an HTTP/1.1 client.
        let out = curl(&["--verbose", &format!("http://{addr}/stream")]);
        assert!(out.ok, "{}", out.stderr);
        assert!(
            out.stderr.contains("transfer-encoding: chunked"),
            "{}",
            out.stderr
        );
        assert!(out.stdout == stream_bytes());
        stop(server);
    });
}

// ---------------------------------------------------------------------------------------------
// Raw sockets

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(READ_LIMIT)).unwrap();
    s
}

/// One response read from `conn`: its status, its head (lowercase), its body. `None` if the
/// connection closed before a response began. Panics on a read that times out.
fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u16, String, Vec<u8>)> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if fill(conn, buf) == 0 {
            assert!(
                buf.is_empty(),
                "truncated head: {:?}",
                String::from_utf8_lossy(buf)
            );
            return None;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec())
        .unwrap()
        .to_lowercase();
    buf.drain(..head_end);
    let status: u16 = head[9..12].parse().unwrap();
    let field = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_owned)
    };
    let mut body = Vec::new();
    if let Some(len) = field("content-length") {
        let len: usize = len.parse().unwrap();
        while buf.len() < len {
            assert!(fill(conn, buf) > 0, "body cut short");
        }
        body.extend(buf.drain(..len));
    } else if field("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                assert!(fill(conn, buf) > 0, "chunked body cut short");
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
            buf.drain(..line_end + 2);
            while buf.len() < size + 2 {
                assert!(fill(conn, buf) > 0, "chunk cut short");
            }
            body.extend(buf.drain(..size));
            assert_eq!(&buf[..2], b"\r\n");
            buf.drain(..2);
            if size == 0 {
                assert_eq!(&buf[..], b"", "no trailers expected");
                break;
            }
        }
    } else if !head.starts_with("http/1.1 1") && status != 204 && status != 304 {
        while fill(conn, buf) > 0 {}
        body.append(buf);
    }
    Some((status, head, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One read into `buf`; a reset counts as the end. Panics if nothing comes within READ_LIMIT.
fn fill(conn: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 16 * 1024];
    match conn.read(&mut chunk) {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            n
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            panic!("no answer within {READ_LIMIT:?}")
        }
        Err(_) => 0,
    }
}

/// Sends `request` on a fresh connection and returns the status of the answer (`None` for a
/// close without one) and whether the server then closed the connection.
fn exchange(addr: SocketAddr, request: &[u8]) -> (Option<u16>, bool) {
    let mut conn = connect(addr);
    // The server may answer and close before all of a large request is written.
    let _ = conn.write_all(request);
    let mut buf = Vec::new();
    let status = read_response(&mut conn, &mut buf).map(|(s, _, _)| s);
    let closed = buf.is_empty() && fill(&mut conn, &mut buf) == 0;
    (status, closed)
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let mut conn = connect(addr);
        conn.write_all(
            b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond\
              GET /slow HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /third HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
        let mut buf = Vec::new();
        let bodies: Vec<String> = (0..4)
            .map(|_| {
                let (_, _, body) = read_response(&mut conn, &mut buf).unwrap();
                String::from_utf8(body).unwrap()
            })
            .collect();
        assert_eq!(
            bodies,
            ["not found: /first", "second", "slow", "not found: /third"]
        );
        stop(server);
    });
}

#[test]
fn heads_end_at_their_first_empty_line() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let mut conn = connect(addr);
        // Empty lines before a request line are skipped; bare line feeds end lines as CRLF
        // does; a head and the next one may arrive in the same read or split anywhere.
        conn.write_all(b"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        conn.write_all(b"GET /b HTTP/1.1\nHost: x\n\nGET /c HTTP/1.1\r\nHost: x\n\r\n")
            .unwrap();
        conn.write_all(b"GET /d HTTP/1.1\r\nHo").unwrap();
        let mut buf = Vec::new();
        let mut bodies = Vec::new();
        for _ in 0..3 {
            let (_, _, body) = read_response(&mut conn, &mut buf).unwrap();
            bodies.push(String::from_utf8(body).unwrap());
        }
        conn.write_all(b"st: x\r\n\r").unwrap();
        conn.write_all(b"\n").unwrap();
        let (_, _, body) = read_response(&mut conn, &mut buf).unwrap();
        bodies.push(String::from_utf8(body).unwrap());
        assert_eq!(
            bodies,
            [
                "not found: /a",
                "not found: /b",
                "not found: /c",
                "not found: /d"
            ]
        );

        // Empty lines count towards the head's size limit (4096 here), however they arrive.
        let mut flood = Vec::new();
        for _ in 0..1500 {
            flood.extend_from_slice(b"\r\n\r\n");
        }
        flood.extend_from_slice(b"GET /late HTTP/1.1\r\n\r\n");
        assert_eq!(exchange(addr, &flood), (Some(431), true));
        let mut few = b"\r\n\r\n\n\n".to_vec();
        few.extend_from_slice(b"GET /early HTTP/1.1\r\n\r\n");
        assert_eq!(exchange(addr, &few).0, Some(404));
        stop(server);
    });
}

#[test]
fn request_fields_kept_by_the_handler_outlive_the_read_buffer() {
    watchdog(|| {
        // A request's target and field values share the connection's read buffer. A handler
        // that keeps them (here, all of them) must see them unchanged while the connection
        // reads many times that buffer's size of further requests.
        let kept = Arc::new(greennet::sync::Mutex::new(Vec::new()));
        let keeper = kept.clone();
        let server = Server::new(move |req: Request<Body>| {
            let tag = req.headers()["x-tag"].clone();
            keeper.lock().unwrap().push((req.uri().clone(), tag));
            Response::new(Body::empty())
        });
        let (server, addr) = start(server);
        let mut conn = connect(addr);
        let mut buf = Vec::new();
        const REQUESTS: usize = 3000;
        for batch in (0..REQUESTS).collect::<Vec<_>>().chunks(100) {
            let mut requests = Vec::new();
            for i in batch {
                requests.extend_from_slice(
                    format!(
                        "GET /kept/{i}?{} HTTP/1.1\r\nX-Tag: tag-{i:05}\r\n\r\n",
                        "q".repeat(i % 50)
                    )
                    .as_bytes(),
                );
            }
            conn.write_all(&requests).unwrap();
            for _ in batch {
                let (status, _, _) = read_response(&mut conn, &mut buf).unwrap();
                assert_eq!(status, 200);
            }
        }
        let kept = kept.lock().unwrap();
        assert_eq!(kept.len(), REQUESTS);
        for (i, (uri, tag)) in kept.iter().enumerate() {
            assert_eq!(uri.path(), format!("/kept/{i}"));
            assert_eq!(uri.query(), Some("q".repeat(i % 50).as_str()));
            assert_eq!(tag, format!("tag-{i:05}").as_str());
        }
        drop(kept);
        stop(server);
    });
}

#[test]
fn a_request_sees_only_its_own_fields() {
    watchdog(|| {
        // The server hands each response's emptied field map to the next request it parses on
        // that worker. Every response here carries fields of its own (several values under one
        // name among them); every request must see exactly the fields it was sent.
        let server = Server::new(|req: Request<Body>| {
            let mut seen: Vec<String> = req
                .headers()
                .iter()
                .map(|(name, value)| format!("{name}={}", value.to_str().unwrap()))
                .collect();
            seen.sort();
            let mut response = Response::new(Body::from(seen.join(",")));
            let fields = response.headers_mut();
            for i in 0..12 {
                fields.insert(
                    HeaderName::from_bytes(format!("x-answer-{i}").as_bytes()).unwrap(),
                    HeaderValue::from_static("from-a-response"),
                );
            }
            fields.append("x-many", HeaderValue::from_static("one"));
            fields.append("x-many", HeaderValue::from_static("two"));
            response
        });
        let (server, addr) = start(server);
        let mut buf = Vec::new();
        let mut conns: Vec<TcpStream> = (0..4).map(|_| connect(addr)).collect();
        for round in 0..50 {
            for (c, conn) in conns.iter_mut().enumerate() {
                let request = if round % 2 == 0 {
                    format!("GET / HTTP/1.1\r\nHost: h{c}\r\nX-Round: {round}\r\n\r\n")
                } else {
                    format!("GET / HTTP/1.1\r\nX-Round: {round}\r\n\r\n")
                };
                conn.write_all(request.as_bytes()).unwrap();
                let (status, head, body) = read_response(conn, &mut buf).unwrap();
                assert_eq!(status, 200);
                assert!(head.contains("x-many: two"), "{head}");
                let expected = if round % 2 == 0 {
                    format!("host=h{c},x-round={round}")
                } else {
                    format!("x-round={round}")
                };
                assert_eq!(String::from_utf8(body).unwrap(), expected);
            }
        }
        stop(server);
    });
}

#[test]
fn responses_are_dated_unless_the_handler_dates_them() {
    watchdog(|| {
        let (server, addr) = start(Server::new(|req: Request<Body>| {
            let mut response = Response::new(Body::from("x"));
            if req.uri().path() == "/own" {
                response.headers_mut().insert(
                    greennet::http::header::DATE,
                    "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
                );
            }
            response
        }));
        let mut conn = connect(addr);
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /own HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = Vec::new();
        let dates = |head: &str| -> Vec<String> {
            head.lines()
                .filter_map(|l| l.strip_prefix("date: "))
                .map(str::to_owned)
                .collect()
        };
        let (_, head, _) = read_response(&mut conn, &mut buf).unwrap();
        let ours = dates(&head);
        assert_eq!(ours.len(), 1, "{head}");
        // `Thu, 26 nov 2026 18:40:09 gmt` (the head was lowercased): the layout of RFC 9110.
        let date = ours[0].as_bytes();
        assert_eq!(date.len(), 29, "{}", ours[0]);
        assert_eq!(&date[3..5], b", ");
        assert!(ours[0].ends_with(" gmt"));
        let (_, head, _) = read_response(&mut conn, &mut buf).unwrap();
        assert_eq!(dates(&head), ["sun, 06 nov 1994 08:49:37 gmt"]);
        stop(server);
    });
}

#[test]
fn reuse_port_lets_two_servers_share_a_port() {
    watchdog(|| {
        let hello = |_: Request<Body>| Response::new(Body::from("hi"));
        let first = Server::new(hello)
            .reuse_port(true)
            .bind("127.0.0.1:0")
            .unwrap();
        let addr = first.local_addr().unwrap();
        // Without the option the port is taken; with it, a second server binds beside the first.
        let refused = Server::new(hello).bind(addr).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::AddrInUse);
        let second = Server::new(hello).reuse_port(true).bind(addr).unwrap();
        let servers = [first.start().unwrap(), second.start().unwrap()];
        for _ in 0..4 {
            let (status, _) = exchange(
                addr,
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            assert_eq!(status, Some(200));
        }
        for server in servers {
            stop(server);
        }
    });
}

#[test]
fn chunked_response_and_connection_close() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let mut conn = connect(addr);
        conn.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = Vec::new();
        let (status, head, body) = read_response(&mut conn, &mut buf).unwrap();
        assert_eq!(status, 200);
        assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
        assert!(body == stream_bytes());

        // HEAD of a streamed body: the framing header, no body, and the connection goes on.
        conn.write_all(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        while find(&buf, b"\r\n\r\n").is_none() {
            fill(&mut conn, &mut buf);
        }
        let end = find(&buf, b"\r\n\r\n").unwrap() + 4;
        head.extend(buf.drain(..end));
        assert!(String::from_utf8_lossy(&head).contains("transfer-encoding: chunked"));
        let (_, _, body) = read_response(&mut conn, &mut buf).unwrap();
        assert_eq!(body, b"hello");

        // The client's Connection: close: answered, then closed.
        conn.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (status, head, _) = read_response(&mut conn, &mut buf).unwrap();
        assert_eq!(status, 200);
        assert!(head.contains("connection: close\r\n"), "{head}");
        assert_eq!(fill(&mut conn, &mut buf), 0);

        // The handler's Connection: close.
        assert_eq!(
            exchange(addr, b"GET /close HTTP/1.1\r\n\r\n"),
            (Some(200), true)
        );
        stop(server);
    });
}

#[test]
fn http10_keep_alive_only_when_asked() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        assert_eq!(exchange(addr, b"GET / HTTP/1.0\r\n\r\n"), (Some(200), true));

        let mut conn = connect(addr);
        let mut buf = Vec::new();
        for _ in 0..2 {
            conn.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap();
            let (status, head, body) = read_response(&mut conn, &mut buf).unwrap();
            assert_eq!((status, body.as_slice()), (200, &b"hello"[..]));
            assert!(head.contains("connection: keep-alive\r\n"), "{head}");
        }
        stop(server);
    });
}

#[test]
fn default_field_limit_is_a_hundred_fields() {
    watchdog(|| {
        // The defaults, with a handler that counts the fields it was given.
        let server = Server::new(|req: Request<Body>| {
            Response::new(Body::from(req.headers().len().to_string()))
        });
        let (server, addr) = start(server);
        // More fields than fit in the parser's room on the stack (64), but within the limit.
        for count in [63, 64, 65, 99, 100] {
            let fields: String = (0..count).map(|i| format!("X-{i}: v{i}\r\n")).collect();
            let mut conn = connect(addr);
            conn.write_all(format!("GET / HTTP/1.1\r\n{fields}\r\n").as_bytes())
                .unwrap();
            let mut buf = Vec::new();
            let (status, _, body) = read_response(&mut conn, &mut buf).unwrap();
            assert_eq!(
                (status, String::from_utf8(body).unwrap()),
                (200, count.to_string())
            );
        }
        let fields: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        let request = format!("GET / HTTP/1.1\r\n{fields}\r\n");
        assert_eq!(exchange(addr, request.as_bytes()), (Some(431), true));
        stop(server);
    });
}

#[test]
fn limits_are_answered_then_closed() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let long_path = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(2000));
        assert_eq!(exchange(addr, long_path.as_bytes()), (Some(414), true));
        // The request line's limit holds before the line ends, too.
        assert_eq!(
            exchange(addr, "GET /".repeat(400).as_bytes()),
            (Some(414), true)
        );
        let big_field = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(5000));
        assert_eq!(exchange(addr, big_field.as_bytes()), (Some(431), true));
        let many: String = (0..30).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(exchange(addr, many.as_bytes()), (Some(431), true));
        assert_eq!(
            exchange(
                addr,
                b"POST /echo HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nxx"
            ),
            (Some(413), true)
        );
        let big_chunk = format!(
            "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            5 * 1024 * 1024
        );
        assert_eq!(exchange(addr, big_chunk.as_bytes()), (Some(413), true));
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert_eq!(
                exchange(addr, bad),
                (Some(400), true),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            exchange(
                addr,
                b"POST /echo HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\n"
            ),
            (Some(417), true)
        );
        // A body shorter than its length, then the client stops writing: just a close.
        let mut conn = connect(addr);
        conn.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut buf = Vec::new();
        assert_eq!(fill(&mut conn, &mut buf), 0);
        // A handler's panic: 500 and a close, and the server goes on.
        assert_eq!(
            exchange(addr, b"GET /panic HTTP/1.1\r\n\r\n"),
            (Some(500), true)
        );
        assert_eq!(
            exchange(addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
            (Some(200), true)
        );
        stop(server);
    });
}

#[test]
fn idle_connections_are_closed() {
    watchdog(|| {
        let (server, addr) = start(test_server().idle_timeout(Duration::from_millis(200)));
        // Silent from the start.
        let started = Instant::now();
        let mut conn = connect(addr);
        let mut buf = Vec::new();
        assert_eq!(fill(&mut conn, &mut buf), 0);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        // Silent after a request.
        let mut conn = connect(addr);
        conn.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut conn, &mut buf).unwrap().0, 200);
        assert_eq!(fill(&mut conn, &mut buf), 0);
        stop(server);
    });
}

/// A connection waiting idle between requests (a keep-alive client that has its answer) is
/// killed by a stop whose grace runs out, however long its idle timeout: the kill reaches the
/// read the server parks in between requests.
#[test]
fn stop_kills_connections_idle_between_requests() {
    watchdog(|| {
        let (server, addr) = start(test_server().idle_timeout(Duration::from_secs(600)));
        let mut conns: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
        let mut buf = Vec::new();
        for conn in &mut conns {
            for _ in 0..2 {
                conn.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
                assert_eq!(read_response(conn, &mut buf).unwrap().0, 200);
            }
        }
        let started = Instant::now();
        let killed = server.stop(Duration::from_millis(100));
        assert_eq!(killed, 3, "every idle connection should have been killed");
        assert!(started.elapsed() < Duration::from_secs(5));
        for conn in &mut conns {
            assert_eq!(fill(conn, &mut buf), 0, "the connection should be closed");
        }
    });
}

/// A timeout around [`Server::serve_connection`] ends the connection while it waits for its
/// next request, though the server's own idle timeout is far off: the reads between requests
/// honour the timeouts that were active when the connection began.
#[test]
fn a_timeout_around_serve_connection_ends_an_idle_connection() {
    watchdog(|| {
        let listener = greennet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = test_server().idle_timeout(Duration::from_secs(600));
        let serving = thread::spawn(move || {
            let (stream, peer) = listener.accept().unwrap();
            let started = Instant::now();
            let outcome = greennet::timeout(Duration::from_millis(300), || {
                server.serve_connection(stream, peer)
            });
            (outcome.is_err(), started.elapsed())
        });
        let mut conn = connect(addr);
        let mut buf = Vec::new();
        conn.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut conn, &mut buf).unwrap().0, 200);
        assert_eq!(
            fill(&mut conn, &mut buf),
            0,
            "the connection should be closed"
        );
        let (timed_out, took) = serving.join().unwrap();
        assert!(timed_out, "serve_connection returned before its timeout");
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    });
}

#[test]
fn slowloris_is_cut_off_while_others_are_served() {
    watchdog(|| {
        let (server, addr) = start(test_server().read_timeout(Duration::from_millis(400)));
        let done = Arc::new(AtomicBool::new(false));
        let good = {
            let done = done.clone();
            thread::spawn(move || {
                let mut served = 0;
                while !done.load(SeqCst) {
                    let url = format!("http://{addr}/");
                    let answer = greennet::timeout(READ_LIMIT, || client::get(&url))
                        .expect("the good client waited too long")
                        .unwrap();
                    assert_eq!(answer.status(), 200);
                    served += 1;
                    thread::sleep(Duration::from_millis(20));
                }
                served
            })
        };
        let started = Instant::now();
        let mut conn = connect(addr);
        let mut writer = conn.try_clone().unwrap();
        let trickler = thread::spawn(move || {
            let trickle =
                b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            for byte in trickle.iter() {
                if writer.write_all(&[*byte]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let mut buf = Vec::new();
        let answer = read_response(&mut conn, &mut buf);
        let took = started.elapsed();
        assert!(matches!(answer, None | Some((408, _, _))), "{answer:?}");
        assert!(took < Duration::from_secs(2), "cut off only after {took:?}");
        assert!(took >= Duration::from_millis(300), "cut off after {took:?}");
        trickler.kill();
        let _ = trickler.join();
        done.store(true, SeqCst);
        let served = good.join().unwrap();
        assert!(served >= 5, "the good client was served {served} times");
        stop(server);
    });
}

/// xorshift64*, so the hostile input is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn hostile_inputs(seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for _ in 0..6 {
        let n = (rng.next() % 3000) as usize + 1;
        inputs.push(rng.bytes(n));
    }
    // Random bytes after a valid start, and a valid request cut at a random place.
    let good = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    for _ in 0..4 {
        let mut v = b"GET / HTTP/1.1\r\n".to_vec();
        let n = (rng.next() % 500) as usize;
        v.extend(rng.bytes(n));
        inputs.push(v);
        let cut = (rng.next() as usize) % good.len();
        inputs.push(good[..cut].to_vec());
    }
    inputs.push(format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(100_000)).into_bytes());
    inputs.push(format!("GET /{} HTTP/1.1\r\n\r\n", "z".repeat(100_000)).into_bytes());
    inputs.push(
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n"
            .to_vec(),
    );
    inputs.push(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n".to_vec());
    inputs.push(
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;\xff\xfe\r\nabcde\r\nq\r\n"
            .to_vec(),
    );
    inputs.push(b"POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort".to_vec());
    inputs.push(b"\r\n\r\n\r\n".to_vec());
    inputs.push(b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n".to_vec());
    inputs.push(b"G\x00T / HTTP/1.1\r\n\r\n".to_vec());
    inputs
}

#[test]
fn hostile_input_never_hangs_nor_stops_the_server() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let done = Arc::new(AtomicBool::new(false));
        let good = {
            let done = done.clone();
            thread::spawn(move || {
                let mut served = 0;
                while !done.load(SeqCst) {
                    let answer = greennet::timeout(READ_LIMIT, || {
                        client::post(&format!("http://{addr}/echo"), "still here")
                    })
                    .expect("the good client waited too long")
                    .unwrap();
                    assert_eq!(answer.into_body().into_string().unwrap(), "still here");
                    served += 1;
                }
                served
            })
        };
        let attackers: Vec<_> = (0..40u64)
            .map(|i| {
                thread::spawn(move || {
                    for input in hostile_inputs(0x9E37_79B9_7F4A_7C15 ^ i) {
                        let mut conn = connect(addr);
                        let _ = conn.write_all(&input);
                        // A close of the writing side: the server now sees the end of what it gets.
                        let _ = conn.shutdown(std::net::Shutdown::Write);
                        let mut buf = Vec::new();
                        // Read to the end: every answer must be an error status, then a close.
                        loop {
                            if fill(&mut conn, &mut buf) == 0 {
                                break;
                            }
                        }
                        if !buf.is_empty() {
                            let text = String::from_utf8_lossy(&buf);
                            let status = text.get(9..12).unwrap_or("");
                            // Inputs that happen to start with a valid request may get it answered
                            // first; what matters is the end: no hang, no garbage.
                            assert!(
                                text.starts_with("HTTP/1.1 ")
                                    && ["400", "408", "413", "414", "431", "200", "404", "417"]
                                        .contains(&status),
                                "{text}"
                            );
                        }
                    }
                })
            })
            .collect();
        for a in attackers {
            a.join().unwrap();
        }
        done.store(true, SeqCst);
        assert!(good.join().unwrap() > 0);
        stop(server);
    });
}

// ---------------------------------------------------------------------------------------------
// The client

#[test]
fn the_client_against_the_server() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let base = format!("http://{addr}");
        let answer = client::get(&format!("{base}/")).unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["content-length"], "5");
        assert_eq!(answer.into_body().into_string().unwrap(), "hello");

        // A chunked response.
        let answer = client::get(&format!("{base}/stream")).unwrap();
        assert_eq!(answer.headers()["transfer-encoding"], "chunked");
        assert!(answer.into_body().into_bytes().unwrap() == stream_bytes());

        // A streamed (chunked) upload, and a HEAD.
        let request = Request::put(format!("{base}/echo"))
            .body(Body::from_reader(Cursor::new(stream_bytes())))
            .unwrap();
        let answer = client::request(request).unwrap();
        assert!(answer.into_body().into_bytes().unwrap() == stream_bytes());
        let request = Request::head(format!("{base}/"))
            .body(Body::empty())
            .unwrap();
        let answer = client::request(request).unwrap();
        assert_eq!(answer.headers()["content-length"], "5");
        assert_eq!(answer.into_body().known_len(), Some(0));

        // A close-delimited response, from a server of our own.
        let listener = greennet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let raw_addr = listener.local_addr().unwrap();
        let raw = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
                .unwrap();
        });
        let answer = client::get(&format!("http://{raw_addr}/")).unwrap();
        assert_eq!(answer.into_body().into_string().unwrap(), "until the end");
        raw.join().unwrap();

        // A server that declares more than the client's limit is refused before its body is
        // read; one that streams more without declaring it is cut off at the limit.
        let listener = greennet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let raw_addr = listener.local_addr().unwrap();
        let raw = thread::spawn(move || {
            for head in [
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                    client::MAX_BODY + 1
                ),
                "HTTP/1.0 200 OK\r\n\r\n".to_string(),
            ] {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).unwrap();
                s.write_all(head.as_bytes()).unwrap();
                let chunk = vec![b'x'; 1 << 20];
                // Stops when the client gives up and closes.
                while s.write_all(&chunk).is_ok() {}
            }
        });
        for _ in 0..2 {
            let e = client::get(&format!("http://{raw_addr}/")).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
            assert!(e.to_string().contains("MAX_BODY"), "{e}");
        }
        raw.join().unwrap();

        // Bad URLs.
        for bad in ["https://example.com/", "example.com", "http:///x", "::"] {
            let e = client::get(bad).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
        stop(server);
    });
}

#[test]
fn slow_handlers_do_not_hold_up_each_other() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let started = Instant::now();
        let calls: Vec<_> = (0..20)
            .map(|_| thread::spawn(move || client::get(&format!("http://{addr}/slow")).unwrap()))
            .collect();
        for c in calls {
            assert_eq!(c.join().unwrap().status(), 200);
        }
        // Twenty 100 ms handlers, concurrently: far less than the 2 s they would take in turn.
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "{took:?}");
        stop(server);
    });
}

/// The peer port the test app's `/peer` route reports: which connection carried a request.
fn peer_port(response: Response<Body>) -> u16 {
    assert_eq!(response.status(), 200);
    response
        .into_body()
        .into_string()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_client_keeps_connections_and_one_off_calls_do_not() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let peer = format!("http://{addr}/peer");
        let keeper = Client::new();
        let first = peer_port(keeper.get(&peer).unwrap());
        for _ in 0..5 {
            assert_eq!(peer_port(keeper.get(&peer).unwrap()), first);
        }
        // A body in between, and HEAD (no body to read) keep the connection too.
        let echoed = keeper.post(&format!("http://{addr}/echo"), "kept").unwrap();
        assert_eq!(echoed.into_body().into_string().unwrap(), "kept");
        let head = Request::head(format!("http://{addr}/"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(keeper.request(head).unwrap().status(), 200);
        assert_eq!(peer_port(keeper.get(&peer).unwrap()), first);
        assert_eq!(keeper.idle_connections(), 1);

        // A response with `Connection: close` ends the connection it came on.
        assert_eq!(
            keeper
                .get(&format!("http://{addr}/close"))
                .unwrap()
                .status(),
            200
        );
        assert_eq!(keeper.idle_connections(), 0);
        let second = peer_port(keeper.get(&peer).unwrap());
        assert_ne!(second, first);

        // The one-off functions use a connection each.
        let a = peer_port(client::get(&peer).unwrap());
        let b = peer_port(client::get(&peer).unwrap());
        assert_ne!(a, b);

        // A pool of none keeps nothing.
        let none = Client::builder().max_idle_per_host(0).build();
        let a = peer_port(none.get(&peer).unwrap());
        let b = peer_port(none.get(&peer).unwrap());
        assert_ne!(a, b);
        assert_eq!(none.idle_connections(), 0);
        stop(server);
    });
}

#[test]
fn many_coroutines_share_one_client() {
    watchdog(|| {
        let (server, addr) = start(test_server());
        let shared = Client::builder().max_idle_per_host(4).build();
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let shared = shared.clone();
                thread::spawn(move || {
                    for j in 0..5 {
                        let text = format!("{i}-{j}");
                        let echoed = shared
                            .post(&format!("http://{addr}/echo"), text.clone())
                            .unwrap();
                        assert_eq!(echoed.into_body().into_string().unwrap(), text);
                    }
                })
            })
            .collect();
        for c in calls {
            c.join().unwrap();
        }
        let idle = shared.idle_connections();
        assert!((1..=4).contains(&idle), "{idle} idle connections kept");
        stop(server);
    });
}

/// Reads one request head (and a body of `content-length` bytes) from `s`; `None` at the end
/// of the stream.
fn read_raw_request(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if fill(s, &mut buf) == 0 {
            return None;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    while buf.len() < head_end + length {
        assert!(fill(s, &mut buf) > 0, "the request body was cut short");
    }
    Some(head)
}

#[test]
fn a_kept_connection_the_server_closed_is_replaced() {
    watchdog(|| {
        // A server that answers one request per connection with keep-alive, then closes
        // without answering the next: as a server whose idle timeout ends a kept connection
        // just as the client reuses it.
        let listener = greennet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let raw_addr = listener.local_addr().unwrap();
        let (seen_tx, seen_rx) = greennet::sync::mpsc::channel::<String>();
        let raw = thread::spawn(move || {
            for answer in ["one", "two", "three"] {
                let (mut s, _) = listener.accept().unwrap();
                s.set_read_timeout(Some(READ_LIMIT)).unwrap();
                let head = read_raw_request(&mut s).unwrap();
                seen_tx.send(head).unwrap();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{answer}",
                    answer.len()
                );
                s.write_all(response.as_bytes()).unwrap();
                // The next request on this connection is read, then the connection closes
                // unanswered.
                if let Some(head) = read_raw_request(&mut s) {
                    seen_tx.send(head).unwrap();
                }
            }
        });
        let client = Client::new();
        let url = format!("http://{raw_addr}/");
        let body = |r: Response<Body>| r.into_body().into_string().unwrap();
        assert_eq!(body(client.get(&url).unwrap()), "one");
        // GET is safe to repeat: sent on the kept connection, closed unanswered, sent again on
        // a new one.
        assert_eq!(body(client.get(&url).unwrap()), "two");
        let heads: Vec<String> = (0..3).map(|_| seen_rx.recv().unwrap()).collect();
        assert!(
            heads.iter().all(|h| h.starts_with("GET / HTTP/1.1")),
            "{heads:?}"
        );
        // POST is not: the same thing ends in an error, and no new connection is made for it.
        let e = client.post(&url, "once only").unwrap_err();
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        );
        assert!(seen_rx.recv().unwrap().starts_with("POST / HTTP/1.1"));
        // The next request gets a new connection and its answer.
        assert_eq!(body(client.get(&url).unwrap()), "three");
        // Closing the client's kept connection ends the server's last read.
        drop(client);
        raw.join().unwrap();
    });
}
