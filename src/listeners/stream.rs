//! The byte streams a listener hands the loop: plain TCP and Unix sockets, TLS, WebSocket and
//! WebSocket over TLS, all behind the same surface of plain MQTT bytes (`read`, `write`,
//! `flush_pending`, `register`), so `server/` stays transport-agnostic.
//!
//! Readiness discipline: every stream is registered for readable and writable, edge-triggered.
//! `read` is called until it returns `WouldBlock` (TLS and WebSocket may hold decoded bytes
//! that need no socket read, and `read` hands those out first); `flush_pending` is called on
//! every writable edge before new output, since TLS records, WebSocket pongs or a partly
//! written frame may wait there with no MQTT output behind them.

use mio::event::Source;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};

#[cfg(feature = "tls")]
use super::tls::TlsStream;
#[cfg(feature = "ws")]
use super::ws::WsStream;

/// A connection's transport, carrying plain MQTT bytes.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(mio::net::TcpStream),
    /// Unix domain socket.
    Unix(mio::net::UnixStream),
    /// TLS over TCP, handshake complete.
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
    /// WebSocket over TCP, upgrade complete.
    #[cfg(feature = "ws")]
    Ws(Box<WsStream<mio::net::TcpStream>>),
    /// WebSocket over TLS, both handshakes complete.
    #[cfg(all(feature = "ws", feature = "tls"))]
    Wss(Box<WsStream<TlsStream>>),
}

impl Stream {
    /// Reads MQTT bytes into `buf`; `Ok(0)` is end of stream, `WouldBlock` means nothing more
    /// until the next readable edge.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
            #[cfg(feature = "ws")]
            Stream::Ws(s) => s.read(buf),
            #[cfg(all(feature = "ws", feature = "tls"))]
            Stream::Wss(s) => s.read(buf),
        }
    }

    /// Writes MQTT bytes from `buf` (for WebSocket: one binary frame). `WouldBlock` when the
    /// transport cannot take more until the next writable edge.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
            #[cfg(feature = "ws")]
            Stream::Ws(s) => s.write(buf),
            #[cfg(all(feature = "ws", feature = "tls"))]
            Stream::Wss(s) => s.write(buf),
        }
    }

    /// Holds `ticket` (the connection's place among its listener's `max_handshakes`) until
    /// [`Stream::connected`] or the stream is dropped.
    #[cfg_attr(not(any(feature = "tls", feature = "ws")), allow(dead_code, unused_variables))]
    pub(crate) fn hold(&mut self, ticket: Option<super::ticket::Ticket>) {
        match self {
            Stream::Tcp(_) | Stream::Unix(_) => {}
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.ticket = ticket,
            #[cfg(feature = "ws")]
            Stream::Ws(s) => s.ticket = ticket,
            #[cfg(all(feature = "ws", feature = "tls"))]
            Stream::Wss(s) => s.ticket = ticket,
        }
    }

    /// The connection's CONNECT has arrived (the server calls this after every read of a
    /// connected client; it costs a test once done): its place among the listener's
    /// `max_handshakes` is given back, and a WebSocket may carry messages as large as packets.
    pub fn connected(&mut self) {
        match self {
            Stream::Tcp(_) | Stream::Unix(_) => {}
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.ticket = None,
            #[cfg(feature = "ws")]
            Stream::Ws(s) => s.connected(),
            #[cfg(all(feature = "ws", feature = "tls"))]
            Stream::Wss(s) => s.connected(),
        }
    }

    /// Writes several buffers in one system call where the transport allows (plain sockets);
    /// TLS and WebSocket take the first non-empty buffer (one record or frame per call).
    pub fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            #[allow(unreachable_patterns)]
            _ => match bufs.iter().find(|b| !b.is_empty()) {
                Some(b) => self.write(b),
                None => Ok(0),
            },
        }
    }

    /// Writes what the transport itself holds (TLS records, WebSocket control frames, a partly
    /// written frame): `Ok(true)` when nothing is left, `Ok(false)` when the socket is full.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self {
            Stream::Tcp(_) | Stream::Unix(_) => Ok(true),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush_tls(),
            #[cfg(feature = "ws")]
            Stream::Ws(s) => s.flush_ws(),
            #[cfg(all(feature = "ws", feature = "tls"))]
            Stream::Wss(s) => Ok(s.flush_ws()? && s.get_mut().flush_tls()?),
        }
    }

    /// Closes: a WebSocket close frame and TLS close_notify where they apply (best effort, never
    /// blocking), then shuts both directions of the socket down.
    pub fn shutdown(&mut self) {
        match self {
            Stream::Tcp(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            Stream::Unix(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.shutdown(),
            #[cfg(feature = "ws")]
            Stream::Ws(s) => {
                s.close();
                let _ = s.get_mut().shutdown(std::net::Shutdown::Both);
            }
            #[cfg(all(feature = "ws", feature = "tls"))]
            Stream::Wss(s) => {
                s.close();
                s.get_mut().shutdown();
            }
        }
    }

    fn source(&mut self) -> &mut dyn Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.socket(),
            #[cfg(feature = "ws")]
            Stream::Ws(s) => s.get_mut(),
            #[cfg(all(feature = "ws", feature = "tls"))]
            Stream::Wss(s) => s.get_mut().socket(),
        }
    }

    /// Registers for readable and writable readiness (edge-triggered).
    pub fn register(&mut self, r: &Registry, t: Token) -> io::Result<()> {
        self.source().register(r, t, Interest::READABLE | Interest::WRITABLE)
    }

    /// Moves the registration to another token (a connection handed from the handshake table
    /// to the broker).
    pub fn reregister(&mut self, r: &Registry, t: Token) -> io::Result<()> {
        self.source().reregister(r, t, Interest::READABLE | Interest::WRITABLE)
    }

    /// Deregisters.
    pub fn deregister(&mut self, r: &Registry) {
        let _ = self.source().deregister(r);
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub enum Acceptor {
    /// TCP (the listener's kind says what runs on top).
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
