#![cfg(feature = "patch")]
//! Plain `std::net` and `std::thread::sleep`, with no greennet types at all, inside coroutines
//! on a one-worker runtime: with the `patch` feature they park the coroutine, not the worker.
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greennet_patch_tests::on_one_worker;

#[test]
fn a_thousand_blocked_std_reads_do_not_block_each_other() {
    on_one_worker(Duration::from_secs(60), || {
        const N: usize = 1000;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The server, std's listener too: it accepts everyone and hears who each is, but
        // answers nobody until all are waiting, so all thousand client reads block at once, on
        // the one worker.
        let (heard_tx, heard_rx) = greennet::sync::mpsc::channel::<()>();
        let server = greennet::thread::spawn(move || {
            let mut conns = Vec::new();
            for _ in 0..N {
                let (mut stream, _) = listener.accept().unwrap();
                let mut who = [0u8; 2];
                stream.read_exact(&mut who).unwrap();
                conns.push((u16::from_be_bytes(who) as usize, stream));
                heard_tx.send(()).unwrap();
            }
            for (i, stream) in &mut conns {
                stream.write_all(&[(*i % 251) as u8]).unwrap();
            }
            conns
        });
        // Clients connect one after another, each once the server has heard the one before
        // (a loopback connect completes without waiting for accept, and std's listen backlog
        // is 128); then each blocks in read until the server answers.
        let mut clients = Vec::new();
        for i in 0..N {
            clients.push(greennet::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.write_all(&(i as u16).to_be_bytes()).unwrap();
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).unwrap();
                assert_eq!(byte[0], (i % 251) as u8);
            }));
            heard_rx.recv().unwrap();
        }
        for client in clients {
            client.join().unwrap();
        }
        drop(server.join().unwrap());
    });
}

#[test]
fn std_sleeps_park_the_coroutine() {
    on_one_worker(Duration::from_secs(60), || {
        let start = Instant::now();
        let sleepers: Vec<_> = (0..500)
            .map(|_| greennet::thread::spawn(|| std::thread::sleep(Duration::from_millis(200))))
            .collect();
        for s in sleepers {
            s.join().unwrap();
        }
        // Side by side: 500 x 200 ms would be 100 s if each held the worker.
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
        // And a sleep still lasts as long as asked.
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        assert!(start.elapsed() >= Duration::from_millis(50));
    });
}

#[test]
fn read_timeouts_and_nonblocking_keep_std_semantics() {
    on_one_worker(Duration::from_secs(60), || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let (mut server, _) = listener.accept().unwrap();

        // SO_RCVTIMEO: WouldBlock after the timeout, while another coroutine keeps running.
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            greennet::thread::spawn(move || {
                for _ in 0..20 {
                    std::thread::sleep(Duration::from_millis(5));
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        client
            .set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        // The kernel keeps the timeout in clock ticks, so it may read back a little longer.
        let kept = client.read_timeout().unwrap().unwrap();
        assert!(kept >= Duration::from_millis(150) && kept < Duration::from_millis(170));
        let start = Instant::now();
        let e = client.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert!(ticks.load(Ordering::SeqCst) > 0, "the read held the worker");
        ticker.join().unwrap();

        // Data within the timeout arrives as usual.
        server.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");

        // A socket the caller made non-blocking stays non-blocking.
        client.set_nonblocking(true).unwrap();
        let e = client.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        client.set_nonblocking(false).unwrap();
        client.set_read_timeout(None).unwrap();

        // The caller's view of O_NONBLOCK is what it set, though greennet made it non-blocking
        // underneath.
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; F_GETFL takes no argument.
        let flags = unsafe { libc::fcntl(client.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);

        // A clone shares the socket and blocks cooperatively too.
        let mut clone = client.try_clone().unwrap();
        let writer = greennet::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            server.write_all(b"again").unwrap();
            server
        });
        clone.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"again");
        let mut server = writer.join().unwrap();

        // Used from a plain thread, a socket greennet took over still blocks like std's.
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            client.read_exact(&mut buf).map(|()| buf)
        });
        std::thread::sleep(Duration::from_millis(50));
        server.write_all(b"late").unwrap();
        assert_eq!(&reader.join().unwrap().unwrap(), b"late");
    });
}

#[test]
fn connect_errors_and_host_names_are_std_s() {
    on_one_worker(Duration::from_secs(60), || {
        // A refused connection is ConnectionRefused, as with std.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        // A host name resolves (on greennet's blocking pool) and connects.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("localhost", port));
        // localhost may resolve to ::1 first, where nothing listens: std then tries the next.
        let client = client.unwrap();
        let (server, _) = listener.accept().unwrap();
        assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    });
}

#[test]
fn poll_with_a_timeout_parks_the_coroutine() {
    use std::os::fd::AsRawFd;
    on_one_worker(Duration::from_secs(60), || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            greennet::thread::spawn(move || {
                for _ in 0..10 {
                    std::thread::sleep(Duration::from_millis(10));
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // Nothing to read: poll times out after 150 ms, and the ticker ran meanwhile.
        let mut pfd = libc::pollfd {
            fd: client.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let start = Instant::now();
        // SAFETY: one valid pollfd for an open descriptor.
        let n = unsafe { libc::poll(&mut pfd, 1, 150) };
        assert_eq!(n, 0);
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert!(ticks.load(Ordering::SeqCst) > 0, "poll held the worker");
        ticker.join().unwrap();
        // Data ready: poll reports it, with the revents written back.
        server.write_all(b"x").unwrap();
        // SAFETY: as above.
        let n = unsafe { libc::poll(&mut pfd, 1, 5_000) };
        assert_eq!(n, 1);
        assert_ne!(pfd.revents & libc::POLLIN, 0);
    });
}
