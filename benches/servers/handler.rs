// The two workloads' connection handlers, included by the blocking-style servers (std threads,
// greennet, raw may) after their own `use` lines, so all three run the very same code.

/// The seed's handler: one read of up to 1,024 bytes, the answer in five writes, then close.
fn close(mut stream: TcpStream) -> std::io::Result<()> {
    let mut request = [0u8; 1024];
    let _request_len = stream.read(&mut request)?;
    stream.write_all(b"HTTP/1.0 200 OK\r\n")?;
    stream.write_all(b"Content-Type: text/plain\r\n")?;
    stream.write_all(b"Content-Length: 5\r\n")?;
    stream.write_all(b"\r\n")?;
    stream.write_all(b"hello")?;
    Ok(())
}

/// The same answer over HTTP/1.1 keep-alive: every complete request (ended by a blank line) in
/// what has arrived gets the answer in one write, until the client closes.
fn keep_alive(mut stream: TcpStream) -> std::io::Result<()> {
    const ANSWER: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    let mut buf = [0u8; 4096];
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut start = 0;
        while let Some(end) = buf[start..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            stream.write_all(ANSWER)?;
            start += end + 4;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head longer than 4 KiB",
            ));
        }
    }
}

/// `PORT MODE` from the command line; MODE is `close` (the seed's workload) or `keep-alive`.
fn args() -> (String, fn(TcpStream) -> std::io::Result<()>) {
    let mut args = std::env::args().skip(1);
    let port = args.next().unwrap_or_else(|| "8000".to_string());
    let mode = args.next().unwrap_or_else(|| "close".to_string());
    let handler: fn(TcpStream) -> std::io::Result<()> = match mode.as_str() {
        "close" => close,
        "keep-alive" => keep_alive,
        other => {
            eprintln!("unknown mode {other:?}: expected close or keep-alive");
            std::process::exit(2);
        }
    };
    (port, handler)
}
