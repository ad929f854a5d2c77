//! Invariants of the core, checked from outside after every step by the `core` fuzz target
//! (`tests/fuzz/fuzz_targets/core.rs`) and by `tests/core_steps.rs`. Not part of the API: the
//! methods are `#[doc(hidden)]` and only read the broker's fields.
//!
//! What holds after every call into the broker:
//! - connections: slot and generation agree; at most `max_clients`; a Connected connection has
//!   a session that points back at it, other states have none; output chunks are never empty
//!   (an empty first chunk would stall the server's write loop) and each is below
//!   `buffer_size` plus one packet; a partial input frame is smaller than `max_packet_size`;
//!   a connection is flagged for a flush exactly when it is on the flush list; the timer of a
//!   connection that can time out is in the timer heap, no later than its keep-alive deadline;
//! - output: deliveries stop at [`Conn::tx_full`], so without replies a connection's output is
//!   at most [`Broker::delivery_output_bound`] (see [`KNOWN_GAP_REPLIES_UNBOUNDED`]);
//! - sessions: at most `max_sessions`; the client-id index finds each under its own identifier
//!   and identifiers are unique; an attached session's connection is live, Connected and
//!   attached to it; an offline session has a non-zero expiry, and its will and expiry
//!   deadlines have a timer entry no later than them; subscriptions agree with the trie (one
//!   entry each, at most `max_subscriptions_per_client`);
//! - queues and windows: a queue holds at most `max_queued_messages`, its byte count is the sum
//!   of its messages' costs and at most `max_queued_bytes` (a single message may exceed it);
//!   inflight packet identifiers are unique, at most `max_inflight` of them, at most the
//!   connection's window while connected (see [`KNOWN_GAP_RESEND_OVER_WINDOW`]), and each one
//!   can still be sent to the connected client (see [`KNOWN_GAP_GHOST_INFLIGHT`]); a connected
//!   client with room in its output has nothing left to resend and nothing queued that its
//!   window admits (the pump does not stall);
//! - retained: at most `max_retained_messages`, and `retained_bytes` is the sum of their costs,
//!   at most `max_retained_bytes`;
//! - buffers: `buffer_bytes` is the sum of what the connections account for, and a connection
//!   not flagged for a flush accounts for exactly the capacity it holds; the pools hold at most
//!   `pool_capacity` empty buffers of `buffer_size`;
//! - counters: `clients_connected` is the number of Connected connections, at most
//!   `clients_maximum`; `connections_total` is at least the open connections.

use super::conn::{Conn, ConnState};
use super::{Broker, ClientId, Timer};
use crate::packets::{QoS, Version};
use crate::session::OutState;
use std::cmp::Reverse;
use std::collections::HashSet;

/// Known gap: replies to a client's own packets (CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP,
/// SUBACK, UNSUBACK, PINGRESP, AUTH, DISCONNECT) are appended to its output whatever its size;
/// only deliveries stop at [`Conn::tx_full`]. A client that writes and never reads grows its
/// output without bound in the core (two bytes per PINGREQ), and the server bounds it only by
/// the global `buffer_memory` back-pressure, which then stops reading from every client.
/// While this is true, [`Broker::check_invariants`] does not hold the output to
/// [`Broker::delivery_output_bound`]; harnesses check [`Broker::check_output_bound`] with the
/// reply bytes they saw instead. Flip to false once replies are bounded too.
pub const KNOWN_GAP_REPLIES_UNBOUNDED: bool = true;

/// Known gap: a session resumed by a client with a smaller window (MQTT 5 Receive Maximum)
/// than the one its inflight messages were sent under keeps (and resends) all of them, so more
/// than the client's Receive Maximum are unacknowledged [MQTT-3.3.4-9]. While true, the
/// inflight count of a connected session is held to `max_inflight` only, not to the window.
pub const KNOWN_GAP_RESEND_OVER_WINDOW: bool = false;

/// Known gap: an inflight QoS 1/2 message that is too large for the client's Maximum Packet
/// Size when it is resent on a new connection is dropped by `send_publish` but stays in the
/// window, marked sent: it is never acknowledged and holds a slot of the window for good
/// ([MQTT-3.1.2-25] says to behave as if it had been sent and completed). While true, such
/// entries are not reported.
pub const KNOWN_GAP_GHOST_INFLIGHT: bool = false;

impl Broker {
    /// The most bytes deliveries may leave in one connection's output: a delivery is encoded
    /// only while the output is not [`Conn::tx_full`] (at most `write_chunks` chunks), one
    /// delivery starts at most one more chunk, and a chunk takes packets only while it holds
    /// less than `buffer_size`, so each chunk is below `buffer_size` plus one packet. A packet
    /// is taken to be at most `max_packet_size` (what a client may publish, or a will it may
    /// set), plus what routing adds: a topic alias expanded to its topic, a subscription
    /// identifier per subscription, a message expiry and a topic alias property. Messages the
    /// embedding program publishes are assumed to keep within `max_packet_size` too.
    #[doc(hidden)]
    pub fn delivery_output_bound(&self) -> usize {
        (self.opts.write_chunks() + 1) * (self.opts.buffer_size + self.max_out_packet())
    }

    /// The largest packet the broker may encode for a client, as assumed by
    /// [`Broker::delivery_output_bound`].
    fn max_out_packet(&self) -> usize {
        let o = &self.opts;
        o.max_packet_size as usize + o.max_topic_length + 5 * o.max_subscriptions_per_client + 64
    }

    /// Checks that the output of `id` is at most [`Broker::delivery_output_bound`] plus
    /// `reply_bytes`, the bytes of packets other than PUBLISH appended to it since its output
    /// was last empty (the caller counts them). Ok when there is no such connection.
    #[doc(hidden)]
    pub fn check_output_bound(&self, id: ClientId, reply_bytes: usize) -> Result<(), String> {
        let Some(c) = self.conn(id) else { return Ok(()) };
        let out: usize = c.tx.iter().map(Vec::len).sum();
        let bound = self.delivery_output_bound() + reply_bytes;
        if out > bound {
            return Err(format!(
                "{id:?}: {out} bytes of output over the bound {bound} ({} for deliveries + {reply_bytes} of replies; {} chunks)",
                self.delivery_output_bound(),
                c.tx.len()
            ));
        }
        Ok(())
    }

    /// What a harness may see of one connection: whether it is Connected, the bytes of a
    /// partial frame held, and the protocol version.
    #[doc(hidden)]
    pub fn conn_probe(&self, id: ClientId) -> Option<ConnProbe> {
        self.conn(id).map(|c| ConnProbe { connected: c.state == ConnState::Connected, partial_input: c.rx.len(), version: c.version })
    }

    /// Checks the invariants listed in this module's documentation; the first one broken is
    /// described in the error.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_conns()?;
        self.check_sessions()?;
        self.check_retained()?;
        self.check_buffers()?;
        self.check_counters()
    }

    fn check_conns(&self) -> Result<(), String> {
        let o = &self.opts;
        if self.conns.len() > o.max_clients {
            return Err(format!("{} connections, max_clients {}", self.conns.len(), o.max_clients));
        }
        let chunk_max = o.buffer_size + self.max_out_packet();
        let live_flush: Vec<ClientId> = self.flush.iter().copied().filter(|id| self.conn(*id).is_some()).collect();
        for (k, c) in self.conns.iter() {
            let id = c.id;
            if id.slot as usize != k || self.gens.get(k) != Some(&id.gen) {
                return Err(format!("{id:?} sits in slot {k} with generation {:?}", self.gens.get(k)));
            }
            // State and session.
            match (c.state, c.session()) {
                (ConnState::Connected, Some(key)) => match self.sessions.get(key as usize) {
                    Some(s) if s.conn == Some(id) => {
                        if *s.client_id != *c.client_id {
                            return Err(format!("{id:?} has client id {:?}, its session {:?}", c.client_id, s.client_id));
                        }
                    }
                    Some(s) => return Err(format!("{id:?} attached to session {key} whose connection is {:?}", s.conn)),
                    None => return Err(format!("{id:?} attached to session {key}, which does not exist")),
                },
                (ConnState::Connected, None) => return Err(format!("{id:?} is Connected without a session")),
                (state, Some(key)) => return Err(format!("{id:?} is {state:?} and attached to session {key}")),
                (_, None) => {}
            }
            // Output: never an empty chunk (the server's write loop stops at an empty first
            // slice), each chunk below buffer_size plus one packet.
            for (i, chunk) in c.tx.iter().enumerate() {
                if chunk.is_empty() {
                    return Err(format!("{id:?}: output chunk {i} of {} is empty", c.tx.len()));
                }
                if chunk.len() >= chunk_max {
                    return Err(format!("{id:?}: output chunk {i} holds {} bytes (bound {chunk_max})", chunk.len()));
                }
            }
            if !KNOWN_GAP_REPLIES_UNBOUNDED {
                self.check_output_bound(id, 0)?;
            }
            // A partial frame is smaller than the largest frame (or a header of at most 4 bytes).
            let rx_max = (o.max_packet_size as usize).max(5);
            if c.rx.len() >= rx_max {
                return Err(format!("{id:?} holds {} bytes of a partial frame (max_packet_size {})", c.rx.len(), o.max_packet_size));
            }
            // Flush list.
            let listed = live_flush.iter().filter(|x| **x == id).count();
            if c.flagged != (listed > 0) || listed > 1 {
                return Err(format!("{id:?}: flagged {} but on the flush list {listed} times", c.flagged));
            }
            // Buffer accounting is brought up to date no later than the next take_flushes.
            if !c.flagged && c.accounted as usize != c.buffer_capacity() {
                return Err(format!("{id:?} is not flagged and accounts {} bytes but holds {}", c.accounted, c.buffer_capacity()));
            }
            self.check_conn_timer(c)?;
        }
        for id in &self.close {
            if let Some(c) = self.conn(*id) {
                if c.state != ConnState::Closing {
                    return Err(format!("{id:?} is on the close list in state {:?}", c.state));
                }
            }
        }
        Ok(())
    }

    /// A connection that can still time out has its live entry in the timer heap, no later
    /// than its keep-alive deadline.
    fn check_conn_timer(&self, c: &Conn) -> Result<(), String> {
        let armed = match c.state {
            ConnState::Closing => false,
            ConnState::Connected => c.keep_alive_ms > 0,
            ConnState::AwaitConnect | ConnState::Authenticating => true,
        };
        if !armed {
            return Ok(());
        }
        let entry = (c.timer_at, Timer::Conn(c.id.to_u32()));
        if !self.timers.iter().any(|Reverse(t)| *t == entry) {
            return Err(format!("{:?} ({:?}): no timer entry at {:?}", c.id, c.state, c.timer_at));
        }
        if c.state == ConnState::Connected {
            let last_rx = self.clock.millis().saturating_sub(self.clock.ms_since_low32(c.last_rx) as u64);
            let deadline = last_rx + c.keep_alive_ms as u64 * 3 / 2;
            if c.timer_at.millis() > deadline {
                return Err(format!("{:?}: timer at {:?} after the keep-alive deadline {deadline}", c.id, c.timer_at));
            }
        }
        Ok(())
    }

    fn check_sessions(&self) -> Result<(), String> {
        let o = &self.opts;
        if self.sessions.len() > o.max_sessions {
            return Err(format!("{} sessions, max_sessions {}", self.sessions.len(), o.max_sessions));
        }
        let mut ids = HashSet::new();
        let mut sub_total = 0;
        for (k, s) in self.sessions.iter() {
            let key = k as u32;
            let name = &s.client_id;
            if !ids.insert(&**name) {
                return Err(format!("two sessions with client id {name:?}"));
            }
            match self.by_client_id.get(name, &self.sessions) {
                Some(found) if found == key => {}
                other => return Err(format!("session {key} ({name:?}): the index finds {other:?}")),
            }
            // Attachment.
            let conn = match s.conn {
                Some(id) => match self.conn(id) {
                    Some(c) if c.state == ConnState::Connected && c.session() == Some(key) => Some(c),
                    Some(c) => return Err(format!("session {key} ({name:?}) points at {id:?}, {:?} with session {:?}", c.state, c.session())),
                    None => return Err(format!("session {key} ({name:?}) points at {id:?}, which is gone")),
                },
                None => None,
            };
            if conn.is_none() {
                self.check_offline(key, s)?;
            }
            // Subscriptions.
            if s.subs.len() > o.max_subscriptions_per_client {
                return Err(format!("session {key} ({name:?}) holds {} subscriptions", s.subs.len()));
            }
            for (i, sub) in s.subs.iter().enumerate() {
                if s.subs[..i].iter().any(|x| x.filter == sub.filter) {
                    return Err(format!("session {key} ({name:?}) holds {:?} twice", sub.filter));
                }
                if crate::topics::parse_shared(&sub.filter).ok().flatten().is_none() && self.subs.get(&sub.filter, key).is_none() {
                    return Err(format!("session {key} ({name:?}): {:?} is not in the trie", sub.filter));
                }
            }
            sub_total += s.subs.len();
            // Inbound QoS 2 identifiers.
            let in2 = s.inbound_qos2();
            if in2.iter().enumerate().any(|(i, p)| in2[..i].contains(p)) {
                return Err(format!("session {key} ({name:?}): an inbound QoS 2 id twice: {in2:?}"));
            }
            self.check_flow(key, s, conn)?;
        }
        if sub_total != self.subs.len() {
            return Err(format!("sessions hold {sub_total} subscriptions, the trie {}", self.subs.len()));
        }
        Ok(())
    }

    /// An offline session: it outlives its connection, and its deadlines are armed.
    fn check_offline(&self, key: u32, s: &crate::session::Session) -> Result<(), String> {
        if s.expiry_secs == 0 {
            return Err(format!("offline session {key} ({:?}) with expiry 0", s.client_id));
        }
        if s.expiry_secs != u32::MAX && s.expires_at().is_none() {
            return Err(format!("offline session {key} ({:?}) with expiry {} s has no deadline", s.client_id, s.expiry_secs));
        }
        // Some entry fires no later than the first deadline (stale ones are harmless).
        let first = [s.will_at(), s.expires_at()].into_iter().flatten().min();
        if let Some(first) = first {
            if !self.timers.iter().any(|Reverse((t, e))| *e == Timer::Session(key) && *t <= first) {
                return Err(format!("offline session {key} ({:?}): deadline {first:?} without a timer entry", s.client_id));
            }
        }
        Ok(())
    }

    /// The queue and the inflight window of one session.
    fn check_flow(&self, key: u32, s: &crate::session::Session, conn: Option<&Conn>) -> Result<(), String> {
        let o = &self.opts;
        let name = &s.client_id;
        let Some(f) = s.flow() else { return Ok(()) };
        if f.queue.len() > o.max_queued_messages {
            return Err(format!("session {key} ({name:?}) queues {} messages", f.queue.len()));
        }
        let bytes: usize = f.queue.iter().map(|d| d.cost()).sum();
        if bytes != f.queued_bytes {
            return Err(format!("session {key} ({name:?}) counts {} queued bytes, holds {bytes}", f.queued_bytes));
        }
        if bytes > o.max_queued_bytes && f.queue.len() > 1 {
            return Err(format!("session {key} ({name:?}) queues {bytes} bytes in {} messages", f.queue.len()));
        }
        if f.inflight.len() > o.max_inflight as usize {
            return Err(format!("session {key} ({name:?}) has {} in flight, max_inflight {}", f.inflight.len(), o.max_inflight));
        }
        for (i, e) in f.inflight.iter().enumerate() {
            if f.inflight.iter().take(i).any(|x| x.pid == e.pid) {
                return Err(format!("session {key} ({name:?}): packet id {} in flight twice", e.pid.get()));
            }
            if e.d.qos == QoS::AtMostOnce {
                return Err(format!("session {key} ({name:?}): a QoS 0 message in flight"));
            }
        }
        let Some(c) = conn else { return Ok(()) };
        let window = c.window(o);
        // A resumed session may hold more than the new window (kept from the old connection,
        // unsent); what is out on this connection is what [MQTT-3.3.4-9] bounds.
        let out = f.inflight.iter().filter(|e| e.sent && e.state != OutState::AwaitPubComp).count();
        if !KNOWN_GAP_RESEND_OVER_WINDOW && conn.is_some() && out > window {
            return Err(format!("session {key} ({name:?}) has {out} PUBLISH unacknowledged on its connection, window {window}"));
        }
        if !KNOWN_GAP_GHOST_INFLIGHT {
            // The smallest PUBLISH that carries the payload: fixed header, topic length, packet id.
            let ghost = f.inflight.iter().find(|e| e.sent && e.state != OutState::AwaitPubComp && e.d.msg.payload.len() + 6 > c.max_packet_out as usize);
            if let Some(e) = ghost {
                return Err(format!(
                    "session {key} ({name:?}): packet id {} ({} bytes of payload) in flight can never be sent (maximum packet size {})",
                    e.pid.get(),
                    e.d.msg.payload.len(),
                    c.max_packet_out
                ));
            }
        }
        // The pump does not stall: with room in the output, nothing is left to resend and the
        // queue waits only for the window.
        // Room as the pump sees it: past the first chunk only within `buffer_memory`. Output
        // that waits pumps the session again when it is written, and a connection waiting for
        // budget is listed to be pumped when it frees: only an empty output with nothing listed
        // and work that could go is a stall.
        let front_size = f.queue.front().map_or(0, |d| d.msg.cost());
        let room = c.tx.is_empty()
            && match self.out_room(c, front_size) {
                super::OutRoom::Yes => true,
                super::OutRoom::Later => false,
                super::OutRoom::WaitBudget => !self.budget_waiters.contains(&c.id),
            }
            && !self.budget_waiters.contains(&c.id);
        if room {
            if f.inflight.iter().any(|e| !e.sent && (e.state == OutState::AwaitPubComp || out < window)) {
                return Err(format!("session {key} ({name:?}): output has room but an inflight message is unsent"));
            }
            if let Some(front) = f.queue.front() {
                if front.qos == QoS::AtMostOnce || f.inflight.len() < window {
                    return Err(format!(
                        "session {key} ({name:?}): output has room, {} queued (front QoS {}), {} in flight of {window}: the pump stalled",
                        f.queue.len(),
                        front.qos.as_u8(),
                        f.inflight.len()
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_retained(&self) -> Result<(), String> {
        let o = &self.opts;
        if self.retained.len() > o.max_retained_messages {
            return Err(format!("{} retained messages, max {}", self.retained.len(), o.max_retained_messages));
        }
        if self.retained_bytes > o.max_retained_bytes {
            return Err(format!("{} retained bytes, max {}", self.retained_bytes, o.max_retained_bytes));
        }
        // The index has no plain iterator: `#` visits every topic not starting with `$`, and
        // `$SYS/#` the broker's own. The sum is checked when that is every message.
        let (mut n, mut bytes) = (0, 0);
        for filter in ["#", "$SYS/#"] {
            self.retained.for_each_match(filter, |_, m| {
                n += 1;
                bytes += super::cost::retained(m);
            });
        }
        if n == self.retained.len() && bytes != self.retained_bytes {
            return Err(format!("retained messages cost {bytes} bytes, counted {}", self.retained_bytes));
        }
        Ok(())
    }

    fn check_buffers(&self) -> Result<(), String> {
        let o = &self.opts;
        let accounted: usize = self.conns.iter().map(|(_, c)| c.accounted as usize).sum();
        if accounted != self.buffer_bytes {
            return Err(format!("buffer_bytes {} but connections account {accounted}", self.buffer_bytes));
        }
        if self.pool.len() > o.pool_capacity() || self.tx_lists.len() > o.pool_capacity() {
            return Err(format!("pools hold {} buffers and {} lists, capacity {}", self.pool.len(), self.tx_lists.len(), o.pool_capacity()));
        }
        if let Some(b) = self.pool.iter().find(|b| !b.is_empty() || b.capacity() != o.buffer_size) {
            return Err(format!("a pooled buffer holds {} bytes with capacity {}", b.len(), b.capacity()));
        }
        if self.tx_lists.iter().any(|l| !l.is_empty()) {
            return Err("a pooled chunk list is not empty".to_string());
        }
        Ok(())
    }

    fn check_counters(&self) -> Result<(), String> {
        let connected = self.conns.iter().filter(|(_, c)| c.state == ConnState::Connected).count() as u64;
        let s = &self.stats;
        if s.clients_connected != connected {
            return Err(format!("clients_connected {} but {connected} connections are Connected", s.clients_connected));
        }
        if s.clients_maximum < s.clients_connected {
            return Err(format!("clients_maximum {} below clients_connected {}", s.clients_maximum, s.clients_connected));
        }
        if s.connections_total < self.conns.len() as u64 {
            return Err(format!("connections_total {} below {} open", s.connections_total, self.conns.len()));
        }
        Ok(())
    }
}

/// One connection as a harness sees it ([`Broker::conn_probe`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnProbe {
    /// CONNACK sent and not closing.
    pub connected: bool,
    /// Bytes of a partial frame held.
    pub partial_input: usize,
    /// The protocol version (3.1.1 until CONNECT says otherwise).
    pub version: Version,
}
