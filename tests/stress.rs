//! 2,000 client coroutines against a greennet echo server, each making 100 round trips of random
//! sizes up to 64 KiB; every byte is checked. Runs alongside the rest of the suite.
use greennet::net::{TcpListener, TcpStream};
use greennet::thread;
use std::io::{Read, Write};

const CLIENTS: usize = 2_000;
const ROUND_TRIPS: usize = 100;
const MAX_SIZE: usize = 64 * 1024;

/// Raises this process's open-file limit to its hard limit: 4,000 sockets exceed the usual
/// soft limit of 1,024.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one valid rlimit struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= (2 * CLIENTS + 100) as libc::rlim_t,
        "the hard limit on open files ({}) is too low for this test",
        lim.rlim_cur
    );
}

/// A small deterministic generator (xorshift), so each client's sizes and bytes are known.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[green::test]
fn two_thousand_clients_echo_every_byte() {
    raise_fd_limit();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        for _ in 0..CLIENTS {
            let (mut conn, _) = listener.accept().unwrap();
            thread::spawn(move || {
                let mut buf = vec![0; MAX_SIZE];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => conn.write_all(&buf[..n]).unwrap(),
                        Err(e) => panic!("server read: {e}"),
                    }
                }
            });
        }
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1));
                let mut conn = TcpStream::connect(addr).unwrap();
                let mut sent = vec![0u8; MAX_SIZE];
                let mut back = vec![0u8; MAX_SIZE];
                let mut total = 0;
                for _ in 0..ROUND_TRIPS {
                    let size = 1 + (rng.next() as usize % MAX_SIZE);
                    for chunk in sent[..size].chunks_mut(8) {
                        let word = rng.next().to_le_bytes();
                        chunk.copy_from_slice(&word[..chunk.len()]);
                    }
                    conn.write_all(&sent[..size]).unwrap();
                    conn.read_exact(&mut back[..size]).unwrap();
                    assert!(back[..size] == sent[..size], "client {id}: bytes differ");
                    total += size;
                }
                total
            })
        })
        .collect();
    let bytes: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    server.join().unwrap();
    assert!(bytes > CLIENTS * ROUND_TRIPS);
}
