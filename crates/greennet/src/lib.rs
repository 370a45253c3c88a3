//! greennet is gevent for Rust: the blocking std API you already write, run on stackful
//! coroutines so that one thread serves thousands of connections.
//!
//! Migrating a thread-per-connection program takes two edits: `use greennet::net` and
//! `use greennet::thread` where it said `std::net` and `std::thread`, and `#[green::main]` on
//! `main` (from the `greennet-macros` package, whose library is named `green`). Each "thread" is
//! then a may coroutine, and each blocking socket call parks only that coroutine.
//!
//! ```
//! use greennet::net::{TcpListener, TcpStream};
//! use greennet::thread;
//! use std::io::{Read, Write};
//!
//! greennet::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = thread::spawn(move || {
//!         let (mut conn, _) = listener.accept().unwrap();
//!         conn.write_all(b"hello").unwrap();
//!     });
//!     let mut answer = String::new();
//!     TcpStream::connect(addr).unwrap().read_to_string(&mut answer).unwrap();
//!     server.join().unwrap();
//!     assert_eq!(answer, "hello");
//! });
//! ```
//!
//! The layers: [`net`] and [`thread`] mirror std; a private core turns "would block" into
//! "park until ready" on may's event loop (or a plain `poll` outside coroutines); [`runtime`]
//! configures the scheduler.
#![deny(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]

pub mod blocking;
pub mod event;
mod green;
#[cfg(feature = "http")]
pub mod http;
mod interrupt;
pub mod lock;
mod monitor;
#[macro_use]
pub mod net;
pub mod os;
#[cfg(all(feature = "patch", target_os = "linux"))]
mod patch;
pub mod pool;
pub mod queue;
pub mod runtime;
pub mod server;
pub mod signal;
pub mod sync;
pub mod thread;
pub mod timeout;
mod waiters;

pub use blocking::blocking;
pub use runtime::run;
pub use timeout::timeout;
