//! The HTTP benchmark's greennet server: `greennet::http` with a plain blocking handler that
//! answers every request with `hello`. Usage: `bench_http_green PORT`.
//!
//! The handler is the same as hyper's in `http_hyper.rs`, statement for statement: both build
//! an `http::Response` with a `Content-Type` field from constants (`from_static`, so neither
//! parses nor copies them per request) around a static body.
use greennet::http::header::{HeaderValue, CONTENT_TYPE};
use greennet::http::{Body, Response, Server};

#[green::main]
fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8000".into());
    let server = Server::new(|_request| {
        let mut response = Response::new(Body::from_static(b"hello"));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        response
    })
    .bind(format!("127.0.0.1:{port}"))?;
    println!("listening on {}", server.local_addr()?);
    server.serve_forever()
}
