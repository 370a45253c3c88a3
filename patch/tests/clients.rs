#![cfg(feature = "patch")]
//! Real client crates greennet did not write, unmodified, in coroutines on a one-worker runtime:
//! ureq (HTTP) and redis. Each blocking call parks its coroutine, so many run at once.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use greennet_patch_tests::on_one_worker;

#[test]
fn ureq_fetches_a_hundred_pages_at_once() {
    on_one_worker(Duration::from_secs(60), || {
        let addr = greennet_patch_tests::slow_service(Duration::from_millis(200));
        let took = greennet_patch_tests::scrape(addr, 100, 100);
        // One after another this is 20 s; side by side, about 0.2 s.
        assert!(took < Duration::from_secs(5), "took {took:?}");
    });
}

/// A redis-server of our own on a free port, stopped when dropped.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for this test (Debian: apt-get install redis-server; .ci/run installs it)");
        // Ready once it accepts a connection.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { child, port }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_hundred_blocking_redis_pops_wait_side_by_side() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}/", server.port);
    on_one_worker(Duration::from_secs(60), move || {
        const N: usize = 200;
        let client = redis::Client::open(url.as_str()).unwrap();
        // Each coroutine blocks in BLPOP on a list of its own: with the worker held by the
        // first, nothing else (the pusher included) could run.
        let (waiting_tx, waiting_rx) = greennet::sync::mpsc::channel::<()>();
        let poppers: Vec<_> = (0..N)
            .map(|i| {
                let client = client.clone();
                let waiting = waiting_tx.clone();
                greennet::thread::spawn(move || {
                    let mut con = client.get_connection().unwrap();
                    waiting.send(()).unwrap();
                    let got: Option<(String, String)> = redis::cmd("BLPOP")
                        .arg(format!("list-{i}"))
                        .arg(30)
                        .query(&mut con)
                        .unwrap();
                    got.map(|(_, v)| v)
                })
            })
            .collect();
        for _ in 0..N {
            waiting_rx.recv().unwrap();
        }
        let mut con = client.get_connection().unwrap();
        let start = Instant::now();
        for i in 0..N {
            let _: i64 = redis::cmd("RPUSH")
                .arg(format!("list-{i}"))
                .arg(format!("value-{i}"))
                .query(&mut con)
                .unwrap();
        }
        for (i, p) in poppers.into_iter().enumerate() {
            assert_eq!(p.join().unwrap(), Some(format!("value-{i}")));
        }
        assert!(start.elapsed() < Duration::from_secs(20));
        // Ordinary commands work on the same coroutine-driven connections.
        let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
        let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
        assert_eq!(v, "v");
    });
}
