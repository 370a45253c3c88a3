//! Address resolution that never blocks a worker on a name lookup.
//!
//! std's `ToSocketAddrs` on a host name calls `getaddrinfo`, which blocks the calling thread,
//! and in a coroutine that thread is a worker running many coroutines. So, inside a coroutine,
//! the string forms that can name a host (`&str`, `String`, `(&str, u16)`, `(String, u16)`, and
//! references to them) are copied and resolved on the blocking pool, by std's own code, so the
//! addresses and errors are exactly std's. Numeric addresses and every other type resolve
//! inline, since they never look anything up (a user type implementing `ToSocketAddrs` that does
//! its own lookup is the exception: wrap that in `greennet::blocking`).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// A name to resolve, copied out of the caller's value so another thread can own it.
enum Name {
    /// `"host:port"`.
    HostPort(String),
    /// `("host", port)`.
    Pair(String, u16),
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::HostPort(s) => f.write_str(s),
            Name::Pair(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

impl Name {
    /// Whether std would parse this without a lookup.
    fn is_numeric(&self) -> bool {
        match self {
            Name::HostPort(s) => s.parse::<SocketAddr>().is_ok(),
            Name::Pair(host, _) => host.parse::<std::net::IpAddr>().is_ok(),
        }
    }

    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match self {
            Name::HostPort(s) => s.as_str().to_socket_addrs().map(Iterator::collect),
            Name::Pair(host, port) => (host.as_str(), *port)
                .to_socket_addrs()
                .map(Iterator::collect),
        }
    }
}

/// Copies the name out of `addr` if `A` is one of std's string forms.
fn name_of<A: ToSocketAddrs>(addr: &A) -> Option<Name> {
    let id = typeid::of::<A>();
    macro_rules! forms {
        ($($ty:ty => |$v:ident| $name:expr;)*) => {$(
            if id == typeid::of::<$ty>() {
                // SAFETY: `A` and `$ty` have the same type id with lifetimes erased, so they are
                // the same type up to lifetimes, which do not change layout. The reference made
                // here lives no longer than the borrow of `addr`, which `A`'s lifetimes outlive.
                let $v: &$ty = unsafe { &*(addr as *const A).cast::<$ty>() };
                return Some($name);
            }
        )*};
    }
    forms! {
        &str => |v| Name::HostPort((*v).to_owned());
        String => |v| Name::HostPort(v.clone());
        &String => |v| Name::HostPort((*v).clone());
        &&str => |v| Name::HostPort((**v).to_owned());
        (&str, u16) => |v| Name::Pair(v.0.to_owned(), v.1);
        (String, u16) => |v| Name::Pair(v.0.clone(), v.1);
        &(&str, u16) => |v| Name::Pair(v.0.to_owned(), v.1);
        &(String, u16) => |v| Name::Pair(v.0.clone(), v.1);
    }
    None
}

/// Resolves `addr` as std would, doing any host-name lookup on the blocking pool when called in a
/// coroutine.
pub(crate) fn resolve<A: ToSocketAddrs>(addr: &A) -> io::Result<Vec<SocketAddr>> {
    if may::coroutine::is_coroutine() {
        if let Some(name) = name_of(addr).filter(|n| !n.is_numeric()) {
            tracing::debug!(name = %name, "resolving a host name on the blocking pool");
            let resolved = crate::blocking::blocking(move || name.resolve());
            match &resolved {
                Ok(addrs) => tracing::trace!(count = addrs.len(), "host name resolved"),
                Err(e) => tracing::debug!(error = %e, "host name not resolved"),
            }
            return resolved;
        }
    }
    addr.to_socket_addrs().map(Iterator::collect)
}

/// Tries `f` on each address `addr` resolves to, in order, and returns the first success or the
/// last error, as std does for `connect`, `bind` and `send_to`.
pub(crate) fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in resolve(&addr)? {
        match f(&addr) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn form<A: ToSocketAddrs>(addr: A) -> Option<(String, Option<u16>)> {
        name_of(&addr).map(|n| match n {
            Name::HostPort(s) => (s, None),
            Name::Pair(h, p) => (h, Some(p)),
        })
    }

    #[test]
    // The borrows are the point: references to the string forms are forms of their own.
    #[allow(clippy::needless_borrows_for_generic_args)]
    fn string_forms_are_recognised_and_copied() {
        let owned = String::from("localhost:80");
        assert_eq!(form("localhost:80"), Some(("localhost:80".into(), None)));
        assert_eq!(form(owned.clone()), Some(("localhost:80".into(), None)));
        assert_eq!(form(&owned), Some(("localhost:80".into(), None)));
        assert_eq!(form(&"localhost:80"), Some(("localhost:80".into(), None)));
        assert_eq!(form(("example", 7)), Some(("example".into(), Some(7))));
        assert_eq!(
            form((String::from("example"), 7)),
            Some(("example".into(), Some(7)))
        );
        assert_eq!(form(&("example", 7)), Some(("example".into(), Some(7))));
    }

    #[test]
    fn other_forms_resolve_inline() {
        let v4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 80);
        assert!(form(v4).is_none());
        assert!(form(SocketAddr::V4(v4)).is_none());
        assert!(form((Ipv4Addr::LOCALHOST, 80)).is_none());
        assert!(Name::HostPort("127.0.0.1:80".into()).is_numeric());
        assert!(Name::Pair("::1".into(), 80).is_numeric());
        assert!(!Name::Pair("localhost".into(), 80).is_numeric());
    }
}
