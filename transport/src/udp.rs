//! The UDP sockets QUIC runs on, with buffers sized for bursts.
//!
//! Linux gives a UDP socket about 200 KB of receive buffer: some ninety full-size QUIC
//! packets. A coordinator that a thousand agents (re)connect to at once, or that answers
//! hundreds of clients together, receives more than that between two reads, and the
//! kernel drops the rest. QUIC recovers, but only after a probe timeout, so a handshake
//! whose packets are dropped a few times over gives up. Measured here: about 5,000
//! drops while 1,000 simulated nodes joined, and a join now and then failing after 10 s.
//! Both ends therefore ask for larger buffers; as root (the coordinator and agents
//! usually are) past `net.core.rmem_max`, otherwise up to it.

use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;

/// The buffers a coordinator's socket asks for.
pub const SERVER_BUFFER: usize = 8 << 20;
/// The buffers a client's socket asks for.
pub const CLIENT_BUFFER: usize = 1 << 20;

/// Raises a socket's receive and send buffers towards `bytes`; returns the receive
/// buffer the kernel granted (Linux reports twice the usable size asked for).
fn grow_buffers<F: AsFd>(socket: &F, bytes: usize) -> usize {
    // SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it the plain option is capped at
    // net.core.rmem_max, which is still better than the default.
    if setsockopt(socket, sockopt::RcvBufForce, &bytes).is_err() {
        let _ = setsockopt(socket, sockopt::RcvBuf, &bytes);
    }
    if setsockopt(socket, sockopt::SndBufForce, &bytes).is_err() {
        let _ = setsockopt(socket, sockopt::SndBuf, &bytes);
    }
    getsockopt(socket, sockopt::RcvBuf).unwrap_or(0)
}

/// Any local address, any port, of `peer`'s family: where a socket talking to it binds.
pub fn any_local_for(peer: SocketAddr) -> SocketAddr {
    let ip = if peer.is_ipv6() {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    SocketAddr::new(ip, 0)
}

/// A bound UDP socket with buffers raised towards `bytes`, and the receive buffer granted.
pub fn bind(addr: SocketAddr, bytes: usize) -> std::io::Result<(UdpSocket, usize)> {
    let socket = UdpSocket::bind(addr)?;
    let granted = grow_buffers(&socket, bytes);
    Ok((socket, granted))
}

fn endpoint(
    socket: UdpSocket,
    server: Option<quinn::ServerConfig>,
) -> std::io::Result<quinn::Endpoint> {
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("QUIC needs to run inside a tokio runtime"))?;
    quinn::Endpoint::new(quinn::EndpointConfig::default(), server, socket, runtime)
}

/// A client endpoint for talking to `peer`, on a socket with raised buffers.
pub fn client_endpoint(peer: SocketAddr) -> std::io::Result<quinn::Endpoint> {
    let (socket, granted) = bind(any_local_for(peer), CLIENT_BUFFER)?;
    tracing::debug!(receive_buffer = granted, "client socket");
    endpoint(socket, None)
}

/// A server endpoint on a socket with raised buffers; warns when the kernel granted
/// less than asked (a crowd of clients may then see dropped packets and slow handshakes).
pub fn server_endpoint(
    addr: SocketAddr,
    config: quinn::ServerConfig,
) -> std::io::Result<quinn::Endpoint> {
    let (socket, granted) = bind(addr, SERVER_BUFFER)?;
    if granted < SERVER_BUFFER {
        tracing::warn!(
            asked = SERVER_BUFFER,
            granted,
            "the QUIC socket's receive buffer is smaller than asked; raise net.core.rmem_max \
             (sysctl -w net.core.rmem_max={SERVER_BUFFER}) or run as root"
        );
    } else {
        tracing::debug!(receive_buffer = granted, "server socket");
    }
    endpoint(socket, Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_grow_past_the_default() {
        let (_s, granted) = bind("127.0.0.1:0".parse().unwrap(), CLIENT_BUFFER).unwrap();
        let limit: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Root passes the system's limit; anyone else gets up to it.
        let want = if nix::unistd::geteuid().is_root() {
            CLIENT_BUFFER
        } else {
            CLIENT_BUFFER.min(limit)
        };
        assert!(granted >= want, "granted {granted}, want {want}");
    }
}
