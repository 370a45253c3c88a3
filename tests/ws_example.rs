//! The WebSocket example end to end: 500 tungstenite clients, each a greennet coroutine with its
//! connection open at the same time as all the others, send text and binary messages from empty
//! to over 64 KiB (so a frame spans many reads) and a ping; every echo must match byte for byte,
//! and every close handshake must complete on both sides.
use greennet::net::TcpStream;
use greennet::sync::Barrier;
use greennet::thread;
use std::net::SocketAddr;
use std::panic::resume_unwind;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tungstenite::{Error, Message, WebSocket};

#[path = "support/examples.rs"]
mod support;

const CLIENTS: usize = 500;

/// How long the whole test may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(120);

/// The bound on any single read or write of a client.
const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `f` in a coroutine on a fresh plain thread and fails if it has not finished in `LIMIT`.
fn watchdog(f: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let runner = std::thread::spawn(move || {
        greennet::run(f);
        drop(done_tx);
    });
    if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(LIMIT) {
        panic!("the test did not finish within {LIMIT:?}");
    }
    runner
        .join()
        .unwrap_or_else(|payload| resume_unwind(payload));
}

/// `len` bytes that differ from client to client and from message to message, so that a lost,
/// reordered or misdirected chunk shows.
fn bytes(client: usize, message: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| ((j * 31 + client * 7 + message * 13) % 251) as u8)
        .collect()
}

/// Client `i`'s messages: the frame length encodings (7-bit, 16-bit, 64-bit), an empty one, and
/// multi-byte UTF-8 text long enough that characters are split across reads.
fn messages(i: usize) -> Vec<Message> {
    vec![
        Message::text(format!("hello from client {i}")),
        Message::binary(bytes(i, 1, 125 + i % 3)),
        Message::binary(Vec::new()),
        Message::text(format!("é🦀 {i} ").repeat(100 + i % 50)),
        Message::binary(bytes(i, 4, 65_536 + i * 7)),
        Message::text("ünï ₵ødé 🦀".repeat(3_500 + i)),
    ]
}

fn describe(message: &Message) -> String {
    match message {
        Message::Text(text) => format!("text of {} bytes", text.len()),
        Message::Binary(data) => format!("binary of {} bytes", data.len()),
        other => format!("{other:?}"),
    }
}

fn connect(addr: SocketAddr) -> Result<WebSocket<TcpStream>, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    let (ws, _response) = tungstenite::client(format!("ws://{addr}/echo"), stream)
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// One client: its messages and a ping, each answer checked, then the close handshake. Returns
/// the number of payload bytes echoed.
fn client(addr: SocketAddr, i: usize, all_open: &Barrier) -> Result<usize, String> {
    let connected = connect(addr);
    // Every client waits here, failed or not, so that none waits for one that never comes.
    all_open.wait();
    let mut ws = connected?;
    let mut echoed = 0;
    for message in messages(i) {
        ws.send(message.clone())
            .map_err(|e| format!("send {}: {e}", describe(&message)))?;
        let echo = ws
            .read()
            .map_err(|e| format!("echo of {}: {e}", describe(&message)))?;
        if echo != message {
            return Err(format!(
                "sent {}, got back {}",
                describe(&message),
                describe(&echo)
            ));
        }
        echoed += message.len();
    }
    let ping = format!("ping {i}");
    ws.send(Message::Ping(ping.clone().into()))
        .map_err(|e| format!("ping: {e}"))?;
    match ws.read() {
        Ok(Message::Pong(payload)) if payload == ping.as_bytes() => {}
        other => return Err(format!("answer to a ping: {other:?}")),
    }
    ws.close(None).map_err(|e| format!("close: {e}"))?;
    // The server's reply to our close frame, which it sends as its side of the handshake ends...
    match ws.read() {
        Ok(Message::Close(None)) => {}
        other => return Err(format!("reply to close: {other:?}")),
    }
    // ...and then the end of the TCP connection, which the server closes once it is done.
    match ws.read() {
        Err(Error::ConnectionClosed) => Ok(echoed),
        other => Err(format!("after the close handshake: {other:?}")),
    }
}

#[test]
fn many_concurrent_clients_get_every_message_back() {
    let (_server, addr) = support::start("ws_echo");
    let addr: SocketAddr = addr.parse().unwrap();
    watchdog(move || {
        let all_open = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let all_open = all_open.clone();
                thread::spawn(move || client(addr, i, &all_open))
            })
            .collect();
        let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        let failures: Vec<_> = results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().err().map(|e| format!("client {i}: {e}")))
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {CLIENTS} clients failed, the first: {:#?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        let expected: usize = (0..CLIENTS)
            .flat_map(messages)
            .map(|message| message.len())
            .sum();
        assert_eq!(
            results.into_iter().map(Result::unwrap).sum::<usize>(),
            expected
        );
    });
}
