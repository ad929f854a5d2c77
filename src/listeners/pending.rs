//! Connections whose transport is not up yet: a TLS handshake, a WebSocket upgrade request, an
//! HTTP stats request being read or answered. The server keeps these in its own small table,
//! out of the broker, until [`Pending::advance`] hands back a ready [`Stream`] (or says close).
//! Deciding when a handshake has taken too long is the server's (it owns the clock).

use super::http::{self, Head};
use super::stream::Stream;
pub use super::ticket::{Ticket, Tickets};
use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, ErrorKind, Read, Write};
#[cfg(feature = "tls")]
use {super::tls::TlsStream, rustls::ServerConfig, std::sync::Arc};

/// What a TCP listener runs on top of the socket, resolved from its [`super::ListenerKind`]
/// (TLS configuration loaded from its files).
#[derive(Clone)]
pub enum Setup {
    /// MQTT straight on the socket (TCP, Unix).
    Plain,
    /// TLS, then MQTT.
    #[cfg(feature = "tls")]
    Tls(Arc<ServerConfig>, Tickets),
    /// A WebSocket upgrade on `path`, then MQTT in binary frames.
    #[cfg(feature = "ws")]
    Ws {
        /// Upgrade path.
        path: String,
        /// WebSocket limits before and after CONNECT.
        config: super::ws::Configs,
        /// Connections from accept until CONNECT.
        tickets: Tickets,
    },
    /// TLS, then a WebSocket upgrade, then MQTT.
    #[cfg(all(feature = "ws", feature = "tls"))]
    Wss {
        /// Upgrade path.
        path: String,
        /// WebSocket limits before and after CONNECT.
        config: super::ws::Configs,
        /// TLS configuration.
        tls: Arc<ServerConfig>,
        /// Connections from accept until CONNECT.
        tickets: Tickets,
    },
    /// The HTTP stats responder.
    Http(Tickets),
}

impl core::fmt::Debug for Setup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Setup::Plain => "Plain",
            #[cfg(feature = "tls")]
            Setup::Tls(..) => "Tls",
            #[cfg(feature = "ws")]
            Setup::Ws { .. } => "Ws",
            #[cfg(all(feature = "ws", feature = "tls"))]
            Setup::Wss { .. } => "Wss",
            Setup::Http(_) => "Http",
        })
    }
}

impl Setup {
    /// The listener's count of connections before CONNECT (`None` for plain MQTT, whose
    /// partial CONNECT is in the broker's buffers).
    pub fn tickets(&self) -> Option<&Tickets> {
        match self {
            Setup::Plain => None,
            #[cfg(feature = "tls")]
            Setup::Tls(_, t) => Some(t),
            #[cfg(feature = "ws")]
            Setup::Ws { tickets, .. } => Some(tickets),
            #[cfg(all(feature = "ws", feature = "tls"))]
            Setup::Wss { tickets, .. } => Some(tickets),
            Setup::Http(t) => Some(t),
        }
    }

    /// Replaces the TLS configuration (reload); a no-op for listeners without TLS.
    #[cfg(feature = "tls")]
    pub fn set_tls(&mut self, config: Arc<ServerConfig>) {
        match self {
            Setup::Tls(c, _) => *c = config,
            #[cfg(feature = "ws")]
            Setup::Wss { tls, .. } => *tls = config,
            _ => {}
        }
    }
}

/// The byte transport below HTTP: TCP or TLS.
#[derive(Debug)]
enum Io {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Io {
    fn socket(&mut self) -> &mut TcpStream {
        match self {
            Io::Tcp(s) => s,
            #[cfg(feature = "tls")]
            Io::Tls(s) => s.socket(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Tcp(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Io::Tls(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Tcp(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Io::Tls(s) => s.write(buf),
        }
    }

    /// `Ok(true)` when everything written has reached the socket.
    fn flushed(&mut self) -> io::Result<bool> {
        match self {
            Io::Tcp(_) => Ok(true),
            #[cfg(feature = "tls")]
            Io::Tls(s) => s.flush_tls(),
        }
    }

    /// Ends our direction: close_notify for TLS, then a TCP half-close. The peer's remaining
    /// input is drained afterwards so the close is a FIN, not a reset that could destroy the
    /// response before the client reads it.
    fn finish(&mut self) {
        #[cfg(feature = "tls")]
        if let Io::Tls(s) = self {
            s.close_notify();
        }
        let _ = self.socket().shutdown(std::net::Shutdown::Write);
    }
}

#[derive(Debug)]
enum Then {
    Close,
    #[cfg(feature = "ws")]
    Upgrade(Vec<u8>),
}

#[derive(Debug)]
enum State {
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
    Head { io: Io, buf: Vec<u8> },
    AwaitAnswer(Io),
    Respond { io: Io, out: Vec<u8>, pos: usize, then: Then },
    Drain { io: Io, budget: usize },
    Gone,
}

/// What follows the TLS handshake (or starts at once).
#[derive(Clone, Debug)]
enum Next {
    #[cfg(feature = "tls")]
    Mqtt,
    #[cfg(feature = "ws")]
    Ws { path: String, config: super::ws::Configs },
    Stats,
}

/// Bytes of leftover input read and discarded after an HTTP answer before closing.
const DRAIN_BUDGET: usize = 64 * 1024;

/// Where a pending connection stands after [`Pending::advance`].
#[derive(Debug)]
pub enum Step {
    /// Waiting for readiness.
    Wait,
    /// The transport is up: hand this stream to the broker. The string is the verified client
    /// certificate's common name, if any.
    Ready(Stream, Option<String>),
    /// An HTTP stats request was read: answer it with [`Pending::answer`].
    Stats(Head),
    /// Done or failed: deregister and drop.
    Close,
}

/// A connection in its transport handshake.
#[derive(Debug)]
pub struct Pending {
    state: State,
    next: Next,
    #[cfg_attr(not(any(feature = "tls", feature = "ws")), allow(dead_code))]
    common_name: Option<String>,
    /// This connection's place among its listener's `max_handshakes`, handed to the stream at
    /// [`Step::Ready`] and kept until CONNECT.
    #[cfg_attr(not(any(feature = "tls", feature = "ws")), allow(dead_code))]
    ticket: Option<Ticket>,
}

/// What [`Pending::start`] made of an accepted socket.
#[derive(Debug)]
pub enum Start {
    /// Plain MQTT: hand it to the broker now.
    Ready(Stream),
    /// A handshake comes first.
    Pending(Pending),
}

impl Pending {
    /// Starts what `setup` runs on an accepted stream.
    pub fn start(stream: Stream, setup: &Setup) -> io::Result<Start> {
        let tcp = match (setup, stream) {
            (Setup::Plain, s) => return Ok(Start::Ready(s)),
            (_, Stream::Tcp(s)) => s,
            _ => return Err(io::Error::new(ErrorKind::InvalidInput, "this listener needs a TCP socket")),
        };
        let ticket = match setup.tickets().map(Tickets::take) {
            Some(None) => {
                let max = setup.tickets().map_or(0, Tickets::max);
                let why = format!("{max} connections in a handshake or before CONNECT (max_handshakes): connection refused");
                return Err(io::Error::other(why));
            }
            Some(t) => t,
            None => None,
        };
        let head = |tcp, next, ticket| Pending { state: State::Head { io: Io::Tcp(tcp), buf: Vec::new() }, next, common_name: None, ticket };
        let p = match setup {
            Setup::Plain => unreachable_plain(),
            #[cfg(feature = "tls")]
            Setup::Tls(cfg, _) => Pending {
                state: State::Tls(Box::new(TlsStream::new(cfg.clone(), tcp)?)),
                next: Next::Mqtt,
                common_name: None,
                ticket,
            },
            #[cfg(feature = "ws")]
            Setup::Ws { path, config, .. } => head(tcp, Next::Ws { path: path.clone(), config: *config }, ticket),
            #[cfg(all(feature = "ws", feature = "tls"))]
            Setup::Wss { path, config, tls, .. } => Pending {
                state: State::Tls(Box::new(TlsStream::new(tls.clone(), tcp)?)),
                next: Next::Ws { path: path.clone(), config: *config },
                common_name: None,
                ticket,
            },
            Setup::Http(_) => head(tcp, Next::Stats, ticket),
        };
        Ok(Start::Pending(p))
    }

    fn source(&mut self) -> Option<&mut TcpStream> {
        match &mut self.state {
            #[cfg(feature = "tls")]
            State::Tls(t) => Some(t.socket()),
            State::Head { io, .. } | State::AwaitAnswer(io) | State::Respond { io, .. } | State::Drain { io, .. } => {
                Some(io.socket())
            }
            State::Gone => None,
        }
    }

    /// Registers for readable and writable readiness (edge-triggered).
    pub fn register(&mut self, r: &Registry, t: Token) -> io::Result<()> {
        match self.source() {
            Some(s) => s.register(r, t, Interest::READABLE | Interest::WRITABLE),
            None => Err(ErrorKind::NotConnected.into()),
        }
    }

    /// Deregisters.
    pub fn deregister(&mut self, r: &Registry) {
        if let Some(s) = self.source() {
            let _ = s.deregister(r);
        }
    }

    /// Queues the answer to a [`Step::Stats`] request; call [`Pending::advance`] next.
    pub fn answer(&mut self, response: Vec<u8>) {
        if let State::AwaitAnswer(io) = core::mem::replace(&mut self.state, State::Gone) {
            self.state = State::Respond { io, out: response, pos: 0, then: Then::Close };
        }
    }

    /// Drives the handshake as far as the socket allows. Never blocks.
    pub fn advance(&mut self) -> Step {
        loop {
            match core::mem::replace(&mut self.state, State::Gone) {
                State::Gone => return Step::Close,
                #[cfg(feature = "tls")]
                State::Tls(mut t) => match t.handshake() {
                    Ok(false) => {
                        self.state = State::Tls(t);
                        return Step::Wait;
                    }
                    Ok(true) => {
                        self.common_name = t.peer_common_name();
                        match &self.next {
                            Next::Mqtt => {
                                let mut stream = Stream::Tls(t);
                                stream.hold(self.ticket.take());
                                return Step::Ready(stream, self.common_name.take());
                            }
                            _ => self.state = State::Head { io: Io::Tls(t), buf: Vec::new() },
                        }
                    }
                    Err(e) => {
                        log::debug!("tls handshake failed: {e}");
                        return Step::Close;
                    }
                },
                State::Head { mut io, mut buf } => {
                    let room = http::MAX_HEAD + 1 - buf.len().min(http::MAX_HEAD);
                    let mut chunk = [0u8; 1024];
                    let want = room.min(chunk.len());
                    match io.read(&mut chunk[..want]) {
                        Ok(0) => return Step::Close,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            self.state = State::Head { io, buf };
                            return Step::Wait;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => return Step::Close,
                    }
                    match http::parse_head(&buf) {
                        Ok(None) => self.state = State::Head { io, buf },
                        Err(e) => self.state = State::Respond { io, out: e.response(), pos: 0, then: Then::Close },
                        Ok(Some((head, used))) => match &self.next {
                            // `used` splits off WebSocket frames that came with the head.
                            #[cfg(feature = "ws")]
                            Next::Ws { path, .. } => {
                                self.state = match super::ws::upgrade(&head, path) {
                                    super::ws::Upgrade::Accept(out) => {
                                        State::Respond { io, out, pos: 0, then: Then::Upgrade(buf.split_off(used)) }
                                    }
                                    super::ws::Upgrade::Refuse(out) => State::Respond { io, out, pos: 0, then: Then::Close },
                                }
                            }
                            _ => {
                                let _ = used;
                                self.state = State::AwaitAnswer(io);
                                return Step::Stats(head);
                            }
                        },
                    }
                }
                State::AwaitAnswer(io) => {
                    self.state = State::AwaitAnswer(io);
                    return Step::Wait;
                }
                State::Respond { mut io, out, mut pos, then } => {
                    while pos < out.len() {
                        match io.write(&out[pos..]) {
                            Ok(0) => return Step::Close,
                            Ok(n) => pos += n,
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == ErrorKind::Interrupted => {}
                            Err(_) => return Step::Close,
                        }
                    }
                    match io.flushed() {
                        Ok(true) if pos >= out.len() => {}
                        Ok(_) => {
                            self.state = State::Respond { io, out, pos, then };
                            return Step::Wait;
                        }
                        Err(_) => return Step::Close,
                    }
                    match then {
                        Then::Close => {
                            io.finish();
                            self.state = State::Drain { io, budget: DRAIN_BUDGET };
                        }
                        #[cfg(feature = "ws")]
                        Then::Upgrade(rest) => {
                            let Next::Ws { config, .. } = &self.next else { return Step::Close };
                            let mut stream = match io {
                                Io::Tcp(s) => Stream::Ws(Box::new(super::ws::WsStream::new(s, rest, *config))),
                                #[cfg(feature = "tls")]
                                Io::Tls(t) => Stream::Wss(Box::new(super::ws::WsStream::new(*t, rest, *config))),
                            };
                            stream.hold(self.ticket.take());
                            return Step::Ready(stream, self.common_name.take());
                        }
                    }
                }
                State::Drain { mut io, budget } => {
                    let mut sink = [0u8; 1024];
                    match io.socket().read(&mut sink) {
                        Ok(0) => return Step::Close,
                        Ok(n) if n >= budget => return Step::Close,
                        Ok(n) => self.state = State::Drain { io, budget: budget - n },
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            self.state = State::Drain { io, budget };
                            return Step::Wait;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => self.state = State::Drain { io, budget },
                        Err(_) => return Step::Close,
                    }
                }
            }
        }
    }
}

#[inline]
fn unreachable_plain() -> Pending {
    // `Setup::Plain` returned above; kept total without a panic.
    Pending { state: State::Gone, next: Next::Stats, common_name: None, ticket: None }
}
