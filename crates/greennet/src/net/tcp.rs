use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::addr::each_addr;
use crate::green::{self, Dir, Green, Shared};

/// A TCP connection, as `std::net::TcpStream`, whose blocking calls park the coroutine.
///
/// ```no_run
/// use greennet::net::TcpStream;
/// use std::io::{Read, Write};
///
/// let mut stream = TcpStream::connect("127.0.0.1:8000")?;
/// stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
/// let mut answer = String::new();
/// stream.read_to_string(&mut answer)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream(Green<std::net::TcpStream>);

/// A TCP socket server, as `std::net::TcpListener`, whose `accept` parks the coroutine.
///
/// ```no_run
/// use greennet::net::TcpListener;
/// use std::io::Write;
///
/// let listener = TcpListener::bind("127.0.0.1:8000")?;
/// for stream in listener.incoming() {
///     let mut stream = stream?;
///     greennet::thread::spawn(move || stream.write_all(b"hello\n"));
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener(Green<std::net::TcpListener>);

/// An endless iterator over the connections a [`TcpListener`] accepts; see
/// [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl TcpStream {
    /// Opens a TCP connection to `addr`, trying each address it resolves to in turn.
    ///
    /// # Errors
    ///
    /// The error of the last address tried, as `std::net::TcpStream::connect`.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| connect_one(a, None))
    }

    /// Opens a TCP connection to one address, giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero timeout and `TimedOut` when it expires, as std.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(green::zero_timeout());
        }
        connect_one(addr, Some(timeout))
    }

    fn from_nonblocking(std: std::net::TcpStream, shared: Arc<Shared>) -> TcpStream {
        TcpStream(Green::new(std, shared))
    }

    /// The address of the remote peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().peer_addr()
    }

    /// The local address of this end of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    /// Shuts down the read half, the write half or both; a coroutine blocked reading wakes up.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.get_ref().shutdown(how)
    }

    /// Another handle to the same socket, sharing its timeouts and non-blocking flag.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let std = self.0.get_ref().try_clone()?;
        Ok(TcpStream::from_nonblocking(std, self.0.shared().clone()))
    }

    /// Reads without removing the data from the socket's queue, waiting for data like `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.io(Dir::Read, |s| s.peek(buf))
    }

    /// `read`, giving up at a deadline as well as at the read timeout: running out of this
    /// deadline is `TimedOut`. `deadline` is asked for it only if the read has to wait. For
    /// greennet's own protocol code, which needs a deadline per message without the cost of a
    /// [`Timeout`](crate::timeout::Timeout) per read. `context` is the calling coroutine's
    /// interruption context, if the caller keeps one (see [`crate::interrupt::Snapshot`]).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn read_before(
        &self,
        buf: &mut [u8],
        deadline: impl FnOnce() -> Option<Instant>,
        context: Option<&crate::interrupt::Snapshot>,
    ) -> io::Result<usize> {
        self.0.read_stream(buf.len(), deadline, context, |mut s| {
            io::Read::read(&mut s, buf)
        })
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when `true`).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.0.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.0.get_ref().nodelay()
    }

    /// Sets the IP time-to-live of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.0.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live of outgoing packets.
    pub fn ttl(&self) -> io::Result<u32> {
        self.0.get_ref().ttl()
    }
}

fn connect_one(addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    // socket2 creates the socket close-on-exec, as std does.
    // Born non-blocking (one syscall instead of two).
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(*addr),
        socket2::Type::STREAM.nonblocking(),
        None,
    )?;
    let started = socket.connect(&(*addr).into());
    let stream = TcpStream::from_nonblocking(socket.into(), Arc::default());
    match started {
        Ok(()) => return Ok(stream),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let finished = stream
        .0
        .io_until(Dir::Write, deadline, |s| match s.take_error()? {
            Some(e) => Err(e),
            None => match s.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            },
        });
    match finished {
        Ok(()) => Ok(stream),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection timed out",
        )),
        Err(e) => Err(e),
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.get_ref().fmt(f)
    }
}

/// The listen backlog of [`TcpListener::bind`] (the kernel caps it at `net.core.somaxconn`).
///
/// std uses 128. Measured here with `tests/stress.rs` (2,000 clients connecting at once to one
/// accepting coroutine): with 128, some connects failed with `ConnectionReset` as the accept
/// queue overflowed; with 1,024 and with 4,096 none did. 4,096 (Linux's default
/// `net.core.somaxconn`) leaves room for the 5,000-connection benchmark's bursts; the backlog
/// costs nothing until connections actually queue.
pub const LISTEN_BACKLOG: i32 = 4096;

impl TcpListener {
    /// Binds a listening socket to `addr`, trying each address it resolves to in turn.
    ///
    /// As std: `SO_REUSEADDR` (not `SO_REUSEPORT`, so a second bind of a bound port fails with
    /// `AddrInUse`) and close-on-exec. The listen backlog is [`LISTEN_BACKLOG`] rather than std's
    /// 128, since one greennet process accepts bursts that would take many threads in std.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let std = std::net::TcpListener::bind(a)?;
            // Listening again only changes the backlog.
            // SAFETY: `std` owns this listening descriptor for the duration of the call.
            if unsafe { libc::listen(std.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
                return Err(io::Error::last_os_error());
            }
            std.set_nonblocking(true)?;
            Ok(TcpListener(Green::new(std, Arc::default())))
        })
    }

    /// The local address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    /// Another handle to the same listener, sharing its non-blocking flag.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        let std = self.0.get_ref().try_clone()?;
        Ok(TcpListener(Green::new(std, self.0.shared().clone())))
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// Many coroutines may accept on one listener: each connection goes to one of them, in the
    /// order they started waiting.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (std, peer) = self.0.io(Dir::Read, accept_nonblocking)?;
        Ok((TcpStream::from_nonblocking(std, Arc::default()), peer))
    }

    /// An iterator that accepts connections forever, yielding each as `accept` would.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Sets the IP time-to-live of accepted connections' packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.0.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live of accepted connections' packets.
    pub fn ttl(&self) -> io::Result<u32> {
        self.0.get_ref().ttl()
    }

    /// Sets `IPV6_V6ONLY`; deprecated in std because it cannot take effect on a bound socket.
    #[deprecated(
        since = "0.1.0",
        note = "this option can only be set before the socket is bound"
    )]
    pub fn set_only_v6(&self, only_v6: bool) -> io::Result<()> {
        #[allow(deprecated)]
        self.0.get_ref().set_only_v6(only_v6)
    }

    /// Whether `IPV6_V6ONLY` is set; deprecated in std along with its setter.
    #[deprecated(
        since = "0.1.0",
        note = "this option can only be set before the socket is bound"
    )]
    pub fn only_v6(&self) -> io::Result<bool> {
        #[allow(deprecated)]
        self.0.get_ref().only_v6()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.get_ref().take_error()
    }

    /// Switches between blocking `accept` (the default) and non-blocking (`WouldBlock` when no
    /// connection is waiting).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.0.shared().set_nonblocking(nonblocking);
        Ok(())
    }
}

/// std's `accept` (`accept4` with close-on-exec), but the new socket is born non-blocking, which
/// saves the `ioctl` that switching it afterwards would cost on every connection.
fn accept_nonblocking(
    listener: &std::net::TcpListener,
) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    loop {
        // SAFETY: an all-zero sockaddr_storage is a valid (empty) value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `storage` and `len` describe a writable buffer of the size given; the
        // listener's descriptor is open for the duration of the call.
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len,
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue; // as std does
            }
            return Err(err);
        }
        // SAFETY: `fd` is a new connected socket that nothing else owns.
        let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        // SAFETY: the kernel filled `storage` with an address of `len` bytes.
        let peer = unsafe { socket2::SockAddr::new(storage, len) }
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid argument"))?;
        return Ok((stream, peer));
    }
}

impl<'a> Iterator for Incoming<'a> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.get_ref().fmt(f)
    }
}

stream_io!(TcpStream);
timeout_methods!(TcpStream);
fd_conversions!(TcpStream, std::net::TcpStream);
fd_conversions!(TcpListener, std::net::TcpListener);
