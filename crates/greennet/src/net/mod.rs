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

mod addr;
mod tcp;

pub use self::tcp::{Incoming, TcpListener, TcpStream};
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
    ToSocketAddrs,
};
