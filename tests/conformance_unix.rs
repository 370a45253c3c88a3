//! Unix socket conformance: each case is one body, run against std::os::unix::net with
//! std::thread, and against greennet's in a coroutine and on a plain thread.
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fresh socket path under the temp dir, removed when dropped.
struct SockPath(PathBuf);

impl SockPath {
    fn new() -> SockPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("greennet-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&p);
        SockPath(p)
    }
}

impl Drop for SockPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[macro_use]
#[path = "support/conformance.rs"]
mod support;

conformance! {
    std { use std::{os::unix::net, thread}; }
    green { use greennet::{os::unix::net, thread}; }

    stream_accept_and_echo => {
        let path = SockPath::new();
        let listener = net::UnixListener::bind(&path.0).unwrap();
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            conn.read_to_end(&mut buf).unwrap();
            conn.write_all(&buf).unwrap();
        });
        let mut c = net::UnixStream::connect(&path.0).unwrap();
        assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.0.as_path()));
        let data = vec![5u8; 300_000];
        c.write_all(&data).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        server.join().unwrap();
        assert!(back == data);
    }

    pair_with_a_reader_and_a_writer => {
        let (a, mut b) = net::UnixStream::pair().unwrap();
        let writer = thread::spawn(move || {
            let mut a = a;
            a.write_all(&[1u8; 200_000]).unwrap();
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got.len(), 200_000);
    }

    read_timeout_is_would_block => {
        let (a, _b) = net::UnixStream::pair().unwrap();
        assert_eq!(
            a.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        a.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        // The kernel keeps timeouts in clock ticks, and std reports the rounded value.
        let kept = a.read_timeout().unwrap().unwrap();
        assert!(kept >= Duration::from_millis(30) && kept <= Duration::from_millis(40), "{kept:?}");
        let start = Instant::now();
        let err = (&a).read(&mut [0; 4]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    nonblocking_is_shared_with_clones => {
        let (a, _b) = net::UnixStream::pair().unwrap();
        let clone = a.try_clone().unwrap();
        a.set_nonblocking(true).unwrap();
        assert_eq!((&clone).read(&mut [0; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert!(a.take_error().unwrap().is_none());
    }

    std_errors_for_paths => {
        let path = SockPath::new();
        assert_eq!(net::UnixStream::connect(&path.0).unwrap_err().kind(), ErrorKind::NotFound);
        let _l = net::UnixListener::bind(&path.0).unwrap();
        assert_eq!(net::UnixListener::bind(&path.0).unwrap_err().kind(), ErrorKind::AddrInUse);
    }

    datagrams_by_path_and_connected => {
        let pa = SockPath::new();
        let pb = SockPath::new();
        let a = net::UnixDatagram::bind(&pa.0).unwrap();
        let b = net::UnixDatagram::bind(&pb.0).unwrap();
        a.send_to(b"one", &pb.0).unwrap();
        let mut buf = [0; 8];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"one");
        assert_eq!(from.as_pathname(), Some(pa.0.as_path()));
        b.connect(&pa.0).unwrap();
        b.send(b"two").unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 3);
        let (x, y) = net::UnixDatagram::pair().unwrap();
        x.send(b"p").unwrap();
        assert_eq!(y.recv(&mut buf).unwrap(), 1);
        y.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(y.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        let u = net::UnixDatagram::unbound().unwrap();
        u.send_to(b"anon", &pa.0).unwrap();
        assert_eq!(a.recv(&mut buf).unwrap(), 4);
    }

    shutdown_read_wakes_a_reader => {
        let (a, _b) = net::UnixStream::pair().unwrap();
        let a = std::sync::Arc::new(a);
        let a2 = a.clone();
        let reader = thread::spawn(move || (&*a2).read(&mut [0; 4]).unwrap());
        thread::sleep(Duration::from_millis(30));
        a.shutdown(Shutdown::Read).unwrap();
        assert_eq!(reader.join().unwrap(), 0);
    }
}
