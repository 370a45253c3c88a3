//! The load benchmark's server written directly on may: a `go!` coroutine per connection,
//! may's own `TcpListener`/`TcpStream`, may's default configuration. It measures what greennet's
//! layer costs. Usage: `bench_may PORT close|keep-alive`.
use may::net::{TcpListener, TcpStream};
use std::io::{Read, Write};

include!("handler.rs");

fn main() -> std::io::Result<()> {
    let (port, handler) = args();
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    println!("listening on {}", listener.local_addr()?);
    let acceptor = may::go!(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    may::go!(move || {
                        if let Err(e) = handler(stream) {
                            eprintln!("connection error: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("accept error: {e}"),
            }
        }
    });
    acceptor.join().expect("accept loop panicked");
    Ok(())
}
