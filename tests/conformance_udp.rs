//! UDP conformance: each case is one body, run against std's `UdpSocket`, greennet's in a
//! coroutine, and greennet's on a plain thread. The behaviour is written from std's documented
//! contract; the three must agree.
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[macro_use]
#[path = "support/conformance.rs"]
mod support;

fn local() -> &'static str {
    "127.0.0.1:0"
}

conformance! {
    std { use std::net::UdpSocket as Udp; }
    green { use greennet::net::UdpSocket as Udp; }

    send_to_and_recv_from => {
        let a = Udp::bind(local()).unwrap();
        let b = Udp::bind(local()).unwrap();
        assert_eq!(a.send_to(b"ping", b.local_addr().unwrap()).unwrap(), 4);
        let mut buf = [0; 16];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(from, a.local_addr().unwrap());
    }

    peek_leaves_the_datagram_queued => {
        let a = Udp::bind(local()).unwrap();
        let b = Udp::bind(local()).unwrap();
        a.send_to(b"once", b.local_addr().unwrap()).unwrap();
        let mut buf = [0; 8];
        assert_eq!(b.peek_from(&mut buf).unwrap().0, 4);
        assert_eq!(b.recv_from(&mut buf).unwrap().0, 4);
        assert_eq!(&buf[..4], b"once");
    }

    connected_send_recv_and_peer_addr => {
        let a = Udp::bind(local()).unwrap();
        let b = Udp::bind(local()).unwrap();
        assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        a.send(b"hello").unwrap();
        let mut buf = [0; 8];
        assert_eq!(b.peek(&mut buf).unwrap(), 5);
        assert_eq!(b.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
    }

    read_timeout_expires_with_would_block => {
        let s = Udp::bind(local()).unwrap();
        assert_eq!(s.read_timeout().unwrap(), None);
        assert_eq!(
            s.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        s.set_read_timeout(Some(Duration::from_millis(40))).unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(40)));
        let start = Instant::now();
        let err = s.recv_from(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(40));
        assert!(start.elapsed() < Duration::from_secs(5));
        s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(1)));
    }

    nonblocking_is_shared_with_clones => {
        let s = Udp::bind(local()).unwrap();
        let clone = s.try_clone().unwrap();
        s.set_nonblocking(true).unwrap();
        assert_eq!(clone.recv(&mut [0; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert_eq!(s.local_addr().unwrap(), clone.local_addr().unwrap());
    }

    second_bind_is_addr_in_use => {
        let s = Udp::bind(local()).unwrap();
        let err = Udp::bind(s.local_addr().unwrap()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
    }

    send_to_nowhere_is_invalid_input => {
        let s = Udp::bind(local()).unwrap();
        let none: &[SocketAddr] = &[];
        let err = s.send_to(b"x", none).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), "no addresses to send data to");
    }

    options_round_trip => {
        let s = Udp::bind(local()).unwrap();
        s.set_ttl(17).unwrap();
        assert_eq!(s.ttl().unwrap(), 17);
        s.set_broadcast(true).unwrap();
        assert!(s.broadcast().unwrap());
        s.set_multicast_ttl_v4(3).unwrap();
        assert_eq!(s.multicast_ttl_v4().unwrap(), 3);
        s.set_multicast_loop_v4(false).unwrap();
        assert!(!s.multicast_loop_v4().unwrap());
        assert!(s.take_error().unwrap().is_none());
    }
}
