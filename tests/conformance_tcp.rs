//! TCP conformance: each case is one body, run against std::net with std::thread, and against
//! greennet's in a coroutine and on a plain thread. Expectations come from std's documented
//! behaviour on Linux.
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[macro_use]
#[path = "support/conformance.rs"]
mod support;

conformance! {
    std { use std::{net, thread}; }
    green { use greennet::{net, thread}; }

    echo_with_a_reader_and_a_writer_on_one_socket => {
        let listener = net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut conn, peer) = listener.accept().unwrap();
            assert_eq!(conn.peer_addr().unwrap(), peer);
            let mut buf = [0; 8192];
            loop {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 { break; }
                conn.write_all(&buf[..n]).unwrap();
            }
        });
        let client = Arc::new(net::TcpStream::connect(addr).unwrap());
        let writer = {
            let client = client.clone();
            thread::spawn(move || {
                (&*client).write_all(&vec![9u8; 2 << 20]).unwrap();
                client.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut back = Vec::new();
        (&*client).read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        server.join().unwrap();
        assert_eq!(back.len(), 2 << 20);
        assert!(back.iter().all(|b| *b == 9));
    }

    many_acceptors_share_a_listener => {
        let listener = Arc::new(net::TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        let acceptors: Vec<_> = (0..4).map(|_| {
            let listener = listener.clone();
            thread::spawn(move || {
                let (mut c, _) = listener.accept().unwrap();
                c.write_all(b"!").unwrap();
            })
        }).collect();
        for _ in 0..4 {
            let mut c = net::TcpStream::connect(addr).unwrap();
            let mut b = [0];
            c.read_exact(&mut b).unwrap();
        }
        acceptors.into_iter().for_each(|a| a.join().unwrap());
    }

    timeouts_follow_std => {
        let listener = net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(c.read_timeout().unwrap(), None);
        let zero = c.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidInput);
        assert_eq!(c.set_write_timeout(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidInput);
        c.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let kept = c.read_timeout().unwrap().unwrap();
        assert!(kept >= Duration::from_millis(30) && kept <= Duration::from_millis(40), "{kept:?}");
        let start = Instant::now();
        let err = (&c).read(&mut [0; 4]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(30));
        // Shared with clones, as the kernel shares it.
        let clone = c.try_clone().unwrap();
        assert_eq!(clone.read_timeout().unwrap(), Some(kept));
        c.set_read_timeout(None).unwrap();
        assert_eq!(clone.read_timeout().unwrap(), None);
        let bad = SocketAddr::from(([127, 0, 0, 1], 1));
        let zero = net::TcpStream::connect_timeout(&bad, Duration::ZERO).unwrap_err();
        assert_eq!(zero.kind(), ErrorKind::InvalidInput);
    }

    bind_and_connect_errors => {
        let listener = net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(net::TcpListener::bind(addr).unwrap_err().kind(), ErrorKind::AddrInUse);
        drop(listener);
        assert_eq!(net::TcpStream::connect(addr).unwrap_err().kind(), ErrorKind::ConnectionRefused);
        let none: &[SocketAddr] = &[];
        let err = net::TcpStream::connect(none).unwrap_err();
        assert_eq!((err.kind(), err.to_string()), (ErrorKind::InvalidInput, "could not resolve to any addresses".to_string()));
        // Each address in turn, the last error reported: a refused one, then a working one.
        let live = net::TcpListener::bind("127.0.0.1:0").unwrap();
        let both = [addr, live.local_addr().unwrap()];
        assert!(net::TcpStream::connect(&both[..]).is_ok());
    }

    writing_to_a_closed_peer_is_an_error_not_a_signal => {
        let listener = net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        drop(listener.accept().unwrap());
        let start = Instant::now();
        let err = loop {
            if let Err(e) = c.write(&[0; 4096]) { break e; }
            assert!(start.elapsed() < Duration::from_secs(5));
            thread::sleep(Duration::from_millis(2));
        };
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err}");
    }

    shutdown_read_wakes_a_blocked_reader => {
        let listener = net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = Arc::new(net::TcpStream::connect(listener.local_addr().unwrap()).unwrap());
        let _peer = listener.accept().unwrap();
        let c2 = c.clone();
        let reader = thread::spawn(move || (&*c2).read(&mut [0; 4]).unwrap());
        thread::sleep(Duration::from_millis(30));
        c.shutdown(Shutdown::Read).unwrap();
        assert_eq!(reader.join().unwrap(), 0);
    }

    connect_timeout_expires_with_timed_out => {
        // A listener that never accepts, with the smallest backlog: once its queue is full the
        // kernel drops further SYNs, so a connect can only time out.
        let full = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        full.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        full.listen(0).unwrap();
        let addr = full.local_addr().unwrap().as_socket().unwrap();
        let mut held = Vec::new();
        let err = loop {
            match net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(s) => held.push(s),
                Err(e) => break e,
            }
            assert!(held.len() < 16, "the backlog never filled");
        };
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    }

    a_queued_reader_keeps_its_own_timeout => {
        let listener = net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = Arc::new(net::TcpStream::connect(listener.local_addr().unwrap()).unwrap());
        let (mut peer, _) = listener.accept().unwrap();
        let c2 = c.clone();
        // The first reader waits with no timeout...
        let first = thread::spawn(move || (&*c2).read(&mut [0; 4]).unwrap());
        thread::sleep(Duration::from_millis(30));
        // ...and a second, started after a timeout is set, gives up on time.
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let start = Instant::now();
        let err = (&*c).read(&mut [0; 4]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        peer.write_all(b"done").unwrap();
        assert_eq!(first.join().unwrap(), 4);
    }

    nonblocking_and_peek => {
        let listener = net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        listener.set_nonblocking(false).unwrap();
        let c = net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        let clone = c.try_clone().unwrap();
        c.set_nonblocking(true).unwrap();
        assert_eq!((&clone).read(&mut [0; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
        c.set_nonblocking(false).unwrap();
        s.write_all(b"peek").unwrap();
        let mut buf = [0; 4];
        assert_eq!(c.peek(&mut buf).unwrap(), 4);
        (&c).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"peek");
    }

    options_round_trip => {
        let listener = net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        c.set_ttl(33).unwrap();
        assert_eq!(c.ttl().unwrap(), 33);
        listener.set_ttl(34).unwrap();
        assert_eq!(listener.ttl().unwrap(), 34);
        assert!(c.take_error().unwrap().is_none());
        assert!(listener.take_error().unwrap().is_none());
        assert!(format!("{c:?}").starts_with("TcpStream {"));
        assert!(format!("{listener:?}").starts_with("TcpListener {"));
    }

    into_raw_fd_keeps_blocking_mode => {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let listener = net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = c.into_raw_fd();
        // SAFETY: F_GETFL on a descriptor this test owns.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "handed over in non-blocking mode");
        // SAFETY: `fd` was released above and is owned by nothing else.
        drop(unsafe { std::net::TcpStream::from_raw_fd(fd) });
    }
}

#[test]
fn a_socket_moves_between_threads_and_coroutines() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0; 3];
        for _ in 0..2 {
            c.read_exact(&mut buf).unwrap();
            c.write_all(&buf).unwrap();
        }
    });
    // Made on a plain thread, used in a coroutine, then back on the thread.
    let mut s = greennet::net::TcpStream::connect(addr).unwrap();
    s = greennet::thread::spawn(move || {
        s.write_all(b"one").unwrap();
        let mut b = [0; 3];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"one");
        s
    })
    .join()
    .unwrap();
    s.write_all(b"two").unwrap();
    let mut b = [0; 3];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"two");
    server.join().unwrap();
}
