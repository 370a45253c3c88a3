//! Capacity client for `benches/capacity.sh`: `bench_hold PORT N` opens N keep-alive connections
//! to 127.0.0.1:PORT, completes one request on each, prints `held N`, and keeps them open until
//! its standard input closes. If the server stops answering, it prints `failed after K: ERROR`
//! and holds the K it has.
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;

fn one(port: u16) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    while !answer.ends_with(b"hello") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        answer.extend_from_slice(&buf[..n]);
    }
    Ok(stream)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("PORT");
    let n: usize = args.next().and_then(|p| p.parse().ok()).expect("N");
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        match one(port) {
            Ok(s) => held.push(s),
            Err(e) => {
                println!("failed after {i}: {e}");
                break;
            }
        }
    }
    if held.len() == n {
        println!("held {n}");
    }
    std::io::stdout().flush().unwrap();
    // Hold until told to let go.
    let _ = std::io::stdin().lock().read_line(&mut String::new());
}
