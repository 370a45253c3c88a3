//! The soak run: greennet's servers, clients and toolkit under a steady mixed load for a while,
//! checking that nothing is lost, leaked or left stuck.
//!
//! Usage: `cargo run --release --example soak -- [SECONDS]` (default 60), or `just soak
//! [SECONDS]`. Everything runs in this one process, on loopback:
//!
//! - an echo server on `greennet::net::TcpListener`, and clients that send payloads of random
//!   length and check every byte that comes back;
//! - a `greennet::http::Server` with an echo route and a sleeping one, asked by
//!   `greennet::http::client` (one-off calls, and a shared `Client` that keeps connections),
//!   every answer checked, and a hello route that keep-alive clients ask back to back
//!   (sometimes two pipelined requests at once), as in the HTTP benchmark;
//! - `Pool::map` batches, and `greennet::timeout` calls of which some are arranged to expire
//!   (around a sleep, a socket read, a pool map) and the others to finish;
//! - connections opened and abandoned: closed with a request or payload half sent, reset, or
//!   reset while the answer is still coming.
//!
//! After a warm-up (a tenth of the run, 1 to 10 s) every client stops, every server-side
//! connection must close, and the open file descriptors and the resident memory are counted;
//! the load then runs for the rest of the time, stops the same way, and they are counted again.
//! Progress goes to stderr every 10 s; the last line on stdout is the verdict, `soak: PASS ...`
//! or `soak: FAIL (reasons) ...`, with the totals, and the exit status is 1 on FAIL.
//!
//! The checks:
//! - nothing lost: every echoed payload equals the one sent, and the byte counts of the
//!   clients (sent, received) and of the echo server (read, written) are all equal; every HTTP
//!   answer has the expected status and body; every pool map returns its results in order;
//! - timeouts: the calls that expired are exactly those arranged to expire;
//! - nothing stuck: every client call has a 10 s limit, and the connections must drain within
//!   15 s of the clients stopping; a watchdog ends the process with a FAIL verdict if the run
//!   overruns by two minutes;
//! - no descriptor leak: the same number of entries in /proc/self/fd at both quiet points
//!   ([`FD_SLACK`] allows none: the runtime's own descriptors are all open by the end of the
//!   warm-up);
//! - no memory growth: the resident set grows by at most [`RSS_SLACK`] between the quiet points.
use greennet::http::client::{self, Client};
use greennet::http::{Body, Request, Response, Server, StatusCode};
use greennet::net::{TcpListener, TcpStream};
use greennet::pool::Pool;
use greennet::server::ServerHandle;
use greennet::thread::{self, JoinHandle};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Coroutines that echo payloads and check them.
const ECHO_CLIENTS: u64 = 200;
/// Coroutines that make HTTP requests.
const HTTP_CLIENTS: u64 = 48;
/// Coroutines that keep one HTTP connection each and send requests on it back to back, some
/// pipelined: the many small requests of a keep-alive benchmark, whose connections move
/// between workers at every wait.
const KEEP_ALIVE_CLIENTS: u64 = 100;
/// Coroutines that run `Pool::map` batches.
const MAPPERS: u64 = 4;
/// Coroutines that run timeouts, some arranged to expire.
const TIMERS: u64 = 16;
/// Coroutines that open connections and abandon them.
const ABANDONERS: u64 = 16;

/// The limit on each client call: longer is a hang.
const CALL_LIMIT: Duration = Duration::from_secs(10);
/// How long the server-side connections may take to close once every client has stopped.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);

/// Descriptors allowed to appear between the two quiet points. Measured: none. The runtime's
/// epoll and event descriptors and the listeners are open before the first count, and sockets
/// in TIME_WAIT hold no descriptor.
const FD_SLACK: usize = 0;

/// Growth of the resident set allowed between the two quiet points. Both are counted with every
/// connection closed, after the same load, so they differ by what the allocator keeps of freed
/// memory: measured, 7 to 8 MiB in release runs of 60 s and 10 minutes (reached within the
/// first minute, flat after it), 13 to 17 MiB in the 5 s debug run of the tests, whose 1 s
/// warm-up ends before the allocator has settled. A leak of one small object per request or
/// connection exceeds this within minutes (a 10-minute run makes millions of round trips and
/// hundreds of thousands of connections), and an absolute bound does not loosen with a large
/// baseline as a percentage would.
const RSS_SLACK: u64 = 32 * 1024 * 1024;

#[green::main]
fn main() -> ExitCode {
    let secs = match arguments() {
        Ok(secs) => secs,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let warm = (secs / 10).clamp(1, 10);
    let main_secs = secs.saturating_sub(warm).max(1);
    watchdog(Duration::from_secs(warm + main_secs + 120));
    match soak(Duration::from_secs(warm), Duration::from_secs(main_secs)) {
        Ok(verdict) => {
            println!("{}", verdict.line);
            if verdict.pass {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            println!("soak: FAIL (could not start: {e})");
            ExitCode::FAILURE
        }
    }
}

/// SECONDS from the command line.
fn arguments() -> Result<u64, String> {
    const USAGE: &str = "usage: soak [SECONDS]";
    let mut args = std::env::args().skip(1);
    let secs = match args.next() {
        None => 60,
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("{arg:?} is not a whole number; {USAGE}"))?,
    };
    if args.next().is_some() {
        return Err(USAGE.to_owned());
    }
    if secs < 2 {
        return Err(format!("SECONDS must be at least 2; {USAGE}"));
    }
    Ok(secs)
}

/// A plain thread that ends the process with a FAIL verdict if the run is still going at
/// `limit`: a hang must not be silent.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        println!(
            "soak: FAIL (stuck: still running {} s after it started)",
            limit.as_secs()
        );
        std::process::exit(1);
    });
}

struct Verdict {
    pass: bool,
    line: String,
}

fn soak(warm: Duration, main: Duration) -> io::Result<Verdict> {
    let stats = Arc::new(Stats::default());
    let servers = Servers::start(&stats)?;

    let started = Instant::now();
    run_load(&servers, &stats, warm, started);
    let drained_warm = servers.drain();
    let (fds_before, rss_before) = (open_fds()?, resident_bytes()?);

    run_load(&servers, &stats, main, started);
    let drained_end = servers.drain();
    let (fds_after, rss_after) = (open_fds()?, resident_bytes()?);
    let elapsed = started.elapsed().as_secs_f64();

    let mut reasons = Vec::new();
    for drained in [drained_warm, drained_end] {
        if let Err(e) = drained {
            reasons.push(e);
        }
    }
    let failures = stats.failures.load(Relaxed);
    if failures > 0 {
        let first = stats.first_failures.lock().unwrap();
        reasons.push(format!("{failures} failed checks, first: {}", first[0]));
    }
    let echo = &stats.echo;
    let counts = [
        echo.client_sent.load(Relaxed),
        echo.client_received.load(Relaxed),
        echo.server_read.load(Relaxed),
        echo.server_written.load(Relaxed),
    ];
    if counts.iter().any(|&c| c != counts[0]) {
        reasons.push(format!(
            "echo bytes differ: clients sent {}, received {}; server read {}, wrote {}",
            counts[0], counts[1], counts[2], counts[3]
        ));
    }
    let t = &stats.timeouts;
    let (expired, completed) = (t.expired.load(Relaxed), t.completed.load(Relaxed));
    let (to_expire, to_complete) = (t.to_expire.load(Relaxed), t.to_complete.load(Relaxed));
    if (expired, completed) != (to_expire, to_complete) {
        reasons.push(format!(
            "timeouts: {expired} expired and {completed} completed, arranged {to_expire} and {to_complete}"
        ));
    }
    if fds_after > fds_before + FD_SLACK {
        reasons.push(format!(
            "descriptor leak: {fds_before} open after the warm-up, {fds_after} at the end"
        ));
    }
    if rss_after > rss_before + RSS_SLACK {
        reasons.push(format!(
            "memory grew by {:.1} MiB (allowed {} MiB)",
            mib(rss_after - rss_before),
            RSS_SLACK >> 20
        ));
    }

    let figures = format!(
        "in {elapsed:.0} s: {} echo round trips ({:.0}/s, {:.1} MiB each way, every byte checked), \
         {} HTTP requests ({:.0}/s), {} pool map items, {} timeouts ({expired} expired, \
         {completed} completed, as arranged: {}), {} connections abandoned; \
         fds {fds_before} -> {fds_after}, RSS {:.1} -> {:.1} MiB",
        echo.round_trips.load(Relaxed),
        echo.round_trips.load(Relaxed) as f64 / elapsed,
        mib(counts[0]),
        stats.http_requests.load(Relaxed),
        stats.http_requests.load(Relaxed) as f64 / elapsed,
        stats.pool_items.load(Relaxed),
        expired + completed,
        if (expired, completed) == (to_expire, to_complete) { "yes" } else { "no" },
        stats.abandoned.load(Relaxed),
        mib(rss_before),
        mib(rss_after),
    );
    let pass = reasons.is_empty();
    let line = if pass {
        format!("soak: PASS {figures}")
    } else {
        format!("soak: FAIL ({}) {figures}", reasons.join("; "))
    };
    Ok(Verdict { pass, line })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The entries of /proc/self/fd (the directory's own descriptor among them, at both counts).
fn open_fds() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

/// The resident set, from the second field of /proc/self/statm (in pages).
fn resident_bytes() -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected /proc/self/statm: {statm:?}")))?;
    // SAFETY: sysconf only reads a system setting.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(pages * page.max(1) as u64)
}

// ---------------------------------------------------------------------------------------------
// What is counted

#[derive(Default)]
struct Stats {
    echo: EchoCounts,
    /// The target of abandoned connections: its counts are not compared.
    sink: EchoCounts,
    http_requests: AtomicU64,
    pool_items: AtomicU64,
    timeouts: TimeoutCounts,
    abandoned: AtomicU64,
    failures: AtomicU64,
    /// The first few failures, for the verdict (all of them go to stderr).
    first_failures: Mutex<Vec<String>>,
}

#[derive(Default)]
struct EchoCounts {
    round_trips: AtomicU64,
    client_sent: AtomicU64,
    client_received: AtomicU64,
    server_read: AtomicU64,
    server_written: AtomicU64,
    /// Server-side connections open now.
    live: AtomicUsize,
}

#[derive(Default)]
struct TimeoutCounts {
    to_expire: AtomicU64,
    to_complete: AtomicU64,
    expired: AtomicU64,
    completed: AtomicU64,
}

impl Stats {
    fn fail(&self, what: String) {
        let n = self.failures.fetch_add(1, Relaxed);
        if n < 20 {
            eprintln!("soak: check failed: {what}");
        }
        let mut first = self.first_failures.lock().unwrap();
        if first.len() < 5 {
            first.push(what);
        }
    }

    fn progress(&self, at: Duration) {
        let t = &self.timeouts;
        eprintln!(
            "[{:>4} s] echo {} round trips, http {} requests, pool {} items, timeouts {} expired \
             + {} completed, abandoned {}, failures {}; fds {}, RSS {:.1} MiB",
            at.as_secs(),
            self.echo.round_trips.load(Relaxed),
            self.http_requests.load(Relaxed),
            self.pool_items.load(Relaxed),
            t.expired.load(Relaxed),
            t.completed.load(Relaxed),
            self.abandoned.load(Relaxed),
            self.failures.load(Relaxed),
            open_fds().unwrap_or(0),
            mib(resident_bytes().unwrap_or(0)),
        );
    }
}

/// Decrements a live-connection count when the connection's coroutine ends, however it ends.
struct Live<'a>(&'a AtomicUsize);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// xorshift64*: payload sizes and contents, and the choice of what to do next.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

// ---------------------------------------------------------------------------------------------
// The servers

struct Servers {
    stats: Arc<Stats>,
    echo: SocketAddr,
    sink: SocketAddr,
    silent: SocketAddr,
    silent_live: Arc<AtomicUsize>,
    http: ServerHandle<SocketAddr>,
}

impl Servers {
    fn start(stats: &Arc<Stats>) -> io::Result<Servers> {
        let silent_live = Arc::new(AtomicUsize::new(0));
        let http = Server::new(app)
            .idle_timeout(Duration::from_secs(2))
            .read_timeout(Duration::from_secs(2))
            .max_body(1024 * 1024)
            .bind("127.0.0.1:0")?
            .start()?;
        Ok(Servers {
            stats: stats.clone(),
            echo: echo_server(stats.clone(), true)?,
            sink: echo_server(stats.clone(), false)?,
            silent: silent_server(stats.clone(), silent_live.clone())?,
            silent_live,
            http,
        })
    }

    /// Server-side connections still open.
    fn busy(&self) -> usize {
        self.stats.echo.live.load(Relaxed)
            + self.stats.sink.live.load(Relaxed)
            + self.silent_live.load(Relaxed)
            + self.http.running()
    }

    /// Waits, once every client has stopped, for every server-side connection to close.
    fn drain(&self) -> Result<(), String> {
        let start = Instant::now();
        while self.busy() > 0 {
            if start.elapsed() > DRAIN_LIMIT {
                return Err(format!(
                    "stuck: {} server-side connections still open {} s after every client closed",
                    self.busy(),
                    DRAIN_LIMIT.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

/// An echo server: each connection's coroutine writes back what it reads until the end. The
/// `strict` one (the checked clients') counts an error on a connection as a failure.
fn echo_server(stats: Arc<Stats>, strict: bool) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || loop {
        let counts = if strict { &stats.echo } else { &stats.sink };
        match listener.accept() {
            Ok((conn, _)) => {
                counts.live.fetch_add(1, Relaxed);
                let stats = stats.clone();
                thread::spawn(move || {
                    let counts = if strict { &stats.echo } else { &stats.sink };
                    let _live = Live(&counts.live);
                    if let Err(e) = echo(conn, counts) {
                        if strict {
                            stats.fail(format!("echo server: {e}"));
                        }
                    }
                });
            }
            Err(e) => {
                stats.fail(format!("echo server: accept: {e}"));
                thread::sleep(Duration::from_millis(10));
            }
        }
    });
    Ok(addr)
}

fn echo(mut conn: TcpStream, counts: &EchoCounts) -> io::Result<()> {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        counts.server_read.fetch_add(n as u64, Relaxed);
        conn.write_all(&buf[..n])?;
        counts.server_written.fetch_add(n as u64, Relaxed);
    }
}

/// A server that accepts and never answers, for reads that must time out; each connection is
/// held until its client closes it.
fn silent_server(stats: Arc<Stats>, live: Arc<AtomicUsize>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || loop {
        match listener.accept() {
            Ok((mut conn, _)) => {
                live.fetch_add(1, Relaxed);
                let live = live.clone();
                thread::spawn(move || {
                    let _live = Live(&live);
                    let mut buf = [0; 1024];
                    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                });
            }
            Err(e) => {
                stats.fail(format!("silent server: accept: {e}"));
                thread::sleep(Duration::from_millis(10));
            }
        }
    });
    Ok(addr)
}

/// The HTTP application: `/echo` answers with the request body, `/sleep/<ms>` after sleeping.
fn app(req: Request<Body>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/echo" {
        return Response::new(req.into_body());
    }
    if path == "/hello" {
        return Response::builder()
            .header("Content-Type", "text/plain")
            .body(Body::from("hello"))
            .expect("a static response");
    }
    if let Some(ms) = path.strip_prefix("/sleep/").and_then(|ms| ms.parse().ok()) {
        thread::sleep(Duration::from_millis(ms));
        return Response::new(Body::from(format!("slept {ms}")));
    }
    let mut missing = Response::new(Body::from("no such page"));
    *missing.status_mut() = StatusCode::NOT_FOUND;
    missing
}

// ---------------------------------------------------------------------------------------------
// The load

/// Runs every kind of client for `dur`, then stops them and waits for them all.
fn run_load(servers: &Servers, stats: &Arc<Stats>, dur: Duration, started: Instant) {
    static SEED: AtomicU64 = AtomicU64::new(0);
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients: Vec<JoinHandle<()>> = Vec::new();
    // One pool of kept HTTP connections for this load's clients; gone (and its connections
    // closed) once the last of them is.
    let kept = Client::new();
    let mut spawn = |count: u64, client: fn(&Ctx, Rng)| {
        for _ in 0..count {
            let ctx = Ctx {
                stats: stats.clone(),
                stop: stop.clone(),
                kept: kept.clone(),
                echo: servers.echo,
                sink: servers.sink,
                silent: servers.silent,
                http: servers.http.local_addr(),
            };
            let rng = Rng::new(SEED.fetch_add(1, Relaxed));
            clients.push(thread::spawn(move || client(&ctx, rng)));
        }
    };
    spawn(ECHO_CLIENTS, echo_client);
    spawn(HTTP_CLIENTS, http_client);
    spawn(KEEP_ALIVE_CLIENTS, keep_alive_client);
    spawn(MAPPERS, mapper);
    spawn(TIMERS, timer);
    spawn(ABANDONERS, abandoner);
    drop(kept);

    let end = Instant::now() + dur;
    let mut next_report = started.elapsed().as_secs() / 10 * 10 + 10;
    while Instant::now() < end {
        thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
        if started.elapsed().as_secs() >= next_report {
            stats.progress(started.elapsed());
            next_report += 10;
        }
    }
    stop.store(true, Relaxed);
    for (i, client) in thread::joinall(clients, Some(CALL_LIMIT * 2))
        .into_iter()
        .enumerate()
    {
        match client {
            Ok(Ok(())) => {}
            Ok(Err(_)) => stats.fail(format!("client {i} panicked")),
            Err(_) => stats.fail(format!("stuck: client {i} did not stop")),
        }
    }
}

/// What a client coroutine needs.
struct Ctx {
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    /// The HTTP clients' shared pool of kept connections.
    kept: Client,
    echo: SocketAddr,
    sink: SocketAddr,
    silent: SocketAddr,
    http: SocketAddr,
}

impl Ctx {
    fn running(&self) -> bool {
        !self.stop.load(Relaxed)
    }

    /// `f` within [`CALL_LIMIT`]; a failure (`what` and the error) if it fails or overruns.
    fn call<T>(&self, what: &str, f: impl FnOnce() -> io::Result<T>) -> Option<T> {
        match greennet::timeout(CALL_LIMIT, f) {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                self.stats.fail(format!("{what}: {e}"));
                None
            }
            Err(_) => {
                self.stats.fail(format!(
                    "stuck: {what} took over {} s",
                    CALL_LIMIT.as_secs()
                ));
                None
            }
        }
    }
}

/// Connections of a random number of round trips, each a payload of random length (up to
/// 32 KiB) sent and read back whole; then a half-close, after which nothing more may arrive.
fn echo_client(ctx: &Ctx, mut rng: Rng) {
    let counts = &ctx.stats.echo;
    let mut back = vec![0; 32 * 1024];
    while ctx.running() {
        let Some(mut conn) = ctx.call("echo connect", || TcpStream::connect(ctx.echo)) else {
            continue;
        };
        let trips = 1 + rng.below(200);
        let mut ok = true;
        for _ in 0..trips {
            if !ctx.running() {
                break;
            }
            let len = 1 + rng.below(32 * 1024) as usize;
            let payload = rng.bytes(len);
            let back = &mut back[..payload.len()];
            let sent = ctx.call("echo round trip", || {
                conn.write_all(&payload)?;
                counts.client_sent.fetch_add(payload.len() as u64, Relaxed);
                conn.read_exact(back)
            });
            if sent.is_none() {
                ok = false;
                break;
            }
            counts
                .client_received
                .fetch_add(payload.len() as u64, Relaxed);
            if back != &payload[..] {
                let at = back.iter().zip(&payload).position(|(a, b)| a != b);
                ctx.stats.fail(format!(
                    "echo: a payload of {} bytes came back different from byte {at:?}",
                    payload.len()
                ));
                ok = false;
                break;
            }
            counts.round_trips.fetch_add(1, Relaxed);
        }
        if ok {
            let extra = ctx.call("echo close", || {
                conn.shutdown(std::net::Shutdown::Write)?;
                let mut rest = Vec::new();
                conn.read_to_end(&mut rest)?;
                Ok(rest.len())
            });
            if let Some(n @ 1..) = extra {
                ctx.stats
                    .fail(format!("echo: {n} bytes more than were sent came back"));
            }
        }
    }
}

/// Requests to the HTTP server, half on connections of their own and half through the shared
/// [`Client`] (kept connections): bodies of random length to `/echo`, sleeps of 1 to 20 ms,
/// and the odd missing page.
fn http_client(ctx: &Ctx, mut rng: Rng) {
    let base = format!("http://{}", ctx.http);
    while ctx.running() {
        let keep = rng.below(2) == 0;
        let choice = rng.below(10);
        let (url, body, status, expected) = match choice {
            0..=5 => {
                let len = rng.below(64 * 1024) as usize;
                let body = rng.bytes(len);
                (format!("{base}/echo"), Some(body.clone()), 200, body)
            }
            6..=8 => {
                let ms = 1 + rng.below(20);
                let url = format!("{base}/sleep/{ms}");
                (url, None, 200, format!("slept {ms}").into_bytes())
            }
            _ => (
                format!("{base}/missing"),
                None,
                404,
                b"no such page".to_vec(),
            ),
        };
        let answer = ctx.call("http request", || {
            let answer = match (body, keep) {
                (Some(body), true) => ctx.kept.post(&url, body)?,
                (None, true) => ctx.kept.get(&url)?,
                (Some(body), false) => client::post(&url, body)?,
                (None, false) => client::get(&url)?,
            };
            let status = answer.status();
            Ok((status, answer.into_body().into_bytes()?))
        });
        let Some((got_status, got)) = answer else {
            continue;
        };
        if got_status != status || got != expected {
            ctx.stats.fail(format!(
                "http: {url} answered {got_status} with {} bytes, expected {status} with {}",
                got.len(),
                expected.len()
            ));
        }
        ctx.stats.http_requests.fetch_add(1, Relaxed);
    }
}

/// One connection, and on it one or two `GET /hello` at a time (two written together, then both
/// answers read), each answer checked to the byte.
fn keep_alive_client(ctx: &Ctx, mut rng: Rng) {
    const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: soak\r\n\r\n";
    let Some(mut conn) = ctx.call("keep-alive connect", || TcpStream::connect(ctx.http)) else {
        return;
    };
    let mut buf = Vec::new();
    while ctx.running() {
        let batch = 1 + rng.below(2) as usize;
        let answers = ctx.call("keep-alive requests", || {
            conn.write_all(&REQUEST.repeat(batch))?;
            (0..batch)
                .map(|_| read_http_answer(&mut conn, &mut buf))
                .collect::<io::Result<Vec<_>>>()
        });
        let Some(answers) = answers else {
            return;
        };
        for (status, body) in answers {
            if status != 200 || body != b"hello" {
                ctx.stats.fail(format!(
                    "keep-alive: /hello answered {status} with {} bytes",
                    body.len()
                ));
            }
            ctx.stats.http_requests.fetch_add(1, Relaxed);
        }
    }
}

/// Reads one HTTP/1.1 answer with a `Content-Length` from `conn`, keeping what follows it in
/// `buf`: (status, body).
fn read_http_answer(conn: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(u16, Vec<u8>)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0; 4096];
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("the connection ended inside an answer's head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("a head not in UTF-8"))?;
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| bad("no Content-Length"))?;
    while buf.len() < head_end + length {
        let mut chunk = [0; 4096];
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("the connection ended inside an answer's body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Ok((status, body))
}

/// `Pool::map` batches of 1 to 64 items, each sleeping up to 2 ms; the results must come back
/// complete and in order.
fn mapper(ctx: &Ctx, mut rng: Rng) {
    let pool = Pool::new(8);
    while ctx.running() {
        let n = 1 + rng.below(64);
        let salt = rng.next();
        let work = move |i: u64| {
            thread::sleep(Duration::from_micros((i ^ salt) % 2000));
            i.wrapping_mul(salt)
        };
        let Some(results) = ctx.call("pool map", || Ok(pool.map(0..n, work))) else {
            continue;
        };
        let expected: Vec<u64> = (0..n).map(|i| i.wrapping_mul(salt)).collect();
        if results != expected {
            ctx.stats
                .fail(format!("pool map of {n} items returned {results:?}"));
        }
        ctx.stats.pool_items.fetch_add(n, Relaxed);
    }
}

/// Timeouts around a sleep, a socket read and a pool map, each arranged either to expire (a
/// 5 ms limit on work that takes far longer) or to complete (a 5 s limit on work that takes a
/// few milliseconds). The outcome must be the arranged one.
fn timer(ctx: &Ctx, mut rng: Rng) {
    const SHORT: Duration = Duration::from_millis(5);
    const LONG: Duration = Duration::from_secs(5);
    let t = &ctx.stats.timeouts;
    let pool = Pool::new(4);
    let Some(mut silent) = ctx.call("silent connect", || TcpStream::connect(ctx.silent)) else {
        return;
    };
    let Some(mut echo) = ctx.call("echo connect", || TcpStream::connect(ctx.echo)) else {
        return;
    };
    let counts = &ctx.stats.echo;
    while ctx.running() {
        let expire = rng.below(2) == 0;
        let kind = rng.below(3);
        if expire {
            t.to_expire.fetch_add(1, Relaxed);
        } else {
            t.to_complete.fetch_add(1, Relaxed);
        }
        let expired = match (kind, expire) {
            (0, true) => greennet::timeout(SHORT, || thread::sleep(LONG)).is_err(),
            (0, false) => {
                greennet::timeout(LONG, || thread::sleep(Duration::from_millis(1))).is_err()
            }
            (1, true) => match greennet::timeout(SHORT, || silent.read(&mut [0; 16])) {
                Err(_) => true,
                Ok(read) => {
                    ctx.stats
                        .fail(format!("a read of a silent connection returned {read:?}"));
                    false
                }
            },
            (1, false) => {
                let byte = [rng.next() as u8];
                let mut back = [0];
                let result = greennet::timeout(LONG, || {
                    echo.write_all(&byte)?;
                    counts.client_sent.fetch_add(1, Relaxed);
                    echo.read_exact(&mut back)?;
                    counts.client_received.fetch_add(1, Relaxed);
                    io::Result::Ok(())
                });
                match result {
                    Ok(Ok(())) if back == byte => false,
                    Ok(Ok(())) => {
                        ctx.stats.fail("echo: a byte came back changed".into());
                        false
                    }
                    Ok(Err(e)) => {
                        ctx.stats.fail(format!("echo under a timeout: {e}"));
                        false
                    }
                    Err(_) => true,
                }
            }
            (_, true) => {
                let expired = greennet::timeout(SHORT, || {
                    pool.map(0..4, |_| thread::sleep(Duration::from_millis(200)))
                })
                .is_err();
                // The abandoned map's tasks run on to their end; nothing may be left behind.
                pool.join();
                expired
            }
            (_, false) => {
                let out = greennet::timeout(LONG, || {
                    pool.map(0..4u64, |i| {
                        thread::sleep(Duration::from_millis(1));
                        i
                    })
                });
                match out {
                    Ok(out) if out == [0, 1, 2, 3] => false,
                    Ok(out) => {
                        ctx.stats
                            .fail(format!("pool map under a timeout returned {out:?}"));
                        false
                    }
                    Err(_) => true,
                }
            }
        };
        if expired {
            t.expired.fetch_add(1, Relaxed);
        } else {
            t.completed.fetch_add(1, Relaxed);
        }
        if expired != expire {
            ctx.stats.fail(format!(
                "a timeout of kind {kind} arranged to {} {}",
                if expire { "expire" } else { "complete" },
                if expired { "expired" } else { "did not expire" }
            ));
        }
    }
}

/// Connections opened and abandoned: with a payload or a request half sent and then closed or
/// reset, reset while the answer is arriving, or closed without a word.
fn abandoner(ctx: &Ctx, mut rng: Rng) {
    while ctx.running() {
        let how = rng.below(6);
        let target = if how < 2 { ctx.sink } else { ctx.http };
        let payload = {
            let len = 1 + rng.below(64 * 1024) as usize;
            rng.bytes(len)
        };
        let reset = rng.below(2) == 0;
        ctx.call("abandoned connection", || {
            let mut conn = TcpStream::connect(target)?;
            match how {
                // A payload to the echo sink, dropped with its echo unread.
                0 => conn.write_all(&payload)?,
                // Part of a payload, then nothing: the sink's echo is never read.
                1 => conn.write_all(&payload[..payload.len() / 2])?,
                // Half a request head.
                2 => conn.write_all(b"POST /echo HTTP/1.1\r\nhost: soak\r\nContent-Le")?,
                // A head that promises more body than is sent.
                3 => {
                    conn.write_all(b"POST /echo HTTP/1.1\r\ncontent-length: 100000\r\n\r\n")?;
                    conn.write_all(&payload[..payload.len().min(50_000)])?;
                }
                // A whole request, its answer read only in part (its status line).
                4 => {
                    let head = format!(
                        "POST /echo HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
                        payload.len()
                    );
                    conn.write_all(head.as_bytes())?;
                    conn.write_all(&payload)?;
                    let mut status = [0; 12];
                    conn.read_exact(&mut status)?;
                    if &status != b"HTTP/1.1 200" {
                        return Err(io::Error::other(format!(
                            "an abandoned request was answered {:?}",
                            String::from_utf8_lossy(&status)
                        )));
                    }
                }
                // Connected, then silence for a moment.
                _ => thread::sleep(Duration::from_millis(rng.below(50))),
            }
            if reset {
                socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO))?;
            }
            Ok(())
        });
        ctx.stats.abandoned.fetch_add(1, Relaxed);
        thread::sleep(Duration::from_millis(1 + rng.below(10)));
    }
}
