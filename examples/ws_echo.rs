//! WebSocket on greennet: the `tungstenite` crate, unpatched, over `greennet::net::TcpStream`.
//! tungstenite is generic over `Read + Write` and blocks in those calls; here they are greennet's,
//! so each blocking read or write parks only the connection's coroutine.
//!
//! Usage: `cargo run --release --example ws_echo -- [PORT]` (default 9001, 0 for any). It binds
//! 127.0.0.1, prints `listening on ADDRESS`, and echoes every text and binary message of each
//! client back to it until the client closes. Errors are reported and the server carries on.
use greennet::net::TcpStream;
use greennet::server::StreamServer;
use std::net::SocketAddr;
use tungstenite::{Error, Message, WebSocket};

/// Sends each text and binary message back, until the close handshake is done.
fn echo(ws: &mut WebSocket<TcpStream>) -> tungstenite::Result<()> {
    loop {
        match ws.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => ws.send(message)?,
            // tungstenite answers pings and replies to a close by itself, on the next read.
            Ok(_) => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// One connection, on a coroutine of its own: the HTTP upgrade, then the echo.
fn handle(stream: TcpStream, peer: SocketAddr) {
    let mut ws = match tungstenite::accept(stream) {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("handshake error from {peer}: {e}");
            return;
        }
    };
    if let Err(e) = echo(&mut ws) {
        eprintln!("connection error from {peer}: {e}");
    }
}

#[green::main]
fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "9001".to_string());
    let server = StreamServer::bind(format!("127.0.0.1:{port}"), handle)?;
    println!("listening on {}", server.local_addr()?);
    server.serve_forever()
}
