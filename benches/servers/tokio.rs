//! The load benchmark's server on tokio: a task per connection on the multi-threaded runtime
//! (one worker per core), the same two handlers written with async reads and writes.
//! Usage: `bench_tokio PORT close|keep-alive`.
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn close(mut stream: TcpStream) -> std::io::Result<()> {
    let mut request = [0u8; 1024];
    let _request_len = stream.read(&mut request).await?;
    stream.write_all(b"HTTP/1.0 200 OK\r\n").await?;
    stream.write_all(b"Content-Type: text/plain\r\n").await?;
    stream.write_all(b"Content-Length: 5\r\n").await?;
    stream.write_all(b"\r\n").await?;
    stream.write_all(b"hello").await?;
    Ok(())
}

async fn keep_alive(mut stream: TcpStream) -> std::io::Result<()> {
    const ANSWER: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    let mut buf = [0u8; 4096];
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut start = 0;
        while let Some(end) = buf[start..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            stream.write_all(ANSWER).await?;
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port = args.next().unwrap_or_else(|| "8000".to_string());
    let keep = match args.next().as_deref().unwrap_or("close") {
        "close" => false,
        "keep-alive" => true,
        other => {
            eprintln!("unknown mode {other:?}: expected close or keep-alive");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    let result = if keep {
                        keep_alive(stream).await
                    } else {
                        close(stream).await
                    };
                    if let Err(e) = result {
                        eprintln!("connection error: {e}");
                    }
                });
            }
            Err(e) => eprintln!("accept error: {e}"),
        }
    }
}
