//! HTTP/1.1 with plain blocking handlers, gevent's `pywsgi`; behind the `http` feature.
//!
//! A [`Server`] runs each connection on a coroutine of its own and calls the handler, an
//! ordinary `Fn(Request<Body>) -> Response<Body>`, for each of its requests in turn. The handler
//! may block on any greennet call (a socket, a lock, another service through [`client`]) and
//! only its own connection waits. Requests and responses are the `http` crate's types,
//! re-exported here, carrying a [`Body`] of our own.
//!
//! ```
//! use greennet::http::{client, Body, Request, Response, Server, StatusCode};
//!
//! fn app(req: Request<Body>) -> Response<Body> {
//!     match req.uri().path() {
//!         "/" => Response::new(Body::from("hello")),
//!         _ => {
//!             let mut missing = Response::new(Body::from("no such page"));
//!             *missing.status_mut() = StatusCode::NOT_FOUND;
//!             missing
//!         }
//!     }
//! }
//!
//! greennet::run(|| {
//!     let server = Server::new(app).bind("127.0.0.1:0").unwrap().start().unwrap();
//!     let base = format!("http://{}", server.local_addr());
//!     assert_eq!(client::get(&format!("{base}/")).unwrap().status(), 200);
//!     assert_eq!(client::get(&format!("{base}/nope")).unwrap().status(), 404);
//!     server.stop(std::time::Duration::from_secs(1));
//! });
//! ```

mod body;
pub mod client;
mod date;
mod server;
mod wire;

/// Not part of the API: the server's request reading over bytes in memory, for the cargo-fuzz
/// target in `fuzz/` (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    /// Reads requests from `data` as the server reads them from a connection (heads, then
    /// bodies with `Content-Length` or chunked, until the input ends or is refused); see the
    /// fuzz target for what its first byte selects.
    pub fn request(data: &[u8]) {
        super::server::read_requests_for_fuzzing(data)
    }
}

pub use body::Body;
pub use server::Server;

pub use ::http::{header, HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
