//! The HTTP benchmark's peer on may: may_minihttp's hello world, answering every request with
//! `hello`. Usage: `bench_http_minihttp PORT`.
use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};

#[derive(Clone)]
struct Hello;

impl HttpService for Hello {
    fn call(&mut self, _req: Request, rsp: &mut Response) -> std::io::Result<()> {
        rsp.header("Content-Type: text/plain");
        rsp.body("hello");
        Ok(())
    }
}

struct Factory;

impl HttpServiceFactory for Factory {
    type Service = Hello;

    fn new_service(&self, _: usize) -> Hello {
        Hello
    }
}

fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8000".into());
    let server = Factory
        .start(format!("127.0.0.1:{port}"))
        .expect("bind the benchmark port");
    println!("listening on 127.0.0.1:{port}");
    server.wait();
}
