//! greennet::net TCP on real loopback sockets: the behaviour the foundation relies on.
use greennet::net::{Shutdown, TcpListener, TcpStream};
use greennet::thread;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[green::test]
fn echo_between_coroutines() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        assert_eq!(peer, conn.peer_addr().unwrap());
        let mut buf = vec![0; 64 * 1024];
        let mut total = 0;
        loop {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break total;
            }
            conn.write_all(&buf[..n]).unwrap();
            total += n;
        }
    });
    let mut client = TcpStream::connect(addr).unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut w = client.try_clone().unwrap();
        let data = data.clone();
        thread::spawn(move || {
            w.write_all(&data).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    client.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(server.join().unwrap(), data.len());
    assert!(back == data, "echoed bytes differ");
}

#[green::test]
fn reader_and_writer_share_one_socket() {
    // One coroutine blocks reading while another writes through `&TcpStream`.
    let (client, server) = pair();
    let client = Arc::new(client);
    let reader = {
        let client = client.clone();
        thread::spawn(move || {
            let mut got = Vec::new();
            (&*client).read_to_end(&mut got).unwrap();
            got.len()
        })
    };
    let peer = thread::spawn(move || {
        let mut server = server;
        let mut buf = vec![0; 4 << 20];
        server.read_exact(&mut buf).unwrap();
        server.write_all(&buf).unwrap();
    });
    // 4 MiB is far beyond the socket buffers, so the writer must wait too while the reader waits.
    (&*client).write_all(&vec![7u8; 4 << 20]).unwrap();
    peer.join().unwrap();
    assert_eq!(reader.join().unwrap(), 4 << 20);
}

#[green::test]
fn a_read_after_a_short_read_finds_what_came_during_a_write_wait() {
    // A read that comes back short lets the next read wait before trying (there was nothing
    // more to read). Here a write on the same socket waits in between and so takes the event
    // that the next message's arrival raised: the next read must still find that message.
    let (client, server) = pair();
    // A lost wake-up would leave the read to end only at this timeout: see the bound below.
    server
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let server = Arc::new(server);
    const BIG: usize = 8 << 20; // far beyond the socket buffers: the writer must wait
    let peer = std::thread::spawn(move || {
        let mut client = std::net::TcpStream::from(client);
        client.write_all(b"first").unwrap();
        let mut ack = [0; 3];
        client.read_exact(&mut ack).unwrap();
        assert_eq!(&ack, b"ack");
        // The next message goes out while the server's writer is (about to be) waiting.
        client.write_all(b"second").unwrap();
        let mut big = vec![0; BIG];
        client.read_exact(&mut big).unwrap();
        assert!(big.iter().all(|&b| b == 9));
        client
    });
    let mut buf = [0; 1024];
    let n = (&*server).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"first", "a short read");
    (&*server).write_all(b"ack").unwrap();
    let writer = {
        let server = server.clone();
        thread::spawn(move || (&*server).write_all(&vec![9u8; BIG]).unwrap())
    };
    writer.join().unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < b"second".len() {
        let n = (&*server).read(&mut buf).unwrap();
        assert!(n > 0, "end of stream before the second message");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"second");
    // The message is already there: only a missed event could make this take long.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the second message was found only after {:?}",
        start.elapsed()
    );
    let _client = peer.join().unwrap();
}

#[green::test]
fn read_timeout_after_a_short_read_is_std_would_block() {
    // The read after a short one waits before it tries; its timeout still ends it as std's
    // does, and data that comes later is still read.
    let (mut client, mut server) = pair();
    client.write_all(b"one").unwrap();
    let mut buf = [0; 64];
    assert_eq!(server.read(&mut buf).unwrap(), 3);
    server
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let start = Instant::now();
    let err = server.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(
        start.elapsed() >= Duration::from_millis(45),
        "{:?}",
        start.elapsed()
    );
    client.write_all(b"two").unwrap();
    assert_eq!(server.read(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"two");
}

#[green::test]
fn short_reads_in_a_row_see_every_message() {
    // Messages that arrive before, while and after the reader waits, one at a time and in
    // bursts, through read and read_vectored: none is missed or delayed forever.
    let (client, mut server) = pair();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    server.set_nodelay(true).unwrap();
    let peer = std::thread::spawn(move || {
        let mut client = std::net::TcpStream::from(client);
        client.set_nodelay(true).unwrap();
        let mut ack = [0; 1];
        for round in 0..500u32 {
            let burst = 1 + round % 3;
            for i in 0..burst {
                client.write_all(&[(round + i) as u8; 10]).unwrap();
            }
            // Every other round, wait for the answer before sending on.
            if round.is_multiple_of(2) {
                client.read_exact(&mut ack).unwrap();
            }
        }
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
    });
    let mut total = 0;
    let mut buf = [0; 4096];
    let mut pending_acks = 0u32;
    let mut round = 0u32;
    let mut in_round = 0;
    loop {
        let n = if round % 4 == 1 {
            let (a, b) = buf.split_at_mut(7);
            let mut bufs = [std::io::IoSliceMut::new(a), std::io::IoSliceMut::new(b)];
            std::io::Read::read_vectored(&mut server, &mut bufs).unwrap()
        } else {
            server.read(&mut buf).unwrap()
        };
        if n == 0 {
            break;
        }
        total += n;
        // Count whole rounds received, to answer the rounds the peer waits on.
        in_round += n;
        while in_round >= 10 * (1 + round as usize % 3) {
            in_round -= 10 * (1 + round as usize % 3);
            if round.is_multiple_of(2) {
                pending_acks += 1;
            }
            round += 1;
        }
        for _ in 0..pending_acks {
            server.write_all(b"k").unwrap();
        }
        pending_acks = 0;
    }
    assert_eq!(round, 500);
    assert_eq!(total, (0..500).map(|r| 10 * (1 + r % 3)).sum::<usize>());
    drop(server);
    peer.join().unwrap();
}

#[green::test]
fn many_acceptors_on_one_listener_all_get_connections() {
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let acceptors: Vec<_> = (0..8)
        .map(|_| {
            let listener = listener.clone();
            thread::spawn(move || {
                let mut served = 0;
                loop {
                    let (mut conn, _) = listener.accept().unwrap();
                    let mut byte = [0];
                    conn.read_exact(&mut byte).unwrap();
                    if byte[0] == b'q' {
                        break served;
                    }
                    conn.write_all(b"ok").unwrap();
                    served += 1;
                }
            })
        })
        .collect();
    for _ in 0..64 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"x").unwrap();
        let mut ok = [0; 2];
        c.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"ok");
    }
    for _ in 0..8 {
        TcpStream::connect(addr).unwrap().write_all(b"q").unwrap();
    }
    let served: usize = acceptors.into_iter().map(|a| a.join().unwrap()).sum();
    assert_eq!(served, 64);
}

fn read_timeout_is_would_block() {
    let (mut client, _server) = pair();
    assert_eq!(
        client
            .set_read_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // As std reports it: the kernel's value, rounded up to its clock tick.
    let kept = client.read_timeout().unwrap().unwrap();
    assert!(
        kept >= Duration::from_millis(50) && kept <= Duration::from_millis(60),
        "{kept:?}"
    );
    let start = Instant::now();
    let err = client.read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[green::test]
fn read_timeout_in_a_coroutine() {
    read_timeout_is_would_block();
}

#[test]
fn read_timeout_on_a_plain_thread() {
    read_timeout_is_would_block();
}

#[test]
fn plain_threads_use_greennet_sockets_as_std() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"from a thread").unwrap();
    });
    let mut text = String::new();
    TcpStream::connect(addr)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    server.join().unwrap();
    assert_eq!(text, "from a thread");
}

#[green::test]
fn shutdown_read_wakes_a_blocked_reader() {
    let (client, _server) = pair();
    let client = Arc::new(client);
    let reader = {
        let client = client.clone();
        thread::spawn(move || (&*client).read(&mut [0; 8]))
    };
    thread::sleep(Duration::from_millis(50));
    client.shutdown(Shutdown::Read).unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), 0);
}

#[green::test]
fn nonblocking_mode_returns_would_block() {
    let (client, mut server) = pair();
    let mut clone = client.try_clone().unwrap();
    client.set_nonblocking(true).unwrap();
    // Shared with the clone, as std's O_NONBLOCK is.
    assert_eq!(
        clone.read(&mut [0; 8]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    server.write_all(b"now").unwrap();
    let mut buf = [0; 3];
    let start = Instant::now();
    loop {
        match clone.read(&mut buf) {
            Ok(n) => break assert_eq!(&buf[..n], b"now"),
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}

#[green::test]
fn std_errors_for_bind_and_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    assert_eq!(
        TcpListener::bind(addr).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    drop(listener);
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    assert_eq!(
        TcpStream::connect_timeout(&addr, Duration::ZERO)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[green::test]
fn writing_to_a_closed_peer_is_broken_pipe_not_sigpipe() {
    let (mut client, server) = pair();
    drop(server);
    let start = Instant::now();
    let err = loop {
        if let Err(e) = client.write(&[0; 1024]) {
            break e;
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        thread::sleep(Duration::from_millis(5));
    };
    assert!(
        matches!(
            err.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
        ),
        "{err}"
    );
}

#[test]
fn conversions_keep_the_users_blocking_mode() {
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
    let (client, _server) = pair();
    // Handed to std in blocking mode (the default), it behaves as a blocking std socket.
    let std_stream: std::net::TcpStream = client.into();
    std_stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let err = (&std_stream).read(&mut [0; 4]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    // And back: adopted with its mode; greennet's own read waits (here: times out) as std's.
    let fd = std_stream.into_raw_fd();
    // SAFETY: `fd` was just released by `into_raw_fd` and is owned by nothing else.
    let back = unsafe { TcpStream::from_raw_fd(fd) };
    back.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    assert_eq!(
        (&back).read(&mut [0; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let owned: OwnedFd = back.into();
    let _again = TcpStream::from(owned);
}

#[test]
fn sockets_have_std_auto_traits() {
    fn all<T: Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    all::<TcpStream>();
    all::<TcpListener>();
    all::<greennet::net::UdpSocket>();
    all::<greennet::os::unix::net::UnixStream>();
    all::<greennet::os::unix::net::UnixListener>();
    all::<greennet::os::unix::net::UnixDatagram>();
    // std's own, for reference: the same four bounds hold there.
    all::<std::net::TcpStream>();
    all::<std::os::unix::net::UnixDatagram>();
}

/// A handle keeps a copy of its blocking mode and read timeout between waits; a change made
/// through a clone after the handle has waited must still reach its next read.
#[green::test]
fn settings_changed_through_a_clone_reach_a_handle_that_has_waited() {
    // A change that does not arrive makes a read wait for ever: bound the whole test.
    let (done_tx, done_rx) = greennet::sync::mpsc::channel::<()>();
    let body = thread::spawn(move || {
        settings_through_a_clone();
        drop(done_tx);
    });
    if let Err(greennet::sync::mpsc::RecvTimeoutError::Timeout) =
        done_rx.recv_timeout(Duration::from_secs(20))
    {
        panic!("a read did not see a setting changed through a clone");
    }
    body.join().unwrap();
}

fn settings_through_a_clone() {
    let (mut client, mut server) = pair();
    let clone = server.try_clone().unwrap();
    let (ready_tx, ready_rx) = greennet::sync::mpsc::channel::<()>();
    let writer = thread::spawn(move || {
        for _ in 0..3 {
            ready_rx.recv().unwrap();
            client.write_all(b"x").unwrap();
        }
        client
    });
    // Reads that wait, each one short: the handle's copy of its settings is in use.
    let mut buf = [0u8; 8];
    for _ in 0..3 {
        ready_tx.send(()).unwrap();
        assert_eq!(server.read(&mut buf).unwrap(), 1);
    }
    let mut client = writer.join().unwrap();

    clone.set_nonblocking(true).unwrap();
    assert_eq!(
        server.read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    clone.set_nonblocking(false).unwrap();

    clone
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    assert_eq!(
        server.read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(90), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    clone.set_read_timeout(None).unwrap();
    let late = thread::spawn(move || {
        thread::sleep(Duration::from_millis(150));
        client.write_all(b"y").unwrap();
        client
    });
    // No timeout any more: the read waits for the late byte.
    assert_eq!(server.read(&mut buf).unwrap(), 1);
    assert_eq!(&buf[..1], b"y");
    drop(late.join().unwrap());
}
