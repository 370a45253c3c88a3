//! The seed's hello server, in two files that differ only in their `use` lines and the
//! `#[green::main]` attribute (a test checks): `threaded_baseline.rs` runs a std thread per
//! connection, `green_hello.rs` a greennet coroutine per connection.
//!
//! Usage: `cargo run --release --example <name> -- [PORT]` (default 8000). It binds 127.0.0.1,
//! prints the address, and answers each connection with a five-write HTTP/1.0 `hello`, then
//! closes it. Errors are reported and the server carries on.
use greennet::net::{TcpListener, TcpStream};
use greennet::thread;
use std::io::{Read, Write};

fn handle(mut stream: TcpStream) -> std::io::Result<()> {
    let mut request = [0u8; 1024];
    let _request_len = stream.read(&mut request)?;
    stream.write_all(b"HTTP/1.0 200 OK\r\n")?;
    stream.write_all(b"Content-Type: text/plain\r\n")?;
    stream.write_all(b"Content-Length: 5\r\n")?;
    stream.write_all(b"\r\n")?;
    stream.write_all(b"hello")?;
    Ok(())
}

#[green::main]
fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "8000".to_string());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    println!("listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || {
                    if let Err(e) = handle(stream) {
                        eprintln!("connection error: {e}");
                    }
                });
            }
            Err(e) => eprintln!("accept error: {e}"),
        }
    }
    Ok(())
}
