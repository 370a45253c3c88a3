//! Unix-specific networking, mirroring `std::os::unix`.

/// Unix domain sockets, mirroring `std::os::unix::net`: blocking calls park the coroutine.
///
/// ```
/// use greennet::os::unix::net::UnixStream;
/// use std::io::{Read, Write};
///
/// greennet::run(|| -> std::io::Result<()> {
///     let (mut a, mut b) = UnixStream::pair()?;
///     let writer = greennet::thread::spawn(move || a.write_all(b"over the pair"));
///     let mut text = String::new();
///     b.read_to_string(&mut text)?;
///     writer.join().unwrap()?;
///     assert_eq!(text, "over the pair");
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub mod net {
    use std::fmt;
    use std::io;
    use std::net::Shutdown;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::green::{Dir, Green};

    pub use std::os::unix::net::SocketAddr;

    /// A Unix stream socket, as `std::os::unix::net::UnixStream`.
    pub struct UnixStream(Green<std::os::unix::net::UnixStream>);

    /// A Unix socket server, as `std::os::unix::net::UnixListener`.
    pub struct UnixListener(Green<std::os::unix::net::UnixListener>);

    /// A Unix datagram socket, as `std::os::unix::net::UnixDatagram`.
    pub struct UnixDatagram(Green<std::os::unix::net::UnixDatagram>);

    /// An endless iterator over the connections a [`UnixListener`] accepts.
    #[derive(Debug)]
    pub struct Incoming<'a> {
        listener: &'a UnixListener,
    }

    fn adopt<T: std::os::fd::AsRawFd>(std: T) -> io::Result<Green<T>> {
        crate::green::set_fd_nonblocking(std.as_raw_fd(), true)?;
        Ok(Green::new(std, Arc::default()))
    }

    /// Connects a Unix stream socket without blocking the worker. Where std's blocking connect
    /// would wait for room in a full listen backlog, this retries every millisecond (readiness
    /// says nothing about another socket's backlog).
    fn connect_to(addr: &socket2::SockAddr) -> io::Result<UnixStream> {
        let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        loop {
            match socket.connect(addr) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    crate::thread::sleep(Duration::from_millis(1))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(UnixStream(Green::new(socket.into(), Arc::default())))
    }

    impl UnixStream {
        /// Connects to the socket at `path`.
        pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
            connect_to(&socket2::SockAddr::unix(path)?)
        }

        /// Connects to the socket at `addr` (a path or, on Linux, an abstract name).
        pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
            match addr.as_pathname() {
                Some(path) => connect_to(&socket2::SockAddr::unix(path)?),
                // Abstract names: std's connect, which blocks only while the listener's backlog
                // is full.
                None => Ok(UnixStream(adopt(
                    std::os::unix::net::UnixStream::connect_addr(addr)?,
                )?)),
            }
        }

        /// A connected pair of sockets.
        pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
            let (a, b) = std::os::unix::net::UnixStream::pair()?;
            Ok((UnixStream(adopt(a)?), UnixStream(adopt(b)?)))
        }

        /// Another handle to the same socket, sharing its timeouts and non-blocking flag.
        pub fn try_clone(&self) -> io::Result<UnixStream> {
            let std = self.0.get_ref().try_clone()?;
            Ok(UnixStream(Green::new(std, self.0.shared().clone())))
        }

        /// The local address.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            self.0.get_ref().local_addr()
        }

        /// The peer's address.
        pub fn peer_addr(&self) -> io::Result<SocketAddr> {
            self.0.get_ref().peer_addr()
        }

        /// Shuts down the read half, the write half or both; a blocked reader wakes up.
        pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
            self.0.get_ref().shutdown(how)
        }
    }

    impl UnixListener {
        /// Binds a listening socket at `path` (which must not exist yet).
        pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
            Ok(UnixListener(adopt(
                std::os::unix::net::UnixListener::bind(path)?,
            )?))
        }

        /// Binds a listening socket at `addr` (a path or, on Linux, an abstract name).
        pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
            Ok(UnixListener(adopt(
                std::os::unix::net::UnixListener::bind_addr(addr)?,
            )?))
        }

        /// Waits for a connection and returns it with the peer's address.
        pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
            let (std, addr) = self.0.io(Dir::Read, |l| l.accept())?;
            Ok((UnixStream(adopt(std)?), addr))
        }

        /// Another handle to the same listener.
        pub fn try_clone(&self) -> io::Result<UnixListener> {
            let std = self.0.get_ref().try_clone()?;
            Ok(UnixListener(Green::new(std, self.0.shared().clone())))
        }

        /// The local address.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            self.0.get_ref().local_addr()
        }

        /// Switches between blocking `accept` (the default) and non-blocking.
        pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
            self.0.shared().set_nonblocking(nonblocking);
            Ok(())
        }

        /// Takes the socket's pending error (`SO_ERROR`), if any.
        pub fn take_error(&self) -> io::Result<Option<io::Error>> {
            self.0.get_ref().take_error()
        }

        /// An iterator that accepts connections forever.
        pub fn incoming(&self) -> Incoming<'_> {
            Incoming { listener: self }
        }
    }

    impl<'a> Iterator for Incoming<'a> {
        type Item = io::Result<UnixStream>;

        fn next(&mut self) -> Option<io::Result<UnixStream>> {
            Some(self.listener.accept().map(|(s, _)| s))
        }
    }

    impl<'a> IntoIterator for &'a UnixListener {
        type Item = io::Result<UnixStream>;
        type IntoIter = Incoming<'a>;

        fn into_iter(self) -> Incoming<'a> {
            self.incoming()
        }
    }

    impl UnixDatagram {
        /// A datagram socket bound to `path`.
        pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
            Ok(UnixDatagram(adopt(
                std::os::unix::net::UnixDatagram::bind(path)?,
            )?))
        }

        /// A datagram socket bound to `addr`.
        pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
            Ok(UnixDatagram(adopt(
                std::os::unix::net::UnixDatagram::bind_addr(addr)?,
            )?))
        }

        /// A datagram socket bound to no address.
        pub fn unbound() -> io::Result<UnixDatagram> {
            Ok(UnixDatagram(adopt(
                std::os::unix::net::UnixDatagram::unbound()?,
            )?))
        }

        /// A connected pair of datagram sockets.
        pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
            let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
            Ok((UnixDatagram(adopt(a)?), UnixDatagram(adopt(b)?)))
        }

        /// Connects to the socket at `path`; `send` and `recv` then talk to it only.
        pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
            self.0.get_ref().connect(path)
        }

        /// Connects to the socket at `addr`.
        pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
            self.0.get_ref().connect_addr(addr)
        }

        /// Another handle to the same socket.
        pub fn try_clone(&self) -> io::Result<UnixDatagram> {
            let std = self.0.get_ref().try_clone()?;
            Ok(UnixDatagram(Green::new(std, self.0.shared().clone())))
        }

        /// The local address.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            self.0.get_ref().local_addr()
        }

        /// The connected peer's address.
        pub fn peer_addr(&self) -> io::Result<SocketAddr> {
            self.0.get_ref().peer_addr()
        }

        /// Waits for a datagram; returns its length and sender.
        pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
            self.0.io(Dir::Read, |s| s.recv_from(buf))
        }

        /// Waits for a datagram from the connected peer.
        pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.io(Dir::Read, |s| s.recv(buf))
        }

        /// Sends `buf` to the socket at `path`.
        pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
            let path = path.as_ref();
            self.0.io(Dir::Write, |s| s.send_to(buf, path))
        }

        /// Sends `buf` to `addr`.
        pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
            self.0.io(Dir::Write, |s| s.send_to_addr(buf, addr))
        }

        /// Sends `buf` to the connected peer.
        pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
            self.0.io(Dir::Write, |s| s.send(buf))
        }

        /// Shuts down the read half, the write half or both.
        pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
            self.0.get_ref().shutdown(how)
        }
    }

    macro_rules! debug_as_std {
        ($($t:ident),*) => {$(
            impl fmt::Debug for $t {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    self.0.get_ref().fmt(f)
                }
            }
        )*};
    }
    debug_as_std!(UnixStream, UnixListener, UnixDatagram);

    stream_io!(UnixStream);
    timeout_methods!(UnixStream);
    timeout_methods!(UnixDatagram);
    fd_conversions!(UnixStream, std::os::unix::net::UnixStream);
    fd_conversions!(UnixListener, std::os::unix::net::UnixListener);
    fd_conversions!(UnixDatagram, std::os::unix::net::UnixDatagram);
}
