//! A small blocking HTTP/1.1 client, for calls between services.
//!
//! One request per connection (`Connection: close`), `http://` URLs only, and the whole response
//! body read into memory. Like every greennet call it parks only the calling coroutine, so many
//! requests can be in flight at once from many coroutines. There is no built-in time limit:
//! wrap the call in [`greennet::timeout`](crate::timeout()) to bound it.
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

use std::io::{self, Write};

use ::http::header::{self, HeaderName, HeaderValue};
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

/// `GET url`: the response, with its body read into memory. Any status is a response (check
/// [`status`](Response::status)); errors are for URLs that are not `http://host[:port]/...`
/// (`InvalidInput`), failed connections, and responses that are malformed or larger than
/// [`MAX_BODY`] (`InvalidData`) or cut short (`UnexpectedEof`).
pub fn get(url: &str) -> io::Result<Response<Body>> {
    let uri = parse_url(url)?;
    let mut request = Request::new(Body::empty());
    *request.uri_mut() = uri;
    self::request(request)
}

/// `POST url` with `body`; see [`get`] for what is an error.
pub fn post(url: &str, body: impl Into<Body>) -> io::Result<Response<Body>> {
    let uri = parse_url(url)?;
    let mut request = Request::new(body.into());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    self::request(request)
}

/// Sends `request` to the host its URI names and returns the response, with its body read
/// into memory. The request's own header fields are sent, except that the client decides
/// `Connection` (always `close`) and the body's framing (`Content-Length` for bytes in memory,
/// chunked for a reader unless the request declares its `Content-Length`); `Host` is added
/// unless present. See [`get`] for what is an error.
pub fn request(request: Request<Body>) -> io::Result<Response<Body>> {
    let (parts, body) = request.into_parts();
    let target = Target::of(&parts.uri)?;
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))?;

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
    head.extend_from_slice(b"connection: close\r\n\r\n");
    wire::write_message(&mut stream, &mut head, body, framing)?;
    stream.flush()?;

    let mut conn = Reader::new(stream);
    let head = loop {
        let head = conn
            .read_head(MAX_HEAD, MAX_HEAD, parse_response)
            .map_err(head_error)?;
        // Interim answers (100 Continue and the like) come before the real one.
        if !head.status.is_informational() || head.status == StatusCode::SWITCHING_PROTOCOLS {
            break head;
        }
    };

    let mut bytes = Vec::new();
    let bodiless = parts.method == Method::HEAD
        || head.status.is_informational()
        || head.status == StatusCode::NO_CONTENT
        || head.status == StatusCode::NOT_MODIFIED;
    if !bodiless {
        let framing = wire::body_framing(&head.headers).map_err(|()| {
            invalid("the response's Content-Length or Transfer-Encoding is invalid")
        })?;
        let read = match framing {
            Some(Framing::Length(n)) if n > MAX_BODY as u64 => Err(BodyError::TooLarge),
            Some(Framing::Length(n)) => conn.read_exact_into(n, &mut bytes),
            Some(_) => conn.read_chunked_into(MAX_BODY, MAX_HEAD, &mut bytes),
            None => conn.read_to_end_into(MAX_BODY, &mut bytes),
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
        })?;
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = head.status;
    *response.version_mut() = head.version;
    *response.headers_mut() = head.headers;
    Ok(response)
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
