//! The event loop: the only room that owns `mio::Poll` and reads the clock.
//!
//! Each turn: poll with the broker's next deadline as timeout, accept, read until WouldBlock
//! into a loop-wide scratch buffer and hand whole frames to the broker, run timers, then write
//! every connection that has output (one write per client per turn while the socket takes it)
//! and close the ones the broker is done with.

mod handle;

pub use handle::{Command, Handle};

use crate::broker::{Broker, ClientId, PeerInfo};
use crate::hooks::Hook;
use crate::listeners::{self, Acceptor, ListenerConfig, Stream};
use crate::options::Options;
use crate::time::Instant;
use mio::{Events, Poll, Token, Waker};
use std::io::{self, ErrorKind};
use std::sync::{mpsc, Arc};

/// Client tokens are `ClientId::to_u32` (generation << 16 | slot, slot < 65000). The waker and
/// listeners take the top values, whose low 16 bits are >= 65000, so they never collide, on
/// 32-bit targets included.
const WAKER: Token = Token(usize::MAX);
const MAX_LISTENERS: usize = 500;
const fn listener_token(i: usize) -> Token {
    Token(usize::MAX - 1 - i)
}
const fn listener_index(t: Token) -> Option<usize> {
    let i = usize::MAX - 1 - t.0;
    if t.0 != usize::MAX && i < MAX_LISTENERS {
        Some(i)
    } else {
        None
    }
}
/// Bytes read from one socket per turn before the loop moves on (fairness).
const READ_BUDGET: usize = 256 * 1024;

struct Listener {
    cfg: ListenerConfig,
    acceptor: Acceptor,
    allow_anonymous: bool,
}

/// A broker with its listeners and event loop.
pub struct Server {
    broker: Broker,
    poll: Poll,
    listeners: Vec<Listener>,
    /// Sockets by slot, tagged with the connection that owns them: a slot is reused by a new
    /// connection while the old id may still be in the close list or in pending events.
    streams: Vec<Option<(ClientId, Stream)>>,
    commands: mpsc::Receiver<Command>,
    handle: Handle,
    epoch: std::time::Instant,
    scratch: Vec<u8>,
    pending_reads: Vec<ClientId>,
    stopping: bool,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server").field("listeners", &self.listeners.len()).finish()
    }
}

impl Server {
    /// A server with these options. Fails when the options break a rule (the error names the
    /// option) or the poller cannot be created.
    pub fn new(opts: Options) -> io::Result<Server> {
        opts.validate().map_err(|e| io::Error::new(ErrorKind::InvalidInput, e.to_string()))?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        Ok(Server {
            broker: Broker::new(opts),
            poll,
            listeners: Vec::new(),
            streams: Vec::new(),
            commands: rx,
            handle: Handle::new(tx, waker),
            epoch: std::time::Instant::now(),
            scratch: vec![0; 64 * 1024],
            pending_reads: Vec::new(),
            stopping: false,
        })
    }

    /// Appends a hook to the chain (hooks run in the order added).
    pub fn add_hook(&mut self, hook: impl Hook + 'static) {
        self.broker.hooks_mut().add(Box::new(hook));
    }

    /// Binds a listener now; the error names it and its address.
    pub fn add_listener(&mut self, cfg: ListenerConfig) -> io::Result<()> {
        let acceptor = listeners::bind(&cfg)?;
        self.add_acceptor(cfg, acceptor)
    }

    /// Adds an already-open listener (the embedding program bound it).
    pub fn add_tcp_listener(&mut self, name: &str, l: std::net::TcpListener) -> io::Result<()> {
        l.set_nonblocking(true)?;
        let bind = l.local_addr()?.to_string();
        let acceptor = Acceptor::Tcp(mio::net::TcpListener::from_std(l));
        self.add_acceptor(ListenerConfig::tcp(name, &bind), acceptor)
    }

    fn add_acceptor(&mut self, cfg: ListenerConfig, mut acceptor: Acceptor) -> io::Result<()> {
        if self.listeners.len() >= MAX_LISTENERS {
            return Err(io::Error::new(ErrorKind::InvalidInput, "too many listeners"));
        }
        let token = listener_token(self.listeners.len());
        acceptor.register(self.poll.registry(), token)?;
        log::info!("listener `{}` ({:?}) on {}", cfg.name, cfg.kind, acceptor.local_addr());
        let allow_anonymous = listeners::allows_anonymous(&cfg);
        self.listeners.push(Listener { cfg, acceptor, allow_anonymous });
        Ok(())
    }

    /// Local addresses of the listeners, in the order added (useful with port 0).
    pub fn local_addrs(&self) -> Vec<String> {
        self.listeners.iter().map(|l| l.acceptor.local_addr()).collect()
    }

    /// A handle for other threads: publish, stop, stats.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The broker core (for inspection in tests and embedding before `serve`).
    pub fn broker_mut(&mut self) -> &mut Broker {
        &mut self.broker
    }

    fn now(&self) -> Instant {
        Instant(self.epoch.elapsed().as_millis() as u64)
    }

    /// Runs the loop on this thread until [`Handle::stop`] is called.
    pub fn serve(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut ids = Vec::new();
        self.broker.start(self.now());
        loop {
            let now = self.now();
            let timeout = if !self.pending_reads.is_empty() {
                Some(std::time::Duration::ZERO)
            } else {
                self.broker.next_deadline().map(|t| t.saturating_since(now).into())
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let now = self.now();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.run_commands(now),
                    t if listener_index(t).is_some() => self.accept(listener_index(t).unwrap_or(0), now),
                    Token(t) => {
                        let id = ClientId::from_u32(t as u32);
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read(id, now);
                        }
                        if ev.is_writable() {
                            self.write(id, now);
                        }
                    }
                }
            }
            for id in core::mem::take(&mut self.pending_reads) {
                self.read(id, now);
            }
            self.broker.tick(now);
            self.flush_and_close(&mut ids, now);
            if self.stopping && self.broker.connection_count() == 0 {
                return Ok(());
            }
        }
    }

    fn accept(&mut self, index: usize, now: Instant) {
        loop {
            let Some(l) = self.listeners.get_mut(index) else { return };
            let (mut stream, remote) = match l.acceptor.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("listener `{}`: accept failed: {e}", l.cfg.name);
                    return;
                }
            };
            if self.stopping {
                continue;
            }
            let peer = PeerInfo {
                remote,
                listener: l.cfg.name.clone(),
                allow_anonymous: l.allow_anonymous,
                cert_username: None,
            };
            let id = match self.broker.accept(peer, now) {
                Ok(id) => id,
                Err(_) => {
                    log::warn!("max_clients reached: connection refused");
                    stream.shutdown();
                    continue;
                }
            };
            if let Err(e) = stream.register(self.poll.registry(), Token(id.to_u32() as usize)) {
                log::warn!("register failed: {e}");
                self.broker.release(id);
                continue;
            }
            let slot = id.slot as usize;
            if self.streams.len() <= slot {
                self.streams.resize_with(slot + 1, || None);
            }
            self.streams[slot] = Some((id, stream));
            // Data may already be waiting (edge-triggered: read now).
            self.read(id, now);
        }
    }

    fn read(&mut self, id: ClientId, now: Instant) {
        let mut total = 0;
        loop {
            if self.broker.is_closing(id) {
                return;
            }
            let Some(stream) = stream_of(&mut self.streams, id) else { return };
            match stream.read(&mut self.scratch) {
                Ok(0) => {
                    self.broker.on_closed(id, now);
                    return;
                }
                Ok(n) => {
                    self.broker.on_bytes(id, &self.scratch[..n], now);
                    total += n;
                    if total >= READ_BUDGET {
                        self.pending_reads.push(id);
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.broker.on_closed(id, now);
                    return;
                }
            }
        }
    }

    /// Writes the connection's output until it is empty or the socket would block.
    fn write(&mut self, id: ClientId, now: Instant) {
        loop {
            let out = self.broker.output(id);
            if out.is_empty() {
                return;
            }
            let Some(stream) = stream_of(&mut self.streams, id) else { return };
            match stream.write(out) {
                Ok(0) => return,
                Ok(n) => self.broker.consume_output(id, n, now),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.broker.on_closed(id, now);
                    return;
                }
            }
        }
    }

    fn flush_and_close(&mut self, ids: &mut Vec<ClientId>, now: Instant) {
        loop {
            ids.clear();
            self.broker.take_flushes(ids);
            if ids.is_empty() {
                break;
            }
            for &id in ids.iter() {
                self.write(id, now);
            }
        }
        ids.clear();
        self.broker.take_closes(ids);
        for &id in ids.iter() {
            self.write(id, now);
            let slot = self.streams.get_mut(id.slot as usize).filter(|s| s.as_ref().is_some_and(|(owner, _)| *owner == id));
            if let Some((_, mut s)) = slot.and_then(|s| s.take()) {
                s.deregister(self.poll.registry());
                s.shutdown();
            }
            self.broker.release(id);
        }
    }

    fn run_commands(&mut self, now: Instant) {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Publish { topic, payload, retain, qos } => {
                    self.broker.publish(&topic, &payload, retain, qos, now);
                }
                Command::Stats(reply) => {
                    let _ = reply.send(self.broker.stats(now));
                }
                Command::Stop => {
                    self.stopping = true;
                    self.broker.shutdown(now);
                }
            }
        }
    }
}

/// The socket of connection `id`, unless its slot now belongs to another connection.
fn stream_of(streams: &mut [Option<(ClientId, Stream)>], id: ClientId) -> Option<&mut Stream> {
    match streams.get_mut(id.slot as usize) {
        Some(Some((owner, s))) if *owner == id => Some(s),
        _ => None,
    }
}
