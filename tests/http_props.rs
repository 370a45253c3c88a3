//! Property tests of the HTTP server's request parsing, against a real `greennet::http::Server`
//! on 127.0.0.1 spoken to over plain std sockets:
//! - whatever bytes arrive (arbitrary ones, or requests built from the grammar and then
//!   corrupted: bytes flipped, inserted, dropped, oversized fields, bad chunk sizes, bodies
//!   shorter or longer than their `Content-Length`), the server answers with well-formed
//!   responses of the statuses it documents, or closes, within a bound, and a good request on a
//!   fresh connection afterwards still gets 200;
//! - valid requests with random header fields and bodies, sent with `Content-Length` or chunked,
//!   in random chunks and random TCP writes, several on one connection, come back exactly from
//!   `/echo`.
//!
//! Each property runs 64 cases by default; `PROPTEST_CASES=20000` makes a long run. A failing
//! case is shrunk to a small one and saved in `tests/http_props.proptest-regressions`, which
//! proptest then replays first.
use greennet::http::{Body, Request, Response, Server, StatusCode};
use proptest::prelude::*;
use proptest::sample::Index;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The server's limits, small so that generated requests reach them.
const MAX_BODY: usize = 64 * 1024;
const MAX_HEADERS: usize = 20;
const MAX_HEAD: usize = 4096;
const MAX_LINE: usize = 1024;
/// The server's idle and read timeouts: what a request left unfinished waits for.
const SERVER_TIMEOUT: Duration = Duration::from_millis(300);

/// How long one exchange may take before it counts as a hang: the server's timeouts and its
/// lingering close (2 s) with plenty of room for a busy machine.
const HANG: Duration = Duration::from_secs(10);

/// The statuses the server may answer with: the app's 200 and 404, 100 Continue, and the
/// refusals the server documents.
const ALLOWED: [u16; 9] = [100, 200, 400, 404, 408, 413, 414, 417, 431];

/// The cases each property runs: 64, unless PROPTEST_CASES says otherwise.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    config
}

/// `/` says hello; `/echo` answers with the request body and, in `x-fields`, how many header
/// fields the request had.
fn app(req: Request<Body>) -> Response<Body> {
    match req.uri().path() {
        "/" => Response::new(Body::from("hello")),
        "/echo" => {
            let fields = req.headers().len();
            Response::builder()
                .header("x-fields", fields)
                .body(req.into_body())
                .unwrap()
        }
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("not found"))
            .unwrap(),
    }
}

/// The address of the server every test of this file shares, started on first use. Its handle
/// is dropped, which leaves it serving until the process ends.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        greennet::run(|| {
            Server::new(app)
                .idle_timeout(SERVER_TIMEOUT)
                .read_timeout(SERVER_TIMEOUT)
                .max_body(MAX_BODY)
                .max_headers(MAX_HEADERS)
                .max_head_size(MAX_HEAD)
                .max_request_line(MAX_LINE)
                .bind("127.0.0.1:0")
                .unwrap()
                .start()
                .unwrap()
                .local_addr()
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Talking to the server

/// Sends `pieces` (one write each, `pause` between them) from a thread of its own, then
/// half-closes if `half_close`, while this thread reads until the server closes. Returns all
/// the server sent, or why the exchange failed (a hang among them).
fn exchange(pieces: Vec<Vec<u8>>, pause: Duration, half_close: bool) -> Result<Vec<u8>, String> {
    let conn = TcpStream::connect(server()).map_err(|e| format!("connect: {e}"))?;
    conn.set_nodelay(true).unwrap();
    conn.set_read_timeout(Some(HANG)).unwrap();
    conn.set_write_timeout(Some(HANG)).unwrap();
    let mut writing = conn.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 && !pause.is_zero() {
                std::thread::sleep(pause);
            }
            // The server may refuse and stop reading early; what it answered is still checked.
            if writing.write_all(piece).is_err() {
                return;
            }
        }
        if half_close {
            let _ = writing.shutdown(Shutdown::Write);
        }
    });
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0; 16 * 1024];
    let result = loop {
        match (&conn).read(&mut buf) {
            Ok(0) => break Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Err(format!(
                    "hang: nothing for {HANG:?}, after {} bytes: {:?}",
                    got.len(),
                    String::from_utf8_lossy(&got)
                ));
            }
            Err(e) => break Err(format!("read after {} bytes: {e}", got.len())),
        }
        if start.elapsed() > HANG {
            break Err(format!("hang: still open after {HANG:?}"));
        }
    };
    drop(conn);
    writer.join().unwrap();
    result
}

/// One response as the server sent it.
#[derive(Debug)]
struct Answer {
    status: u16,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits what the server sent into responses, checking that each is well-formed: a status
/// line `HTTP/1.1 NNN reason`, fields `name: value`, and (except for 100) one `content-length`
/// and a body of that length. Nothing may follow the last.
fn answers(mut bytes: &[u8]) -> Result<Vec<Answer>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let show = || String::from_utf8_lossy(bytes).into_owned();
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("a response head without its end: {:?}", show()))?;
        let head = std::str::from_utf8(&bytes[..end])
            .map_err(|_| format!("a response head that is not UTF-8: {:?}", show()))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .filter(|rest| rest.len() > 4 && rest.as_bytes()[3] == b' ')
            .and_then(|rest| rest[..3].parse().ok())
            .ok_or_else(|| format!("a malformed status line {status_line:?}"))?;
        let mut fields = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(": ")
                .ok_or_else(|| format!("a malformed field {line:?}"))?;
            fields.push((name.to_owned(), value.to_owned()));
        }
        bytes = &bytes[end + 4..];
        let mut answer = Answer {
            status,
            fields,
            body: Vec::new(),
        };
        if status != 100 {
            let lengths: Vec<&str> = answer
                .fields
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.as_str())
                .collect();
            let [length] = lengths[..] else {
                return Err(format!("not one content-length: {head:?}"));
            };
            let length: usize = length
                .parse()
                .map_err(|_| format!("a malformed content-length: {head:?}"))?;
            if bytes.len() < length {
                return Err(format!("a body cut short: {head:?}"));
            }
            answer.body = bytes[..length].to_vec();
            bytes = &bytes[length..];
        }
        out.push(answer);
    }
    Ok(out)
}

/// What any input may get: responses of allowed statuses, every refusal the last of them.
fn check_any_answer(sent: &[u8], got: Result<Vec<u8>, String>) -> Result<(), TestCaseError> {
    let sent = String::from_utf8_lossy(sent);
    let got = got.map_err(|e| TestCaseError::fail(format!("{e}\nsent: {sent:?}")))?;
    let answers = answers(&got).map_err(|e| TestCaseError::fail(format!("{e}\nsent: {sent:?}")))?;
    for (i, answer) in answers.iter().enumerate() {
        prop_assert!(
            ALLOWED.contains(&answer.status),
            "status {}\nsent: {sent:?}",
            answer.status
        );
        let refusal = !matches!(answer.status, 100 | 200 | 404);
        prop_assert!(
            !refusal || i == answers.len() - 1,
            "an answer after a refusal: {answers:?}\nsent: {sent:?}"
        );
    }
    Ok(())
}

/// A good request on a fresh connection gets 200.
fn check_still_serving() -> Result<(), TestCaseError> {
    let request = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec();
    let got = exchange(vec![request], Duration::ZERO, false)
        .map_err(|e| TestCaseError::fail(format!("the good request after: {e}")))?;
    let answers = answers(&got).map_err(TestCaseError::fail)?;
    prop_assert_eq!(answers.len(), 1);
    prop_assert_eq!(answers[0].status, 200);
    prop_assert_eq!(&answers[0].body, b"hello");
    Ok(())
}

/// `bytes` cut at the `splits` points, for separate writes.
fn split(bytes: &[u8], splits: &[Index]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = splits.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

// ---------------------------------------------------------------------------------------------
// Requests from the grammar

fn method() -> impl Strategy<Value = &'static str> {
    // No HEAD: its answers carry a content-length without a body, which `answers` cannot tell.
    prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/echo".to_owned()),
        Just("/".to_owned()),
        "/[a-zA-Z0-9._~%-]{0,20}(/[a-z0-9]{0,8}){0,3}(\\?[a-z0-9=&]{0,10})?",
    ]
}

/// A field name that means nothing to the server.
fn field_name() -> impl Strategy<Value = String> {
    "[xX]-[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,15}"
}

fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[!-~]([ \t!-~]{0,40}[!-~])?"]
}

fn fields() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((field_name(), field_value()), 0..10)
}

/// Bodies: mostly small, some up to 20 KB.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..64),
        1 => prop::collection::vec(any::<u8>(), 0..20_000),
    ]
}

/// How a request's body is framed.
#[derive(Clone, Debug)]
enum Framing {
    /// Neither `Content-Length` nor `Transfer-Encoding`.
    None,
    /// `Content-Length`, off by this much from the body's real length.
    Length(i64),
    /// Chunked, cut at these points; the size line of one chunk replaced by junk.
    Chunked {
        cuts: Vec<Index>,
        upper: bool,
        junk: Option<(Index, String)>,
    },
    /// Both `Content-Length` and chunked.
    Both,
    /// A `Content-Length` value that is not a plain length.
    Declared(String),
}

fn chunk_junk() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-fA-F]{16,20}",
        "-[0-9]{1,3}",
        "[0-9a-f]{1,3}[ -~]{1,5}",
        "[g-zG-Z]{1,4}",
        Just(String::new()),
        "[0-9a-f]{1,3} *;[ -~]{0,10}",
    ]
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        2 => Just(Framing::None),
        3 => prop_oneof![4 => Just(0i64), 1 => -3i64..=3].prop_map(Framing::Length),
        3 => (
            prop::collection::vec(any::<Index>(), 0..6),
            any::<bool>(),
            prop::option::weighted(0.3, (any::<Index>(), chunk_junk())),
        )
            .prop_map(|(cuts, upper, junk)| Framing::Chunked { cuts, upper, junk }),
        1 => Just(Framing::Both),
        1 => prop_oneof![
            "[0-9]{6,25}",
            "[+-][0-9]{1,4}",
            "[0-9]{1,3}, ?[0-9]{1,3}",
            "[ -~]{0,8}",
        ]
        .prop_map(Framing::Declared),
    ]
}

/// The body in chunks cut at `cuts`, then the last chunk and maybe a trailer.
fn chunked(body: &[u8], cuts: &[Index], upper: bool, junk: &Option<(Index, String)>) -> Vec<u8> {
    let pieces = split(body, cuts);
    let junk_at = junk.as_ref().map(|(i, s)| (i.index(pieces.len() + 1), s));
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().chain([&Vec::new()]).enumerate() {
        match junk_at {
            Some((at, junk)) if at == i => out.extend_from_slice(junk.as_bytes()),
            _ if upper => out.extend_from_slice(format!("{:X}", piece.len()).as_bytes()),
            _ => out.extend_from_slice(format!("{:x}", piece.len()).as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(piece);
        if !piece.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Something too large for one of the server's limits.
#[derive(Clone, Debug)]
enum Oversize {
    Path(usize),
    Field(usize),
    Fields(usize),
    Body(usize),
}

fn oversize() -> impl Strategy<Value = Oversize> {
    prop_oneof![
        (MAX_LINE - 20..MAX_LINE * 3).prop_map(Oversize::Path),
        (MAX_HEAD - 100..MAX_HEAD * 2).prop_map(Oversize::Field),
        (MAX_HEADERS - 2..MAX_HEADERS * 2).prop_map(Oversize::Fields),
        (MAX_BODY - 10..MAX_BODY + 5000).prop_map(Oversize::Body),
    ]
}

/// A request from the grammar, before corruption.
#[derive(Clone, Debug)]
struct Spec {
    method: &'static str,
    path: String,
    http10: bool,
    fields: Vec<(String, String)>,
    expect: Option<String>,
    body: Vec<u8>,
    framing: Framing,
    oversize: Option<Oversize>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        method(),
        path(),
        prop::bool::weighted(0.2),
        fields(),
        prop::option::weighted(
            0.15,
            prop_oneof![Just("100-continue".to_owned()), "[a-z0-9-]{0,12}"],
        ),
        body(),
        framing(),
        prop::option::weighted(0.2, oversize()),
    )
        .prop_map(
            |(method, path, http10, fields, expect, body, framing, oversize)| Spec {
                method,
                path,
                http10,
                fields,
                expect,
                body,
                framing,
                oversize,
            },
        )
}

fn encode(spec: &Spec) -> Vec<u8> {
    let mut body = spec.body.clone();
    let mut path = spec.path.clone();
    let mut fields = spec.fields.clone();
    match spec.oversize {
        Some(Oversize::Path(n)) => path.extend(std::iter::repeat_n('p', n)),
        Some(Oversize::Field(n)) => fields.push(("x-big".into(), "v".repeat(n))),
        Some(Oversize::Fields(n)) => {
            fields.extend((0..n).map(|i| (format!("x-f{i}"), i.to_string())));
        }
        Some(Oversize::Body(n)) => body = vec![b'b'; n],
        None => {}
    }
    let mut out = format!(
        "{} {path} HTTP/1.{}\r\nhost: x\r\n",
        spec.method,
        if spec.http10 { 0 } else { 1 }
    )
    .into_bytes();
    for (name, value) in &fields {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if let Some(expect) = &spec.expect {
        out.extend_from_slice(format!("expect: {expect}\r\n").as_bytes());
    }
    let encoded = match &spec.framing {
        Framing::None => body,
        Framing::Length(delta) => {
            let n = (body.len() as i64 + delta).max(0);
            out.extend_from_slice(format!("content-length: {n}\r\n").as_bytes());
            body
        }
        Framing::Chunked { cuts, upper, junk } => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            chunked(&body, cuts, *upper, junk)
        }
        Framing::Both => {
            out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            chunked(&body, &[], false, &None)
        }
        Framing::Declared(value) => {
            out.extend_from_slice(format!("content-length: {value}\r\n").as_bytes());
            body
        }
    };
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&encoded);
    out
}

/// A change to the bytes of a request.
#[derive(Clone, Debug)]
enum Corruption {
    Flip(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    /// A run of one byte, to push a line or the head past a limit.
    Run(Index, u8, usize),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let byte = prop_oneof![
        Just(b'\r'),
        Just(b'\n'),
        Just(b'\0'),
        Just(b' '),
        Just(b':'),
        Just(b'\t'),
        Just(0x7f),
        Just(0xff),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<Index>(), 1..=255u8).prop_map(|(i, mask)| Corruption::Flip(i, mask)),
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Corruption::Insert(i, b)),
        any::<Index>().prop_map(Corruption::Delete),
        any::<Index>().prop_map(Corruption::Truncate),
        (any::<Index>(), byte, 1..6000usize).prop_map(|(i, b, n)| Corruption::Run(i, b, n)),
    ]
}

fn corrupt(bytes: &mut Vec<u8>, corruptions: &[Corruption]) {
    for c in corruptions {
        if bytes.is_empty() {
            return;
        }
        match *c {
            Corruption::Flip(ref i, mask) => {
                let at = i.index(bytes.len());
                bytes[at] ^= mask;
            }
            Corruption::Insert(ref i, b) => bytes.insert(i.index(bytes.len() + 1), b),
            Corruption::Delete(ref i) => {
                bytes.remove(i.index(bytes.len()));
            }
            Corruption::Truncate(ref i) => bytes.truncate(i.index(bytes.len())),
            Corruption::Run(ref i, b, n) => {
                let at = i.index(bytes.len() + 1);
                bytes.splice(at..at, std::iter::repeat_n(b, n));
            }
        }
    }
}

/// A valid request to `/echo`, and what it must get back.
#[derive(Clone, Debug)]
struct EchoRequest {
    fields: Vec<(String, String)>,
    continue_100: bool,
    body: Vec<u8>,
    chunked: Option<(Vec<Index>, bool)>,
}

fn echo_request() -> impl Strategy<Value = EchoRequest> {
    (
        fields(),
        prop::bool::weighted(0.1),
        body(),
        prop::option::of((prop::collection::vec(any::<Index>(), 0..8), any::<bool>())),
    )
        .prop_map(|(fields, continue_100, body, chunked)| EchoRequest {
            fields,
            continue_100,
            body,
            chunked,
        })
}

impl EchoRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"POST /echo HTTP/1.1\r\nhost: x\r\n");
        for (name, value) in &self.fields {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if self.continue_100 {
            out.extend_from_slice(b"expect: 100-continue\r\n");
        }
        match &self.chunked {
            None => {
                out.extend_from_slice(
                    format!("content-length: {}\r\n\r\n", self.body.len()).as_bytes(),
                );
                out.extend_from_slice(&self.body);
            }
            Some((cuts, upper)) => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                out.extend_from_slice(&chunked(&self.body, cuts, *upper, &None));
            }
        }
    }

    /// The header fields the server must count: the generated ones, `host`, the framing field
    /// and `expect`.
    fn field_count(&self) -> usize {
        self.fields.len() + 2 + usize::from(self.continue_100)
    }
}

// ---------------------------------------------------------------------------------------------
// The properties

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes, alone or after a valid request line, in random writes.
    #[test]
    fn arbitrary_bytes_get_an_answer_or_a_close(
        line in prop_oneof![Just(""), Just("GET / HTTP/1.1\r\n"), Just("POST /echo HTTP/1.1\r\n")],
        noise in prop::collection::vec(any::<u8>(), 0..4096),
        splits in prop::collection::vec(any::<Index>(), 0..4),
        half_close in prop::bool::weighted(0.9),
    ) {
        let mut input = line.as_bytes().to_vec();
        input.extend_from_slice(&noise);
        let got = exchange(split(&input, &splits), Duration::ZERO, half_close);
        check_any_answer(&input, got)?;
        check_still_serving()?;
    }

    /// Requests from the grammar with corruptions, in random writes.
    #[test]
    fn near_miss_requests_get_an_answer_or_a_close(
        spec in spec(),
        corruptions in prop::collection::vec(corruption(), 0..3),
        splits in prop::collection::vec(any::<Index>(), 0..4),
        half_close in prop::bool::weighted(0.9),
    ) {
        let mut input = encode(&spec);
        corrupt(&mut input, &corruptions);
        let got = exchange(split(&input, &splits), Duration::ZERO, half_close);
        check_any_answer(&input, got)?;
        check_still_serving()?;
    }

    /// Valid requests on one connection, in random writes with pauses between them, all come
    /// back whole and in order from `/echo`.
    #[test]
    fn valid_requests_round_trip_their_bodies(
        requests in prop::collection::vec(echo_request(), 1..4),
        splits in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let mut input = Vec::new();
        for request in &requests {
            request.encode(&mut input);
        }
        let got = exchange(split(&input, &splits), Duration::from_millis(1), true)
            .map_err(TestCaseError::fail)?;
        let answers: Vec<Answer> = answers(&got)
            .map_err(TestCaseError::fail)?
            .into_iter()
            .filter(|a| a.status != 100)
            .collect();
        prop_assert_eq!(answers.len(), requests.len());
        for (request, answer) in requests.iter().zip(&answers) {
            prop_assert_eq!(answer.status, 200);
            prop_assert_eq!(answer.field("x-fields"), Some(&*request.field_count().to_string()));
            prop_assert!(answer.body == request.body, "a body of {} bytes came back as {} bytes", request.body.len(), answer.body.len());
        }
    }
}
