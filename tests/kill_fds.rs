//! Killing a coroutine blocked in `read` closes its sockets: the process's count of open
//! descriptors returns to where it was. Alone in its own test binary, so no other test opens or
//! closes descriptors meanwhile.
use greennet::net::{TcpListener, TcpStream};
use greennet::sync::mpsc;
use greennet::thread::{self, Killed};
use std::io::Read;
use std::time::Duration;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[green::test]
fn killing_a_coroutine_blocked_in_read_closes_its_descriptors() {
    // Warm up whatever the runtime opens lazily (its event loop, the first registration).
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        let _ = greennet::timeout(Duration::from_millis(10), || s.read(&mut [0u8; 1]));
    }
    let before = open_fds();
    for _ in 0..20 {
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            ready_tx.send(()).unwrap();
            let _keep = client;
            server.read(&mut [0u8; 8])
        });
        ready_rx.recv().unwrap();
        thread::sleep(Duration::from_millis(10));
        assert!(open_fds() > before);
        reader.kill();
        assert!(Killed::is(&*reader.join().unwrap_err()));
    }
    assert_eq!(open_fds(), before);
}
