//! The seed's "concurrent web scraper in 30 minutes", without the internet: a local HTTP/1.1
//! server serves PAGES pages at `/page/<i>`, each answering after DELAY_MS, and a small blocking
//! HTTP client fetches every page twice, once in sequence and once through
//! `Pool::new(20).map(urls, fetch)`, and checks that every page's title arrived.
//!
//! Usage: `cargo run --release --example scraper -- [PAGES] [DELAY_MS]` (defaults 200 and 50).
//! The last line compares the two runs, `sequential: X s, pooled: Y s, speedup: Zx`; with the
//! delay dominating, Z comes close to the pool's size, 20.
//!
//! The client is plain blocking code (connect, write the request, read until the response is
//! complete), as it would be with `std::net`; the pool is what makes twenty of them wait at once.
use greennet::net::{TcpListener, TcpStream};
use greennet::pool::Pool;
use greennet::thread;
use std::error::Error;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How many fetches the pooled run makes at once.
const POOL_SIZE: usize = 20;

#[green::main]
fn main() -> ExitCode {
    match scrape() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scraper: {e}");
            ExitCode::FAILURE
        }
    }
}

fn scrape() -> Result<(), Box<dyn Error>> {
    let (pages, delay) = arguments()?;
    let addr = serve(pages, delay)?;
    println!(
        "serving {pages} pages at http://{addr}/page/<i>, each after {} ms",
        delay.as_millis()
    );
    let urls: Vec<String> = (0..pages)
        .map(|i| format!("http://{addr}/page/{i}"))
        .collect();
    let expected: Vec<String> = (0..pages).map(title_of).collect();

    let start = Instant::now();
    let titles = urls
        .iter()
        .map(|url| fetch(url))
        .collect::<io::Result<Vec<_>>>()?;
    let sequential = start.elapsed().as_secs_f64();
    check(&titles, &expected)?;
    println!("fetched {pages} pages one after another in {sequential:.2} s");

    let start = Instant::now();
    let titles = Pool::new(POOL_SIZE)
        .map(urls, |url: String| fetch(&url))
        .into_iter()
        .collect::<io::Result<Vec<_>>>()?;
    let pooled = start.elapsed().as_secs_f64();
    check(&titles, &expected)?;
    println!("fetched {pages} pages, {POOL_SIZE} at a time, in {pooled:.2} s");

    println!(
        "sequential: {sequential:.2} s, pooled: {pooled:.2} s, speedup: {:.1}x",
        sequential / pooled
    );
    Ok(())
}

/// PAGES and DELAY_MS from the command line.
fn arguments() -> Result<(usize, Duration), String> {
    const USAGE: &str = "usage: scraper [PAGES] [DELAY_MS]";
    fn number<T: std::str::FromStr>(arg: Option<String>, default: T) -> Result<T, String> {
        match arg {
            None => Ok(default),
            Some(arg) => arg
                .parse()
                .map_err(|_| format!("{arg:?} is not a whole number; {USAGE}")),
        }
    }
    let mut args = std::env::args().skip(1);
    let pages: usize = number(args.next(), 200)?;
    let delay = Duration::from_millis(number(args.next(), 50)?);
    if args.next().is_some() {
        return Err(USAGE.to_owned());
    }
    if pages == 0 {
        return Err(format!("PAGES must be at least 1; {USAGE}"));
    }
    Ok((pages, delay))
}

fn title_of(page: usize) -> String {
    format!("Page {page}")
}

/// Compares the titles fetched with the pages served.
fn check(titles: &[String], expected: &[String]) -> Result<(), String> {
    if titles.len() != expected.len() {
        return Err(format!(
            "fetched {} titles for {} pages",
            titles.len(),
            expected.len()
        ));
    }
    match titles
        .iter()
        .zip(expected)
        .position(|(got, want)| got != want)
    {
        Some(i) => Err(format!(
            "page {i}: expected the title {:?}, got {:?}",
            expected[i], titles[i]
        )),
        None => Ok(()),
    }
}

// The server: a coroutine per connection, each page answered after `delay`.

/// Starts the server on an ephemeral loopback port and returns its address.
fn serve(pages: usize, delay: Duration) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for conn in listener.incoming() {
            match conn {
                Ok(conn) => {
                    thread::spawn(move || {
                        if let Err(e) = answer(conn, pages, delay) {
                            eprintln!("server: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("server: accept failed: {e}"),
            }
        }
    });
    Ok(addr)
}

fn answer(mut conn: TcpStream, pages: usize, delay: Duration) -> io::Result<()> {
    let path = read_request_path(&mut conn)?;
    let page = path
        .strip_prefix("/page/")
        .and_then(|i| i.parse::<usize>().ok())
        .filter(|&i| i < pages);
    let (status, title) = match page {
        Some(i) => {
            // The slow backend every scraper meets.
            thread::sleep(delay);
            ("200 OK", title_of(i))
        }
        None => ("404 Not Found", "Not found".to_owned()),
    };
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{title}</title></head>\
         <body><h1>{title}</h1></body></html>\n"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(response.as_bytes())
}

/// Reads a request head and returns its path.
fn read_request_path(conn: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed the connection mid-request",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if request.parse(&head).map_err(invalid)?.is_complete() {
            return Ok(request.path.unwrap_or("/").to_owned());
        }
        if head.len() > 64 * 1024 {
            return Err(invalid("request head over 64 KiB"));
        }
    }
}

// The client: plain blocking HTTP/1.1, one connection per request.

/// Fetches an `http://host:port/path` URL and returns the page's title.
fn fetch(url: &str) -> io::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("{url}: only http:// URLs are supported")))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut conn = TcpStream::connect(host)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes())?;
    let (status, body) = read_response(&mut conn)?;
    if status != 200 {
        return Err(invalid(format!("{url}: HTTP status {status}")));
    }
    title(&body).ok_or_else(|| invalid(format!("{url}: the page has no <title>")))
}

/// Reads a response: its status, and its body of `Content-Length` bytes (or, without that
/// header, up to the end of the connection).
fn read_response(conn: &mut TcpStream) -> io::Result<(u16, Vec<u8>)> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let (status, head_len, length) = loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(truncated("head"));
        }
        data.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = response.parse(&data).map_err(invalid)? {
            let length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("Content-Length"))
                .map(|h| {
                    std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .ok_or_else(|| invalid("a Content-Length that is not a number"))
                })
                .transpose()?;
            break (response.code.unwrap_or(0), head_len, length);
        }
        if data.len() > 64 * 1024 {
            return Err(invalid("response head over 64 KiB"));
        }
    };
    let mut body = data.split_off(head_len);
    match length {
        Some(length) => {
            while body.len() < length {
                let n = conn.read(&mut chunk)?;
                if n == 0 {
                    return Err(truncated("body"));
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(length);
        }
        None => {
            conn.read_to_end(&mut body)?;
        }
    }
    Ok((status, body))
}

/// The text between `<title>` and `</title>`.
fn title(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<title>")? + "<title>".len();
    let len = text[start..].find("</title>")?;
    Some(text[start..start + len].to_owned())
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn truncated(part: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the server closed the connection before the end of the response {part}"),
    )
}
