//! The socket-free core: connection slots, sessions, the router and the hook chain, driven by
//! calls that carry bytes and the time. Every protocol scenario can be run here without sockets:
//! [`Broker::accept`], [`Broker::on_bytes`], [`Broker::tick`], then read what the broker wants
//! written with [`Broker::output`] and [`Broker::consume_output`].
//!
//! The broker never reads a clock, never touches a socket and never blocks.

mod budgets;
pub mod conn;
mod connect;
pub mod cost;
mod flow;
mod ids;
mod inject;
mod invariants;
/// The shared message type (its room is `crate::message`; this path is kept for users).
pub use crate::message;
mod restore;
mod subscribe;

pub use budgets::Held;
pub use conn::{ClientId, PeerInfo};
pub use inject::InjectError;
pub use restore::Restored;
pub use message::{Message, MessageRef};

use crate::budget::Budget;
use crate::hooks::{ClientInfo, Hook, HookChain, Point, WillVerdict};
use crate::options::Options;
use crate::packets::{self, Packet, Properties, QoS, ReasonCode, Version};
use crate::session::Session;
use crate::sys::Stats;
use crate::time::{Duration, Instant};
use crate::topics::{Retained, Trie};
use conn::{Conn, ConnState};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A subscription as stored in the trie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SubEntry {
    pub(crate) opts: packets::SubOptions,
    pub(crate) id: Option<u32>,
}

/// Whether a delivery may go into a connection's output now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutRoom {
    /// Yes.
    Yes,
    /// Not now: output is waiting, and writing it pumps the session again.
    Later,
    /// Not until `buffer_memory` has room for this delivery (nothing else will pump it).
    WaitBudget,
}

/// Why a connection could not be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptError {
    /// `max_clients` connections are open.
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Conn(u32),
    Session(u32),
    Sys,
    /// Periodic: give back the queue and window capacity of sessions with nothing in them.
    Compact,
}

/// How often the sweep ([`Broker::sweep`]) looks at partial frames and waiting output.
const SWEEP_MS: u64 = 1000;

/// How often [`Timer::Compact`] runs.
const COMPACT_SECS: u64 = 30;

/// Stale entries the timer heap may hold beyond twice the live bound before it is rebuilt
/// without them (see [`Broker::sweep_timers`]).
const TIMER_SLACK: usize = 64;

/// Pooled buffers (and chunk lists) kept through a compaction.
const POOL_KEEP: usize = 8;

/// The broker core.
pub struct Broker {
    pub(crate) opts: Options,
    pub(crate) conns: Slab<Conn>,
    gens: Vec<u16>,
    pub(crate) sessions: Slab<Session>,
    pub(crate) by_client_id: ids::IdIndex,
    pub(crate) subs: Trie<u32, SubEntry>,
    pub(crate) retained: Retained<MessageRef>,
    pub(crate) retained_bytes: usize,
    /// `queue_memory`: every session's queue and inflight window ([`crate::session::Delivery::cost`]).
    pub(crate) queued: Budget,
    /// `max_subscription_bytes` ([`cost::subscription`]).
    pub(crate) sub_bytes: Budget,
    /// `max_will_bytes` ([`cost::will`]).
    pub(crate) will_bytes: Budget,
    /// `max_alias_bytes`: every connection's topic alias tables ([`cost::alias_in`],
    /// [`cost::alias_out`]); each connection notes its share in `ConnExtra::alias_bytes`.
    pub(crate) alias_bytes: Budget,
    /// Connections in an enhanced authentication before CONNACK, each holding its CONNECT
    /// (`ConnExtra::pending_connect`): at most `max_handshakes`.
    pub(crate) authenticating: usize,
    pub(crate) hooks: HookChain,
    pub(crate) stats: Stats,
    /// Deadlines, earliest first. An entry is not removed when what it times goes away or gets
    /// a new deadline (a heap cannot remove from the middle): it goes stale, is skipped when it
    /// fires, and [`Broker::sweep_timers`] drops the stale ones before they can accumulate.
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    flush: Vec<ClientId>,
    close: Vec<ClientId>,
    pool: Vec<Vec<u8>>,
    /// Empty chunk lists for connection output, so a connection that drains its output does not
    /// free its list and allocate it again for the next packet (nor keep it while idle).
    tx_lists: Vec<Vec<Vec<u8>>>,
    /// Bytes of connection buffers (rx + tx capacity) lent out, for `buffer_memory`.
    buffer_bytes: usize,
    /// Connections with a delivery waiting for room in `buffer_memory` and nothing else that
    /// would pump them: pumped again as room frees ([`Broker::retry_budget_waiters`]).
    budget_waiters: Vec<ClientId>,
    /// The latest time a call brought (for paths that are not handed one).
    clock: Instant,
    /// Since the server last asked ([`Broker::take_backlog`]), a delivery to a connected client
    /// was queued because its output was full, its queue an eighth of the way to its bound.
    backlog: bool,
    /// When the sweep runs next, while some connection holds a partial frame or output (kept
    /// beside the timer heap: it comes and goes with traffic).
    sweep_at: Option<Instant>,
    /// The connection whose timer is being handled (closed by [`Broker::recover`] after a
    /// panic there).
    busy: Option<ClientId>,
    pub(crate) epoch: u32,
    pub(crate) route_scratch: Vec<(u32, crate::session::Delivery)>,
    assigned: u64,
    started: bool,
}

impl core::fmt::Debug for Broker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Broker").field("conns", &self.conns.len()).field("sessions", &self.sessions.len()).finish()
    }
}

impl Broker {
    /// A broker with these options (validated by the caller) and no hooks.
    pub fn new(opts: Options) -> Broker {
        Broker {
            conns: Slab::new(),
            gens: Vec::new(),
            sessions: Slab::new(),
            by_client_id: ids::IdIndex::default(),
            subs: Trie::new(),
            retained: Retained::new(),
            retained_bytes: 0,
            queued: Budget::new(opts.queue_memory),
            sub_bytes: Budget::new(opts.max_subscription_bytes),
            will_bytes: Budget::new(opts.max_will_bytes),
            alias_bytes: Budget::new(opts.max_alias_bytes),
            authenticating: 0,
            hooks: HookChain::default(),
            stats: Stats::default(),
            timers: BinaryHeap::new(),
            flush: Vec::new(),
            close: Vec::new(),
            pool: Vec::new(),
            tx_lists: Vec::new(),
            buffer_bytes: 0,
            budget_waiters: Vec::new(),
            clock: Instant::ZERO,
            sweep_at: None,
            backlog: false,
            busy: None,
            epoch: 0,
            route_scratch: Vec::new(),
            assigned: 0,
            started: false,
            opts,
        }
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The hook chain.
    pub fn hooks_mut(&mut self) -> &mut HookChain {
        &mut self.hooks
    }

    /// Records the process's resident memory (read by the server, which owns all I/O).
    pub fn note_memory(&mut self, rss_bytes: u64) {
        self.stats.memory_rss = rss_bytes;
    }

    /// A snapshot of the counters.
    pub fn stats(&self, now: Instant) -> Stats {
        let mut s = self.stats.clone();
        s.uptime_ms = now.millis();
        s.clients_disconnected = self.sessions.iter().filter(|(k, _)| !self.session_online(*k as u32)).count() as u64;
        s.subscriptions = self.subs.len() as u64;
        s.retained_messages = self.retained.len() as u64;
        s.inflight = self.sessions.iter().map(|(_, s)| s.flow().map_or(0, |f| f.inflight.len()) as u64).sum();
        s.buffer_bytes = self.conns.iter().map(|(_, c)| c.buffer_capacity() as u64).sum::<u64>()
            + self.pool.iter().map(|b| b.capacity() as u64).sum::<u64>();
        s
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Number of sessions (connected or not).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Bytes the retained store accounts for ([`cost::retained`] of each retained message:
    /// the message and its topic's index nodes), bounded by `max_retained_bytes`.
    pub fn retained_bytes(&self) -> usize {
        self.retained_bytes
    }

    pub(crate) fn session_online(&self, key: u32) -> bool {
        self.sessions.get(key as usize).is_some_and(|s| s.conn.is_some())
    }

    /// Restores what the storage hooks hold (`stored_*` loaders), starts the timers that run
    /// without connections (`$SYS`) and fires `on_started`. Called once by the server before
    /// the first poll, so before any client is accepted.
    pub fn start(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        if self.started {
            return;
        }
        self.started = true;
        let r = self.restore(now);
        if r != Restored::default() {
            log::info!("restored {r:?}");
        }
        if self.opts.sys_interval_secs > 0 {
            self.push_timer(now + Duration::from_secs(self.opts.sys_interval_secs as u64), Timer::Sys);
        }
        self.push_timer(now + Duration::from_secs(COMPACT_SECS), Timer::Compact);
        self.hooks.each(Point::OnStarted, |h| h.on_started());
    }

    // -----------------------------------------------------------------------------------------
    // Connections

    /// A new connection from `peer`. Refused at `max_clients`.
    pub fn accept(&mut self, mut peer: PeerInfo, now: Instant) -> Result<ClientId, AcceptError> {
        self.clock = self.clock.max(now);
        if self.conns.len() >= self.opts.max_clients {
            return Err(AcceptError::Full);
        }
        // A certificate user name is kept only as far as its CONNECT can tell it is too long
        // (and refuse it with 0x86): at most max_id_length bytes and one character.
        if let Some(u) = peer.cert_username.as_mut() {
            budgets::clip_over(u, self.opts.max_id_length);
        }
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if self.gens.len() <= slot {
            self.gens.resize(slot + 1, 0);
        }
        let id = ClientId { slot: slot as u16, gen: self.gens[slot] };
        let deadline = now + Duration::from_millis(self.opts.connect_timeout_ms);
        entry.insert(Conn::new(id, peer, now, deadline));
        self.stats.connections_total += 1;
        self.push_timer(deadline, Timer::Conn(id.to_u32()));
        Ok(id)
    }

    pub(crate) fn conn(&self, id: ClientId) -> Option<&Conn> {
        self.conns.get(id.slot as usize).filter(|c| c.id == id)
    }

    pub(crate) fn conn_mut(&mut self, id: ClientId) -> Option<&mut Conn> {
        self.conns.get_mut(id.slot as usize).filter(|c| c.id == id)
    }

    /// Bytes arrived from the socket of `id`. Whole frames are processed directly from `data`;
    /// a partial frame at the end is kept in the connection's buffer. The server reads at most
    /// [`Broker::read_allowance`] bytes per call, which keeps every buffer within its bound: a
    /// partial frame up to `buffer_size` in a pooled buffer, a larger one in a buffer of exactly
    /// its frame's size, reserved from `buffer_memory`.
    pub fn on_bytes(&mut self, id: ClientId, data: &[u8], now: Instant) {
        self.clock = self.clock.max(now);
        let Some(c) = self.conn_mut(id) else { return };
        if c.state == ConnState::Closing {
            return;
        }
        self.stats.bytes_received += data.len() as u64;
        let c = match self.conn_mut(id) {
            Some(c) => c,
            None => return,
        };
        if c.rx.is_empty() {
            let used = self.process(id, data, now);
            let rest = &data[used.min(data.len())..];
            if !rest.is_empty() && !self.is_closing(id) {
                // The whole frame's size when its fixed header is in: reserved at once when
                // the read that brought it was a large one (the allowance left room for it).
                let want = frame_len(rest).unwrap_or(0).max(rest.len());
                let mut buf = if want <= self.opts.buffer_size {
                    self.take_buf()
                } else if want <= self.budget_free() || rest.len() > self.opts.buffer_size {
                    Vec::with_capacity(want)
                } else {
                    // Reserved before the next read, or the connection waits for room.
                    self.take_buf()
                };
                buf.extend_from_slice(rest);
                let since = now.low32();
                if let Some(c) = self.conn_mut(id) {
                    c.rx = buf;
                    c.rx_since = since;
                }
                self.arm_sweep(now);
            }
        } else {
            let mut buf = core::mem::take(&mut c.rx);
            buf.extend_from_slice(data);
            let used = self.process(id, &buf, now);
            buf.drain(..used.min(buf.len()));
            if buf.is_empty() || self.is_closing(id) {
                self.give_buf(buf);
            } else if let Some(c) = self.conn_mut(id) {
                if used > 0 {
                    c.rx_since = now.low32();
                }
                c.rx = buf;
            }
        }
        self.after_input(id);
    }

    /// How many bytes the server may read for `id` now: `None` when the connection is gone or
    /// closing, `Some(0)` while it must wait (its own output is not being read by its client,
    /// or its next frame needs room in `buffer_memory` that is not free yet), else at most
    /// `max` (the server's read buffer). Back-pressure is per connection: a connection that
    /// waits here never stops another from being read.
    ///
    /// A read is large (`max`) only while the shared budget could hold the partial frame it may
    /// leave behind plus the acknowledgements it may cause; else it is one `buffer_size`, which
    /// every connection may always use. A partial frame larger than `buffer_size` gets a buffer
    /// of its exact size before more of it is read, and reads stop at its end.
    pub fn read_allowance(&mut self, id: ClientId, max: usize) -> Option<usize> {
        let free = self.budget_free();
        let exhausted = self.budget_exhausted();
        let o = &self.opts;
        let c = self.conns.get_mut(id.slot as usize).filter(|c| c.id == id)?;
        if c.state == ConnState::Closing {
            return None;
        }
        if c.output_blocks_input(o, exhausted) {
            return Some(0);
        }
        if c.rx.is_empty() {
            let big = free >= max.saturating_add(c.frame_limit(o) as usize);
            return Some(if big { max } else { o.buffer_size.min(max) });
        }
        let Some(total) = frame_len(&c.rx) else {
            // The fixed header is not complete yet: fill the buffer it is in.
            return Some((c.rx.capacity() - c.rx.len()).clamp(1, max));
        };
        if total > c.rx.capacity() {
            let more = total - c.rx.capacity();
            if more > free {
                return Some(0);
            }
            c.rx.reserve_exact(total - c.rx.len());
            self.account(id);
        }
        let c = self.conn(id)?;
        Some(total.saturating_sub(c.rx.len()).clamp(1, max))
    }

    /// Whether a delivery of about `size` bytes may be encoded into the output of `c` now: not
    /// past the connection's delivery bound (`write_batch`), and past its first chunk only with
    /// room in `buffer_memory`. A delivery larger than a chunk needs room for itself even as
    /// the first: the connection then waits for room ([`Broker::retry_budget_waiters`]).
    pub(crate) fn out_room(&self, c: &Conn, size: usize) -> OutRoom {
        if c.tx_full(&self.opts) {
            return OutRoom::Later;
        }
        if size > self.opts.buffer_size && size > self.budget_free() {
            return if c.tx.is_empty() { OutRoom::WaitBudget } else { OutRoom::Later };
        }
        if !c.tx.is_empty() && self.budget_exhausted() {
            return OutRoom::Later;
        }
        OutRoom::Yes
    }

    /// True once since a delivery to a connected client had to wait in its queue for room in
    /// its output: the server then writes before it reads more, so subscribers
    /// drain at the pace their publishers are read instead of hitting their queue bound.
    pub fn take_backlog(&mut self) -> bool {
        core::mem::take(&mut self.backlog)
    }

    /// Bytes of `buffer_memory` not in use.
    fn budget_free(&self) -> usize {
        self.opts.buffer_memory.saturating_sub(self.buffer_bytes)
    }

    /// True when the shared budget cannot hold one more output chunk.
    pub(crate) fn budget_exhausted(&self) -> bool {
        self.buffer_bytes.saturating_add(self.opts.buffer_size) > self.opts.buffer_memory
    }

    /// Decodes and handles whole frames from `buf`; returns the bytes consumed.
    fn process(&mut self, id: ClientId, buf: &[u8], now: Instant) -> usize {
        let mut used = 0;
        loop {
            let Some(c) = self.conn(id) else { return buf.len() };
            if c.state == ConnState::Closing {
                return buf.len();
            }
            let (version, limit) = (c.version, c.frame_limit(&self.opts));
            match packets::decode(&buf[used..], version, limit) {
                Ok(Some((pkt, n))) => {
                    used += n;
                    self.stats.packets_received += 1;
                    if let Some(c) = self.conn_mut(id) {
                        c.last_rx = now.low32();
                    }
                    self.handle(id, pkt, now);
                }
                Ok(None) => return used,
                Err(e) => {
                    log::debug!("{id:?}: {e}");
                    // A malformed CONNECT from a 5.0 client gets a 5.0 CONNACK with the reason.
                    if c.state == ConnState::AwaitConnect && packets::connect_level(&buf[used..]) == Some(5) {
                        if let Some(c) = self.conn_mut(id) {
                            c.version = Version::V5;
                        }
                    }
                    self.protocol_error(id, e.reason_code(), now);
                    return buf.len();
                }
            }
        }
    }

    fn handle(&mut self, id: ClientId, pkt: Packet<'_>, now: Instant) {
        let Some(c) = self.conn(id) else { return };
        let state = c.state;
        if self.hooks.provides(Point::OnPacketRead) {
            let (info, hooks) = self.client_info_and_hooks(id);
            if let Some(info) = info {
                if let Err(rc) = hooks.first_err(Point::OnPacketRead, |h| h.on_packet_read(&info, &pkt)) {
                    self.protocol_error(id, rc, now);
                    self.with_client_hooks(id, Point::OnPacketProcessed, |h, info| h.on_packet_processed(info, &pkt));
                    return;
                }
            }
        }
        match (state, pkt) {
            (ConnState::AwaitConnect, Packet::Connect(c)) => self.on_connect(id, &c, now),
            // [MQTT-3.1.0-1] the first packet must be CONNECT: close without CONNACK.
            (ConnState::AwaitConnect, _) => self.close_now(id, ReasonCode::ProtocolError, now),
            (ConnState::Authenticating, Packet::Auth(a)) => self.on_auth(id, &a, now),
            (ConnState::Authenticating, _) => self.protocol_error(id, ReasonCode::ProtocolError, now),
            // [MQTT-3.1.0-2] a second CONNECT is a protocol error.
            (ConnState::Connected, Packet::Connect(_)) => self.protocol_error(id, ReasonCode::ProtocolError, now),
            (ConnState::Connected, Packet::Publish(p)) => self.on_publish(id, &p, now),
            (ConnState::Connected, Packet::PubAck(a)) => self.on_puback(id, a.pid, now),
            (ConnState::Connected, Packet::PubRec(a)) => self.on_pubrec(id, &a, now),
            (ConnState::Connected, Packet::PubRel(a)) => self.on_pubrel(id, a.pid, now),
            (ConnState::Connected, Packet::PubComp(a)) => self.on_pubcomp(id, a.pid, now),
            (ConnState::Connected, Packet::Subscribe(s)) => self.on_subscribe(id, &s, now),
            (ConnState::Connected, Packet::Unsubscribe(u)) => self.on_unsubscribe(id, &u, now),
            (ConnState::Connected, Packet::PingReq) => {
                self.send(id, &Packet::PingResp);
            }
            (ConnState::Connected, Packet::Disconnect(d)) => self.on_client_disconnect(id, &d, now),
            (ConnState::Connected, Packet::Auth(a)) => self.on_auth(id, &a, now),
            // Server-to-client packets from a client.
            (ConnState::Connected, _) => self.protocol_error(id, ReasonCode::ProtocolError, now),
            (ConnState::Closing, _) => {}
        }
        self.with_client_hooks(id, Point::OnPacketProcessed, |h, info| h.on_packet_processed(info, &pkt));
    }

    /// The client info of a connection (for hooks), borrowed alongside the hook chain.
    pub(crate) fn client_info_and_hooks(&mut self, id: ClientId) -> (Option<ClientInfo<'_>>, &mut HookChain) {
        let info = self.conns.get(id.slot as usize).filter(|c| c.id == id).map(|c| c.info());
        (info, &mut self.hooks)
    }

    /// Calls `f` with the client info of `id` on every hook providing `p` (nothing when no
    /// hook does, or the connection is gone).
    pub(crate) fn with_client_hooks(&mut self, id: ClientId, p: Point, mut f: impl FnMut(&mut dyn Hook, &ClientInfo<'_>)) {
        if !self.hooks.provides(p) {
            return;
        }
        let Some(c) = self.conns.get(id.slot as usize).filter(|c| c.id == id) else { return };
        let info = c.info();
        self.hooks.each(p, |h| f(h, &info));
    }

    // -----------------------------------------------------------------------------------------
    // Output

    /// Encodes a packet into the connection's output. Packets larger than the client's maximum
    /// packet size are not sent [MQTT-5.0:3.1.2-24]; returns false then.
    pub(crate) fn send(&mut self, id: ClientId, pkt: &Packet<'_>) -> bool {
        let Some(slot) = self.conns.get(id.slot as usize) else { return false };
        // Nothing follows the last packet of a closing connection (its DISCONNECT or CONNACK
        // was sent before it was marked closing).
        if slot.id != id || slot.state == ConnState::Closing {
            return false;
        }
        // A new chunk once the last is full, or when this packet would not fit in what is left
        // of it: growing a pooled chunk would reallocate it, and a grown chunk is not pooled
        // again. A PUBLISH's size is estimated from topic and payload (properties are small).
        let hint = match pkt {
            Packet::Publish(p) => p.topic.len() + p.payload.len() + 16,
            _ => 16,
        };
        if slot.tx.last().is_none_or(|b| b.len() >= self.opts.buffer_size || (!b.is_empty() && b.capacity() - b.len() < hint)) {
            let was_empty = slot.tx.is_empty();
            let list = if slot.tx.capacity() == 0 { self.tx_lists.pop() } else { None };
            // A packet larger than a pooled buffer gets a chunk of its own size (a pooled one
            // would be reallocated as it grows, and never pooled again).
            let buf = if hint > self.opts.buffer_size { Vec::with_capacity(hint) } else { self.take_buf() };
            if let Some(c) = self.conns.get_mut(id.slot as usize) {
                if let Some(list) = list {
                    c.tx = list;
                }
                c.tx.push(buf);
                if was_empty {
                    c.tx_since = self.clock.low32();
                }
            }
            self.account(id);
            if was_empty {
                self.arm_sweep(self.clock);
            }
        }
        let Some(c) = self.conns.get_mut(id.slot as usize) else { return false };
        let Some(tx) = c.tx.last_mut() else { return false };
        // Encoded straight into the output, then measured: one length computation per packet
        // instead of a separate `encoded_len` pass. Too large for the client: taken back out.
        let start = tx.len();
        let len = match pkt.encode(c.version, tx) {
            Ok(len) if len <= c.max_packet_out as usize => len,
            _ => {
                tx.truncate(start);
                if tx.is_empty() {
                    if let Some(buf) = c.tx.pop() {
                        self.give_buf(buf);
                        self.account(id);
                    }
                }
                return false;
            }
        };
        if self.hooks.provides(Point::OnPacketEncode) {
            let info = c.info();
            self.hooks.each(Point::OnPacketEncode, |h| h.on_packet_encode(&info, pkt));
        }
        self.stats.packets_sent += 1;
        if !c.flagged {
            c.flagged = true;
            self.flush.push(id);
        }
        if self.hooks.provides(Point::OnPacketSent) {
            let info = c.info();
            self.hooks.each(Point::OnPacketSent, |h| h.on_packet_sent(&info, pkt, len));
        }
        true
    }

    /// The bytes waiting to be written to the socket of `id`.
    pub fn output(&self, id: ClientId) -> &[u8] {
        self.conn(id).and_then(|c| c.tx.first()).map_or(&[], |b| b)
    }

    /// All of the output, as slices for one vectored write (at most `bufs.len()` of them);
    /// returns how many were filled. Consumed with [`Broker::consume_output`] like `output`.
    pub fn output_vectored<'a>(&'a self, id: ClientId, bufs: &mut [std::io::IoSlice<'a>]) -> usize {
        let Some(c) = self.conn(id) else { return 0 };
        let mut n = 0;
        for (slot, chunk) in bufs.iter_mut().zip(&c.tx) {
            *slot = std::io::IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    /// `n` bytes of [`Broker::output`] were written; more queued messages are encoded as room
    /// frees up.
    pub fn consume_output(&mut self, id: ClientId, n: usize, now: Instant) {
        self.clock = self.clock.max(now);
        self.stats.bytes_sent += n as u64;
        let (conns, pool, opts) = (&mut self.conns, &mut self.pool, &self.opts);
        let Some(c) = conns.get_mut(id.slot as usize).filter(|c| c.id == id) else { return };
        if n > 0 {
            c.tx_since = now.low32();
        }
        let mut n = n;
        while let Some(chunk) = c.tx.first_mut() {
            if n < chunk.len() {
                chunk.drain(..n);
                break;
            }
            n -= chunk.len();
            recycle(pool, opts, c.tx.remove(0));
        }
        if c.tx.is_empty() {
            // An idle connection keeps no chunk list either: back to the pool.
            recycle_list(&mut self.tx_lists, opts.pool_capacity(), core::mem::take(&mut c.tx));
        }
        self.pump(id, now);
        self.account(id);
    }

    /// Connections with new output since the last call (the server writes to them).
    pub fn take_flushes(&mut self, out: &mut Vec<ClientId>) {
        for id in core::mem::take(&mut self.flush) {
            if let Some(c) = self.conns.get_mut(id.slot as usize).filter(|c| c.id == id) {
                c.flagged = false;
                out.push(id);
                self.account(id);
            }
        }
    }

    /// Connections the broker has finished with: the server flushes what output it can, closes
    /// the socket and calls [`Broker::release`].
    pub fn take_closes(&mut self, out: &mut Vec<ClientId>) {
        out.append(&mut self.close);
    }

    /// True when the broker is done with this connection and waits for the socket to close.
    pub fn is_closing(&self, id: ClientId) -> bool {
        self.conn(id).is_none_or(|c| c.state == ConnState::Closing)
    }

    fn take_buf(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_else(|| Vec::with_capacity(self.opts.buffer_size))
    }

    fn give_buf(&mut self, b: Vec<u8>) {
        recycle(&mut self.pool, &self.opts, b);
    }

    fn after_input(&mut self, id: ClientId) {
        self.account(id);
    }

    /// Brings the buffer total up to date with this connection's buffers.
    fn account(&mut self, id: ClientId) {
        if let Some(c) = self.conns.get_mut(id.slot as usize).filter(|c| c.id == id) {
            let now = c.buffer_capacity();
            self.buffer_bytes = (self.buffer_bytes + now).saturating_sub(c.accounted as usize);
            c.accounted = now.min(u32::MAX as usize) as u32;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Closing

    /// The socket of `id` closed or failed (no DISCONNECT seen): the will is published per the
    /// rules, the session detached, and the slot freed.
    pub fn on_closed(&mut self, id: ClientId, now: Instant) {
        self.clock = self.clock.max(now);
        if let Some(c) = self.conn(id) {
            if c.state != ConnState::Closing {
                self.detach(id, true, ReasonCode::UnspecifiedError, now);
            }
            self.release(id);
        }
    }

    /// Frees the slot of a closed connection.
    pub fn release(&mut self, id: ClientId) {
        if self.conn(id).is_none() {
            return;
        }
        let c = self.conns.remove(id.slot as usize);
        self.buffer_bytes -= (c.accounted as usize).min(self.buffer_bytes);
        self.release_extra(c.extra.as_deref());
        self.gens[id.slot as usize] = self.gens[id.slot as usize].wrapping_add(1);
        self.give_buf(c.rx);
        let mut list = c.tx;
        for buf in list.drain(..) {
            self.give_buf(buf);
        }
        recycle_list(&mut self.tx_lists, self.opts.pool_capacity(), list);
        // Its timer entry is stale now.
        self.sweep_timers();
    }

    /// Sends a DISCONNECT with `reason` (5.0 connected clients only) and closes; the will is
    /// published [MQTT-3.1.2-8].
    pub fn disconnect(&mut self, id: ClientId, reason: ReasonCode, now: Instant) {
        self.clock = self.clock.max(now);
        self.protocol_error(id, reason, now);
    }

    /// A protocol violation or server-side close: CONNACK (before CONNECT is accepted) or
    /// DISCONNECT (5.0) with the reason code, then close with the will.
    pub(crate) fn protocol_error(&mut self, id: ClientId, reason: ReasonCode, now: Instant) {
        let Some(c) = self.conn(id) else { return };
        match c.state {
            ConnState::Closing => return,
            ConnState::AwaitConnect | ConnState::Authenticating => {
                if c.version.is_v5() || reason == ReasonCode::UnsupportedProtocolVersion {
                    let ack = packets::ConnAck { session_present: false, reason, properties: Properties::default() };
                    self.send(id, &Packet::ConnAck(ack));
                }
            }
            ConnState::Connected => {
                if c.version.is_v5() {
                    let d = packets::Disconnect { reason, properties: Properties::default() };
                    self.send(id, &Packet::Disconnect(d));
                }
            }
        }
        self.close_now(id, reason, now);
    }

    /// Closes the connection without sending anything more (the will is published).
    pub(crate) fn close_now(&mut self, id: ClientId, reason: ReasonCode, now: Instant) {
        let Some(c) = self.conn(id) else { return };
        if c.state == ConnState::Closing {
            return;
        }
        self.detach(id, true, reason, now);
    }

    /// Moves the connection to Closing, detaches its session (ending it when its expiry is 0)
    /// and handles the will.
    pub(crate) fn detach(&mut self, id: ClientId, with_will: bool, reason: ReasonCode, now: Instant) {
        let Some(c) = self.conn_mut(id) else { return };
        let was_connected = c.state == ConnState::Connected;
        c.state = ConnState::Closing;
        let session = c.set_session(None);
        self.close.push(id);
        if was_connected {
            self.stats.clients_connected = self.stats.clients_connected.saturating_sub(1);
        }
        let Some(key) = session else { return };
        if let Some(s) = self.sessions.get_mut(key as usize) {
            if s.conn == Some(id) {
                s.conn = None;
            }
        }
        let expire = self.sessions.get(key as usize).is_some_and(|s| s.expiry_secs == 0);
        let (info_cid, info_user, remote, listener, version) = {
            let (Some(c), Some(s)) = (self.conns.get(id.slot as usize), self.sessions.get(key as usize)) else { return };
            (s.client_id.clone(), c.username.clone(), c.remote.clone(), c.listener.clone(), c.version)
        };
        let info = ClientInfo {
            client_id: &info_cid,
            username: info_user.as_deref(),
            remote: remote.as_str(),
            listener: &listener,
            version,
            inline: false,
        };
        self.hooks.each(Point::OnDisconnect, |h| h.on_disconnect(&info, reason, expire));
        let Some(s) = self.sessions.get_mut(key as usize) else { return };
        if !with_will && s.will().is_some() {
            s.set_will(None, &mut self.will_bytes);
        }
        if s.will().is_some_and(|w| w.delay_secs > 0 && s.expiry_secs > 0) {
            // [MQTT-3.1.3-9] the will waits for its delay (or the session's end).
            let delay = s.will().map_or(0, |w| w.delay_secs).min(s.expiry_secs);
            let at = now + Duration::from_secs(delay as u64);
            s.extra_mut().will_at = Some(at);
            self.arm_session_timer(key, at);
        } else {
            self.publish_will(key, now);
        }
        if expire {
            self.remove_session(key, now);
        } else if let Some(s) = self.sessions.get_mut(key as usize) {
            if s.expiry_secs != u32::MAX {
                let at = now + Duration::from_secs(s.expiry_secs as u64);
                s.extra_mut().expires_at = Some(at);
                self.arm_session_timer(key, at);
            }
        }
    }

    /// Publishes and clears the session's will.
    pub(crate) fn publish_will(&mut self, key: u32, now: Instant) {
        let Some(s) = self.sessions.get_mut(key as usize) else { return };
        if s.will_at().is_none() && s.will().is_none() {
            return;
        }
        s.extra_mut().will_at = None;
        let Some(will) = s.set_will(None, &mut self.will_bytes) else { return };
        let client_id = s.client_id.to_string();
        let msg = match self.hooks.on_will(&client_id, &will.msg.view()) {
            WillVerdict::Continue => will.msg,
            WillVerdict::Suppress => return,
            WillVerdict::Replace(m) => {
                if crate::topics::validate_name(&m.topic, self.opts.max_topic_length, self.opts.max_topic_levels).is_err() {
                    log::warn!("{client_id}: a hook replaced the will with an invalid topic; the original is sent");
                    will.msg
                } else {
                    let max_qos = QoS::from_u8(self.opts.max_qos).unwrap_or(QoS::AtMostOnce);
                    std::rc::Rc::new(Message {
                        topic: m.topic.into(),
                        payload: m.payload.into(),
                        qos: m.qos.min(max_qos),
                        retain: m.retain && self.opts.retain_available,
                        ..(*will.msg).clone()
                    })
                }
            }
        };
        if msg.retain {
            self.store_retained(&msg);
        }
        self.route(&msg, now);
        self.hooks.each(Point::OnWillSent, |h| h.on_will_sent(&client_id, &msg.view()));
    }

    /// Removes a session: its subscriptions, queue, inflight and client-id entry.
    pub(crate) fn remove_session(&mut self, key: u32, _now: Instant) {
        if !self.sessions.contains(key as usize) {
            return;
        }
        let s = self.sessions.remove(key as usize);
        let inflight = s.flow().map(|f| &f.inflight).filter(|i| !i.is_empty());
        if let (Some(inflight), true) = (inflight, self.hooks.provides(Point::OnQosDropped)) {
            for i in inflight {
                let view = i.d.msg.view();
                self.hooks.each(Point::OnQosDropped, |h| h.on_qos_dropped(&s.client_id, &view, i.pid, ReasonCode::UnspecifiedError));
            }
        }
        for sub in &s.subs {
            self.unsubscribe_filter(key, &sub.filter);
            self.sub_bytes.give(cost::subscription(&sub.filter));
        }
        self.queued.give(s.held_bytes());
        self.will_bytes.give(s.will().map_or(0, cost::will));
        self.by_client_id.remove(&s.client_id, key);
        // Its timer entry, if any, is stale now.
        self.sweep_timers();
    }

    // -----------------------------------------------------------------------------------------
    // Time

    /// The earliest deadline the broker cares about, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        let heap = self.timers.peek().map(|Reverse((t, _))| *t);
        match (heap, self.sweep_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Entries in the timer heap, live and stale: at most twice one per connection, one per
    /// session and two periodic ones, plus 64 (for tests and diagnostics).
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    fn push_timer(&mut self, at: Instant, timer: Timer) {
        self.timers.push(Reverse((at, timer)));
        self.sweep_timers();
    }

    /// Rebuilds the timer heap without its stale entries once they may outnumber the live ones
    /// by [`TIMER_SLACK`], and gives back the capacity they took.
    ///
    /// A live entry is the pending deadline of what it times: a connection's `timer_at`, a
    /// session's `timer_at`, `$SYS` and compaction; so at most `bound` (connections, sessions and
    /// the two periodic ones) entries are live. Anything else is stale: its connection was
    /// released, its session removed, or it was superseded by an earlier deadline. The check is
    /// two lengths. The rebuild runs when the heap holds more than `2 * bound + TIMER_SLACK`
    /// entries and leaves at most `bound`, so at least `bound + TIMER_SLACK` pushes or removals
    /// pass between two rebuilds: linear work spread over as many operations. Without it, the
    /// keep alive entry of a closed connection stays until its deadline (up to 1.5 x 65535 s,
    /// 27 h), so a stream of clients that each stay past the connect timeout leaves one entry
    /// each.
    fn sweep_timers(&mut self) {
        let bound = self.conns.len() + self.sessions.len() + 2;
        if self.timers.len() <= 2 * bound + TIMER_SLACK {
            return;
        }
        let (conns, sessions) = (&self.conns, &self.sessions);
        let mut live = core::mem::take(&mut self.timers).into_vec();
        live.retain(|&Reverse((at, timer))| match timer {
            Timer::Conn(raw) => {
                let id = ClientId::from_u32(raw);
                conns.get(id.slot as usize).is_some_and(|c| c.id == id && c.timer_at == at)
            }
            Timer::Session(key) => sessions.get(key as usize).is_some_and(|s| s.timer_at() == Some(at)),
            Timer::Sys | Timer::Compact => true,
        });
        // The same deadline armed twice (a re-arm at the time of a superseded entry) is one.
        live.sort_unstable();
        live.dedup();
        if live.capacity() > 2 * live.len() + TIMER_SLACK {
            live.shrink_to(live.len() + TIMER_SLACK);
        }
        self.timers = BinaryHeap::from(live);
    }

    /// Runs every timer due at `now`: connect timeouts, keep alive, delayed wills, session
    /// expiry, `$SYS` publication, and every 30 s a compaction (capacity given back, expired
    /// retained messages swept).
    pub fn tick(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        if self.sweep_at.is_some_and(|t| t <= now) {
            self.sweep_at = None;
            self.sweep(now);
        }
        while let Some(&Reverse((t, timer))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Conn(raw) => {
                    let id = ClientId::from_u32(raw);
                    self.busy = Some(id);
                    self.conn_timer(id, t, now);
                    self.busy = None;
                }
                Timer::Session(key) => self.session_timer(key, now),
                Timer::Compact => {
                    // Re-armed first: a panic below (caught by the server) must not end it.
                    self.push_timer(now + Duration::from_secs(COMPACT_SECS), Timer::Compact);
                    // A session keeps the capacity its queue and window grew to; one that has
                    // drained gives it back here, so a burst long past costs an idle client
                    // nothing (a busy one re-grows them: one allocation per 30 s at most).
                    for (_, s) in self.sessions.iter_mut() {
                        s.shrink_if_empty();
                    }
                    // The buffer pools keep what a burst left (bounded by buffer_memory / 2)
                    // only until here: a few stay for the next packets.
                    self.pool.truncate(POOL_KEEP);
                    self.pool.shrink_to_fit();
                    self.tx_lists.truncate(POOL_KEEP);
                    self.tx_lists.shrink_to_fit();
                    // Expired retained messages go even when nothing subscribes to them and
                    // `$SYS` (which sweeps too) is off.
                    self.sweep_retained(now);
                    // Routing scratch grows to the largest fan-out seen; it re-grows on demand.
                    self.route_scratch = Vec::new();
                    self.flush.shrink_to_fit();
                    self.close.shrink_to_fit();
                }
                Timer::Sys => {
                    let next = now + Duration::from_secs(self.opts.sys_interval_secs.max(1) as u64);
                    self.push_timer(next, Timer::Sys);
                    self.publish_sys(now);
                }
            }
        }
    }

    /// After the server caught a panic in [`Broker::tick`] or a handle command: the connection
    /// whose timer was being handled is closed (its state may be half changed) and the sweep is
    /// armed again (periodic timers re-arm themselves before their work, so they survive).
    pub fn recover(&mut self, now: Instant) {
        if let Some(id) = self.busy.take() {
            self.close_now(id, ReasonCode::ImplementationSpecificError, now);
        }
        self.arm_sweep(now);
    }

    /// Arms the sweep for partial frames and waiting output, unless it is armed.
    fn arm_sweep(&mut self, now: Instant) {
        if self.sweep_at.is_none() {
            self.sweep_at = Some(now + Duration::from_millis(SWEEP_MS));
        }
    }

    /// Closes connections whose partial frame is older than `frame_timeout_ms` or whose output
    /// waited `write_stall_timeout_ms` without a byte written; re-arms while any connection
    /// still holds either.
    fn sweep(&mut self, now: Instant) {
        let (frame_ms, stall_ms) = (self.opts.frame_timeout_ms, self.opts.write_stall_timeout_ms);
        let mut late = Vec::new();
        let mut pending = false;
        for (_, c) in self.conns.iter() {
            if c.state == ConnState::Closing {
                continue;
            }
            // Before CONNECT the connect timeout bounds a partial CONNECT.
            let frame = !c.rx.is_empty() && c.state != ConnState::AwaitConnect;
            let out = !c.tx.is_empty();
            pending |= frame || out;
            if frame && now.ms_since_low32(c.rx_since) as u64 >= frame_ms {
                late.push((c.id, "partial frame timeout"));
            } else if out && now.ms_since_low32(c.tx_since) as u64 >= stall_ms {
                late.push((c.id, "write stalled"));
            }
        }
        for (id, why) in late {
            log::debug!("{id:?}: {why}: closing");
            self.close_now(id, ReasonCode::UnspecifiedError, now);
        }
        if pending {
            self.arm_sweep(now);
        }
    }

    /// Pumps the connections whose deliveries waited for room in `buffer_memory`, while there
    /// is room. The server calls it once per loop turn.
    pub fn retry_budget_waiters(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        if self.budget_waiters.is_empty() || self.budget_exhausted() {
            return;
        }
        // Each once: a connection whose delivery still does not fit lists itself again.
        for id in core::mem::take(&mut self.budget_waiters) {
            self.pump(id, now);
        }
    }

    /// Notes that a delivery for `id` waits for room in `buffer_memory` (once in the list).
    pub(crate) fn wait_for_budget(&mut self, id: ClientId) {
        if !self.budget_waiters.contains(&id) {
            self.budget_waiters.push(id);
        }
    }

    /// A connection's timer entry fired. Each connection keeps one live entry (`timer_at`): the
    /// connect timeout, then keep alive re-armed from the last input, so the heap holds one entry
    /// per connection however often packets arrive.
    fn conn_timer(&mut self, id: ClientId, at: Instant, now: Instant) {
        let Some(c) = self.conn_mut(id) else { return };
        if c.timer_at != at {
            return; // stale: a different entry is the live one
        }
        let deadline = match c.state {
            ConnState::Closing => return,
            ConnState::AwaitConnect | ConnState::Authenticating => at,
            ConnState::Connected if c.keep_alive_ms == 0 => return,
            // [MQTT-3.1.1:3.1.2-24] one and a half times the keep alive without a packet: close.
            ConnState::Connected => Instant(now.millis() - now.ms_since_low32(c.last_rx) as u64) + Duration::from_millis(c.keep_alive_ms as u64 * 3 / 2),
        };
        if deadline <= now {
            log::debug!("{id:?}: timed out");
            self.protocol_error(id, ReasonCode::KeepAliveTimeout, now);
        } else {
            c.timer_at = deadline;
            self.push_timer(deadline, Timer::Conn(id.to_u32()));
        }
    }

    /// Arms the keep-alive timer of a connection that just connected: only when it is due
    /// before the pending connect-timeout entry, which otherwise re-arms it when it fires.
    pub(crate) fn arm_keep_alive(&mut self, id: ClientId, now: Instant) {
        let Some(c) = self.conn_mut(id) else { return };
        if c.keep_alive_ms > 0 {
            let at = now + Duration::from_millis(c.keep_alive_ms as u64 * 3 / 2);
            if at < c.timer_at {
                c.timer_at = at;
                self.push_timer(at, Timer::Conn(id.to_u32()));
            }
        }
    }

    /// Keeps at most one live timer entry per session: a new one only when it is earlier than
    /// the one pending (which goes stale; the session re-arms for its later deadline when the
    /// earlier one fires).
    pub(crate) fn arm_session_timer(&mut self, key: u32, at: Instant) {
        let Some(s) = self.sessions.get_mut(key as usize) else { return };
        let e = s.extra_mut();
        if e.timer_at.is_none_or(|t| at < t) {
            e.timer_at = Some(at);
            self.push_timer(at, Timer::Session(key));
        }
    }

    fn session_timer(&mut self, key: u32, now: Instant) {
        let Some(s) = self.sessions.get_mut(key as usize) else { return };
        if let Some(e) = s.extra_mut_if_any().filter(|e| e.timer_at.is_some_and(|t| t <= now)) {
            e.timer_at = None;
        }
        // Still waiting for a later deadline (the entry that fired was for an earlier one).
        let next = [s.will_at(), s.expires_at()].into_iter().flatten().filter(|t| *t > now).min();
        if let Some(next) = next {
            self.arm_session_timer(key, next);
        }
        let Some(s) = self.sessions.get(key as usize) else { return };
        if s.will_at().is_some_and(|t| t <= now) {
            self.publish_will(key, now);
        }
        let Some(s) = self.sessions.get(key as usize) else { return };
        if s.expires_at().is_some_and(|t| t <= now) && !self.session_online(key) {
            self.publish_will(key, now);
            let cid = self.sessions.get(key as usize).map(|s| s.client_id.to_string()).unwrap_or_default();
            self.remove_session(key, now);
            self.hooks.each(Point::OnClientExpired, |h| h.on_client_expired(&cid));
        }
    }

    /// Drops the retained messages whose expiry has passed [MQTT-3.3.2-5] and gives their bytes
    /// back to the retained budget. Runs at every compaction and before each `$SYS` publication
    /// (so its counts are current).
    fn sweep_retained(&mut self, now: Instant) {
        let mut freed = 0;
        let hooks = &mut self.hooks;
        self.retained.retain_mut(|topic, m| {
            let keep = !m.expired(now);
            if !keep {
                freed += cost::retained(m);
                hooks.each(Point::OnRetainedExpired, |h| h.on_retained_expired(topic));
            }
            keep
        });
        self.retained_bytes -= freed.min(self.retained_bytes);
    }

    fn publish_sys(&mut self, now: Instant) {
        self.sweep_retained(now);
        let stats = self.stats(now);
        self.hooks.each(Point::OnSysInfoTick, |h| h.on_sys_info_tick(&stats));
        for (topic, value) in stats.topics(env!("CARGO_PKG_VERSION")) {
            let msg = Message {
                topic: topic.into(),
                payload: value.into_bytes().into(),
                qos: packets::QoS::AtMostOnce,
                retain: true,
                props: Default::default(),
                expires_at: None,
                has_expiry: false,
                origin: None,
            };
            let msg = std::rc::Rc::new(msg);
            self.store_retained(&msg);
            self.route(&msg, now);
        }
    }

    /// Publishes a message from the embedding program (the inline client): no ACL, `$SYS`
    /// allowed; `on_publish` (which may change or reject it) and `on_published` fire with
    /// [`ClientInfo::INLINE`]. Returns the number of deliveries (0 when a hook rejected it).
    pub fn publish(&mut self, topic: &str, payload: &[u8], retain: bool, qos: packets::QoS, now: Instant) -> usize {
        self.clock = self.clock.max(now);
        let msg = Message {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            props: Default::default(),
            expires_at: None,
            has_expiry: false,
            origin: None,
        };
        self.publish_inline(msg, now).unwrap_or(0)
    }

    /// Sends DISCONNECT 0x8B to every 5.0 client and closes every connection (graceful stop).
    pub fn shutdown(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        let ids: Vec<ClientId> = self.conns.iter().map(|(_, c)| c.id).collect();
        for id in ids {
            self.protocol_error(id, ReasonCode::ServerShuttingDown, now);
        }
        self.hooks.each(Point::OnStopped, |h| h.on_stopped());
    }

    /// The protocol version of a connection (3.1.1 when it is gone).
    pub(crate) fn version_of(&self, id: ClientId) -> Version {
        self.conn(id).map_or(Version::V3_1_1, |c| c.version)
    }
}

/// The whole length of the frame that `buf` starts with, once its fixed header is complete
/// (type byte and Remaining Length); `None` before that or when the header is malformed (the
/// decoder reports that).
fn frame_len(buf: &[u8]) -> Option<usize> {
    match packets::primitives::read_varint(buf.get(1..)?) {
        Ok(Some((len, n))) => Some(1 + n + len as usize),
        _ => None,
    }
}

/// Returns a buffer to the pool. Only buffers of the pooled size come back; larger ones (a big
/// frame) are freed, and the pool itself is bounded by the buffer memory budget.
fn recycle(pool: &mut Vec<Vec<u8>>, opts: &Options, mut b: Vec<u8>) {
    b.clear();
    if b.capacity() == opts.buffer_size && pool.len() < opts.pool_capacity() {
        pool.push(b);
    }
}

/// Keeps an emptied output chunk list for reuse: at most `limit` of them, and only small ones.
fn recycle_list(lists: &mut Vec<Vec<Vec<u8>>>, limit: usize, list: Vec<Vec<u8>>) {
    if list.capacity() > 0 && list.capacity() <= 8 && list.is_empty() && lists.len() < limit {
        lists.push(list);
    }
}
