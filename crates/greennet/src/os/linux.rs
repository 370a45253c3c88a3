//! Linux-only socket options, mirroring `std::os::linux`.

/// Linux networking extensions, mirroring `std::os::linux::net`.
pub mod net {
    use std::io;

    /// Linux `TCP_QUICKACK` for greennet's [`TcpStream`](crate::net::TcpStream). std's own
    /// `TcpStreamExt` is sealed, so greennet offers the same methods in its own trait.
    ///
    /// ```
    /// use greennet::net::{TcpListener, TcpStream};
    /// use greennet::os::linux::net::TcpStreamExt;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_quickack(true)?;
    /// assert!(stream.quickack()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub trait TcpStreamExt {
        /// Sets `TCP_QUICKACK`: acknowledge at once rather than delaying ACKs.
        fn set_quickack(&self, quickack: bool) -> io::Result<()>;
        /// Whether `TCP_QUICKACK` is set.
        fn quickack(&self) -> io::Result<bool>;
    }

    impl TcpStreamExt for crate::net::TcpStream {
        fn set_quickack(&self, quickack: bool) -> io::Result<()> {
            socket2::SockRef::from(self).set_quickack(quickack)
        }

        fn quickack(&self) -> io::Result<bool> {
            socket2::SockRef::from(self).quickack()
        }
    }
}
