//! TLS on greennet: rustls's `StreamOwned` over a `greennet::net::TcpStream`, unchanged. The
//! example makes a self-signed certificate for `localhost` (rcgen), serves a TLS echo on
//! 127.0.0.1 with a coroutine per connection, and runs CLIENTS concurrent TLS clients (default
//! 200, the first argument) against it, each on its own coroutine. Its last line reads
//! `tls echo: N clients, M bytes, T s`.
use greennet::net::{TcpListener, TcpStream};
use greennet::thread;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::error::Error;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// A server and a client configuration that trust one freshly made certificate.
fn configs() -> Res<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((Arc::new(server), Arc::new(client)))
}

/// Echoes what the client sends until it goes away.
fn serve(config: Arc<rustls::ServerConfig>, stream: TcpStream) -> Res<()> {
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config)?, stream);
    let mut buf = [0u8; 4096];
    loop {
        let n = match tls.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            // A client that closes without close_notify; nothing more to echo.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        tls.write_all(&buf[..n])?;
    }
}

/// One client: a handshake, a message, its echo checked.
fn client(config: Arc<rustls::ClientConfig>, addr: std::net::SocketAddr, i: usize) -> Res<usize> {
    let name = ServerName::try_from("localhost")?.to_owned();
    let conn = rustls::ClientConnection::new(config, name)?;
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr)?);
    let message = format!("hello from client {i}\n").repeat(100);
    tls.write_all(message.as_bytes())?;
    let mut echo = vec![0u8; message.len()];
    tls.read_exact(&mut echo)?;
    if echo != message.as_bytes() {
        return Err("the echo differs from what was sent".into());
    }
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(echo.len())
}

#[green::main]
fn main() -> Res<()> {
    let clients: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 200,
    };
    let (server_config, client_config) = configs()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    println!("tls echo listening on {addr}");
    thread::spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let config = server_config.clone();
                    thread::spawn(move || {
                        if let Err(e) = serve(config, stream) {
                            eprintln!("connection error: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("accept error: {e}"),
            }
        }
    });
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let config = client_config.clone();
            thread::spawn(move || client(config, addr, i))
        })
        .collect();
    let mut bytes = 0;
    for h in handles {
        bytes += h.join().map_err(|_| "a client panicked")??;
    }
    println!(
        "tls echo: {clients} clients, {bytes} bytes, {:.2} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
