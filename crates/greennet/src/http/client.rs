//! A small blocking HTTP/1.1 client, for calls between services.
//!
//! `http://` URLs only, and the whole response body read into memory. Like every greennet call
//! it parks only the calling coroutine, so many requests can be in flight at once from many
//! coroutines. There is no built-in time limit: wrap the call in
//! [`greennet::timeout`](crate::timeout()) to bound it.
//!
//! The functions [`get`], [`post`] and [`request`] make one connection per request
//! (`Connection: close`), as a one-off call should. A service that calls another again and
//! again should keep a [`Client`]: it keeps connections open between requests and reuses them,
//! which saves a handshake per call and, at a high rate, the local ports that closed
//! connections hold for a minute in `TIME_WAIT`.
//!
//! ```
//! use greennet::http::{client, Body, Request, Response, Server};
//!
//! greennet::run(|| {
//!     let server = Server::new(|req: Request<Body>| {
//!         let text = req.into_body().into_string().unwrap();
//!         Response::new(Body::from(text.to_uppercase()))
//!     })
//!     .bind("127.0.0.1:0")
//!     .unwrap()
//!     .start()
//!     .unwrap();
//!
//!     let url = format!("http://{}/shout", server.local_addr());
//!     let request = Request::post(url).body(Body::from("quiet please")).unwrap();
//!     let response = client::request(request).unwrap();
//!     assert_eq!(response.into_body().into_string().unwrap(), "QUIET PLEASE");
//!     server.stop(std::time::Duration::from_secs(1));
//! });
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::http::header::{self, HeaderName, HeaderValue};
use ::http::request::Parts;
use ::http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};

use super::body::Body;
use super::wire::{self, BodyError, Framing, HeadError, Reader};
use crate::net::TcpStream;

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The most header fields a response may have.
const MAX_HEADERS: usize = 100;

/// The largest response body the client reads into memory: 64 MiB. A larger one is refused
/// with `InvalidData` (before any of it is read, when the server declares its length), so a
/// misbehaving server cannot exhaust the caller's memory.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// `GET url` on a connection of its own: the response, with its body read into memory. Any
/// status is a response (check [`status`](Response::status)); errors are for URLs that are not
/// `http://host[:port]/...` (`InvalidInput`), failed connections, and responses that are
/// malformed or larger than [`MAX_BODY`] (`InvalidData`) or cut short (`UnexpectedEof`).
pub fn get(url: &str) -> io::Result<Response<Body>> {
    request(get_request(url)?)
}

/// `POST url` with `body`, on a connection of its own; see [`get`] for what is an error.
pub fn post(url: &str, body: impl Into<Body>) -> io::Result<Response<Body>> {
    request(post_request(url, body.into())?)
}

/// Sends `request` to the host its URI names, on a connection of its own, and returns the
/// response, with its body read into memory. The request's own header fields are sent, except
/// that the client decides `Connection` (here always `close`) and the body's framing
/// (`Content-Length` for bytes in memory, chunked for a reader unless the request declares its
/// `Content-Length`); `Host` is added unless present. See [`get`] for what is an error.
pub fn request(request: Request<Body>) -> io::Result<Response<Body>> {
    let (parts, mut body) = request.into_parts();
    let target = Target::of(&parts.uri)?;
    let mut conn = Reader::new(TcpStream::connect((target.host.as_str(), target.port))?);
    exchange(&mut conn, &parts, &target, &mut body, false)
        .map(|(response, _)| response)
        .map_err(|failure| failure.error)
}

fn get_request(url: &str) -> io::Result<Request<Body>> {
    let mut request = Request::new(Body::empty());
    *request.uri_mut() = parse_url(url)?;
    Ok(request)
}

fn post_request(url: &str, body: Body) -> io::Result<Request<Body>> {
    let mut request = Request::new(body);
    *request.method_mut() = Method::POST;
    *request.uri_mut() = parse_url(url)?;
    Ok(request)
}

/// An HTTP client that keeps connections open between requests and reuses them: greennet's
/// `requests.Session`. Cheap to clone; clones share one pool of idle connections, so one
/// `Client` can serve every coroutine of a service.
///
/// A connection goes back to the pool after a response that leaves it usable (HTTP/1.1
/// without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, and a body with a
/// declared length or chunked) and is taken again by the next request to the same host and
/// port. Before reuse the client checks, without waiting, that the server has not closed it;
/// a server may still close it as the request goes out, and then a request that is safe to
/// repeat (`GET`, `HEAD`, `PUT`, `DELETE`, `OPTIONS`, `TRACE`, with a body in memory) is sent
/// once more on a new connection if no byte of an answer had arrived. Other requests return
/// the error.
///
/// ```
/// use greennet::http::{client::Client, Body, Request, Response, Server};
///
/// greennet::run(|| {
///     let server = Server::new(|_req: Request<Body>| Response::new(Body::from("pong")))
///         .bind("127.0.0.1:0")
///         .unwrap()
///         .start()
///         .unwrap();
///     let client = Client::new();
///     let url = format!("http://{}/ping", server.local_addr());
///     for _ in 0..3 {
///         // One connection carries all three.
///         let response = client.get(&url).unwrap();
///         assert_eq!(response.into_body().into_string().unwrap(), "pong");
///     }
///     server.stop(std::time::Duration::from_secs(1));
/// });
/// ```
#[derive(Clone)]
pub struct Client {
    pool: Arc<Pool>,
}

/// Settings for a [`Client`], from [`Client::builder`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    max_idle_per_host: usize,
    idle_timeout: Duration,
}

impl ClientBuilder {
    /// How many idle connections to keep per host and port (default 16). More in flight at
    /// once are fine; the surplus is closed when its request is done. 0 keeps none.
    pub fn max_idle_per_host(mut self, n: usize) -> ClientBuilder {
        self.max_idle_per_host = n;
        self
    }

    /// How long a connection may sit idle before it is no longer reused (default 30 s). Keep
    /// it below the servers' own idle timeouts where they are known.
    pub fn idle_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.idle_timeout = timeout;
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        Client {
            pool: Arc::new(Pool {
                idle: Mutex::new(HashMap::new()),
                max_idle_per_host: self.max_idle_per_host,
                idle_timeout: self.idle_timeout,
            }),
        }
    }
}

impl Default for ClientBuilder {
    fn default() -> ClientBuilder {
        ClientBuilder {
            max_idle_per_host: 16,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("idle_connections", &self.idle_connections())
            .field("max_idle_per_host", &self.pool.max_idle_per_host)
            .field("idle_timeout", &self.pool.idle_timeout)
            .finish()
    }
}

impl Client {
    /// A client with the default settings (see [`ClientBuilder`]).
    pub fn new() -> Client {
        ClientBuilder::default().build()
    }

    /// A client with settings of your choosing.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// `GET url`; see [`get`](fn@get) for what is an error.
    pub fn get(&self, url: &str) -> io::Result<Response<Body>> {
        self.request(get_request(url)?)
    }

    /// `POST url` with `body`; see [`get`](fn@get) for what is an error.
    pub fn post(&self, url: &str, body: impl Into<Body>) -> io::Result<Response<Body>> {
        self.request(post_request(url, body.into())?)
    }

    /// Sends `request` as [`request`](fn@request) does, on an idle connection to its host if
    /// there is one, and keeps the connection for later requests if the response allows.
    pub fn request(&self, request: Request<Body>) -> io::Result<Response<Body>> {
        let (parts, mut body) = request.into_parts();
        let target = Target::of(&parts.uri)?;
        let key = (target.host.clone(), target.port);
        if let Some(conn) = self.pool.take(&key) {
            match self.send(&key, conn, &parts, &target, &mut body) {
                // The server closed the kept connection before it answered: a request that
                // is safe to repeat goes again, once, on a new connection.
                Err(failure) if failure.unanswered && failure.replayable && idempotent(&parts) => {
                    tracing::debug!(error = %failure.error, "http client: kept connection closed; sending again");
                }
                done => return done.map_err(|failure| failure.error),
            }
        }
        let conn = Reader::new(TcpStream::connect((target.host.as_str(), target.port))?);
        self.send(&key, conn, &parts, &target, &mut body)
            .map_err(|failure| failure.error)
    }

    /// One exchange on `conn`, which goes back to the pool if the response leaves it usable.
    fn send(
        &self,
        key: &(String, u16),
        mut conn: Reader<TcpStream>,
        parts: &Parts,
        target: &Target,
        body: &mut Body,
    ) -> Result<Response<Body>, Failure> {
        let (response, reusable) = exchange(&mut conn, parts, target, body, true)?;
        if reusable {
            self.pool.put(key.clone(), conn);
        }
        Ok(response)
    }

    /// How many idle connections the pool holds now, over all hosts.
    pub fn idle_connections(&self) -> usize {
        let idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.values().map(Vec::len).sum()
    }
}

/// Idle connections by host and port, most recently used last.
struct Pool {
    idle: Mutex<HashMap<(String, u16), Vec<Idle>>>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
}

struct Idle {
    conn: Reader<TcpStream>,
    since: Instant,
}

impl Pool {
    /// The most recently used idle connection to `key` that is still open. The lock is held
    /// only to pick a connection: the check and any closing happen outside it.
    fn take(&self, key: &(String, u16)) -> Option<Reader<TcpStream>> {
        loop {
            let idle = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                let list = idle.get_mut(key)?;
                let found = list.pop();
                if list.is_empty() {
                    idle.remove(key);
                }
                found?
            };
            if idle.since.elapsed() < self.idle_timeout && still_open(idle.conn.get_ref()) {
                return Some(idle.conn);
            }
        }
    }

    /// Keeps `conn` for the next request to `key`, unless the host has its fill of idle
    /// connections. Every host's connections idle past the timeout are let go on the way, so
    /// that hosts no longer called do not keep theirs. Connections are closed outside the lock.
    fn put(&self, key: (String, u16), conn: Reader<TcpStream>) {
        let now = Instant::now();
        let mut closing = Vec::new();
        {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.retain(|_, list| {
                let (fresh, stale): (Vec<Idle>, Vec<Idle>) = std::mem::take(list)
                    .into_iter()
                    .partition(|i| now.duration_since(i.since) < self.idle_timeout);
                *list = fresh;
                closing.extend(stale);
                !list.is_empty()
            });
            let kept = Idle { conn, since: now };
            let list = idle.entry(key).or_default();
            if list.len() < self.max_idle_per_host {
                list.push(kept);
            } else {
                closing.push(kept);
            }
        }
        drop(closing);
    }
}

/// Whether the server has left a kept connection open: nothing to read yet, and no end of
/// stream. A peek that does not wait; anything the server sent unasked (say a 408 before it
/// closed) also makes the connection unusable.
fn still_open(stream: &TcpStream) -> bool {
    let sock = socket2::SockRef::from(stream);
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    matches!(
        sock.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock
    )
}

/// Whether a request may be sent twice (RFC 9110, section 9.2.2).
fn idempotent(parts: &Parts) -> bool {
    matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Why an exchange failed, and whether it may be tried again elsewhere.
struct Failure {
    error: io::Error,
    /// No byte of an answer had arrived.
    unanswered: bool,
    /// The request's body is still in hand (it was in memory and written from there).
    replayable: bool,
}

/// Sends one request on `conn` and reads its response; `Ok((response, reusable))`, where
/// `reusable` says whether `conn` may carry another request. `keep_alive` false asks the server
/// to close. A body in memory is written from where it is and stays in `body`, so that the
/// request can be sent again; a reader is consumed.
fn exchange(
    conn: &mut Reader<TcpStream>,
    parts: &Parts,
    target: &Target,
    body: &mut Body,
    keep_alive: bool,
) -> Result<(Response<Body>, bool), Failure> {
    let replayable = body.as_bytes().is_some();
    let unanswered = |error: io::Error| Failure {
        error,
        unanswered: true,
        replayable,
    };
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(parts.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if !parts.headers.contains_key(header::HOST) {
        head.extend_from_slice(b"host: ");
        head.extend_from_slice(target.authority.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    wire::write_fields(
        &mut head,
        &parts.headers,
        &[
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
        ],
    );
    let framing = match body.known_len() {
        Some(0)
            if matches!(
                parts.method,
                Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
            ) =>
        {
            Framing::None
        }
        Some(n) => Framing::Length(n),
        None => match wire::body_framing(&parts.headers) {
            Ok(Some(Framing::Length(n))) => Framing::Length(n),
            _ => Framing::Chunked,
        },
    };
    match framing {
        Framing::Length(n) => head.extend_from_slice(format!("content-length: {n}\r\n").as_bytes()),
        Framing::Chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::None | Framing::Close => {}
    }
    if !keep_alive {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let stream = conn.get_mut();
    let sent = match body.as_bytes() {
        Some(bytes) => wire::write_in_memory(stream, &mut head, bytes, framing),
        None => wire::write_message(stream, &mut head, std::mem::take(body), framing),
    };
    sent.and_then(|()| stream.flush()).map_err(unanswered)?;

    let head = loop {
        let head = conn
            .read_head(MAX_HEAD, MAX_HEAD, parse_response)
            .map_err(|e| {
                let nothing = conn.buffered().is_empty();
                Failure {
                    unanswered: nothing && matches!(e, HeadError::Eof | HeadError::Io(_)),
                    error: head_error(e),
                    replayable,
                }
            })?;
        // Interim answers (100 Continue and the like) come before the real one.
        if !head.status.is_informational() || head.status == StatusCode::SWITCHING_PROTOCOLS {
            break head;
        }
    };
    let answered = |error: io::Error| Failure {
        error,
        unanswered: false,
        replayable,
    };

    let mut bytes = Vec::new();
    let bodiless = parts.method == Method::HEAD
        || head.status.is_informational()
        || head.status == StatusCode::NO_CONTENT
        || head.status == StatusCode::NOT_MODIFIED;
    let mut delimited = true;
    if !bodiless {
        let framing = wire::body_framing(&head.headers)
            .map_err(|()| invalid("the response's Content-Length or Transfer-Encoding is invalid"))
            .map_err(answered)?;
        let read = match framing {
            Some(Framing::Length(n)) if n > MAX_BODY as u64 => Err(BodyError::TooLarge),
            Some(Framing::Length(n)) => conn.read_exact_into(n, &mut bytes),
            Some(_) => conn.read_chunked_into(MAX_BODY, MAX_HEAD, &mut bytes),
            None => {
                delimited = false;
                conn.read_to_end_into(MAX_BODY, &mut bytes)
            }
        };
        read.map_err(|e| match e {
            BodyError::Io(e) => e,
            BodyError::Eof => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection before the response body was complete",
            ),
            BodyError::Invalid => invalid("the response's chunked body is malformed"),
            BodyError::TooLarge => invalid(&format!(
                "the response body is larger than the client's limit of {MAX_BODY} bytes \
                 (greennet::http::client::MAX_BODY)"
            )),
        })
        .map_err(answered)?;
    }
    let connection = || {
        head.headers
            .get_all(header::CONNECTION)
            .iter()
            .map(|v| v.as_bytes())
    };
    let server_keeps = match head.version {
        Version::HTTP_11 => !wire::token_in(connection(), "close"),
        _ => wire::token_in(connection(), "keep-alive"),
    };
    let reusable = keep_alive
        && server_keeps
        && delimited
        && head.status != StatusCode::SWITCHING_PROTOCOLS
        && conn.buffered().is_empty();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = head.status;
    *response.version_mut() = head.version;
    *response.headers_mut() = head.headers;
    Ok((response, reusable))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

fn head_error(e: HeadError<io::Error>) -> io::Error {
    match e {
        HeadError::Io(e) | HeadError::Parse(e) => e,
        HeadError::Eof => io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection before sending a complete response",
        ),
        HeadError::LineTooLong | HeadError::HeadTooLarge => {
            invalid("the response's head is larger than 64 KiB")
        }
    }
}

struct ResponseHead {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
}

fn parse_response(data: &[u8]) -> Result<Option<(usize, ResponseHead)>, io::Error> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let n = match resp.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(&format!("malformed HTTP response: {e}"))),
    };
    let status = StatusCode::from_u16(resp.code.unwrap_or_default())
        .map_err(|_| invalid("malformed HTTP response: bad status code"))?;
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    for field in resp.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| invalid("malformed HTTP response: bad header name"))?;
        let value = HeaderValue::from_bytes(field.value)
            .map_err(|_| invalid("malformed HTTP response: bad header value"))?;
        headers.append(name, value);
    }
    Ok(Some((
        n,
        ResponseHead {
            status,
            version,
            headers,
        },
    )))
}

fn parse_url(url: &str) -> io::Result<Uri> {
    let uri: Uri = url.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid URL {url:?}: {e}"),
        )
    })?;
    Target::of(&uri)?;
    Ok(uri)
}

/// Where a request goes: the host and port to connect to, the `Host` field, the request target.
struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Target {
    fn of(uri: &Uri) -> io::Result<Target> {
        let input = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(input(format!(
                    "unsupported URL scheme {other:?} in {uri}: only http:// is supported"
                )))
            }
            None => {
                return Err(input(format!(
                    "URL {uri:?} has no scheme: expected http://host/..."
                )))
            }
        }
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| input(format!("URL {uri} has no host")))?;
        if authority.as_str().contains('@') {
            return Err(input(format!(
                "URL {uri} has user information, which is not supported"
            )));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Target {
            host,
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::TcpListener;
    use std::io::Read;

    /// A connected pair on loopback: (the client's end, the server's end).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        near.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (near, far)
    }

    #[test]
    fn kept_connections_the_server_closed_or_wrote_on_are_not_taken() {
        let pool = Client::new().pool;
        let key = ("127.0.0.1".to_owned(), 1);
        // Open and quiet: taken.
        let (near, _far) = pair();
        pool.put(key.clone(), Reader::new(near));
        assert!(pool.take(&key).is_some());
        assert!(pool.take(&key).is_none());

        // Closed by the server (the peek waits until the end of stream has arrived) or
        // written on unasked: dropped instead, and the pool is left empty.
        let (closed, far) = pair();
        drop(far);
        assert_eq!(closed.peek(&mut [0u8; 1]).unwrap(), 0);
        let (spoken, mut far) = pair();
        far.write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
            .unwrap();
        assert_eq!(spoken.peek(&mut [0u8; 1]).unwrap(), 1);
        pool.put(key.clone(), Reader::new(closed));
        pool.put(key.clone(), Reader::new(spoken));
        assert!(pool.take(&key).is_none());
        assert!(pool.idle.lock().unwrap().is_empty());
        // The server's end sees its connection end (closed with the 408 unread: a reset),
        // and no request.
        let mut byte = [0u8; 1];
        far.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        match far.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("the server's end read {other:?}"),
        }
    }

    #[test]
    fn kept_connections_expire_and_the_pool_is_bounded() {
        let pool = ClientBuilder::default()
            .max_idle_per_host(2)
            .idle_timeout(Duration::ZERO)
            .build()
            .pool;
        let key = ("127.0.0.1".to_owned(), 1);
        let (near, _far) = pair();
        pool.put(key.clone(), Reader::new(near));
        // Idle for longer than no time at all.
        assert!(pool.take(&key).is_none());

        let pool = ClientBuilder::default().max_idle_per_host(2).build().pool;
        let pairs: Vec<_> = (0..3).map(|_| pair()).collect();
        let mut fars = Vec::new();
        for (near, far) in pairs {
            pool.put(key.clone(), Reader::new(near));
            fars.push(far);
        }
        assert_eq!(pool.idle.lock().unwrap()[&key].len(), 2);
        // The one turned away was closed.
        let mut byte = [0u8; 1];
        fars[2]
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(fars[2].read(&mut byte).unwrap(), 0);

        // A host no longer called does not keep its connections past the timeout: keeping one
        // for another host lets them go.
        let pool = ClientBuilder::default()
            .idle_timeout(Duration::ZERO)
            .build()
            .pool;
        let (near, mut far) = pair();
        pool.put(key.clone(), Reader::new(near));
        assert!(pool.idle.lock().unwrap().contains_key(&key));
        let (other, _other_far) = pair();
        pool.put(("localhost".to_owned(), 2), Reader::new(other));
        assert!(!pool.idle.lock().unwrap().contains_key(&key));
        far.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(far.read(&mut byte).unwrap(), 0);
    }

    #[test]
    fn urls() {
        let t = Target::of(&"http://example.com:8080/a?b=c".parse().unwrap()).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("example.com", 8080, "/a?b=c")
        );
        let t = Target::of(&"http://[::1]/".parse().unwrap()).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str()),
            ("::1", 80, "[::1]")
        );
        let t = Target::of(&"http://h".parse().unwrap()).unwrap();
        assert_eq!(t.path, "/");
        for bad in [
            "https://h/",
            "/just/a/path",
            "h:80",
            "ftp://h/",
            "not a url",
            "http://u@h/",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
    }
}
