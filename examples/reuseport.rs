//! One service spread over several processes, the way gunicorn runs workers: every worker
//! process binds the same port with `SO_REUSEPORT`, and the kernel hands each new connection to
//! one of them. A greennet process uses its cores through its worker threads already; processes
//! add isolation (a crash takes down one worker) and sidestep anything that serialises one
//! process. Run one worker per core, or fewer, and measure.
//!
//! ```text
//! cargo run -p examples --example reuseport -- --workers 4 --port 8000   # serve until Ctrl-C
//! printf 'hi\n' | nc 127.0.0.1 8000                                       # pid 12345: hi
//! cargo run -p examples --example reuseport -- --requests 40             # self-test, then exit
//! ```
//!
//! The parent re-executes itself as `reuseport --worker PORT` for each worker and waits. Each
//! worker echoes lines prefixed with its pid. Ctrl-C reaches the parent and the workers alike
//! (one process group); workers also exit when the parent's pipe to their stdin closes, so they
//! never outlive it. With `--requests N` the parent connects N times, counts which worker
//! answered, stops the workers and exits with success if more than one answered.
use greennet::net::TcpStream;
use greennet::server::StreamServer;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};

/// Echoes each line back, prefixed with this worker's pid.
fn echo_with_pid(stream: TcpStream, _peer: std::net::SocketAddr) {
    let pid = std::process::id();
    let mut line = String::new();
    let mut lines = BufReader::new(&stream);
    while lines.read_line(&mut line).unwrap_or(0) > 0 {
        if (&stream)
            .write_all(format!("pid {pid}: {line}").as_bytes())
            .is_err()
        {
            return;
        }
        line.clear();
    }
}

fn worker(port: u16) -> io::Result<()> {
    let server = StreamServer::builder()
        .reuse_port(true)
        .bind(("127.0.0.1", port), echo_with_pid)?;
    // The parent holds our stdin; when it goes away, so do we.
    std::thread::spawn(|| {
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        std::process::exit(0);
    });
    println!("ready {}", std::process::id());
    io::stdout().flush()?;
    greennet::run(|| server.serve_forever())
}

/// The worker processes; dropping this stops them.
struct Workers(Vec<(Child, Option<ChildStdin>)>);

impl Drop for Workers {
    fn drop(&mut self) {
        for (child, stdin) in &mut self.0 {
            drop(stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `count` workers on `port` and waits until each has bound it; returns their pids.
fn start_workers(count: usize, port: u16) -> io::Result<(Workers, Vec<u32>)> {
    let exe = std::env::current_exe()?;
    let mut workers = Workers(Vec::new());
    let mut pids = Vec::new();
    for _ in 0..count {
        let mut child = Command::new(&exe)
            .args(["--worker", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        workers.0.push((child, stdin));
        let mut ready = String::new();
        if let Some(stdout) = stdout {
            BufReader::new(stdout).read_line(&mut ready)?;
        }
        match ready
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
        {
            Some(pid) => pids.push(pid),
            None => {
                return Err(io::Error::other(
                    "a worker failed to start (see its error above)",
                ))
            }
        }
    }
    Ok((workers, pids))
}

/// Connects `requests` times and counts the answers per worker pid.
fn self_test(port: u16, requests: usize) -> io::Result<BTreeMap<u32, usize>> {
    let mut answers = BTreeMap::new();
    for i in 0..requests {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        (&stream).write_all(format!("request {i}\n").as_bytes())?;
        let mut answer = String::new();
        BufReader::new(&stream).read_line(&mut answer)?;
        let pid = answer
            .strip_prefix("pid ")
            .and_then(|rest| rest.split(':').next())
            .and_then(|pid| pid.parse().ok())
            .ok_or_else(|| io::Error::other(format!("unexpected answer {answer:?}")))?;
        *answers.entry(pid).or_insert(0) += 1;
    }
    Ok(answers)
}

struct Options {
    worker: Option<u16>,
    workers: usize,
    port: u16,
    requests: Option<usize>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        worker: None,
        workers: 2,
        port: 0,
        requests: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |_| format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--worker" => options.worker = Some(value.parse().map_err(bad)?),
            "--workers" => options.workers = value.parse().map_err(bad)?,
            "--port" => options.port = value.parse().map_err(bad)?,
            "--requests" => options.requests = Some(value.parse().map_err(bad)?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(options)
}

fn run(options: Options) -> io::Result<ExitCode> {
    if let Some(port) = options.worker {
        worker(port)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Port 0: borrow a free port from the OS, then let it go for the workers to share.
    let port = match options.port {
        0 => std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port(),
        port => port,
    };
    let (mut workers, pids) = start_workers(options.workers.max(1), port)?;
    println!("{} workers {pids:?} serving 127.0.0.1:{port}", pids.len());
    let Some(requests) = options.requests else {
        for (child, _) in &mut workers.0 {
            child.wait()?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let answers = self_test(port, requests)?;
    for (pid, count) in &answers {
        println!("worker {pid} answered {count} of {requests}");
    }
    drop(workers);
    if answers.len() > 1 {
        println!("ok: {} workers shared the port", answers.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("failed: only {} worker answered", answers.len());
        Ok(ExitCode::FAILURE)
    }
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}\nusage: reuseport [--workers N] [--port P] [--requests N]");
            return ExitCode::from(2);
        }
    };
    run(options).unwrap_or_else(|e| {
        eprintln!("reuseport: {e}");
        ExitCode::FAILURE
    })
}
