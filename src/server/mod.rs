//! The event loop: the only room that owns `mio::Poll` and reads the clock.
//!
//! Each turn: poll with the broker's next deadline as timeout, accept, read until WouldBlock
//! into a loop-wide scratch buffer and hand whole frames to the broker, run timers, then write
//! every connection that has output (one write per client per turn while the socket takes it)
//! and close the ones the broker is done with.

mod handle;

pub use handle::{Command, Handle, HandleError, COMMAND_CAPACITY};

use crate::packets::ReasonCode;
use crate::broker::{Broker, ClientId, PeerInfo};
use crate::hooks::Hook;
use crate::listeners::{self, http, Acceptor, ListenerConfig, Pending, Setup, Start, Step, Stream};
use crate::options::Options;
use crate::time::{Duration, Instant};
use mio::{Events, Poll, Token, Waker};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, ErrorKind};
use std::sync::Arc;

/// Token layout. Client tokens are `ClientId::to_u32` (generation << 16 | slot, slot < 65000).
/// The waker and listeners take the top values, whose low 16 bits are >= 65035. Connections in
/// a transport handshake or on the HTTP stats listener ("side" connections, kept out of the
/// broker) use `key << 16 | (65000 + seq % 32)`: low 16 bits in 65000..65032, so none of the
/// three kinds collide, on 32-bit targets included, and a stale event for a reused side key is
/// told apart by its sequence number.
const WAKER: Token = Token(usize::MAX);
const MAX_LISTENERS: usize = 500;
const fn listener_token(i: usize) -> Token {
    Token(usize::MAX - 1 - i)
}
const fn listener_index(t: Token) -> Option<usize> {
    let i = (usize::MAX - 1).wrapping_sub(t.0);
    if t.0 != usize::MAX && i < MAX_LISTENERS {
        Some(i)
    } else {
        None
    }
}
const SIDE_BASE: usize = 65_000;
const SIDE_SEQS: u32 = 32;
const fn side_token(key: usize, seq: u32) -> Token {
    Token(key << 16 | (SIDE_BASE + (seq % SIDE_SEQS) as usize))
}
const fn side_of(t: Token) -> Option<(usize, u32)> {
    let low = t.0 & 0xffff;
    if low >= SIDE_BASE && low < SIDE_BASE + SIDE_SEQS as usize {
        Some((t.0 >> 16, (low - SIDE_BASE) as u32))
    } else {
        None
    }
}
/// Output chunks handed to one vectored write: the most a connection encodes ahead, plus the
/// chunk started past them.
const MAX_WRITE_SLICES: usize = crate::options::MAX_WRITE_CHUNKS + 1;

/// Bytes read from one socket per turn before the loop moves on (fairness).
const READ_BUDGET: usize = 256 * 1024;

struct Listener {
    cfg: ListenerConfig,
    acceptor: Acceptor,
    setup: Setup,
    allow_anonymous: bool,
    handshake_ms: u64,
    /// The listener's name, shared by its connections.
    name: std::rc::Rc<str>,
}

/// A connection not handed to the broker (yet): TLS handshake, WebSocket upgrade, HTTP stats.
struct Side {
    pending: Pending,
    listener: usize,
    remote: String,
    /// Full sequence number: the token carries it modulo [`SIDE_SEQS`], deadlines in full, so a
    /// stale deadline never closes a newer connection in the same slot.
    seq: u32,
}

/// A broker connection's transport.
struct Conn {
    id: ClientId,
    stream: Stream,
}

/// A broker with its listeners and event loop.
pub struct Server {
    broker: Broker,
    poll: Poll,
    listeners: Vec<Listener>,
    streams: Vec<Option<Conn>>,
    sides: Slab<Side>,
    side_deadlines: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    side_seq: u32,
    commands: handle::Commands,
    handle: Handle,
    epoch: std::time::Instant,
    scratch: Vec<u8>,
    pending_reads: Vec<ClientId>,
    /// Connections not read because they must wait ([`Broker::read_allowance`] said 0): their
    /// client has not read its output, or their next frame waits for buffer room. Edge-triggered
    /// readiness will not report their unread input again, so every turn asks again and reads
    /// the ones whose reason to wait has ended.
    parked: Vec<ClientId>,
    /// `parked_slots[slot]`: the connection in that slot is in `parked` (no duplicates).
    parked_slots: Vec<bool>,
    /// Scratch list for [`Server::flush`].
    flush_ids: Vec<ClientId>,
    /// When /proc/self/statm was last read (ms), for `$SYS/broker/heap/current`.
    memory_read_at: u64,
    stopping: bool,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server").field("listeners", &self.listeners.len()).field("handshaking", &self.sides.len()).finish()
    }
}

impl Server {
    /// A server with these options. Fails when the options break a rule (the error names the
    /// option) or the poller cannot be created.
    pub fn new(opts: Options) -> io::Result<Server> {
        opts.validate().map_err(|e| io::Error::new(ErrorKind::InvalidInput, e.to_string()))?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (handle, commands) = handle::channel(waker, opts.command_memory(), opts.max_packet_size as usize);
        Ok(Server {
            broker: Broker::new(opts),
            poll,
            listeners: Vec::new(),
            streams: Vec::new(),
            sides: Slab::new(),
            side_deadlines: BinaryHeap::new(),
            side_seq: 0,
            commands,
            handle,
            epoch: std::time::Instant::now(),
            scratch: vec![0; 64 * 1024],
            pending_reads: Vec::new(),
            parked: Vec::new(),
            parked_slots: Vec::new(),
            flush_ids: Vec::new(),
            memory_read_at: 0,
            stopping: false,
        })
    }

    /// Appends a hook to the chain (hooks run in the order added).
    pub fn add_hook(&mut self, hook: impl Hook + 'static) {
        self.broker.hooks_mut().add(Box::new(hook));
    }

    /// Binds a listener now (TLS files are read now too); the error names it and its address
    /// or file.
    pub fn add_listener(&mut self, cfg: ListenerConfig) -> io::Result<()> {
        let setup = listeners::setup(&cfg, &listeners::Limits::of(self.broker.options()))?;
        let acceptor = listeners::bind(&cfg)?;
        self.add_acceptor(cfg, acceptor, setup)
    }

    /// Adds an already-open TCP listener (the embedding program bound it) speaking plain MQTT.
    pub fn add_tcp_listener(&mut self, name: &str, l: std::net::TcpListener) -> io::Result<()> {
        let bind = l.local_addr()?.to_string();
        self.add_open_listener(ListenerConfig::tcp(name, &bind), l)
    }

    /// Adds an already-open TCP listener that speaks what `cfg` says (TLS, WebSocket, HTTP
    /// stats…); `cfg.bind` is only used for the anonymous-access default and logs.
    pub fn add_open_listener(&mut self, cfg: ListenerConfig, l: std::net::TcpListener) -> io::Result<()> {
        if matches!(cfg.kind, listeners::ListenerKind::Unix { .. }) {
            return Err(io::Error::new(ErrorKind::InvalidInput, "a TCP listener cannot serve a unix listener config"));
        }
        let setup = listeners::setup(&cfg, &listeners::Limits::of(self.broker.options()))?;
        l.set_nonblocking(true)?;
        let acceptor = Acceptor::Tcp(mio::net::TcpListener::from_std(l));
        self.add_acceptor(cfg, acceptor, setup)
    }

    fn add_acceptor(&mut self, cfg: ListenerConfig, mut acceptor: Acceptor, setup: Setup) -> io::Result<()> {
        if self.listeners.len() >= MAX_LISTENERS {
            return Err(io::Error::new(ErrorKind::InvalidInput, "too many listeners"));
        }
        // What the listeners' handshakes may hold counts against memory_limit too.
        let transports = listeners::transports(self.listeners.iter().map(|l| &l.cfg).chain([&cfg]));
        if let Err(e) = self.broker.options().check_transports(&transports) {
            return Err(io::Error::new(ErrorKind::InvalidInput, format!("listener `{}`: {e}", cfg.name)));
        }
        let token = listener_token(self.listeners.len());
        acceptor.register(self.poll.registry(), token)?;
        log::info!("listener `{}` ({:?}) on {}", cfg.name, setup, acceptor.local_addr());
        let allow_anonymous = listeners::allows_anonymous(&cfg);
        let handshake_ms = cfg.handshake_timeout_ms(self.broker.options().connect_timeout_ms);
        let name = cfg.name.as_str().into();
        self.listeners.push(Listener { cfg, acceptor, setup, allow_anonymous, handshake_ms, name });
        Ok(())
    }

    /// Rebuilds the TLS configuration of every `tls` and `wss` listener from its files. New
    /// connections use the new certificates; connected clients keep theirs. A listener whose
    /// files fail to load keeps its old configuration; the first error is returned.
    pub fn reload_tls(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for l in &mut self.listeners {
            match listeners::reload_tls(&l.cfg, &mut l.setup) {
                Ok(()) => {
                    if l.cfg.tls_config().is_some() {
                        log::info!("listener `{}`: TLS configuration reloaded", l.cfg.name);
                    }
                }
                Err(e) => {
                    log::warn!("TLS reload: {e}");
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
        }
        result
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
                let side = self.side_deadlines.peek().map(|Reverse((t, _, _))| *t);
                match (self.broker.next_deadline(), side) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
                .map(|t| t.saturating_since(now).into())
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let now = self.now();
            for ev in events.iter() {
                let t = ev.token();
                if t == WAKER {
                    self.run_commands(now);
                } else if let Some(i) = listener_index(t) {
                    self.accept(i, now);
                } else if let Some((key, seq)) = side_of(t) {
                    self.advance_side(key, seq, now);
                } else {
                    let id = ClientId::from_u32(t.0 as u32);
                    if ev.is_writable() {
                        self.write(id, now);
                    }
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        self.read(id, now);
                    }
                }
            }
            for id in core::mem::take(&mut self.pending_reads) {
                self.read(id, now);
            }
            self.expire_sides(now);
            if now.millis() >= self.memory_read_at + 1000 {
                self.memory_read_at = now.millis();
                self.broker.note_memory(resident_bytes());
            }
            let broker = &mut self.broker;
            if shielded(|| broker.tick(now)).is_none() {
                log::error!("timers: a panic was caught; the loop goes on");
                let broker = &mut self.broker;
                let _ = shielded(|| broker.recover(now));
            }
            let broker = &mut self.broker;
            let _ = shielded(|| broker.retry_budget_waiters(now));
            self.flush_and_close(&mut ids, now);
            self.unpark();
            if self.stopping && self.broker.connection_count() == 0 {
                return Ok(());
            }
        }
    }

    fn accept(&mut self, index: usize, now: Instant) {
        loop {
            let Some(l) = self.listeners.get_mut(index) else { return };
            let (stream, remote) = match l.acceptor.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("listener `{}`: accept failed: {e}", l.cfg.name);
                    return;
                }
            };
            if self.stopping {
                continue;
            }
            match Pending::start(stream, &l.setup) {
                Ok(Start::Ready(stream)) => self.admit(index, stream, remote, None, false, now),
                Ok(Start::Pending(p)) => {
                    let deadline = now + Duration::from_millis(l.handshake_ms);
                    self.add_side(index, p, remote, deadline, now);
                }
                Err(e) => log::warn!("listener `{}`: {e}", l.cfg.name),
            }
        }
    }

    /// Hands a connection whose transport is up to the broker.
    fn admit(&mut self, index: usize, mut stream: Stream, remote: String, cn: Option<String>, registered: bool, now: Instant) {
        let Some(l) = self.listeners.get(index) else { return };
        let cert_username = if l.cfg.tls_config().is_some_and(|t| t.cn_as_username) { cn } else { None };
        let peer = PeerInfo { remote, listener: l.name.clone(), allow_anonymous: l.allow_anonymous, cert_username };
        let broker = &mut self.broker;
        let id = match shielded(|| broker.accept(peer, now)) {
            Some(Ok(id)) => id,
            _ => {
                log::warn!("max_clients reached: connection refused");
                if registered {
                    stream.deregister(self.poll.registry());
                }
                stream.shutdown();
                return;
            }
        };
        let token = Token(id.to_u32() as usize);
        let r = if registered {
            stream.reregister(self.poll.registry(), token)
        } else {
            stream.register(self.poll.registry(), token)
        };
        if let Err(e) = r {
            log::warn!("register failed: {e}");
            self.broker.release(id);
            return;
        }
        let slot = id.slot as usize;
        if self.streams.len() <= slot {
            self.streams.resize_with(slot + 1, || None);
        }
        self.streams[slot] = Some(Conn { id, stream });
        // Edge-triggered: data may already wait in TLS/WebSocket buffers (after a handshake on the
        // side). A freshly accepted plain socket needs no read here: registering it reports input
        // that is already waiting, and nothing is queued for it yet.
        if registered {
            self.write(id, now);
            self.read(id, now);
        }
    }

    fn add_side(&mut self, index: usize, mut pending: Pending, remote: String, deadline: Instant, now: Instant) {
        // The cap per listener (`max_handshakes`) is the listener's tickets, taken in
        // `Pending::start`: this connection holds one.
        self.side_seq = self.side_seq.wrapping_add(1);
        let seq = self.side_seq;
        let entry = self.sides.vacant_entry();
        let key = entry.key();
        if let Err(e) = pending.register(self.poll.registry(), side_token(key, seq)) {
            log::warn!("register failed: {e}");
            return;
        }
        entry.insert(Side { pending, listener: index, remote, seq });
        // Deadlines of handshakes that ended early stay until they are due: dropped here once
        // they could outnumber the live ones, so a stream of short handshakes cannot grow the heap.
        if self.side_deadlines.len() > 2 * self.sides.len() + 64 {
            let sides = &self.sides;
            self.side_deadlines.retain(|Reverse((_, key, seq))| sides.get(*key).is_some_and(|s| s.seq == *seq));
        }
        self.side_deadlines.push(Reverse((deadline, key, seq)));
        self.advance_side(key, seq, now);
    }

    /// Drives a side connection: handshake, HTTP answer, or hand-over to the broker. `seq` is
    /// the sequence number as carried in the token (modulo [`SIDE_SEQS`]).
    fn advance_side(&mut self, key: usize, seq: u32, now: Instant) {
        loop {
            let Some(side) = self.sides.get_mut(key).filter(|s| s.seq % SIDE_SEQS == seq % SIDE_SEQS) else { return };
            match side.pending.advance() {
                Step::Wait => return,
                Step::Stats(head) => {
                    let broker = &self.broker;
                    let response = http::stats_response(&head, || shielded(|| broker.stats(now)).unwrap_or_default());
                    side.pending.answer(response);
                }
                Step::Ready(stream, cn) => {
                    let side = self.sides.remove(key);
                    self.admit(side.listener, stream, side.remote, cn, true, now);
                    return;
                }
                Step::Close => {
                    self.close_side(key);
                    return;
                }
            }
        }
    }

    fn close_side(&mut self, key: usize) {
        if let Some(mut side) = self.sides.try_remove(key) {
            side.pending.deregister(self.poll.registry());
        }
    }

    fn expire_sides(&mut self, now: Instant) {
        while let Some(Reverse((deadline, key, seq))) = self.side_deadlines.peek().copied() {
            if deadline > now {
                return;
            }
            self.side_deadlines.pop();
            if self.sides.get(key).is_some_and(|s| s.seq == seq) {
                log::debug!("handshake timeout: closing {}", self.sides.get(key).map_or("", |s| s.remote.as_str()));
                self.close_side(key);
            }
        }
    }

    fn stream_mut(streams: &mut [Option<Conn>], id: ClientId) -> Option<&mut Stream> {
        streams.get_mut(id.slot as usize)?.as_mut().filter(|c| c.id == id).map(|c| &mut c.stream)
    }

    /// Reads `id` until its socket would block, its allowance is used up (it is parked), or
    /// it had its share of this turn (it is read again next turn).
    fn read(&mut self, id: ClientId, now: Instant) {
        let mut total = 0;
        loop {
            let broker = &mut self.broker;
            let max = self.scratch.len();
            let allow = match shielded(|| broker.read_allowance(id, max)) {
                Some(Some(0)) => {
                    // Back-pressure for this connection only: its bytes stay in the kernel.
                    self.park(id);
                    return;
                }
                Some(Some(n)) => n,
                Some(None) => return,
                None => {
                    let _ = shielded(|| self.broker.disconnect(id, ReasonCode::ImplementationSpecificError, now));
                    return;
                }
            };
            let Some(stream) = Self::stream_mut(&mut self.streams, id) else { return };
            match stream.read(&mut self.scratch[..allow]) {
                Ok(0) => {
                    self.drop_client(id, now);
                    return;
                }
                Ok(n) => {
                    let (broker, scratch) = (&mut self.broker, &self.scratch[..n]);
                    if shielded(|| broker.on_bytes(id, scratch, now)).is_none() {
                        // A bug, not the peer's right: drop this client, keep the loop.
                        let _ = shielded(|| self.broker.disconnect(id, ReasonCode::ImplementationSpecificError, now));
                        return;
                    }
                    if self.broker.is_connected(id) {
                        stream.connected(); // TLS/WebSocket state before CONNECT ends here
                    }
                    total += n;
                    // Deliveries pile up in a subscriber's queue: output goes out before more is
                    // read, so subscribers drain at the pace their publishers are read rather than
                    // lose QoS 0 messages at their queue bound because the loop read ahead.
                    if self.broker.take_backlog() {
                        self.flush(now);
                    }
                    if total >= READ_BUDGET {
                        self.pending_reads.push(id);
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("read: {e}");
                    self.drop_client(id, now);
                    return;
                }
            }
        }
    }

    /// Writes what the transport holds, then the connection's output, until it is empty or the
    /// socket would block.
    fn write(&mut self, id: ClientId, now: Instant) {
        let Some(stream) = Self::stream_mut(&mut self.streams, id) else { return };
        match stream.flush_pending() {
            Ok(true) => {}
            Ok(false) => return,
            Err(_) => {
                self.drop_client(id, now);
                return;
            }
        }
        loop {
            let mut bufs = [io::IoSlice::new(&[]); MAX_WRITE_SLICES];
            let n = self.broker.output_vectored(id, &mut bufs);
            if n == 0 || bufs[0].is_empty() {
                return;
            }
            let Some(stream) = Self::stream_mut(&mut self.streams, id) else { return };
            match stream.write_vectored(&bufs[..n]) {
                Ok(0) => return,
                Ok(n) => {
                    let broker = &mut self.broker;
                    if shielded(|| broker.consume_output(id, n, now)).is_none() {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.drop_client(id, now);
                    return;
                }
            }
        }
    }

    /// Notes that `id` was not read for back-pressure (once).
    fn park(&mut self, id: ClientId) {
        let slot = id.slot as usize;
        if self.parked_slots.len() <= slot {
            self.parked_slots.resize(slot + 1, false);
        }
        if !self.parked_slots[slot] {
            self.parked_slots[slot] = true;
            self.parked.push(id);
        }
    }

    /// Reads again, next turn, every parked connection whose reason to wait has ended, and
    /// forgets the ones that are gone.
    fn unpark(&mut self) {
        if self.parked.is_empty() {
            return;
        }
        let max = self.scratch.len();
        let (broker, slots, pending) = (&mut self.broker, &mut self.parked_slots, &mut self.pending_reads);
        self.parked.retain(|&id| {
            let keep = match shielded(|| broker.read_allowance(id, max)) {
                Some(Some(0)) => true,
                Some(Some(_)) => {
                    pending.push(id);
                    false
                }
                _ => false,
            };
            if !keep {
                if let Some(p) = slots.get_mut(id.slot as usize) {
                    *p = false;
                }
            }
            keep
        });
    }

    /// Connections waiting for their reason to wait to end (tests and stats).
    pub fn parked_count(&self) -> usize {
        self.parked.len()
    }

    /// The socket of `id` ended or failed: tell the broker, close the socket.
    fn drop_client(&mut self, id: ClientId, now: Instant) {
        let broker = &mut self.broker;
        if shielded(|| broker.on_closed(id, now)).is_none() {
            // Whatever the broker kept of it, the slot must not stay: release it.
            let broker = &mut self.broker;
            let _ = shielded(|| broker.release(id));
        }
        self.close_stream(id);
    }

    fn close_stream(&mut self, id: ClientId) {
        let Some(entry) = self.streams.get_mut(id.slot as usize) else { return };
        if entry.as_ref().is_some_and(|c| c.id == id) {
            if let Some(mut c) = entry.take() {
                c.stream.deregister(self.poll.registry());
                c.stream.shutdown();
            }
        }
    }

    /// Writes every connection with new output until none is left.
    fn flush(&mut self, now: Instant) {
        let mut ids = core::mem::take(&mut self.flush_ids);
        loop {
            ids.clear();
            let broker = &mut self.broker;
            if shielded(|| broker.take_flushes(&mut ids)).is_none() || ids.is_empty() {
                break;
            }
            for &id in ids.iter() {
                self.write(id, now);
            }
        }
        self.flush_ids = ids;
    }

    fn flush_and_close(&mut self, ids: &mut Vec<ClientId>, now: Instant) {
        self.flush(now);
        ids.clear();
        self.broker.take_closes(ids);
        for &id in ids.iter() {
            self.write(id, now);
            self.close_stream(id);
            let broker = &mut self.broker;
            let _ = shielded(|| broker.release(id));
        }
    }

    fn run_commands(&mut self, now: Instant) {
        while let Ok(cmd) = self.commands.try_recv() {
            let this = &mut *self;
            if shielded(|| this.run_command(cmd, now)).is_none() {
                log::error!("a handle command panicked; the loop goes on");
                let broker = &mut self.broker;
                let _ = shielded(|| broker.recover(now));
            }
        }
    }

    fn run_command(&mut self, cmd: Command, now: Instant) {
        {
            match cmd {
                Command::Publish { topic, payload, retain, qos } => {
                    self.broker.publish(&topic, &payload, retain, qos, now);
                }
                Command::Inject { client_id: None, bytes } => {
                    if let Err(e) = self.broker.inject(&bytes, now) {
                        log::warn!("inline inject: {e}");
                    }
                }
                Command::Inject { client_id: Some(cid), bytes } => {
                    if let Err(e) = self.broker.inject_as(&cid, &bytes, now) {
                        log::warn!("inject as `{cid}`: {e}");
                    }
                }
                Command::Disconnect { client_id, reason } => {
                    if !self.broker.disconnect_client(&client_id, reason, now) {
                        log::info!("disconnect `{client_id}`: not connected");
                    }
                }
                Command::ReplaceHook(id, hook) => {
                    let replaced = self.broker.hooks_mut().replace(&id, hook.0);
                    log::info!("hook `{id}` {}", if replaced { "replaced" } else { "added" });
                }
                Command::Stats(reply) => {
                    let _ = reply.send(self.broker.stats(now));
                }
                Command::ReloadTls(reply) => {
                    let _ = reply.send(self.reload_tls());
                }
                Command::Stop => {
                    self.stopping = true;
                    let keys: Vec<usize> = self.sides.iter().map(|(k, _)| k).collect();
                    for key in keys {
                        self.close_side(key);
                    }
                    self.broker.shutdown(now);
                }
            }
        }
    }
}

/// Runs a broker call and turns a panic (a bug) into `None`, logged, so no panic reaches the
/// event loop. The call that panicked may have left its own work half done; the caller drops the
/// connection it served to limit the damage.
fn shielded<R>(f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            log::error!("a panic in the broker was caught; the connection it served is dropped");
            None
        }
    }
}

/// Resident memory of this process from /proc/self/statm (Linux); 0 where unavailable.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_kinds_never_collide() {
        assert_eq!(listener_index(WAKER), None);
        assert_eq!(side_of(WAKER), None);
        for i in 0..MAX_LISTENERS {
            assert_eq!(listener_index(listener_token(i)), Some(i));
            assert_eq!(side_of(listener_token(i)), None);
        }
        for key in [0usize, 1, 64_999, 65_535] {
            for seq in 0..SIDE_SEQS {
                let t = side_token(key, seq);
                assert_eq!(side_of(t), Some((key, seq)));
                assert_eq!(listener_index(t), None);
                assert!(t.0 <= u32::MAX as usize);
            }
        }
        for slot in [0u16, 1, 64_999] {
            for gen in [0u16, 1, u16::MAX] {
                let t = Token(ClientId { slot, gen }.to_u32() as usize);
                assert_eq!(side_of(t), None);
                assert_eq!(listener_index(t), None);
            }
        }
    }
}
