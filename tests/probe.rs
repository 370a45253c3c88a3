//! Child-process helper for the tests: `greennet-probe MODE`. Each mode exercises something
//! that configures or ends a whole process, and reports on stdout/stderr and its exit status.
use greennet::thread;
use std::process::ExitCode;

fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 512]);
    if depth == 0 {
        u64::from(frame[7])
    } else {
        recurse(depth - 1) + u64::from(frame[3])
    }
}

/// The `signal-stop` mode: a StreamServer whose handler answers `slow\n` with `started\n`, then
/// waits for `finish\n` and sends `done\n` and 1 MiB; and an HTTP server answering `hello`.
/// Prints their addresses and `ready`, waits for SIGINT or SIGTERM (the main coroutine through
/// `GracefulShutdown`, which stops both servers, and a plain thread through a second one), and
/// prints what each saw.
fn signal_stop() -> ExitCode {
    use greennet::http::{Body, Request, Response, Server};
    use greennet::signal::GracefulShutdown;
    use std::io::{BufRead, BufReader, Write};
    use std::time::Duration;

    // Before "ready", so that no signal can come before the handlers are in place.
    let shutdown = GracefulShutdown::new().expect("install the signal handlers");
    let on_a_thread = GracefulShutdown::new().expect("install the signal handlers");
    let watcher = std::thread::spawn(move || on_a_thread.wait(Duration::ZERO));

    let slow = greennet::server::StreamServer::bind("127.0.0.1:0", |stream, _| {
        let mut lines = BufReader::new(&stream);
        let mut line = String::new();
        if lines.read_line(&mut line).is_err() || line != "slow\n" {
            return;
        }
        let _ = (&stream).write_all(b"started\n");
        line.clear();
        if lines.read_line(&mut line).is_err() || line != "finish\n" {
            return;
        }
        let mut answer = b"done\n".to_vec();
        answer.extend((0..1024 * 1024).map(|i: usize| (i % 251) as u8));
        let _ = (&stream).write_all(&answer);
    })
    .and_then(|server| server.start())
    .expect("start the stream server");
    let http = Server::new(|_req: Request<Body>| Response::new(Body::from("hello")))
        .bind("127.0.0.1:0")
        .and_then(|server| server.start())
        .expect("start the HTTP server");
    println!("stream={} http={}", slow.local_addr(), http.local_addr());
    println!("ready");

    let signal = shutdown
        .server(slow)
        .server(http)
        .wait(Duration::from_secs(30))
        .expect("wait for a signal");
    let seen = watcher.join().expect("the watcher thread");
    match seen {
        Ok(seen) => println!("signal={signal:?} thread={seen:?}"),
        Err(e) => println!("signal={signal:?} thread error: {e}"),
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        // Start the runtime from the environment and print what it runs with, or the error.
        "config" => match greennet::runtime::Builder::new().start() {
            Ok(c) => {
                println!("workers={} stack_size={}", c.workers, c.stack_size);
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("error kind={:?} message={e}", e.kind());
                ExitCode::from(3)
            }
        },
        // Code settings win over the environment.
        "config-code" => {
            let c = greennet::runtime::Builder::new()
                .workers(3)
                .stack_size(128 * 1024)
                .start()
                .expect("start");
            println!("workers={} stack_size={}", c.workers, c.stack_size);
            ExitCode::SUCCESS
        }
        // A coroutine overflows its stack; the process reports it and carries on.
        "overflow" => greennet::run(|| {
            let deep = thread::Builder::new()
                .name("deep".into())
                .stack_size(64 * 1024)
                .spawn(|| recurse(10_000_000))
                .expect("spawn");
            let err = deep.join().expect_err("overflow must not return a value");
            let text = err.downcast_ref::<String>().cloned().unwrap_or_default();
            println!("join error: {text}");
            let after = thread::spawn(|| 7).join().expect("runtime still works");
            println!("after overflow: {after}");
            ExitCode::SUCCESS
        }),
        // Park coroutines until the OS refuses one (the kernel's mapping limit on a default
        // kernel), then report the error and release them all.
        "until-refused" => greennet::run(|| {
            let gate = std::sync::Arc::new(greennet::sync::Mutex::new(()));
            let held = gate.lock().unwrap();
            let mut parked = Vec::new();
            let err = loop {
                let gate = gate.clone();
                match thread::Builder::new().spawn(move || drop(gate.lock())) {
                    Ok(h) => parked.push(h),
                    Err(e) => break e,
                }
                assert!(parked.len() < 2_000_000, "the OS never refused a coroutine");
            };
            println!(
                "parked={} kind={:?} message={err}",
                parked.len(),
                err.kind()
            );
            drop(held);
            parked.into_iter().for_each(|h| h.join().unwrap());
            ExitCode::SUCCESS
        }),
        // `#[green::main]`'s body panics: the process fails like a panicking std main.
        // A coroutine spawned from a coroutine starts inside `spawn`; its panic at once must still
        // be reported, like a std thread's.
        "panic-child" => greennet::run(|| {
            let child = greennet::thread::Builder::new()
                .name("eager".into())
                .spawn(|| -> u32 { panic!("child gave up at once") })
                .unwrap();
            assert!(child.join().is_err());
            ExitCode::SUCCESS
        }),
        "panic-main" => greennet::run(|| panic!("main body gave up")),
        // Two servers stopped by SIGTERM or SIGINT, one of them with a request in flight.
        "signal-stop" => greennet::run(signal_stop),
        _ => {
            eprintln!("unknown mode {mode:?}");
            ExitCode::from(2)
        }
    }
}
