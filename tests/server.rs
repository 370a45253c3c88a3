//! greennet::server on real loopback sockets: StreamServer (TCP and Unix), its cap on
//! connections, stopping, panics, descriptor exhaustion, SO_REUSEPORT, and DatagramServer.
use greennet::event::Event;
use greennet::net::{TcpListener, TcpStream, UdpSocket};
use greennet::os::unix::net::{UnixListener, UnixStream};
use greennet::server::{DatagramServer, Listener, StreamServer};
use greennet::sync::mpsc;
use greennet::thread;
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous bound on any single wait for the other side, so a bug fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(10);

/// Echoes lines until the peer closes.
fn echo_lines<S>(stream: S)
where
    for<'a> &'a S: Read + Write,
{
    let mut lines = BufReader::new(&stream);
    let mut line = String::new();
    while lines.read_line(&mut line).unwrap_or(0) > 0 {
        if (&stream).write_all(line.as_bytes()).is_err() {
            return;
        }
        line.clear();
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

fn read_line(stream: &TcpStream) -> String {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

/// Sends one line and returns the answer line.
fn ask(addr: SocketAddr, line: &str) -> String {
    let stream = connect(addr);
    (&stream).write_all(line.as_bytes()).unwrap();
    read_line(&stream)
}

#[green::test]
fn tcp_echo_serves_many_concurrent_clients() {
    let handle = StreamServer::bind("127.0.0.1:0", |s, _| echo_lines(s))
        .unwrap()
        .start()
        .unwrap();
    let addr = handle.local_addr();
    let clients: Vec<_> = (0..200)
        .map(|i| {
            thread::spawn(move || {
                let stream = connect(addr);
                let mut lines = BufReader::new(&stream);
                for round in 0..5 {
                    let msg = format!("client {i} round {round}\n");
                    (&stream).write_all(msg.as_bytes()).unwrap();
                    let mut answer = String::new();
                    lines.read_line(&mut answer).unwrap();
                    assert_eq!(answer, msg);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(handle.stop(Duration::from_secs(5)), 0);
}

#[green::test]
fn unix_listener_is_served_too() {
    let dir = std::env::temp_dir().join(format!("greennet-server-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let server = StreamServer::new(UnixListener::bind(&path).unwrap(), |s, _| echo_lines(s));
    let handle = server.start().unwrap();
    assert_eq!(handle.local_addr().as_pathname(), Some(path.as_path()));
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let path = path.clone();
            thread::spawn(move || {
                let stream = UnixStream::connect(&path).unwrap();
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                let msg = format!("unix {i}\n");
                (&stream).write_all(msg.as_bytes()).unwrap();
                let mut answer = String::new();
                BufReader::new(&stream).read_line(&mut answer).unwrap();
                assert_eq!(answer, msg);
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    handle.stop(Duration::from_secs(5));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[green::test]
fn max_connections_caps_running_handlers() {
    const CAP: usize = 3;
    const CLIENTS: usize = 8;
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Event::new());
    let (started_tx, started) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let handler = {
        let (running, peak, gate) = (running.clone(), peak.clone(), gate.clone());
        move |mut stream: TcpStream, _| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let _ = started_tx.lock().unwrap().send(());
            gate.wait();
            running.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.write_all(b"served\n");
        }
    };
    let handle = StreamServer::builder()
        .max_connections(CAP)
        .bind("127.0.0.1:0", handler)
        .unwrap()
        .start()
        .unwrap();
    let addr = handle.local_addr();
    let clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(addr)).collect();
    for _ in 0..CAP {
        started.recv_timeout(PATIENCE).unwrap();
    }
    // Every slot is busy: the rest wait in the backlog, unaccepted.
    assert!(started.recv_timeout(Duration::from_millis(300)).is_err());
    assert_eq!(running.load(Ordering::SeqCst), CAP);
    assert_eq!(handle.running(), CAP);
    // Freed slots let the others in.
    gate.set();
    for client in &clients {
        assert_eq!(read_line(client), "served\n");
    }
    assert_eq!(peak.load(Ordering::SeqCst), CAP);
    assert_eq!(handle.stop(Duration::from_secs(5)), 0);
}

#[green::test]
fn stop_refuses_new_connections_lets_handlers_finish_and_kills_overrunners() {
    let (started_tx, started) = mpsc::channel::<u8>();
    let started_tx = Mutex::new(started_tx);
    let handle = StreamServer::bind("127.0.0.1:0", move |mut stream, _| {
        let mut kind = [0];
        if stream.read_exact(&mut kind).is_err() {
            return;
        }
        let _ = started_tx.lock().unwrap().send(kind[0]);
        match kind[0] {
            // In flight when `stop` comes, and done well within the grace period.
            b'f' => thread::sleep(Duration::from_millis(200)),
            // Overruns any grace period.
            _ => thread::sleep(Duration::from_secs(3600)),
        }
        let _ = stream.write_all(b"done\n");
    })
    .unwrap()
    .start()
    .unwrap();
    let addr = handle.local_addr();
    let finisher = connect(addr);
    let overrunner = connect(addr);
    (&finisher).write_all(b"f").unwrap();
    (&overrunner).write_all(b"o").unwrap();
    let mut kinds = [
        started.recv_timeout(PATIENCE).unwrap(),
        started.recv_timeout(PATIENCE).unwrap(),
    ];
    kinds.sort();
    assert_eq!(kinds, [b'f', b'o']);

    let grace = Duration::from_secs(1);
    let begun = Instant::now();
    let killed = handle.stop(grace);
    let took = begun.elapsed();
    assert_eq!(killed, 1);
    assert!(
        took >= grace,
        "stop returned before the grace period: {took:?}"
    );
    assert!(took < grace + Duration::from_secs(3), "stop took {took:?}");

    // The finisher's handler completed its work.
    assert_eq!(read_line(&finisher), "done\n");
    // The overrunner's handler was killed: its socket closed without an answer.
    let mut rest = Vec::new();
    (&overrunner).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    // The listener is closed.
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[green::test]
fn stop_closes_the_listener_at_once() {
    let (started_tx, started) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let gate = Arc::new(Event::new());
    let handler_gate = gate.clone();
    let handle = StreamServer::bind("127.0.0.1:0", move |mut stream, _| {
        let _ = started_tx.lock().unwrap().send(());
        handler_gate.wait();
        let _ = stream.write_all(b"late\n");
    })
    .unwrap()
    .start()
    .unwrap();
    let addr = handle.local_addr();
    let busy = connect(addr);
    started.recv_timeout(PATIENCE).unwrap();
    let stopper = thread::spawn(move || handle.stop(Duration::from_secs(30)));
    // While `stop` waits for the busy handler, new connections are already refused.
    let deadline = Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(addr) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            // `stop` may not have reached the listener yet; a connection made meanwhile is
            // never served, since the listener closes with it in the backlog.
            _ => {
                assert!(Instant::now() < deadline, "the listener never closed");
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
    assert!(!stopper.is_finished());
    gate.set();
    assert_eq!(read_line(&busy), "late\n");
    assert_eq!(stopper.join().unwrap(), 0);
}

/// With every slot busy the accept loop waits for a slot, not in `accept`; `stop` must reach it
/// there too.
#[green::test]
fn stop_reaches_a_server_waiting_for_a_free_slot() {
    let (started_tx, started) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let handle = StreamServer::builder()
        .max_connections(1)
        .bind("127.0.0.1:0", move |stream: TcpStream, _| {
            let _ = started_tx.lock().unwrap().send(());
            let mut byte = [0];
            let _ = (&stream).read(&mut byte);
        })
        .unwrap()
        .start()
        .unwrap();
    let addr = handle.local_addr();
    let busy = connect(addr);
    started.recv_timeout(PATIENCE).unwrap();
    let waiting = connect(addr);
    assert_eq!(handle.stop(Duration::from_millis(50)), 1);
    // The busy connection's handler was killed, and the waiting one was never accepted: both
    // end without an answer.
    for stream in [&busy, &waiting] {
        let mut rest = Vec::new();
        let _ = (&*stream).read_to_end(&mut rest);
        assert!(rest.is_empty());
    }
    assert!(started.try_recv().is_err());
}

#[green::test]
fn a_panicking_handler_does_not_stop_the_server() {
    let handle = StreamServer::bind("127.0.0.1:0", |stream: TcpStream, _| {
        let mut lines = BufReader::new(&stream);
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        if line == "panic\n" {
            panic!("the handler was asked to panic");
        }
        (&stream).write_all(line.as_bytes()).unwrap();
    })
    .unwrap()
    .start()
    .unwrap();
    let addr = handle.local_addr();
    for _ in 0..3 {
        // The panicking handler's connection closes without an answer...
        assert_eq!(ask(addr, "panic\n"), "");
        // ...and the next client is served.
        assert_eq!(ask(addr, "hello\n"), "hello\n");
    }
    assert_eq!(handle.stop(Duration::from_secs(5)), 0);
}

/// No runtime set up by the test: the server's coroutines start it, and the handle works from
/// this plain thread.
#[test]
fn starts_and_stops_from_a_plain_thread() {
    let handle = StreamServer::bind("127.0.0.1:0", |s, _| echo_lines(s))
        .unwrap()
        .start()
        .unwrap();
    let mut client = std::net::TcpStream::connect(handle.local_addr()).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.write_all(b"from a thread\n").unwrap();
    let mut answer = String::new();
    BufReader::new(&client).read_line(&mut answer).unwrap();
    assert_eq!(answer, "from a thread\n");
    drop(client);
    assert_eq!(handle.stop(Duration::from_secs(5)), 0);
}

#[green::test]
fn serve_forever_runs_in_its_coroutine_until_killed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = StreamServer::new(listener, |s, _| echo_lines(s));
    let running = thread::spawn(move || server.serve_forever());
    assert_eq!(ask(addr, "forever\n"), "forever\n");
    running.kill();
    let payload = running.join().unwrap_err();
    assert!(thread::Killed::is(&*payload));
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[green::test]
fn reuse_port_lets_two_servers_share_a_port() {
    let serve_as = |name: &'static str| {
        move |stream: TcpStream, _| {
            let _ = (&stream).write_all(format!("{name}\n").as_bytes());
        }
    };
    let first = StreamServer::builder()
        .reuse_port(true)
        .bind("127.0.0.1:0", serve_as("first"))
        .unwrap()
        .start()
        .unwrap();
    let addr = first.local_addr();
    let second = StreamServer::builder()
        .reuse_port(true)
        .bind(addr, serve_as("second"))
        .unwrap()
        .start()
        .unwrap();
    assert_eq!(second.local_addr(), addr);
    // Without SO_REUSEPORT the port is taken, as with std.
    let err = StreamServer::bind(addr, serve_as("third")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    // The kernel spreads connections over both by their source port.
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let stream = connect(addr);
        seen.insert(read_line(&stream));
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "only {seen:?} answered");
    first.stop(Duration::from_secs(5));
    second.stop(Duration::from_secs(5));
}

#[green::test]
fn without_reuse_port_a_second_bind_fails() {
    let first = StreamServer::bind("127.0.0.1:0", |_, _| {}).unwrap();
    let addr = first.local_addr().unwrap();
    let err = StreamServer::bind(addr, |_, _| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    // Asking for SO_REUSEPORT does not help against a socket that did not.
    let err = StreamServer::builder()
        .reuse_port(true)
        .bind(addr, |_, _| {})
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
}

#[green::test]
fn datagram_server_answers_each_datagram() {
    let handle = DatagramServer::bind("127.0.0.1:0", |data, peer, socket| {
        let mut answer = b"echo:".to_vec();
        answer.extend_from_slice(data);
        socket.send_to(&answer, peer).unwrap();
    })
    .unwrap()
    .start()
    .unwrap();
    let addr = handle.local_addr();
    let clients: Vec<_> = (0..50)
        .map(|i| {
            thread::spawn(move || {
                let client = UdpSocket::bind("127.0.0.1:0").unwrap();
                client.set_read_timeout(Some(PATIENCE)).unwrap();
                let msg = format!("datagram {i}");
                client.send_to(msg.as_bytes(), addr).unwrap();
                let mut buf = [0; 64];
                let (n, from) = client.recv_from(&mut buf).unwrap();
                assert_eq!(from, addr);
                assert_eq!(&buf[..n], format!("echo:{msg}").as_bytes());
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(handle.stop(Duration::from_secs(5)), 0);
}

#[green::test]
fn datagram_server_cuts_datagrams_to_its_buffer() {
    let handle = DatagramServer::builder()
        .max_datagram_size(4)
        .bind("127.0.0.1:0", |data, peer, socket| {
            socket.send_to(data, peer).unwrap();
        })
        .unwrap()
        .start()
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.send_to(b"0123456789", handle.local_addr()).unwrap();
    let mut buf = [0; 16];
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"0123");
    handle.stop(Duration::from_secs(5));
}

/// A listener that counts its accepts and signals the first `EMFILE`.
struct Counting {
    inner: TcpListener,
    attempts: Arc<AtomicUsize>,
    exhausted: Arc<Event>,
}

impl Listener for Counting {
    type Stream = TcpStream;
    type Addr = SocketAddr;

    fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let result = self.inner.accept();
        if let Err(e) = &result {
            if e.raw_os_error() == Some(libc::EMFILE) {
                self.exhausted.set();
            }
        }
        result
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

const EMFILE_CHILD: &str = "GREENNET_SERVER_EMFILE_CHILD";

/// Lowering the descriptor limit affects the whole process, so the scenario runs in a child:
/// this same test binary, running only `emfile_child`.
#[test]
fn emfile_backs_off_without_spinning_and_recovers() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "emfile_child", "--nocapture", "--test-threads=1"])
        .env(EMFILE_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("emfile child done"), "{stdout}");
}

/// The child's half of the test above; does nothing unless run as that child.
#[green::test]
fn emfile_child() {
    if std::env::var_os(EMFILE_CHILD).is_none() {
        return;
    }
    const CLIENTS: usize = 24;
    let inner = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = inner.local_addr().unwrap();
    // Connected before the limit drops; the connections wait in the listen backlog.
    let clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(addr)).collect();

    let open: HashSet<libc::rlim_t> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // Leave two free descriptor numbers under the limit (three, counting the one read_dir
    // used, which is closed again).
    let limit = (0..).filter(|fd| !open.contains(fd)).nth(2).unwrap();
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the plain structs passed by reference.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let lowered = libc::rlimit {
            rlim_cur: limit,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lowered), 0);
    }

    let attempts = Arc::new(AtomicUsize::new(0));
    let exhausted = Arc::new(Event::new());
    let gate = Arc::new(Event::new());
    let served = Arc::new(AtomicUsize::new(0));
    let listener = Counting {
        inner,
        attempts: attempts.clone(),
        exhausted: exhausted.clone(),
    };
    let handler = {
        let (gate, served) = (gate.clone(), served.clone());
        move |mut stream: TcpStream, _| {
            // Hold the descriptor until the test frees them all.
            gate.wait();
            served.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(b"hi\n");
        }
    };
    let handle = StreamServer::new(listener, handler).start().unwrap();

    assert!(
        exhausted.wait_timeout(PATIENCE),
        "accept never hit EMFILE: limit {limit}, open {open:?}, {} attempts, {} served",
        attempts.load(Ordering::SeqCst),
        served.load(Ordering::SeqCst)
    );
    let before = attempts.load(Ordering::SeqCst);
    // Watch the server while it cannot accept: it should pause, not spin.
    let window = Duration::from_millis(700);
    thread::sleep(window);
    let during = attempts.load(Ordering::SeqCst) - before;
    // Pauses of 10, 20, 40, 80, 160, 320 ms... fit about 7 tries in the window; a busy loop
    // would make many thousands.
    assert!(during <= 15, "{during} accept attempts in {window:?}");
    assert_eq!(served.load(Ordering::SeqCst), 0);

    // Free the held descriptors: the server accepts the rest as they come back.
    gate.set();
    for client in &clients {
        assert_eq!(read_line(client), "hi\n");
    }
    assert_eq!(served.load(Ordering::SeqCst), CLIENTS);
    handle.stop(Duration::from_secs(5));
    println!("emfile child done: {during} attempts while exhausted");
}
