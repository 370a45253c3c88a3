//! Compile-time check that greennet mirrors std's signatures: each line names a std item and
//! its function type, written once with `S` standing for the type, and both std's and
//! greennet's item must coerce to it. If a signature drifts, this file stops compiling.
#![allow(clippy::type_complexity)]
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

macro_rules! mirrors {
    ($std:ty, $green:ty { $($name:ident $(::<$($gen:ty),*>)? : fn($($arg:ty),*) -> $ret:ty;)* }) => {
        $(
            {
                #[allow(dead_code)]
                type S = $std;
                let _: fn($($arg),*) -> $ret = <$std>::$name $(::<$($gen),*>)?;
            }
            {
                #[allow(dead_code)]
                type S = $green;
                let _: fn($($arg),*) -> $ret = <$green>::$name $(::<$($gen),*>)?;
            }
        )*
    };
}

#[test]
fn net_signatures_match_std() {
    mirrors!(std::net::TcpStream, greennet::net::TcpStream {
        connect::<SocketAddr>: fn(SocketAddr) -> io::Result<S>;
        connect_timeout: fn(&SocketAddr, Duration) -> io::Result<S>;
        peer_addr: fn(&S) -> io::Result<SocketAddr>;
        local_addr: fn(&S) -> io::Result<SocketAddr>;
        shutdown: fn(&S, Shutdown) -> io::Result<()>;
        try_clone: fn(&S) -> io::Result<S>;
        set_read_timeout: fn(&S, Option<Duration>) -> io::Result<()>;
        set_write_timeout: fn(&S, Option<Duration>) -> io::Result<()>;
        read_timeout: fn(&S) -> io::Result<Option<Duration>>;
        write_timeout: fn(&S) -> io::Result<Option<Duration>>;
        peek: fn(&S, &mut [u8]) -> io::Result<usize>;
        set_nodelay: fn(&S, bool) -> io::Result<()>;
        nodelay: fn(&S) -> io::Result<bool>;
        set_ttl: fn(&S, u32) -> io::Result<()>;
        ttl: fn(&S) -> io::Result<u32>;
        take_error: fn(&S) -> io::Result<Option<io::Error>>;
        set_nonblocking: fn(&S, bool) -> io::Result<()>;
    });
    mirrors!(std::net::TcpListener, greennet::net::TcpListener {
        bind::<SocketAddr>: fn(SocketAddr) -> io::Result<S>;
        local_addr: fn(&S) -> io::Result<SocketAddr>;
        try_clone: fn(&S) -> io::Result<S>;
        accept: fn(&S) -> io::Result<(<S as Accepts>::Stream, SocketAddr)>;
        set_ttl: fn(&S, u32) -> io::Result<()>;
        ttl: fn(&S) -> io::Result<u32>;
        take_error: fn(&S) -> io::Result<Option<io::Error>>;
        set_nonblocking: fn(&S, bool) -> io::Result<()>;
    });
    mirrors!(std::net::UdpSocket, greennet::net::UdpSocket {
        bind::<SocketAddr>: fn(SocketAddr) -> io::Result<S>;
        recv_from: fn(&S, &mut [u8]) -> io::Result<(usize, SocketAddr)>;
        peek_from: fn(&S, &mut [u8]) -> io::Result<(usize, SocketAddr)>;
        send_to::<SocketAddr>: fn(&S, &[u8], SocketAddr) -> io::Result<usize>;
        peer_addr: fn(&S) -> io::Result<SocketAddr>;
        local_addr: fn(&S) -> io::Result<SocketAddr>;
        try_clone: fn(&S) -> io::Result<S>;
        set_read_timeout: fn(&S, Option<Duration>) -> io::Result<()>;
        set_write_timeout: fn(&S, Option<Duration>) -> io::Result<()>;
        read_timeout: fn(&S) -> io::Result<Option<Duration>>;
        write_timeout: fn(&S) -> io::Result<Option<Duration>>;
        set_broadcast: fn(&S, bool) -> io::Result<()>;
        broadcast: fn(&S) -> io::Result<bool>;
        set_multicast_loop_v4: fn(&S, bool) -> io::Result<()>;
        multicast_loop_v4: fn(&S) -> io::Result<bool>;
        set_multicast_ttl_v4: fn(&S, u32) -> io::Result<()>;
        multicast_ttl_v4: fn(&S) -> io::Result<u32>;
        set_multicast_loop_v6: fn(&S, bool) -> io::Result<()>;
        multicast_loop_v6: fn(&S) -> io::Result<bool>;
        set_ttl: fn(&S, u32) -> io::Result<()>;
        ttl: fn(&S) -> io::Result<u32>;
        join_multicast_v4: fn(&S, &Ipv4Addr, &Ipv4Addr) -> io::Result<()>;
        join_multicast_v6: fn(&S, &Ipv6Addr, u32) -> io::Result<()>;
        leave_multicast_v4: fn(&S, &Ipv4Addr, &Ipv4Addr) -> io::Result<()>;
        leave_multicast_v6: fn(&S, &Ipv6Addr, u32) -> io::Result<()>;
        take_error: fn(&S) -> io::Result<Option<io::Error>>;
        connect::<SocketAddr>: fn(&S, SocketAddr) -> io::Result<()>;
        send: fn(&S, &[u8]) -> io::Result<usize>;
        recv: fn(&S, &mut [u8]) -> io::Result<usize>;
        peek: fn(&S, &mut [u8]) -> io::Result<usize>;
        set_nonblocking: fn(&S, bool) -> io::Result<()>;
    });
}

#[test]
fn unix_signatures_match_std() {
    use std::os::unix::net::SocketAddr as UnixAddr;
    mirrors!(std::os::unix::net::UnixStream, greennet::os::unix::net::UnixStream {
        connect::<PathBuf>: fn(PathBuf) -> io::Result<S>;
        connect_addr: fn(&UnixAddr) -> io::Result<S>;
        pair: fn() -> io::Result<(S, S)>;
        try_clone: fn(&S) -> io::Result<S>;
        local_addr: fn(&S) -> io::Result<UnixAddr>;
        peer_addr: fn(&S) -> io::Result<UnixAddr>;
        set_read_timeout: fn(&S, Option<Duration>) -> io::Result<()>;
        set_write_timeout: fn(&S, Option<Duration>) -> io::Result<()>;
        read_timeout: fn(&S) -> io::Result<Option<Duration>>;
        write_timeout: fn(&S) -> io::Result<Option<Duration>>;
        set_nonblocking: fn(&S, bool) -> io::Result<()>;
        take_error: fn(&S) -> io::Result<Option<io::Error>>;
        shutdown: fn(&S, Shutdown) -> io::Result<()>;
    });
    mirrors!(std::os::unix::net::UnixListener, greennet::os::unix::net::UnixListener {
        bind::<PathBuf>: fn(PathBuf) -> io::Result<S>;
        bind_addr: fn(&UnixAddr) -> io::Result<S>;
        try_clone: fn(&S) -> io::Result<S>;
        local_addr: fn(&S) -> io::Result<UnixAddr>;
        set_nonblocking: fn(&S, bool) -> io::Result<()>;
        take_error: fn(&S) -> io::Result<Option<io::Error>>;
    });
    mirrors!(std::os::unix::net::UnixDatagram, greennet::os::unix::net::UnixDatagram {
        bind::<PathBuf>: fn(PathBuf) -> io::Result<S>;
        bind_addr: fn(&UnixAddr) -> io::Result<S>;
        unbound: fn() -> io::Result<S>;
        pair: fn() -> io::Result<(S, S)>;
        connect::<PathBuf>: fn(&S, PathBuf) -> io::Result<()>;
        connect_addr: fn(&S, &UnixAddr) -> io::Result<()>;
        try_clone: fn(&S) -> io::Result<S>;
        local_addr: fn(&S) -> io::Result<UnixAddr>;
        peer_addr: fn(&S) -> io::Result<UnixAddr>;
        recv_from: fn(&S, &mut [u8]) -> io::Result<(usize, UnixAddr)>;
        recv: fn(&S, &mut [u8]) -> io::Result<usize>;
        send_to::<PathBuf>: fn(&S, &[u8], PathBuf) -> io::Result<usize>;
        send_to_addr: fn(&S, &[u8], &UnixAddr) -> io::Result<usize>;
        send: fn(&S, &[u8]) -> io::Result<usize>;
        set_read_timeout: fn(&S, Option<Duration>) -> io::Result<()>;
        set_write_timeout: fn(&S, Option<Duration>) -> io::Result<()>;
        read_timeout: fn(&S) -> io::Result<Option<Duration>>;
        write_timeout: fn(&S) -> io::Result<Option<Duration>>;
        set_nonblocking: fn(&S, bool) -> io::Result<()>;
        take_error: fn(&S) -> io::Result<Option<io::Error>>;
        shutdown: fn(&S, Shutdown) -> io::Result<()>;
    });
}

/// The stream type a listener accepts, so one signature line covers std and greennet.
trait Accepts {
    type Stream;
}

impl Accepts for std::net::TcpListener {
    type Stream = std::net::TcpStream;
}

impl Accepts for greennet::net::TcpListener {
    type Stream = greennet::net::TcpStream;
}

#[test]
fn thread_signatures_match_std() {
    let _: fn(Duration) = std::thread::sleep;
    let _: fn(Duration) = greennet::thread::sleep;
    let _: fn() = std::thread::yield_now;
    let _: fn() = greennet::thread::yield_now;
    let _: fn() = std::thread::park;
    let _: fn() = greennet::thread::park;
    let _: fn(Duration) = std::thread::park_timeout;
    let _: fn(Duration) = greennet::thread::park_timeout;
    let _: fn() -> std::thread::Thread = std::thread::current;
    let _: fn() -> greennet::thread::Thread = greennet::thread::current;
    let _: fn(std::thread::Builder, String) -> std::thread::Builder = std::thread::Builder::name;
    let _: fn(greennet::thread::Builder, String) -> greennet::thread::Builder =
        greennet::thread::Builder::name;
    let _: fn(std::thread::Builder, usize) -> std::thread::Builder =
        std::thread::Builder::stack_size;
    let _: fn(greennet::thread::Builder, usize) -> greennet::thread::Builder =
        greennet::thread::Builder::stack_size;
    let _: fn(std::thread::JoinHandle<u8>) -> std::thread::Result<u8> =
        std::thread::JoinHandle::join;
    let _: fn(greennet::thread::JoinHandle<u8>) -> greennet::thread::Result<u8> =
        greennet::thread::JoinHandle::join;
    let _: fn(&std::thread::JoinHandle<u8>) -> bool = std::thread::JoinHandle::is_finished;
    let _: fn(&greennet::thread::JoinHandle<u8>) -> bool =
        greennet::thread::JoinHandle::is_finished;
}

#[test]
fn sync_signatures_match_std() {
    let _: fn(&std::sync::Mutex<u8>) -> std::sync::LockResult<std::sync::MutexGuard<'_, u8>> =
        std::sync::Mutex::lock;
    let _: fn(
        &greennet::sync::Mutex<u8>,
    ) -> greennet::sync::LockResult<greennet::sync::MutexGuard<'_, u8>> =
        greennet::sync::Mutex::lock;
    let _: fn(&std::sync::RwLock<u8>) -> std::sync::LockResult<std::sync::RwLockReadGuard<'_, u8>> =
        std::sync::RwLock::read;
    let _: fn(
        &greennet::sync::RwLock<u8>,
    ) -> greennet::sync::LockResult<greennet::sync::RwLockReadGuard<'_, u8>> =
        greennet::sync::RwLock::read;
    let _: fn(
        &std::sync::mpsc::Receiver<u8>,
        Duration,
    ) -> Result<u8, std::sync::mpsc::RecvTimeoutError> = std::sync::mpsc::Receiver::recv_timeout;
    let _: fn(
        &greennet::sync::mpsc::Receiver<u8>,
        Duration,
    ) -> Result<u8, greennet::sync::mpsc::RecvTimeoutError> =
        greennet::sync::mpsc::Receiver::recv_timeout;
    let _: fn(
        usize,
    ) -> (
        std::sync::mpsc::SyncSender<u8>,
        std::sync::mpsc::Receiver<u8>,
    ) = std::sync::mpsc::sync_channel;
    let _: fn(
        usize,
    ) -> (
        greennet::sync::mpsc::SyncSender<u8>,
        greennet::sync::mpsc::Receiver<u8>,
    ) = greennet::sync::mpsc::sync_channel;
    // The error and poison types are std's own.
    let _: std::sync::mpsc::RecvError = greennet::sync::mpsc::RecvError;
    let _: fn(u8) -> std::sync::PoisonError<u8> = greennet::sync::PoisonError::new;
}
