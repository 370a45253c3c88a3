//! tungstenite's blocking calls park coroutines, not the worker: on a runtime with ONE worker
//! thread, a WebSocket server whose handler holds each message for 200 ms before echoing it
//! answers 200 concurrent clients in about 200 ms, not the 40 s one connection at a time would
//! take. Server and clients share that one worker, in this process, and every server handler is
//! parked in tungstenite's `read` at once. The runtime is configured once per process, hence a
//! test binary of its own.
use greennet::net::TcpStream;
use greennet::server::StreamServer;
use greennet::sync::Barrier;
use greennet::thread;
use std::net::SocketAddr;
use std::panic::resume_unwind;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tungstenite::{Error, Message};

const CLIENTS: usize = 200;

/// How long the server holds each message before echoing it.
const HOLD: Duration = Duration::from_millis(200);

/// The bound on the time from all clients connected to all echoes back: well under
/// `CLIENTS * HOLD` (40 s).
const BOUND: Duration = Duration::from_secs(5);

/// How long the test may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(60);

/// The bound on any single read or write of a client.
const PATIENCE: Duration = Duration::from_secs(20);

/// Runs `f` in a coroutine of a one-worker runtime, from a fresh plain thread, and fails if it
/// has not finished in `LIMIT`.
fn watchdog(f: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let runner = std::thread::spawn(move || {
        greennet::runtime::Builder::new().workers(1).run(f);
        drop(done_tx);
    });
    if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(LIMIT) {
        panic!("the test did not finish within {LIMIT:?}");
    }
    runner
        .join()
        .unwrap_or_else(|payload| resume_unwind(payload));
}

/// The server's side of a connection: each message held for `HOLD`, then echoed, until the
/// client closes. Counts the connections whose close handshake completed.
fn slow_echo(stream: TcpStream, closed_cleanly: &AtomicUsize) -> tungstenite::Result<()> {
    let mut ws = tungstenite::accept(stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => unreachable!("greennet streams block"),
    })?;
    loop {
        match ws.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                thread::sleep(HOLD);
                ws.send(message)?;
            }
            Ok(_) => {}
            Err(Error::ConnectionClosed) => {
                // Counted before `ws` drops and closes the connection, so a client that has
                // seen it close has been counted.
                closed_cleanly.fetch_add(1, SeqCst);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

/// One client: connected alongside all the others, one message, its echo, a clean close.
/// Returns when it went past the barrier and when its echo arrived.
fn client(addr: SocketAddr, i: usize, all_open: &Barrier) -> Result<(Instant, Instant), String> {
    let connected = TcpStream::connect(addr)
        .map_err(|e| format!("connect: {e}"))
        .and_then(|stream| {
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            stream.set_write_timeout(Some(PATIENCE)).unwrap();
            tungstenite::client(format!("ws://{addr}/"), stream)
                .map_err(|e| format!("handshake: {e}"))
        });
    // Once every client is past this point, every server handler is parked in its read.
    all_open.wait();
    let released = Instant::now();
    let (mut ws, _response) = connected?;
    let message = Message::text(format!("hello from client {i}"));
    ws.send(message.clone()).map_err(|e| format!("send: {e}"))?;
    match ws.read() {
        Ok(echo) if echo == message => {}
        other => return Err(format!("echo: {other:?}")),
    }
    let echoed = Instant::now();
    ws.close(None).map_err(|e| format!("close: {e}"))?;
    match ws.read() {
        Ok(Message::Close(None)) => {}
        other => return Err(format!("reply to close: {other:?}")),
    }
    match ws.read() {
        Err(Error::ConnectionClosed) => Ok((released, echoed)),
        other => Err(format!("after the close handshake: {other:?}")),
    }
}

#[test]
fn one_worker_serves_slow_websocket_handlers_concurrently() {
    watchdog(|| {
        assert_eq!(greennet::runtime::config().unwrap().workers, 1);
        let closed_cleanly = Arc::new(AtomicUsize::new(0));
        let server = {
            let closed_cleanly = closed_cleanly.clone();
            StreamServer::bind("127.0.0.1:0", move |stream, peer| {
                if let Err(e) = slow_echo(stream, &closed_cleanly) {
                    eprintln!("server side of {peer}: {e}");
                }
            })
            .unwrap()
        };
        let server = server.start().unwrap();
        let addr = server.local_addr();

        let all_open = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let all_open = all_open.clone();
                thread::spawn(move || client(addr, i, &all_open))
            })
            .collect();
        let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        server.stop(Duration::from_secs(1));

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
        assert_eq!(closed_cleanly.load(SeqCst), CLIENTS);
        let times = results.into_iter().map(Result::unwrap);
        let (released, echoed): (Vec<_>, Vec<_>) = times.unzip();
        let elapsed = echoed
            .iter()
            .max()
            .unwrap()
            .duration_since(*released.iter().min().unwrap());
        assert!(
            elapsed < BOUND,
            "{CLIENTS} clients took {elapsed:?}; with each held {HOLD:?} one at a time they would \
             take {:?}",
            HOLD * CLIENTS as u32
        );
    });
}
