//! The load benchmark's thread-per-connection server on std. `green.rs` is this file with the
//! `use` lines swapped and `#[green::main]` added. Usage: `bench_threaded PORT close|keep-alive`.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

include!("handler.rs");

fn main() -> std::io::Result<()> {
    let (port, handler) = args();
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    println!("listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || {
                    if let Err(e) = handler(stream) {
                        eprintln!("connection error: {e}");
                    }
                });
            }
            Err(e) => eprintln!("accept error: {e}"),
        }
    }
    Ok(())
}
