//! The load benchmark's server on greennet: `threaded.rs` with the
//! `use` lines swapped and `#[green::main]` added. Usage: `bench_green PORT close|keep-alive`.
use greennet::net::{TcpListener, TcpStream};
use greennet::thread;
use std::io::{Read, Write};

include!("handler.rs");

#[green::main]
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
