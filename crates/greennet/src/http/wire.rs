//! The bytes on the wire, shared by the server and the client: a read-ahead buffer over a
//! stream that finds message heads and reads bodies (sized, chunked, or up to the end), and the
//! writing of a message with the framing its sender chose.

use std::io::{self, Read, Write};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use super::body::{Body, Inner};
use crate::interrupt::Snapshot;
use crate::net::TcpStream;

/// The storage a connection's reads start with, and the room made whenever it runs short.
const READ_SIZE: usize = 16 * 1024;

/// The least room a read asks the socket to fill; with less left, room is made first.
const READ_MIN: usize = 4 * 1024;

/// The longest chunk-size line accepted (the size in hex plus any chunk extensions).
const MAX_CHUNK_LINE: usize = 4096;

/// Why a message head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError<E> {
    /// The stream failed.
    Io(io::Error),
    /// The peer closed before the head was complete.
    Eof,
    /// The first line is longer than allowed.
    LineTooLong,
    /// The whole head is larger than allowed.
    HeadTooLarge,
    /// The parser refused the head.
    Parse(E),
}

/// Why a message body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    Io(io::Error),
    /// The peer closed before the body was complete.
    Eof,
    /// Bad chunked framing.
    Invalid,
    /// The body is larger than allowed.
    TooLarge,
}

impl From<io::Error> for BodyError {
    fn from(e: io::Error) -> BodyError {
        BodyError::Io(e)
    }
}

/// A stream that can give up a read at a deadline.
pub(crate) trait Source: Read {
    /// `read`, or `TimedOut` once the deadline has passed without data; `deadline` is asked
    /// for it only if the read has to wait. `context` is the reading coroutine's interruption
    /// context, if the reader keeps one.
    fn read_before(
        &mut self,
        buf: &mut [u8],
        deadline: impl FnOnce() -> Option<Instant>,
        context: Option<&Snapshot>,
    ) -> io::Result<usize>;
}

impl Source for TcpStream {
    fn read_before(
        &mut self,
        buf: &mut [u8],
        deadline: impl FnOnce() -> Option<Instant>,
        context: Option<&Snapshot>,
    ) -> io::Result<usize> {
        TcpStream::read_before(self, buf, deadline, context)
    }
}

/// In-memory input never waits.
#[cfg(any(test, feature = "fuzzing"))]
impl Source for &[u8] {
    fn read_before(
        &mut self,
        buf: &mut [u8],
        _: impl FnOnce() -> Option<Instant>,
        _: Option<&Snapshot>,
    ) -> io::Result<usize> {
        self.read(buf)
    }
}

/// When a [`Reader`]'s reads give up.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Deadline {
    /// Only the stream's own timeout applies.
    None,
    /// This long after the first read that has to wait (and from then on, at that instant).
    After(std::time::Duration),
    /// At this instant.
    At(Instant),
}

/// A stream with the bytes read from it but not yet used, kept between messages so that
/// pipelined requests are not lost.
pub(crate) struct Reader<S> {
    inner: S,
    /// `buf[..end]` holds the bytes read ahead; `buf[end..]` is zeroed room for the next read.
    /// A head is split off the front as [`Bytes`] that share this storage
    /// ([`read_head_bytes`](Reader::read_head_bytes)), so a request's fields point into it
    /// rather than into a copy; the storage is reused once they are gone.
    buf: BytesMut,
    end: usize,
    /// When reads give up with `TimedOut` (see [`Reader::set_deadline`]).
    deadline: Deadline,
    /// The reading coroutine's interruption context, if it was kept (see
    /// [`Reader::keep_interrupt_context`]).
    context: Option<Snapshot>,
}

impl<S: Source> Reader<S> {
    pub(crate) fn new(inner: S) -> Reader<S> {
        Reader {
            inner,
            buf: BytesMut::new(),
            end: 0,
            deadline: Deadline::None,
            context: None,
        }
    }

    /// Keeps the calling coroutine's interruption context (its timeouts, and how a kill wakes
    /// it) for all later reads, which then need not look it up each time they wait. Only for a
    /// reader that no other coroutine uses, and while no timeout active now ends: the server
    /// calls this at the start of a connection, which its coroutine serves to the end, and the
    /// timeouts that handlers start end before the handler returns.
    pub(crate) fn keep_interrupt_context(&mut self) {
        self.context = Some(crate::interrupt::snapshot());
    }

    /// From now on, a read that would wait past `deadline` fails with `TimedOut` instead.
    /// [`Deadline::After`] starts the clock only when a read first has to wait, so a message
    /// that is already buffered or arrives at once costs no clock reading.
    pub(crate) fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = deadline;
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The bytes read ahead and not yet consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.end -= n;
    }

    /// Reads once more from the stream into the buffer: `Ok(0)` at the end of the stream.
    pub(crate) fn fill_more(&mut self) -> io::Result<usize> {
        if self.buf.len() - self.end < READ_MIN {
            self.make_room();
        }
        let result = read_into(
            &mut self.inner,
            &mut self.deadline,
            self.context.as_ref(),
            &mut self.buf[self.end..],
        );
        self.end += *result.as_ref().unwrap_or(&0);
        result
    }

    /// Makes at least [`READ_SIZE`] bytes of zeroed room behind the buffered bytes. The
    /// storage is reused, with the buffered bytes moved to its front, when nothing else holds
    /// it (the heads split off it are gone) and it is large enough; otherwise new storage is
    /// allocated. Zeroing happens only here, once per storage's worth of reads, and not for
    /// every request.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self) {
        self.buf.truncate(self.end);
        self.buf.reserve(READ_SIZE);
        let room = self.buf.capacity();
        self.buf.resize(room, 0);
    }

    /// Reads more of a head of which `len` bytes are buffered, unless that is already the
    /// most allowed.
    fn more_head<E>(&mut self, len: usize, max_head: usize) -> Result<(), HeadError<E>> {
        if len >= max_head {
            return Err(HeadError::HeadTooLarge);
        }
        match self.fill_more() {
            Ok(0) => Err(HeadError::Eof),
            Ok(_) => Ok(()),
            Err(e) => Err(HeadError::Io(e)),
        }
    }

    /// Reads until the buffer starts with a complete head (up to and including the empty line
    /// that ends it), splits that head off and returns it. `check` is shown the incomplete head
    /// each time a line ends, so that a malformed start is refused before the rest arrives.
    /// `max_line` bounds the first line, `max_head` the whole head.
    pub(crate) fn read_head_bytes<E>(
        &mut self,
        max_line: usize,
        max_head: usize,
        mut check: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Bytes, HeadError<E>> {
        let mut scanned: usize = 0;
        loop {
            let data = self.buffered();
            let first_lf = data.iter().position(|&b| b == b'\n');
            if first_lf.unwrap_or(data.len()) > max_line {
                return Err(HeadError::LineTooLong);
            }
            // The end is searched for from the first line's end (nothing before it can be an
            // empty line's), and on later rounds from just before where the last search ended.
            let from = first_lf.map(|lf| lf.max(scanned.saturating_sub(2)));
            if let Some(n) = from.and_then(|from| head_end(data, from)) {
                if n > max_head {
                    return Err(HeadError::HeadTooLarge);
                }
                self.end -= n;
                return Ok(self.buf.split_to(n).freeze());
            }
            if data[scanned..].contains(&b'\n') {
                check(data).map_err(HeadError::Parse)?;
            }
            scanned = data.len();
            self.more_head(scanned, max_head)?;
        }
    }

    /// Reads until `parse` recognises a complete head at the start of the buffer, and consumes
    /// it. `parse` gets the buffered bytes and answers `Ok(None)` for "not complete yet" or
    /// `Ok(Some((head length, value)))`; it is tried each time a line ends, so a malformed first
    /// line is refused before the rest arrives. `max_line` bounds the first line, `max_head` the
    /// whole head.
    pub(crate) fn read_head<T, E>(
        &mut self,
        max_line: usize,
        max_head: usize,
        mut parse: impl FnMut(&[u8]) -> Result<Option<(usize, T)>, E>,
    ) -> Result<T, HeadError<E>> {
        let mut scanned = 0;
        loop {
            let data = self.buffered();
            let first_line = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
            if first_line > max_line {
                return Err(HeadError::LineTooLong);
            }
            if data[scanned..].contains(&b'\n') {
                match parse(data) {
                    Ok(Some((n, _))) if n > max_head => return Err(HeadError::HeadTooLarge),
                    Ok(Some((n, value))) => {
                        self.consume(n);
                        return Ok(value);
                    }
                    Ok(None) => {}
                    Err(e) => return Err(HeadError::Parse(e)),
                }
            }
            scanned = data.len();
            self.more_head(scanned, max_head)?;
        }
    }

    /// Appends exactly `n` more bytes of the stream to `out`.
    pub(crate) fn read_exact_into(
        &mut self,
        mut n: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        loop {
            let data = self.buffered();
            let take = data.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            out.extend_from_slice(&data[..take]);
            self.consume(take);
            n -= take as u64;
            if n == 0 {
                return Ok(());
            }
            if n >= READ_SIZE as u64 {
                // Nothing is buffered and much is still to come: read straight into `out`,
                // rather than into the buffer (whose room would have to be zeroed again
                // every few reads) and then copy.
                let start = out.len();
                out.resize(start + READ_SIZE, 0);
                let read = read_into(
                    &mut self.inner,
                    &mut self.deadline,
                    self.context.as_ref(),
                    &mut out[start..],
                );
                out.truncate(start + *read.as_ref().unwrap_or(&0));
                match read? {
                    0 => return Err(BodyError::Eof),
                    got => n -= got as u64,
                }
                continue;
            }
            if self.fill_more()? == 0 {
                return Err(BodyError::Eof);
            }
        }
    }

    /// Appends the rest of the stream to `out`, up to `limit` bytes in all.
    pub(crate) fn read_to_end_into(
        &mut self,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        loop {
            let data = self.buffered();
            if out.len() + data.len() > limit {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(data);
            let n = data.len();
            self.consume(n);
            if self.fill_more()? == 0 {
                return Ok(());
            }
        }
    }

    /// One line, without its line ending (CRLF, or a bare LF); longer than `max` is `Invalid`.
    fn read_line(&mut self, max: usize) -> Result<Vec<u8>, BodyError> {
        loop {
            let data = self.buffered();
            if let Some(end) = data.iter().position(|&b| b == b'\n') {
                let mut line = data[..end].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.consume(end + 1);
                if line.len() > max {
                    return Err(BodyError::Invalid);
                }
                return Ok(line);
            }
            if data.len() > max + 1 {
                return Err(BodyError::Invalid);
            }
            if self.fill_more()? == 0 {
                return Err(BodyError::Eof);
            }
        }
    }

    /// Decodes a chunked body into `out`, refusing more than `limit` bytes of data; trailer
    /// fields are read (at most `max_trailers` bytes of them) and dropped.
    pub(crate) fn read_chunked_into(
        &mut self,
        limit: usize,
        max_trailers: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        loop {
            let line = self.read_line(MAX_CHUNK_LINE)?;
            let size = chunk_size(&line).ok_or(BodyError::Invalid)?;
            if size == 0 {
                let mut trailers = 0;
                loop {
                    let line = self.read_line(max_trailers)?;
                    if line.is_empty() {
                        return Ok(());
                    }
                    trailers += line.len() + 2;
                    if trailers > max_trailers {
                        return Err(BodyError::TooLarge);
                    }
                }
            }
            if size > (limit - out.len()) as u64 {
                return Err(BodyError::TooLarge);
            }
            self.read_exact_into(size, out)?;
            if !self.read_line(0)?.is_empty() {
                return Err(BodyError::Invalid);
            }
        }
    }
}

/// One read from `inner` into `buf` that gives up at `deadline` (resolving
/// [`Deadline::After`] when it first has to wait), retrying a read that was interrupted.
fn read_into<S: Source>(
    inner: &mut S,
    deadline: &mut Deadline,
    context: Option<&Snapshot>,
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        let resolve = || match *deadline {
            Deadline::None => None,
            Deadline::At(at) => Some(at),
            Deadline::After(limit) => {
                let at = Instant::now().checked_add(limit);
                // Too far away to represent is no limit at all.
                *deadline = at.map_or(Deadline::None, Deadline::At);
                at
            }
        };
        match inner.read_before(buf, resolve, context) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The length of the head at the start of `data`: up to and including the first empty line (a
/// line feed followed by a line feed or a CRLF) at or after `from`, as httparse reads it.
pub(super) fn head_end(data: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let lf = at + data.get(at..)?.iter().position(|&b| b == b'\n')?;
        match data.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if data.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            _ => at = lf + 1,
        }
    }
}

/// The size on a chunk-size line: hex digits, then optional whitespace and `;extensions`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let rest = rest.trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// How a message's body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body is sent (HEAD, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (HTTP/1.0 responses of unknown length).
    Close,
}

/// In-memory bodies up to this size are copied behind the head and sent in one write; larger
/// ones go out in a vectored write from where they are.
const COPY_BODY: usize = 16 * 1024;

/// Writes `head` (the start line and header fields, ending in the blank line) and then `body`
/// with the given framing; `head` is the caller's buffer, left with unspecified contents.
/// In-memory bodies go out in the same write as the head. A streamed body shorter than its
/// declared length is `UnexpectedEof`: the peer cannot know where the message ends, so the
/// caller must close the connection.
pub(crate) fn write_message<W: Write>(
    w: &mut W,
    head: &mut Vec<u8>,
    body: Body,
    framing: Framing,
) -> io::Result<()> {
    let reader = match body.0 {
        Inner::Empty => None,
        Inner::Bytes(bytes) => return write_in_memory(w, head, &bytes, framing),
        Inner::Static(bytes) => return write_in_memory(w, head, bytes, framing),
        Inner::Reader(reader) => Some(reader),
    };
    match (framing, reader) {
        (Framing::None, _) | (_, None) => {
            if framing == Framing::Chunked {
                head.extend_from_slice(b"0\r\n\r\n");
            }
            w.write_all(head)
        }
        (Framing::Length(n), Some(reader)) => {
            w.write_all(head)?;
            let copied = io::copy(&mut reader.take(n), w)?;
            if copied < n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the body ended before its declared length",
                ));
            }
            Ok(())
        }
        (Framing::Close, Some(mut reader)) => {
            w.write_all(head)?;
            io::copy(&mut reader, w).map(drop)
        }
        (Framing::Chunked, Some(mut reader)) => {
            w.write_all(head)?;
            let mut frame = Vec::with_capacity(READ_SIZE + 32);
            let mut buf = vec![0; READ_SIZE];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                frame.clear();
                if n == 0 {
                    return w.write_all(b"0\r\n\r\n");
                }
                let _ = write!(frame, "{n:x}\r\n");
                frame.extend_from_slice(&buf[..n]);
                frame.extend_from_slice(b"\r\n");
                w.write_all(&frame)?;
            }
        }
    }
}

/// [`write_message`] for a body already in memory.
pub(crate) fn write_in_memory<W: Write>(
    w: &mut W,
    head: &mut Vec<u8>,
    bytes: &[u8],
    framing: Framing,
) -> io::Result<()> {
    match framing {
        Framing::None => w.write_all(head),
        Framing::Chunked if bytes.is_empty() => {
            head.extend_from_slice(b"0\r\n\r\n");
            w.write_all(head)
        }
        Framing::Chunked => {
            // Writing to a Vec cannot fail.
            let _ = write!(head, "{:x}\r\n", bytes.len());
            write_parts(w, head, bytes, b"\r\n0\r\n\r\n")
        }
        Framing::Length(_) | Framing::Close => write_parts(w, head, bytes, b""),
    }
}

/// Writes `head`, `body` and `tail` in order: copied together into `head` when the body is
/// small, otherwise as one vectored write (repeated until all is written).
fn write_parts<W: Write>(
    w: &mut W,
    head: &mut Vec<u8>,
    body: &[u8],
    tail: &[u8],
) -> io::Result<()> {
    if body.len() <= COPY_BODY {
        head.extend_from_slice(body);
        head.extend_from_slice(tail);
        return w.write_all(head);
    }
    let mut parts = [
        io::IoSlice::new(head),
        io::IoSlice::new(body),
        io::IoSlice::new(tail),
    ];
    let mut parts = &mut parts[..];
    while !parts.is_empty() {
        match w.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Appends `name: value\r\n` for each field of `headers` except those `skip` names.
pub(crate) fn write_fields(
    out: &mut Vec<u8>,
    headers: &::http::HeaderMap,
    skip: &[::http::header::HeaderName],
) {
    for (name, value) in headers {
        if skip.contains(name) {
            continue;
        }
        write_field(out, name, value);
    }
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `name: value\r\n`.
pub(crate) fn write_field(
    out: &mut Vec<u8>,
    name: &::http::header::HeaderName,
    value: &::http::HeaderValue,
) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Whether any of a header's `values` (each a comma-separated list) holds `token`, in any case.
pub(crate) fn token_in<'a>(mut values: impl Iterator<Item = &'a [u8]>, token: &str) -> bool {
    values.any(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// How a message's own header fields delimit its body: `Ok(None)` for no body header,
/// `Ok(Some(Framing::Chunked))` or `Ok(Some(Framing::Length(n)))`, and `Err` for a
/// Content-Length that is not one number, a transfer coding other than `chunked`, or both
/// Content-Length and Transfer-Encoding.
pub(crate) fn body_framing(headers: &::http::HeaderMap) -> Result<Option<Framing>, ()> {
    use ::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    framing_of(
        headers.get_all(CONTENT_LENGTH).iter().map(|v| v.as_bytes()),
        headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .map(|v| v.as_bytes()),
    )
}

/// [`body_framing`] from the values of the Content-Length and Transfer-Encoding fields.
pub(crate) fn framing_of<'a>(
    lengths: impl Iterator<Item = &'a [u8]>,
    encodings: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<Framing>, ()> {
    let mut length = None;
    for value in lengths {
        // Repeated fields (or a list) are allowed only when every value is the same number.
        for part in value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err(());
            }
            let n: u64 = std::str::from_utf8(part)
                .map_err(drop)?
                .parse()
                .map_err(drop)?;
            if length.is_some_and(|l| l != n) {
                return Err(());
            }
            length = Some(n);
        }
    }
    let mut codings = Vec::new();
    for value in encodings {
        for part in value.split(|&b| b == b',') {
            codings.push(part.trim_ascii().to_ascii_lowercase());
        }
    }
    match (codings.is_empty(), length) {
        (true, None) => Ok(None),
        (true, Some(n)) => Ok(Some(Framing::Length(n))),
        (false, None) if codings.len() == 1 && codings[0] == b"chunked" => {
            Ok(Some(Framing::Chunked))
        }
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 12345, u64::MAX] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn head_ends() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\nNEXT", 0), Some(21));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\n\r\nNEXT", 0), Some(23));
        assert_eq!(head_end(b"\r\n\r\nGET", 0), Some(4));
        assert_eq!(head_end(b"\r\nGET / HTTP/1.1\r\n\r\n", 0), Some(20));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r", 0), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        assert_eq!(head_end(b"", 0), None);
        // Resuming a scan two bytes before where the last one ended finds an end split
        // across reads.
        let data = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        assert_eq!(head_end(data, data.len() - 3), Some(data.len()));
        assert_eq!(head_end(data, data.len() + 5), None);
    }

    #[test]
    fn large_bodies_arrive_whole_and_leave_what_follows() {
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut input = b"POST / HTTP/1.1\r\n\r\n".to_vec();
        input.extend_from_slice(&body);
        input.extend_from_slice(b"NEXT");
        let mut r = Reader::new(&input[..]);
        let head = r.read_head_bytes(100, 100, |_| Ok::<(), ()>(())).unwrap();
        assert_eq!(&head[..], b"POST / HTTP/1.1\r\n\r\n");
        let mut out = Vec::new();
        r.read_exact_into(body.len() as u64, &mut out).unwrap();
        assert!(out == body, "the body came out changed");
        if r.buffered().is_empty() {
            r.fill_more().unwrap();
        }
        assert_eq!(r.buffered(), b"NEXT");

        // A stream that ends early is an early end, whichever way the body was being read.
        for short in [10_000, 60_000] {
            let mut r = Reader::new(&body[..short]);
            let mut out = Vec::new();
            assert!(matches!(
                r.read_exact_into(body.len() as u64, &mut out),
                Err(BodyError::Eof)
            ));
            assert_eq!(out, body[..short]);
        }
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"0"), Some(0));
        assert_eq!(chunk_size(b"A ; name=value"), Some(10));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b"-1"), None);
        assert_eq!(chunk_size(b"zz"), None);
        assert_eq!(chunk_size(b"1 2"), None);
        assert_eq!(chunk_size(b"ffffffffffffffffffff"), None);
    }

    #[test]
    fn chunked_bodies() {
        let mut r = Reader::new(&b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: v\r\n\r\nNEXT"[..]);
        let mut out = Vec::new();
        r.read_chunked_into(100, 100, &mut out).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(r.buffered(), b"NEXT");

        let mut r = Reader::new(&b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"[..]);
        let mut out = Vec::new();
        assert!(matches!(
            r.read_chunked_into(8, 100, &mut out),
            Err(BodyError::TooLarge)
        ));

        let mut r = Reader::new(&b"5\r\nhelloXX0\r\n\r\n"[..]);
        assert!(matches!(
            r.read_chunked_into(8, 100, &mut Vec::new()),
            Err(BodyError::Invalid)
        ));

        let mut r = Reader::new(&b"5\r\nhel"[..]);
        assert!(matches!(
            r.read_chunked_into(8, 100, &mut Vec::new()),
            Err(BodyError::Eof)
        ));
    }

    #[test]
    fn framing_from_headers() {
        use ::http::header::{HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
        let mut h = ::http::HeaderMap::new();
        assert_eq!(body_framing(&h), Ok(None));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert_eq!(body_framing(&h), Ok(Some(Framing::Length(12))));
        h.append(CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert_eq!(body_framing(&h), Ok(Some(Framing::Length(12))));
        h.append(CONTENT_LENGTH, HeaderValue::from_static("13"));
        assert_eq!(body_framing(&h), Err(()));
        h.clear();
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("+12"));
        assert_eq!(body_framing(&h), Err(()));
        h.clear();
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("Chunked"));
        assert_eq!(body_framing(&h), Ok(Some(Framing::Chunked)));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("3"));
        assert_eq!(body_framing(&h), Err(()));
        h.clear();
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("gzip, chunked"));
        assert_eq!(body_framing(&h), Err(()));
    }
}
