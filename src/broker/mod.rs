//! The socket-free core: connection slots, sessions, the router and the hook chain, driven by
//! calls that carry bytes and the time. Every protocol scenario can be run here without sockets:
//! [`Broker::accept`], [`Broker::on_bytes`], [`Broker::tick`], then read what the broker wants
//! written with [`Broker::output`] and [`Broker::consume_output`].
//!
//! The broker never reads a clock, never touches a socket and never blocks.

pub mod conn;
mod connect;
mod flow;
mod ids;
mod inject;
mod invariants;
pub mod message;
mod restore;
mod subscribe;

pub use conn::{ClientId, PeerInfo};
pub use inject::InjectError;
pub use restore::Restored;
pub use message::{Message, MessageRef};

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

/// How often [`Timer::Compact`] runs.
const COMPACT_SECS: u64 = 30;

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
    pub(crate) hooks: HookChain,
    pub(crate) stats: Stats,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    flush: Vec<ClientId>,
    close: Vec<ClientId>,
    pool: Vec<Vec<u8>>,
    /// Empty chunk lists for connection output, so a connection that drains its output does not
    /// free its list and allocate it again for the next packet (nor keep it while idle).
    tx_lists: Vec<Vec<Vec<u8>>>,
    /// Bytes of connection buffers (rx + tx capacity) lent out, for `buffer_memory`.
    buffer_bytes: usize,
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
            hooks: HookChain::default(),
            stats: Stats::default(),
            timers: BinaryHeap::new(),
            flush: Vec::new(),
            close: Vec::new(),
            pool: Vec::new(),
            tx_lists: Vec::new(),
            buffer_bytes: 0,
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

    pub(crate) fn session_online(&self, key: u32) -> bool {
        self.sessions.get(key as usize).is_some_and(|s| s.conn.is_some())
    }

    /// Restores what the storage hooks hold (`stored_*` loaders), starts the timers that run
    /// without connections (`$SYS`) and fires `on_started`. Called once by the server before
    /// the first poll, so before any client is accepted.
    pub fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        let r = self.restore(now);
        if r != Restored::default() {
            log::info!("restored {r:?}");
        }
        if self.opts.sys_interval_secs > 0 {
            self.timers.push(Reverse((now + Duration::from_secs(self.opts.sys_interval_secs as u64), Timer::Sys)));
        }
        self.timers.push(Reverse((now + Duration::from_secs(COMPACT_SECS), Timer::Compact)));
        self.hooks.each(Point::OnStarted, |h| h.on_started());
    }

    // -----------------------------------------------------------------------------------------
    // Connections

    /// A new connection from `peer`. Refused at `max_clients`.
    pub fn accept(&mut self, peer: PeerInfo, now: Instant) -> Result<ClientId, AcceptError> {
        if self.conns.len() >= self.opts.max_clients {
            return Err(AcceptError::Full);
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
        self.timers.push(Reverse((deadline, Timer::Conn(id.to_u32()))));
        Ok(id)
    }

    pub(crate) fn conn(&self, id: ClientId) -> Option<&Conn> {
        self.conns.get(id.slot as usize).filter(|c| c.id == id)
    }

    pub(crate) fn conn_mut(&mut self, id: ClientId) -> Option<&mut Conn> {
        self.conns.get_mut(id.slot as usize).filter(|c| c.id == id)
    }

    /// Bytes arrived from the socket of `id`. Whole frames are processed directly from `data`;
    /// a partial frame at the end is kept in the connection's buffer.
    pub fn on_bytes(&mut self, id: ClientId, data: &[u8], now: Instant) {
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
            if !rest.is_empty() {
                let mut buf = self.take_buf();
                buf.extend_from_slice(rest);
                if let Some(c) = self.conn_mut(id) {
                    c.rx = buf;
                }
            }
        } else {
            let mut buf = core::mem::take(&mut c.rx);
            buf.extend_from_slice(data);
            let used = self.process(id, &buf, now);
            buf.drain(..used.min(buf.len()));
            if buf.is_empty() {
                self.give_buf(buf);
            } else if let Some(c) = self.conn_mut(id) {
                c.rx = buf;
            }
        }
        self.after_input(id);
    }

    /// Decodes and handles whole frames from `buf`; returns the bytes consumed.
    fn process(&mut self, id: ClientId, buf: &[u8], now: Instant) -> usize {
        let mut used = 0;
        loop {
            let Some(c) = self.conn(id) else { return buf.len() };
            if c.state == ConnState::Closing {
                return buf.len();
            }
            let version = c.version;
            match packets::decode(&buf[used..], version, self.opts.max_packet_size) {
                Ok(Some((pkt, n))) => {
                    used += n;
                    self.stats.packets_received += 1;
                    if let Some(c) = self.conn_mut(id) {
                        c.last_rx = now;
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
    /// packet size are not sent [MQTT-3.1.2-24]; returns false then.
    pub(crate) fn send(&mut self, id: ClientId, pkt: &Packet<'_>) -> bool {
        let Some(slot) = self.conns.get(id.slot as usize) else { return false };
        if slot.id != id {
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
            let list = if slot.tx.capacity() == 0 { self.tx_lists.pop() } else { None };
            let buf = self.take_buf();
            if let Some(c) = self.conns.get_mut(id.slot as usize) {
                if let Some(list) = list {
                    c.tx = list;
                }
                c.tx.push(buf);
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
        self.stats.bytes_sent += n as u64;
        let (conns, pool, opts) = (&mut self.conns, &mut self.pool, &self.opts);
        let Some(c) = conns.get_mut(id.slot as usize).filter(|c| c.id == id) else { return };
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

    /// True while connection buffers use `buffer_memory` or more: the server stops reading
    /// (back-pressure) until output drains.
    pub fn over_buffer_budget(&self) -> bool {
        self.buffer_bytes >= self.opts.buffer_memory
    }

    // -----------------------------------------------------------------------------------------
    // Closing

    /// The socket of `id` closed or failed (no DISCONNECT seen): the will is published per the
    /// rules, the session detached, and the slot freed.
    pub fn on_closed(&mut self, id: ClientId, now: Instant) {
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
        self.gens[id.slot as usize] = self.gens[id.slot as usize].wrapping_add(1);
        self.give_buf(c.rx);
        let mut list = c.tx;
        for buf in list.drain(..) {
            self.give_buf(buf);
        }
        recycle_list(&mut self.tx_lists, self.opts.pool_capacity(), list);
    }

    /// Sends a DISCONNECT with `reason` (5.0 connected clients only) and closes; the will is
    /// published [MQTT-3.1.2-8].
    pub fn disconnect(&mut self, id: ClientId, reason: ReasonCode, now: Instant) {
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
            let c = &self.conns[id.slot as usize];
            let s = &self.sessions[key as usize];
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
            s.extra_mut().will = None;
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
        let e = s.extra_mut();
        e.will_at = None;
        let Some(will) = e.will.take() else { return };
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
        }
        self.by_client_id.remove(&s.client_id, key);
    }

    // -----------------------------------------------------------------------------------------
    // Time

    /// The earliest deadline the broker cares about, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Runs every timer due at `now`: connect timeouts, keep alive, delayed wills, session
    /// expiry, `$SYS` publication.
    pub fn tick(&mut self, now: Instant) {
        while let Some(&Reverse((t, timer))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Conn(raw) => self.conn_timer(ClientId::from_u32(raw), t, now),
                Timer::Session(key) => self.session_timer(key, now),
                Timer::Compact => {
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
                    // Routing scratch grows to the largest fan-out seen; it re-grows on demand.
                    self.route_scratch = Vec::new();
                    self.flush.shrink_to_fit();
                    self.close.shrink_to_fit();
                    self.timers.push(Reverse((now + Duration::from_secs(COMPACT_SECS), Timer::Compact)));
                }
                Timer::Sys => {
                    self.publish_sys(now);
                    let next = now + Duration::from_secs(self.opts.sys_interval_secs.max(1) as u64);
                    self.timers.push(Reverse((next, Timer::Sys)));
                }
            }
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
            // [MQTT-3.1.2-24] one and a half times the keep alive without a packet: close.
            ConnState::Connected => c.last_rx + Duration::from_millis(c.keep_alive_ms as u64 * 3 / 2),
        };
        if deadline <= now {
            log::debug!("{id:?}: timed out");
            self.protocol_error(id, ReasonCode::KeepAliveTimeout, now);
        } else {
            c.timer_at = deadline;
            self.timers.push(Reverse((deadline, Timer::Conn(id.to_u32()))));
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
                self.timers.push(Reverse((at, Timer::Conn(id.to_u32()))));
            }
        }
    }

    /// Keeps at most one timer entry per session: a new one only when it is earlier than the
    /// one pending, so reconnect/disconnect cycles cannot grow the timer heap.
    fn arm_session_timer(&mut self, key: u32, at: Instant) {
        let Some(s) = self.sessions.get_mut(key as usize) else { return };
        let e = s.extra_mut();
        if e.timer_at.is_none_or(|t| at < t) {
            e.timer_at = Some(at);
            self.timers.push(Reverse((at, Timer::Session(key))));
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
            let cid = self.sessions[key as usize].client_id.to_string();
            self.remove_session(key, now);
            self.hooks.each(Point::OnClientExpired, |h| h.on_client_expired(&cid));
        }
    }

    fn publish_sys(&mut self, now: Instant) {
        // Expired retained messages are swept here too.
        let mut freed = 0;
        let hooks = &mut self.hooks;
        self.retained.retain_mut(|topic, m| {
            let keep = !m.expired(now);
            if !keep {
                freed += m.cost();
                hooks.each(Point::OnRetainedExpired, |h| h.on_retained_expired(topic));
            }
            keep
        });
        self.retained_bytes -= freed.min(self.retained_bytes);
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
        let ids: Vec<ClientId> = self.conns.iter().map(|(_, c)| c.id).collect();
        for id in ids {
            self.protocol_error(id, ReasonCode::ServerShuttingDown, now);
        }
        self.hooks.each(Point::OnStopped, |h| h.on_stopped());
    }

    #[allow(dead_code)]
    pub(crate) fn version_of(&self, id: ClientId) -> Version {
        self.conn(id).map_or(Version::V3_1_1, |c| c.version)
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
