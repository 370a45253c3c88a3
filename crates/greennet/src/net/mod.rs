//! std::net's API, where every blocking call parks the coroutine instead of the thread.
//!
//! Swap `use std::net::...` for `use greennet::net::...` and nothing else changes: the same
//! types, methods, signatures and errors. Inside a coroutine, a call that would block (`accept`,
//! `read`, `write`, `connect`) lets the worker thread run other coroutines until the socket is
//! ready; on a plain thread it blocks that thread, exactly as std does.
//!
//! Addresses and other types that never block are std's own, re-exported, so code generic over
//! `std::net::ToSocketAddrs` keeps working.
//!
//! ```no_run
//! use greennet::net::TcpListener;
//! use std::io::{Read, Write};
//!
//! #[green::main]
//! fn main() -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:7000")?;
//!     for stream in listener.incoming() {
//!         let mut stream = stream?;
//!         greennet::thread::spawn(move || {
//!             let mut buf = [0; 1024];
//!             while let Ok(n @ 1..) = stream.read(&mut buf) {
//!                 if stream.write_all(&buf[..n]).is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//!     Ok(())
//! }
//! ```

/// `Read` and `Write` for a stream socket and for a shared reference to it, each a single
/// syscall handed to the green core (std's `&TcpStream` I/O lets a reader and a writer share
/// one socket).
macro_rules! stream_io {
    ($green:ident) => {
        impl ::std::io::Read for $green {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                ::std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::io::Result<usize> {
                ::std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl ::std::io::Read for &$green {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.0.read_stream(
                    buf.len(),
                    || None,
                    None,
                    |mut s| ::std::io::Read::read(&mut s, buf),
                )
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::io::Result<usize> {
                let len = bufs.iter().map(|b| b.len()).fold(0, usize::saturating_add);
                self.0.read_stream(
                    len,
                    || None,
                    None,
                    |mut s| ::std::io::Read::read_vectored(&mut s, bufs),
                )
            }
        }

        impl ::std::io::Write for $green {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                ::std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                ::std::io::Write::write_vectored(&mut &*self, bufs)
            }

            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }

        impl ::std::io::Write for &$green {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.0.io($crate::green::Dir::Write, |mut s| {
                    ::std::io::Write::write(&mut s, buf)
                })
            }

            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                self.0.io($crate::green::Dir::Write, |mut s| {
                    ::std::io::Write::write_vectored(&mut s, bufs)
                })
            }

            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// The timeout and non-blocking methods every connected socket type has in std, in an
/// `impl` block of their own. All share the green core's rules: timeouts go through std's setter
/// (so `Some(Duration::ZERO)` is `InvalidInput`) and expire with `WouldBlock`; the non-blocking
/// flag is shared with `try_clone`d handles.
macro_rules! timeout_methods {
    ($green:ident) => {
        impl $green {
            /// Sets how long a read may wait; `None` waits forever. An expired read returns
            /// `WouldBlock`, as std's does on Linux.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for `Some(Duration::ZERO)`.
            pub fn set_read_timeout(
                &self,
                dur: Option<::std::time::Duration>,
            ) -> ::std::io::Result<()> {
                self.0.set_timeout($crate::green::Dir::Read, dur)
            }

            /// Sets how long a write may wait; `None` waits forever.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for `Some(Duration::ZERO)`.
            pub fn set_write_timeout(
                &self,
                dur: Option<::std::time::Duration>,
            ) -> ::std::io::Result<()> {
                self.0.set_timeout($crate::green::Dir::Write, dur)
            }

            /// The read timeout, as the kernel keeps it (rounded up to its clock tick).
            pub fn read_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
                self.0.timeout($crate::green::Dir::Read)
            }

            /// The write timeout, as the kernel keeps it.
            pub fn write_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
                self.0.timeout($crate::green::Dir::Write)
            }

            /// Switches between blocking calls (the default: they park until done) and
            /// non-blocking ones (they return `WouldBlock` instead of waiting). Shared with
            /// `try_clone`d handles.
            pub fn set_nonblocking(&self, nonblocking: bool) -> ::std::io::Result<()> {
                self.0.shared().set_nonblocking(nonblocking);
                Ok(())
            }

            /// Takes the socket's pending error (`SO_ERROR`), if any.
            pub fn take_error(&self) -> ::std::io::Result<Option<::std::io::Error>> {
                self.0.get_ref().take_error()
            }
        }
    };
}

/// The conversions between greennet's and std's sockets, and to and from raw descriptors. What
/// leaves greennet leaves in the blocking mode the user chose; what enters is switched to
/// non-blocking underneath, keeping the mode it came with as the user's choice.
macro_rules! fd_conversions {
    ($green:ident, $std:ty) => {
        impl $green {
            fn from_std_inner(std: $std) -> ::std::io::Result<$green> {
                let fd = ::std::os::fd::AsRawFd::as_raw_fd(&std);
                // SAFETY: F_GETFL reads the flags of a descriptor `std` owns.
                let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
                if flags < 0 {
                    return Err(::std::io::Error::last_os_error());
                }
                $crate::green::set_fd_nonblocking(fd, true)?;
                let shared = $crate::green::Shared::adopted(fd, flags & libc::O_NONBLOCK != 0);
                Ok($green($crate::green::Green::new(
                    std,
                    ::std::sync::Arc::new(shared),
                )))
            }

            fn into_std_inner(self) -> $std {
                let nonblocking = self.0.shared().nonblocking();
                let std = self.0.into_inner();
                // Best effort: the descriptor stays valid either way, and std's own conversions
                // cannot fail either.
                let fd = ::std::os::fd::AsRawFd::as_raw_fd(&std);
                let _ = $crate::green::set_fd_nonblocking(fd, nonblocking);
                std
            }
        }

        impl From<$std> for $green {
            /// Adopts a std socket; its blocking mode becomes this handle's mode.
            ///
            /// # Panics
            ///
            /// If the descriptor's flags cannot be read or changed, which only happens when it is
            /// not a valid open descriptor.
            fn from(std: $std) -> $green {
                $green::from_std_inner(std)
                    .unwrap_or_else(|e| panic!("greennet: cannot adopt {}: {e}", stringify!($std)))
            }
        }

        impl From<$green> for $std {
            fn from(green: $green) -> $std {
                green.into_std_inner()
            }
        }

        impl ::std::os::fd::AsRawFd for $green {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(self.0.get_ref())
            }
        }

        impl ::std::os::fd::AsFd for $green {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                ::std::os::fd::AsFd::as_fd(self.0.get_ref())
            }
        }

        impl ::std::os::fd::FromRawFd for $green {
            unsafe fn from_raw_fd(fd: ::std::os::fd::RawFd) -> $green {
                // SAFETY: the caller passes ownership of an open socket descriptor, as for std.
                $green::from(unsafe { <$std as ::std::os::fd::FromRawFd>::from_raw_fd(fd) })
            }
        }

        impl ::std::os::fd::IntoRawFd for $green {
            fn into_raw_fd(self) -> ::std::os::fd::RawFd {
                ::std::os::fd::IntoRawFd::into_raw_fd(self.into_std_inner())
            }
        }

        impl From<::std::os::fd::OwnedFd> for $green {
            fn from(fd: ::std::os::fd::OwnedFd) -> $green {
                $green::from(<$std>::from(fd))
            }
        }

        impl From<$green> for ::std::os::fd::OwnedFd {
            fn from(green: $green) -> ::std::os::fd::OwnedFd {
                green.into_std_inner().into()
            }
        }
    };
}

pub(crate) mod addr;
mod tcp;
mod udp;

pub use self::tcp::{Incoming, TcpListener, TcpStream, LISTEN_BACKLOG};
pub use self::udp::UdpSocket;
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
    ToSocketAddrs,
};
