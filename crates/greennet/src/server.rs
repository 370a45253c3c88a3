//! Ready-made servers, gevent's `StreamServer` and `DatagramServer`: a handler runs on a
//! coroutine of its own for each connection (or each datagram).
//!
//! ```
//! use greennet::net::TcpStream;
//! use greennet::server::StreamServer;
//! use std::io::{BufRead, BufReader, Write};
//! use std::time::Duration;
//!
//! greennet::run(|| -> std::io::Result<()> {
//!     // An echo server: one coroutine per connection.
//!     let server = StreamServer::bind("127.0.0.1:0", |stream, _peer| {
//!         let mut lines = BufReader::new(&stream);
//!         let mut line = String::new();
//!         while lines.read_line(&mut line).unwrap_or(0) > 0 {
//!             if (&stream).write_all(line.as_bytes()).is_err() {
//!                 break;
//!             }
//!             line.clear();
//!         }
//!     })?;
//!     let handle = server.start()?;
//!
//!     let mut client = TcpStream::connect(handle.local_addr())?;
//!     client.write_all(b"ping\n")?;
//!     let mut answer = String::new();
//!     BufReader::new(&client).read_line(&mut answer)?;
//!     assert_eq!(answer, "ping\n");
//!
//!     drop(client);
//!     handle.stop(Duration::from_secs(1));
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! What a server guarantees:
//! - **A handler's panic stays with its connection.** It prints like any coroutine's panic and
//!   the server keeps accepting.
//! - **Running out of descriptors is waited out, not spun on.** When `accept` fails with
//!   `EMFILE` or `ENFILE` (or the kernel is out of buffers or memory), the server logs one
//!   `tracing` warning for the episode and retries after a pause that grows from 10 ms to 1 s;
//!   pending connections stay in the listen backlog meanwhile. Transient errors (a connection
//!   aborted before it was accepted...) are logged at debug level and skipped.
//! - **Bursts do not starve handlers.** The accept loop yields after every [`ACCEPT_BATCH`]
//!   accepts, so the handlers it started get to run even while connections keep arriving.
//! - **A cap on connections is a cap on accepts.** With [`Builder::max_connections`], the server
//!   takes a slot before it calls `accept`; while every slot is busy, new connections wait in the
//!   kernel's backlog instead of being accepted and then starved.
//! - **Stopping is graceful, then forceful.** [`ServerHandle::stop`] closes the listener at once,
//!   gives running handlers a grace period, then kills the rest ([`JoinHandle::kill`]) and waits
//!   for them.
//!
//! [`JoinHandle::kill`]: crate::thread::JoinHandle::kill

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::lock::Semaphore;
use crate::net::{TcpListener, UdpSocket};
use crate::os::unix::net::UnixListener;
use crate::thread::{self, JoinHandle};

/// How many accepts (or datagrams) the server takes in a row before it yields to the handlers
/// it started.
pub const ACCEPT_BATCH: usize = 64;

/// The largest payload of a UDP datagram over IPv4 (65,535 minus the IP and UDP headers), and
/// the default buffer size of a [`DatagramServer`].
pub const MAX_DATAGRAM_SIZE: usize = 65_507;

/// The first pause after `accept` runs out of resources; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A listening socket a [`StreamServer`] can serve: anything that accepts connections.
///
/// Implemented for greennet's [`TcpListener`] and [`UnixListener`]. Implement it for a wrapper
/// of your own (one that counts, filters or wraps accepted connections) to serve that instead.
pub trait Listener: Send + Sync + 'static {
    /// The connection `accept` returns.
    type Stream: Send + 'static;
    /// The address of the peer (and of the listener itself).
    type Addr: Clone + fmt::Debug + Send + Sync + 'static;

    /// Waits for the next connection, parking the coroutine.
    fn accept(&self) -> io::Result<(Self::Stream, Self::Addr)>;

    /// The address the listener is bound to.
    fn local_addr(&self) -> io::Result<Self::Addr>;
}

impl Listener for TcpListener {
    type Stream = crate::net::TcpStream;
    type Addr = SocketAddr;

    fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        TcpListener::accept(self)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}

impl Listener for UnixListener {
    type Stream = crate::os::unix::net::UnixStream;
    type Addr = crate::os::unix::net::SocketAddr;

    fn accept(&self) -> io::Result<(Self::Stream, Self::Addr)> {
        UnixListener::accept(self)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        UnixListener::local_addr(self)
    }
}

type StreamHandler<L> =
    Arc<dyn Fn(<L as Listener>::Stream, <L as Listener>::Addr) + Send + Sync + 'static>;

/// Serves a listener by running a handler on a new coroutine for each connection it accepts,
/// gevent's `StreamServer`.
///
/// Build one from an address ([`bind`](StreamServer::bind), TCP), from a listener you opened
/// ([`new`](StreamServer::new): TCP, Unix, or your own [`Listener`]), or with options through
/// [`builder`](StreamServer::builder). Then either [`start`](StreamServer::start) it in the
/// background, which gives a [`ServerHandle`] to stop it with, or
/// [`serve_forever`](StreamServer::serve_forever) in the current coroutine or thread.
///
/// ```
/// use greennet::os::unix::net::{UnixListener, UnixStream};
/// use greennet::server::StreamServer;
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// greennet::run(|| -> std::io::Result<()> {
///     let path = std::env::temp_dir().join(format!("greennet-doc-{}.sock", std::process::id()));
///     let _ = std::fs::remove_file(&path);
///     let server = StreamServer::new(UnixListener::bind(&path)?, |mut stream, _peer| {
///         let _ = stream.write_all(b"hello over unix");
///     });
///     let handle = server.start()?;
///     let mut answer = String::new();
///     UnixStream::connect(&path)?.read_to_string(&mut answer)?;
///     assert_eq!(answer, "hello over unix");
///     handle.stop(Duration::from_secs(1));
///     std::fs::remove_file(&path)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct StreamServer<L: Listener> {
    listener: L,
    handler: StreamHandler<L>,
    max_connections: Option<usize>,
}

impl StreamServer<TcpListener> {
    /// Binds a TCP listener to `addr` as [`TcpListener::bind`] does, and serves it with
    /// `handler`, without a cap on connections.
    ///
    /// # Errors
    ///
    /// Those of [`TcpListener::bind`].
    pub fn bind<A, F>(addr: A, handler: F) -> io::Result<StreamServer<TcpListener>>
    where
        A: ToSocketAddrs,
        F: Fn(crate::net::TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        Builder::new().bind(addr, handler)
    }

    /// Options for a server: a cap on connections, `SO_REUSEPORT`. The builder serves any
    /// [`Listener`] through [`Builder::build`]; this function lives on the TCP type only so that
    /// `StreamServer::builder()` needs no type annotation.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<L: Listener> StreamServer<L> {
    /// Serves `listener`, already bound and listening, with `handler`, without a cap on
    /// connections. The server owns the listener from now on and closes it when it stops.
    pub fn new<F>(listener: L, handler: F) -> StreamServer<L>
    where
        F: Fn(L::Stream, L::Addr) + Send + Sync + 'static,
    {
        Builder::new().build(listener, handler)
    }

    /// The address the server's listener is bound to.
    ///
    /// # Errors
    ///
    /// Those of the listener's `local_addr`.
    pub fn local_addr(&self) -> io::Result<L::Addr> {
        self.listener.local_addr()
    }

    /// Starts accepting on a coroutine of its own and returns at once with the handle that
    /// stops the server. Works from a coroutine and from a plain thread alike (the runtime starts
    /// on first use).
    ///
    /// # Errors
    ///
    /// If the listener's address cannot be read, or the accepting coroutine cannot be created.
    pub fn start(self) -> io::Result<ServerHandle<L::Addr>> {
        let local_addr = self.listener.local_addr()?;
        let max_connections = self.max_connections;
        let handlers = Handlers::new(self.max_connections);
        let server = handlers.clone();
        let acceptor = thread::Builder::new()
            .name("greennet-server".into())
            .spawn(move || {
                accept_loop(&self.listener, &self.handler, &server);
            })?;
        tracing::debug!(addr = ?local_addr, ?max_connections, "stream server started");
        Ok(ServerHandle {
            acceptor,
            handlers,
            label: format!("{local_addr:?}"),
            local_addr,
        })
    }

    /// Accepts connections in the calling coroutine (or plain thread) and never returns.
    ///
    /// To stop such a server, run it in a coroutine and kill that coroutine
    /// ([`JoinHandle::kill`]): the accept loop unwinds and the
    /// listener closes, while handlers already running carry on to their own end. Use
    /// [`start`](StreamServer::start) for a server that can also stop its handlers.
    pub fn serve_forever(self) -> ! {
        let handlers = Handlers::new(self.max_connections);
        tracing::debug!(
            addr = ?self.listener.local_addr().ok(),
            max_connections = ?self.max_connections,
            "stream server serving forever"
        );
        accept_loop(&self.listener, &self.handler, &handlers)
    }
}

impl<L: Listener + fmt::Debug> fmt::Debug for StreamServer<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("listener", &self.listener)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// Options for a [`StreamServer`].
///
/// ```
/// use greennet::server::StreamServer;
/// use std::io::Write;
/// use std::time::Duration;
///
/// greennet::run(|| -> std::io::Result<()> {
///     let server = StreamServer::builder()
///         .max_connections(1000)
///         .reuse_port(true)
///         .bind("127.0.0.1:0", |mut stream, _peer| {
///             let _ = stream.write_all(b"hi\n");
///         })?;
///     let handle = server.start()?;
///     handle.stop(Duration::ZERO);
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    max_connections: Option<usize>,
    reuse_port: bool,
}

impl Builder {
    /// No cap on connections, no `SO_REUSEPORT`.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Runs at most `n` handlers at once. While all `n` are running the server does not
    /// accept; new connections wait in the listen backlog until a handler ends. `0` is taken
    /// as 1.
    pub fn max_connections(mut self, n: usize) -> Builder {
        self.max_connections = Some(n.max(1));
        self
    }

    /// Sets `SO_REUSEPORT` on the socket that [`bind`](Builder::bind) creates (default: off, as
    /// std). Several sockets, in one process or many, can then listen on the same port, and the
    /// kernel spreads new connections among them: the way to run one service on every core
    /// with a process per core. It has no effect on a listener given to
    /// [`build`](Builder::build).
    pub fn reuse_port(mut self, reuse: bool) -> Builder {
        self.reuse_port = reuse;
        self
    }

    /// Binds a TCP listener to `addr` and serves it with `handler`.
    ///
    /// Without `reuse_port` this is [`TcpListener::bind`]. With it, the socket is made as std
    /// makes one (close-on-exec, `SO_REUSEADDR`) plus `SO_REUSEPORT`, with greennet's
    /// [`LISTEN_BACKLOG`](crate::net::LISTEN_BACKLOG); each address `addr` resolves to is tried
    /// in turn, host names resolved as [`TcpListener::bind`] resolves them.
    ///
    /// # Errors
    ///
    /// Those of creating, binding and listening on the socket (the last address's error), for
    /// instance `AddrInUse` when another socket holds the port without `SO_REUSEPORT`.
    pub fn bind<A, F>(self, addr: A, handler: F) -> io::Result<StreamServer<TcpListener>>
    where
        A: ToSocketAddrs,
        F: Fn(crate::net::TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        let listener = bind_tcp(addr, self.reuse_port)?;
        Ok(self.build(listener, handler))
    }

    /// Serves `listener`, already bound and listening, with `handler`.
    pub fn build<L, F>(self, listener: L, handler: F) -> StreamServer<L>
    where
        L: Listener,
        F: Fn(L::Stream, L::Addr) + Send + Sync + 'static,
    {
        StreamServer {
            listener,
            handler: Arc::new(handler),
            max_connections: self.max_connections,
        }
    }
}

/// A listening TCP socket at `addr`: [`TcpListener::bind`], or with `reuse_port` the same plus
/// `SO_REUSEPORT`.
pub(crate) fn bind_tcp<A: ToSocketAddrs>(addr: A, reuse_port: bool) -> io::Result<TcpListener> {
    if reuse_port {
        let socket = bind_reuse_port(addr, socket2::Type::STREAM)?;
        Ok(TcpListener::from(std::net::TcpListener::from(socket)))
    } else {
        TcpListener::bind(addr)
    }
}

/// Makes a socket of `ty` with `SO_REUSEADDR` and `SO_REUSEPORT` bound to the first address of
/// `addr` that takes it (listening, for a stream socket).
fn bind_reuse_port<A: ToSocketAddrs>(addr: A, ty: socket2::Type) -> io::Result<socket2::Socket> {
    // Resolved as greennet's own `bind` resolves: host names on the blocking pool.
    crate::net::addr::each_addr(addr, |a| {
        // socket2 sets close-on-exec, as std does.
        let socket = socket2::Socket::new(socket2::Domain::for_address(*a), ty, None)?;
        if ty == socket2::Type::STREAM {
            socket.set_reuse_address(true)?;
        }
        socket.set_reuse_port(true)?;
        socket.bind(&(*a).into())?;
        if ty == socket2::Type::STREAM {
            socket.listen(crate::net::LISTEN_BACKLOG)?;
        }
        Ok(socket)
    })
}

type DatagramHandler = Arc<dyn Fn(&[u8], SocketAddr, &UdpSocket) + Send + Sync + 'static>;

/// Serves a UDP socket by running a handler on a new coroutine for each datagram it receives,
/// gevent's `DatagramServer`.
///
/// The handler gets the datagram's bytes, the sender's address and the socket, to answer with
/// [`UdpSocket::send_to`]. A datagram longer than the server's buffer
/// ([`DatagramBuilder::max_datagram_size`], [`MAX_DATAGRAM_SIZE`] by default) is cut to fit, as
/// `recv_from` does.
///
/// ```
/// use greennet::net::UdpSocket;
/// use greennet::server::DatagramServer;
/// use std::time::Duration;
///
/// greennet::run(|| -> std::io::Result<()> {
///     let server = DatagramServer::bind("127.0.0.1:0", |data, peer, socket| {
///         let _ = socket.send_to(&data.to_ascii_uppercase(), peer);
///     })?;
///     let handle = server.start()?;
///
///     let client = UdpSocket::bind("127.0.0.1:0")?;
///     client.send_to(b"shout", handle.local_addr())?;
///     let mut buf = [0; 16];
///     let (n, _) = client.recv_from(&mut buf)?;
///     assert_eq!(&buf[..n], b"SHOUT");
///
///     handle.stop(Duration::from_secs(1));
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct DatagramServer {
    socket: Arc<UdpSocket>,
    handler: DatagramHandler,
    max_datagram_size: usize,
    max_handlers: Option<usize>,
}

impl DatagramServer {
    /// Binds a UDP socket to `addr` as [`UdpSocket::bind`] does, and serves it with `handler`.
    ///
    /// # Errors
    ///
    /// Those of [`UdpSocket::bind`].
    pub fn bind<A, F>(addr: A, handler: F) -> io::Result<DatagramServer>
    where
        A: ToSocketAddrs,
        F: Fn(&[u8], SocketAddr, &UdpSocket) + Send + Sync + 'static,
    {
        DatagramBuilder::new().bind(addr, handler)
    }

    /// Serves `socket`, already bound, with `handler`.
    pub fn new<F>(socket: UdpSocket, handler: F) -> DatagramServer
    where
        F: Fn(&[u8], SocketAddr, &UdpSocket) + Send + Sync + 'static,
    {
        DatagramBuilder::new().build(socket, handler)
    }

    /// Options for a datagram server: buffer size, a cap on running handlers, `SO_REUSEPORT`.
    pub fn builder() -> DatagramBuilder {
        DatagramBuilder::new()
    }

    /// The address the server's socket is bound to.
    ///
    /// # Errors
    ///
    /// Those of [`UdpSocket::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Starts receiving on a coroutine of its own and returns at once with the handle that stops
    /// the server.
    ///
    /// # Errors
    ///
    /// If the socket's address cannot be read, or the receiving coroutine cannot be created.
    pub fn start(self) -> io::Result<ServerHandle<SocketAddr>> {
        let local_addr = self.socket.local_addr()?;
        let handlers = Handlers::new(self.max_handlers);
        let server = handlers.clone();
        let receiver = thread::Builder::new()
            .name("greennet-datagram-server".into())
            .spawn(move || {
                self.receive_loop(&server);
            })?;
        tracing::debug!(addr = %local_addr, "datagram server started");
        Ok(ServerHandle {
            acceptor: receiver,
            handlers,
            label: local_addr.to_string(),
            local_addr,
        })
    }

    /// Receives datagrams in the calling coroutine (or plain thread) and never returns; stopping
    /// works as for [`StreamServer::serve_forever`].
    pub fn serve_forever(self) -> ! {
        let handlers = Handlers::new(self.max_handlers);
        tracing::debug!(addr = ?self.socket.local_addr().ok(), "datagram server serving forever");
        self.receive_loop(&handlers)
    }

    fn receive_loop(&self, handlers: &Arc<Handlers>) -> ! {
        let mut buf = vec![0; self.max_datagram_size];
        let mut backoff = Backoff::new("receive");
        let mut batch = 0;
        loop {
            let permit = handlers.admit();
            match self.socket.recv_from(&mut buf) {
                Ok((n, peer)) => {
                    backoff.reset();
                    let data = buf[..n].to_vec();
                    let (handler, socket) = (self.handler.clone(), self.socket.clone());
                    if let Err(e) = handlers.spawn(permit, move || handler(&data, peer, &socket)) {
                        backoff.wait_after(&e);
                    }
                    batch += 1;
                    if batch == ACCEPT_BATCH {
                        batch = 0;
                        thread::yield_now();
                    }
                }
                Err(e) => {
                    drop(permit);
                    backoff.failed(&e);
                }
            }
        }
    }
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramServer")
            .field("socket", &self.socket)
            .field("max_datagram_size", &self.max_datagram_size)
            .field("max_handlers", &self.max_handlers)
            .finish_non_exhaustive()
    }
}

/// Options for a [`DatagramServer`].
#[derive(Clone, Debug)]
pub struct DatagramBuilder {
    max_datagram_size: usize,
    max_handlers: Option<usize>,
    reuse_port: bool,
}

impl Default for DatagramBuilder {
    fn default() -> DatagramBuilder {
        DatagramBuilder {
            max_datagram_size: MAX_DATAGRAM_SIZE,
            max_handlers: None,
            reuse_port: false,
        }
    }
}

impl DatagramBuilder {
    /// A buffer of [`MAX_DATAGRAM_SIZE`] bytes, no cap on handlers, no `SO_REUSEPORT`.
    pub fn new() -> DatagramBuilder {
        DatagramBuilder::default()
    }

    /// The size of the receive buffer: longer datagrams are cut to this many bytes. `0` is
    /// taken as 1.
    pub fn max_datagram_size(mut self, size: usize) -> DatagramBuilder {
        self.max_datagram_size = size.max(1);
        self
    }

    /// Runs at most `n` handlers at once; while all are busy the server stops receiving and
    /// datagrams queue in the socket's buffer (where the kernel drops them once it is full).
    /// `0` is taken as 1.
    pub fn max_handlers(mut self, n: usize) -> DatagramBuilder {
        self.max_handlers = Some(n.max(1));
        self
    }

    /// Sets `SO_REUSEPORT` on the socket that [`bind`](DatagramBuilder::bind) creates, so that
    /// several sockets share the port and the kernel spreads datagrams among them by sender.
    pub fn reuse_port(mut self, reuse: bool) -> DatagramBuilder {
        self.reuse_port = reuse;
        self
    }

    /// Binds a UDP socket to `addr` and serves it with `handler`.
    ///
    /// # Errors
    ///
    /// Those of creating and binding the socket (the last address's error).
    pub fn bind<A, F>(self, addr: A, handler: F) -> io::Result<DatagramServer>
    where
        A: ToSocketAddrs,
        F: Fn(&[u8], SocketAddr, &UdpSocket) + Send + Sync + 'static,
    {
        let socket = if self.reuse_port {
            let socket = bind_reuse_port(addr, socket2::Type::DGRAM)?;
            UdpSocket::from(std::net::UdpSocket::from(socket))
        } else {
            UdpSocket::bind(addr)?
        };
        Ok(self.build(socket, handler))
    }

    /// Serves `socket`, already bound, with `handler`.
    pub fn build<F>(self, socket: UdpSocket, handler: F) -> DatagramServer
    where
        F: Fn(&[u8], SocketAddr, &UdpSocket) + Send + Sync + 'static,
    {
        DatagramServer {
            socket: Arc::new(socket),
            handler: Arc::new(handler),
            max_datagram_size: self.max_datagram_size,
            max_handlers: self.max_handlers,
        }
    }
}

/// A running server, from [`StreamServer::start`] or [`DatagramServer::start`].
///
/// Dropping the handle detaches the server, as dropping a
/// [`JoinHandle`] detaches a coroutine: it keeps serving until the
/// process exits. Call [`stop`](ServerHandle::stop) to end it.
pub struct ServerHandle<A> {
    acceptor: JoinHandle<()>,
    handlers: Arc<Handlers>,
    local_addr: A,
    /// The address as text, for the server's tracing events.
    label: String,
}

impl<A> ServerHandle<A> {
    /// The address the server listens on (for a port given as 0, the one the OS picked).
    pub fn local_addr(&self) -> A
    where
        A: Clone,
    {
        self.local_addr.clone()
    }

    /// How many handlers are running now: a snapshot, out of date as soon as it returns.
    pub fn running(&self) -> usize {
        self.handlers.lock().running.len()
    }

    /// Stops the server and returns how many handlers had to be killed.
    ///
    /// First the accept loop ends and the listener (or datagram socket) closes, so new
    /// connections are refused from then on. Handlers already running get up to `grace` to
    /// finish on their own; those still running then are killed (see
    /// [`JoinHandle::kill`]: they unwind from the greennet wait
    /// they are in, closing their sockets), and `stop` waits until they are gone. A handler
    /// that never reaches a greennet wait (a CPU loop, a blocking call outside greennet) cannot
    /// be killed, and `stop` waits for it. Called from one of the server's own handlers, it
    /// leaves that handler alone.
    pub fn stop(self, grace: Duration) -> usize {
        tracing::debug!(addr = %self.label, ?grace, running = self.running(), "server stopping");
        self.acceptor.kill();
        let _ = self.acceptor.join();
        let me = thread::current().id();
        let handles: Vec<JoinHandle<()>> = {
            let mut state = self.handlers.lock();
            state.closed = true;
            state.finished_early.clear();
            state
                .running
                .drain()
                .map(|(_, h)| h)
                .filter(|h| h.thread().id() != me)
                .collect()
        };
        let overran: Vec<JoinHandle<()>> = thread::joinall(handles, Some(grace))
            .into_iter()
            .filter_map(Result::err)
            .collect();
        for handle in &overran {
            handle.kill();
        }
        let killed = overran.len();
        for handle in overran {
            let _ = handle.join();
        }
        tracing::debug!(addr = %self.label, killed, "server stopped");
        killed
    }
}

impl<A: fmt::Debug> fmt::Debug for ServerHandle<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

/// The handler coroutines of one server: a slot for each (when capped) and their handles, so
/// that `stop` can wait for them and kill them.
struct Handlers {
    slots: Option<Semaphore>,
    state: Mutex<HandlersState>,
}

#[derive(Default)]
struct HandlersState {
    next_id: u64,
    running: HashMap<u64, JoinHandle<()>>,
    /// Handlers that ended before the server recorded their handle; the server then drops the
    /// handle instead of recording it.
    finished_early: HashSet<u64>,
    /// Set by `stop` once it has taken the handles: ending handlers record nothing more.
    closed: bool,
}

impl Handlers {
    fn new(max: Option<usize>) -> Arc<Handlers> {
        Arc::new(Handlers {
            slots: max.map(Semaphore::new),
            state: Mutex::default(),
        })
    }

    /// The bookkeeping is a few map operations that never wait, so a std mutex serves.
    fn lock(&self) -> std::sync::MutexGuard<'_, HandlersState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for the next handler, parking while every slot is busy.
    fn admit(self: &Arc<Handlers>) -> Slot {
        if let Some(slots) = &self.slots {
            slots.acquire().forget();
        }
        Slot(self.clone())
    }

    /// Runs `job` on a new coroutine holding `slot`, and records its handle until it ends.
    fn spawn<F>(self: &Arc<Handlers>, slot: Slot, job: F) -> io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        let id = {
            let mut state = self.lock();
            state.next_id += 1;
            state.next_id
        };
        let exit = Exit { id, slot };
        let spawned = thread::Builder::new().spawn(move || {
            let _exit = exit;
            job();
        });
        let mut state = self.lock();
        match spawned {
            Ok(handle) => {
                if !state.finished_early.remove(&id) {
                    state.running.insert(id, handle);
                }
                Ok(())
            }
            Err(e) => {
                // The closure, and its `Exit`, were dropped without running.
                state.finished_early.remove(&id);
                Err(e)
            }
        }
    }
}

/// A handler's slot, given back when the handler ends, however it ends.
struct Slot(Arc<Handlers>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = &self.0.slots {
            slots.release();
        }
    }
}

/// Dropped when a handler coroutine ends (returns, panics or is killed): forgets its handle and
/// gives back its slot.
struct Exit {
    id: u64,
    slot: Slot,
}

impl Drop for Exit {
    fn drop(&mut self) {
        let mut state = self.slot.0.lock();
        if state.running.remove(&self.id).is_none() && !state.closed {
            state.finished_early.insert(self.id);
        }
    }
}

fn accept_loop<L: Listener>(
    listener: &L,
    handler: &StreamHandler<L>,
    handlers: &Arc<Handlers>,
) -> ! {
    let mut backoff = Backoff::new("accept");
    let mut batch = 0;
    loop {
        let slot = handlers.admit();
        match listener.accept() {
            Ok((stream, peer)) => {
                tracing::trace!(?peer, "connection accepted");
                backoff.reset();
                let handler = handler.clone();
                if let Err(e) = handlers.spawn(slot, move || handler(stream, peer)) {
                    // The connection closed with the closure; wait for memory to come back.
                    backoff.wait_after(&e);
                }
                batch += 1;
                if batch == ACCEPT_BATCH {
                    batch = 0;
                    thread::yield_now();
                }
            }
            Err(e) => {
                drop(slot);
                backoff.failed(&e);
            }
        }
    }
}

/// What an accept (or receive) loop does after a failure: skip a transient error, or pause,
/// longer each time, while resources are short.
struct Backoff {
    what: &'static str,
    delay: Option<Duration>,
}

impl Backoff {
    fn new(what: &'static str) -> Backoff {
        Backoff { what, delay: None }
    }

    fn failed(&mut self, e: &io::Error) {
        use io::ErrorKind::*;
        match e.kind() {
            // Another side of one connection went wrong; the next one is unaffected.
            ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | TimedOut
            | PermissionDenied | HostUnreachable | NetworkUnreachable | NetworkDown => {
                tracing::debug!(error = %e, "{} failed; skipping it", self.what);
            }
            _ if e.raw_os_error() == Some(libc::EPROTO) => {
                tracing::debug!(error = %e, "{} failed; skipping it", self.what);
            }
            // Out of descriptors, memory or buffers; or something unexpected, which must not
            // become a busy loop either.
            _ => self.wait_after(e),
        }
    }

    /// Sleeps before the next try, warning once per run of failures.
    fn wait_after(&mut self, e: &io::Error) {
        let delay = match self.delay {
            None => {
                tracing::warn!(
                    error = %e,
                    "server cannot {}: pausing, from {MIN_BACKOFF:?} up to {MAX_BACKOFF:?} \
                     between tries, until it can",
                    self.what
                );
                MIN_BACKOFF
            }
            Some(d) => (d * 2).min(MAX_BACKOFF),
        };
        self.delay = Some(delay);
        thread::sleep(delay);
    }

    fn reset(&mut self) {
        if self.delay.take().is_some() {
            tracing::info!("server can {} again", self.what);
        }
    }
}
