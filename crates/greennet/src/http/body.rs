//! [`Body`]: the payload of a request or a response.

use std::fmt;
use std::io::{self, Read};

/// The body of an HTTP message: nothing, bytes in memory, or a reader that produces them.
///
/// The server hands a handler each request's body already read into memory (up to the server's
/// [`max_body`](super::Server::max_body)); a handler answers with any of the three forms. Bytes
/// in memory are sent with a `Content-Length`; a reader made with [`Body::from_reader`] is
/// streamed, chunked to an HTTP/1.1 client and up to the close to an HTTP/1.0 one, unless the
/// response's own `Content-Length` says how long it is.
///
/// ```
/// use greennet::http::Body;
///
/// let body = Body::from("hello");
/// assert_eq!(body.as_bytes(), Some(&b"hello"[..]));
/// assert_eq!(body.into_string().unwrap(), "hello");
///
/// let streamed = Body::from_reader(std::io::Cursor::new(vec![1u8, 2, 3]));
/// assert_eq!(streamed.known_len(), None);
/// assert_eq!(streamed.into_bytes().unwrap(), [1, 2, 3]);
/// ```
#[derive(Default)]
pub struct Body(pub(super) Inner);

#[derive(Default)]
pub(super) enum Inner {
    #[default]
    Empty,
    Bytes(Vec<u8>),
    /// Bytes that live for the whole program: sent from where they are, never copied.
    Static(&'static [u8]),
    Reader(Box<dyn Read + Send>),
}

impl Body {
    /// A body with no bytes.
    pub fn empty() -> Body {
        Body(Inner::Empty)
    }

    /// A body of bytes that live as long as the program (a literal, say), sent from where
    /// they are: unlike `Body::from(&str)`, it neither allocates nor copies.
    ///
    /// ```
    /// use greennet::http::Body;
    ///
    /// let body = Body::from_static(b"hello");
    /// assert_eq!(body.known_len(), Some(5));
    /// assert_eq!(body.as_bytes(), Some(&b"hello"[..]));
    /// ```
    pub fn from_static(bytes: &'static [u8]) -> Body {
        Body(Inner::Static(bytes))
    }

    /// A body read from `reader` as it is sent, for content too large to hold in memory or
    /// produced on the fly. A read error while sending ends the connection, since the peer can
    /// then no longer tell where the message stops.
    pub fn from_reader(reader: impl Read + Send + 'static) -> Body {
        Body(Inner::Reader(Box::new(reader)))
    }

    /// The length in bytes, if known without reading: `None` for a reader.
    pub fn known_len(&self) -> Option<u64> {
        match &self.0 {
            Inner::Empty => Some(0),
            Inner::Bytes(b) => Some(b.len() as u64),
            Inner::Static(b) => Some(b.len() as u64),
            Inner::Reader(_) => None,
        }
    }

    /// The bytes, if the body is in memory (`None` for a reader).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            Inner::Empty => Some(&[]),
            Inner::Bytes(b) => Some(b),
            Inner::Static(b) => Some(b),
            Inner::Reader(_) => None,
        }
    }

    /// The bytes, reading a reader to its end.
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        match self.0 {
            Inner::Empty => Ok(Vec::new()),
            Inner::Bytes(b) => Ok(b),
            Inner::Static(b) => Ok(b.to_vec()),
            Inner::Reader(mut r) => {
                let mut out = Vec::new();
                r.read_to_end(&mut out)?;
                Ok(out)
            }
        }
    }

    /// The bytes as UTF-8 text (reading a reader to its end); text that is not UTF-8 is an
    /// `InvalidData` error.
    pub fn into_string(self) -> io::Result<String> {
        String::from_utf8(self.into_bytes()?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body(Inner::Bytes(bytes))
    }
}

impl From<&[u8]> for Body {
    fn from(bytes: &[u8]) -> Body {
        Body(Inner::Bytes(bytes.to_vec()))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body(Inner::Bytes(text.into_bytes()))
    }
}

impl From<&str> for Body {
    fn from(text: &str) -> Body {
        Body(Inner::Bytes(text.as_bytes().to_vec()))
    }
}

impl From<()> for Body {
    fn from((): ()) -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Empty => f.write_str("Body(empty)"),
            Inner::Bytes(b) => write!(f, "Body({} bytes)", b.len()),
            Inner::Static(b) => write!(f, "Body({} bytes)", b.len()),
            Inner::Reader(_) => f.write_str("Body(reader)"),
        }
    }
}
