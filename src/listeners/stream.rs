//! The byte streams a listener hands the loop. Today TCP and Unix sockets; TLS and WebSocket
//! wrap these (issue: listeners) behind the same read/write surface.

use mio::event::Source;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};

/// A connection's transport.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(mio::net::TcpStream),
    /// Unix domain socket.
    Unix(mio::net::UnixStream),
}

impl Stream {
    /// Reads into `buf`; `Ok(0)` is end of stream.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    /// Writes from `buf`.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    /// Shuts both directions down (best effort).
    pub fn shutdown(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }

    /// Registers for readable and writable readiness (edge-triggered).
    pub fn register(&mut self, r: &Registry, t: Token) -> io::Result<()> {
        let i = Interest::READABLE | Interest::WRITABLE;
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }

    /// Deregisters.
    pub fn deregister(&mut self, r: &Registry) {
        let _ = match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        };
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub enum Acceptor {
    /// TCP.
    Tcp(mio::net::TcpListener),
    /// Unix domain socket.
    Unix(mio::net::UnixListener),
}

impl Acceptor {
    /// Accepts one connection: the stream and the peer's address as text.
    pub fn accept(&mut self) -> io::Result<(Stream, String)> {
        match self {
            Acceptor::Tcp(l) => {
                let (s, addr) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok((Stream::Tcp(s), addr.to_string()))
            }
            Acceptor::Unix(l) => {
                let (s, _) = l.accept()?;
                Ok((Stream::Unix(s), "unix".to_string()))
            }
        }
    }

    /// Registers for readable readiness.
    pub fn register(&mut self, r: &Registry, t: Token) -> io::Result<()> {
        match self {
            Acceptor::Tcp(l) => l.register(r, t, Interest::READABLE),
            Acceptor::Unix(l) => l.register(r, t, Interest::READABLE),
        }
    }

    /// The local address, for logs and tests (`ip:port` or the socket path).
    pub fn local_addr(&self) -> String {
        match self {
            Acceptor::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Acceptor::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_default(),
        }
    }
}
