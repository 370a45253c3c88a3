//! The HTTP benchmark's greennet server: `greennet::http` with a plain blocking handler that
//! answers every request with `hello`. Usage: `bench_http_green PORT`.
use greennet::http::{Body, Response, Server};

#[green::main]
fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8000".into());
    let server = Server::new(|_request| {
        Response::builder()
            .header("Content-Type", "text/plain")
            .body(Body::from_static(b"hello"))
            .expect("a static response")
    })
    .bind(format!("127.0.0.1:{port}"))?;
    println!("listening on {}", server.local_addr()?);
    server.serve_forever()
}
