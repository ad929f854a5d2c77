//! The client side of the benchmark: many non-blocking MQTT connections on one `mio::Poll`.
//!
//! A [`Conn`] is a socket plus its protocol state, an optional [`Publisher`] (sequence numbers,
//! a bounded window of unacknowledged QoS 1/2 messages, optional pacing) and an optional
//! [`Subscriber`] (one filter, a [`Tracker`] of what arrived). The [`Engine`] owns the poll loop;
//! scenarios add connections and call [`Engine::run_until`] with a deadline and a stop condition, so
//! every loop ends by itself. Reads drain to `WouldBlock` into one shared scratch buffer (an idle
//! connection holds no buffer); a partial frame is kept per connection.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::codec::{self, Ack, Packet, Version};
use crate::stats::{Histogram, Stamp, Tracker, HEADER_LEN};

/// Keep-alive announced in CONNECT; an otherwise silent connection sends PINGREQ at half of it.
const KEEP_ALIVE_S: u16 = 60;
/// A publisher stops encoding while this many bytes wait to be written.
const TX_HIGH_WATER: usize = 64 * 1024;

/// Settings shared by every connection of a run.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub addr: SocketAddr,
    pub version: Version,
    pub qos: u8,
    /// Payload size in bytes (at least [`HEADER_LEN`]).
    pub payload: usize,
    /// Maximum unacknowledged QoS 1/2 messages per publisher (further capped by a v5 Receive Maximum).
    pub window: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// TCP connect in progress; CONNECT is queued.
    Connecting,
    AwaitConnAck,
    AwaitSubAck,
    Ready,
    Closed,
}

/// Where a publisher sends each message.
pub enum Topic {
    Fixed(String),
    /// `PREFIX/<seq / 1000>/<seq % 1000>`: one retained message per topic.
    Tree(String),
}

/// QoS 1/2 messages awaiting acknowledgement, keyed by packet id; `true` once PUBREC arrived.
#[derive(Default)]
struct Inflight {
    pending: HashMap<u16, bool>,
    next: u16,
}

impl Inflight {
    fn alloc(&mut self) -> u16 {
        loop {
            self.next = self.next.wrapping_add(1).max(1);
            if !self.pending.contains_key(&self.next) {
                self.pending.insert(self.next, false);
                return self.next;
            }
        }
    }
}

pub struct Publisher {
    pub id: u32,
    topic: Topic,
    /// Messages to send in total.
    pub total: u32,
    /// Messages encoded so far (the next sequence number).
    pub sent: u32,
    /// Messages whose QoS flow completed (PUBACK, or PUBCOMP); equals `sent` at QoS 0.
    pub completed: u32,
    pub retain: bool,
    /// Messages per second, for the latency scenario; the stamp then carries the scheduled time.
    pub rate: Option<f64>,
    /// When the publisher finished: last message written at QoS 0, last flow completed otherwise.
    pub finished_at: Option<Instant>,
    window: usize,
    inflight: Inflight,
    payload: Vec<u8>,
    topic_buf: String,
}

impl Publisher {
    pub fn new(id: u32, topic: Topic, total: u32) -> Publisher {
        let (retain, rate, finished_at) = (false, None, None);
        let (window, inflight, payload, topic_buf) = (0, Inflight::default(), Vec::new(), String::new());
        Publisher { id, topic, total, sent: 0, completed: 0, retain, rate, finished_at, window, inflight, payload, topic_buf }
    }

    pub fn is_done(&self) -> bool {
        self.finished_at.is_some()
    }
}

pub struct Subscriber {
    pub filter: String,
    pub tracker: Tracker,
    pub delivered: u64,
    pub retained_flags: u64,
}

impl Subscriber {
    pub fn new(filter: String) -> Subscriber {
        Subscriber { filter, tracker: Tracker::default(), delivered: 0, retained_flags: 0 }
    }
}

pub struct Conn {
    stream: TcpStream,
    pub client_id: String,
    pub state: State,
    rx: Vec<u8>,
    tx: Vec<u8>,
    tx_pos: usize,
    last_tx: Instant,
    pub publisher: Option<Publisher>,
    pub subscriber: Option<Subscriber>,
    pub pongs: u64,
}

/// Counters every connection writes into.
pub struct Shared {
    pub settings: Settings,
    pub epoch: Instant,
    /// Publishers encode only after the scenario says go (all subscribers are ready by then).
    pub go: bool,
    /// When `go` was set, in ns since `epoch`: time zero of paced publishers' schedules.
    pub go_ns: u64,
    pub latency: Histogram,
    pub delivered: u64,
    pub last_delivery: Option<Instant>,
    pub ready: usize,
    pub errors: u64,
    pub first_errors: Vec<String>,
}

impl Shared {
    fn error(&mut self, who: &str, what: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_errors.len() < 5 {
            self.first_errors.push(format!("{who}: {what}"));
        }
    }
}

pub struct Engine {
    poll: Poll,
    events: Events,
    scratch: Vec<u8>,
    pub conns: Vec<Conn>,
    publishers: Vec<usize>,
    pub shared: Shared,
    last_sweep: Instant,
}

impl Engine {
    pub fn new(settings: Settings) -> io::Result<Engine> {
        let now = Instant::now();
        let shared = Shared {
            settings,
            epoch: now,
            go: false,
            go_ns: 0,
            latency: Histogram::default(),
            delivered: 0,
            last_delivery: None,
            ready: 0,
            errors: 0,
            first_errors: Vec::new(),
        };
        let (poll, events) = (Poll::new()?, Events::with_capacity(1024));
        Ok(Engine { poll, events, scratch: vec![0; 64 * 1024], conns: Vec::new(), publishers: Vec::new(), shared, last_sweep: now })
    }

    /// Starts a TCP connect and queues CONNECT (and SUBSCRIBE after CONNACK, if `subscriber` is set).
    pub fn add(&mut self, client_id: String, publisher: Option<Publisher>, subscriber: Option<Subscriber>) -> io::Result<usize> {
        let idx = self.conns.len();
        let mut stream = TcpStream::connect(self.shared.settings.addr)?;
        self.poll.registry().register(&mut stream, Token(idx), Interest::READABLE | Interest::WRITABLE)?;
        stream.set_nodelay(true)?;
        let mut tx = Vec::new();
        codec::connect(&mut tx, self.shared.settings.version, &client_id, KEEP_ALIVE_S);
        if publisher.is_some() {
            self.publishers.push(idx);
        }
        let (rx, tx_pos, last_tx, pongs) = (Vec::new(), 0, Instant::now(), 0);
        let state = State::Connecting;
        self.conns.push(Conn { stream, client_id, state, rx, tx, tx_pos, last_tx, publisher, subscriber, pongs });
        Ok(idx)
    }

    /// Lets publishers start and returns the start time.
    pub fn go(&mut self) -> Instant {
        let now = Instant::now();
        self.shared.go = true;
        self.shared.go_ns = now.duration_since(self.shared.epoch).as_nanos() as u64;
        now
    }

    /// Queues a PINGREQ on connection `idx` (its PINGRESP increments `pongs`).
    pub fn ping(&mut self, idx: usize) {
        if let Some(c) = self.conns.get_mut(idx) {
            codec::pingreq(&mut c.tx);
            flush(c, &mut self.shared);
        }
    }

    /// Runs the loop until `done` holds (returns true) or `deadline` passes (returns false).
    pub fn run_until(&mut self, deadline: Instant, mut done: impl FnMut(&Engine) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let busy = self.shared.go && self.publishers.iter().any(|&i| self.conns[i].publisher.as_ref().is_some_and(|p| p.sent < p.total));
            let nap = if busy { Duration::from_micros(200) } else { Duration::from_millis(20) };
            if let Err(e) = self.turn(nap.min(deadline - now)) {
                self.shared.error("poll", e);
                return false;
            }
        }
    }

    /// One loop turn: wait for readiness, serve ready sockets, let publishers encode, keep alive.
    fn turn(&mut self, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => other?,
        }
        let ready: Vec<(usize, bool, bool)> = self.events.iter().map(|e| (e.token().0, e.is_readable() || e.is_read_closed(), e.is_writable())).collect();
        for (idx, readable, writable) in ready {
            let Some(c) = self.conns.get_mut(idx) else { continue };
            if c.state == State::Closed {
                continue;
            }
            if c.state == State::Connecting && writable {
                match c.stream.peer_addr() {
                    Ok(_) => c.state = State::AwaitConnAck,
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
                    Err(_) => {
                        let e = c.stream.take_error().ok().flatten().unwrap_or_else(|| io::Error::other("connect failed"));
                        fail(c, &mut self.shared, format!("connect: {e}"));
                        continue;
                    }
                }
            }
            if c.state == State::Connecting {
                continue;
            }
            if readable {
                on_readable(c, &mut self.shared, &mut self.scratch);
            }
            flush(c, &mut self.shared);
        }
        if self.shared.go {
            let now = Instant::now();
            for &i in &self.publishers {
                pump(&mut self.conns[i], &mut self.shared, now);
            }
        }
        if self.last_sweep.elapsed() >= Duration::from_secs(1) {
            self.last_sweep = Instant::now();
            for c in &mut self.conns {
                if c.state != State::Connecting && c.state != State::Closed && c.last_tx.elapsed() >= Duration::from_secs(u64::from(KEEP_ALIVE_S / 2)) {
                    codec::pingreq(&mut c.tx);
                    flush(c, &mut self.shared);
                }
            }
        }
        Ok(())
    }

    /// Sends DISCONNECT on every open connection and closes them all (best effort, bounded).
    pub fn shutdown(&mut self) {
        for c in &mut self.conns {
            if c.state != State::Closed && c.state != State::Connecting {
                codec::disconnect(&mut c.tx);
                let _ = c.stream.write(&c.tx[c.tx_pos..]);
            }
            let _ = self.poll.registry().deregister(&mut c.stream);
            c.state = State::Closed;
        }
    }
}

/// Records an error and closes the connection for the rest of the run (its socket stays
/// registered until shutdown; a closed connection's events are ignored).
fn fail(c: &mut Conn, shared: &mut Shared, why: String) {
    shared.error(&c.client_id, why);
    if c.state == State::Ready {
        shared.ready -= 1;
    }
    c.state = State::Closed;
}

/// Writes queued bytes until the socket would block.
fn flush(c: &mut Conn, shared: &mut Shared) {
    while c.tx_pos < c.tx.len() && c.state != State::Connecting && c.state != State::Closed {
        match c.stream.write(&c.tx[c.tx_pos..]) {
            Ok(0) => return fail(c, shared, "socket accepted 0 bytes".into()),
            Ok(n) => {
                c.tx_pos += n;
                c.last_tx = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return fail(c, shared, format!("write: {e}")),
        }
    }
    if c.tx_pos == c.tx.len() {
        c.tx.clear();
        c.tx_pos = 0;
    } else if c.tx_pos > TX_HIGH_WATER {
        c.tx.drain(..c.tx_pos);
        c.tx_pos = 0;
    }
}

/// Reads until `WouldBlock` and handles every whole frame.
fn on_readable(c: &mut Conn, shared: &mut Shared, scratch: &mut [u8]) {
    loop {
        let n = match c.stream.read(scratch) {
            Ok(0) => return fail(c, shared, "broker closed the connection".into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return fail(c, shared, format!("read: {e}")),
        };
        let mut rx = std::mem::take(&mut c.rx);
        let result = if rx.is_empty() {
            handle_frames(c, shared, &scratch[..n]).map(|used| rx.extend_from_slice(&scratch[used..n]))
        } else {
            rx.extend_from_slice(&scratch[..n]);
            handle_frames(c, shared, &rx).map(|used| drop(rx.drain(..used)))
        };
        c.rx = rx;
        if let Err(why) = result {
            return fail(c, shared, why);
        }
        if c.state == State::Closed {
            return;
        }
    }
}

/// Handles every whole frame at the front of `buf`; returns the bytes consumed.
fn handle_frames(c: &mut Conn, shared: &mut Shared, buf: &[u8]) -> Result<usize, String> {
    let mut used = 0;
    while let Some((packet, n)) = codec::decode(&buf[used..], shared.settings.version).map_err(|e| format!("malformed packet from broker: {e}"))? {
        used += n;
        on_packet(c, shared, packet)?;
    }
    Ok(used)
}

/// The client's protocol state machine.
fn on_packet(c: &mut Conn, shared: &mut Shared, packet: Packet<'_>) -> Result<(), String> {
    let s = shared.settings;
    match (c.state, packet) {
        (State::AwaitConnAck, Packet::ConnAck { code, receive_max, .. }) => {
            if code != 0 {
                return Err(format!("CONNACK refused with code {code:#04x}"));
            }
            if let Some(p) = &mut c.publisher {
                p.window = s.window.min(receive_max.map_or(usize::MAX, usize::from)).max(1);
            }
            if let Some(sub) = &c.subscriber {
                codec::subscribe(&mut c.tx, s.version, 1, &sub.filter, s.qos);
                c.state = State::AwaitSubAck;
            } else {
                c.state = State::Ready;
                shared.ready += 1;
            }
        }
        (State::AwaitSubAck, Packet::SubAck { pid: 1, codes }) => {
            match codes.first() {
                Some(&granted) if granted == s.qos => {}
                Some(&code) => return Err(format!("SUBACK granted {code:#04x}, wanted QoS {}", s.qos)),
                None => return Err("SUBACK without a return code".into()),
            }
            c.state = State::Ready;
            shared.ready += 1;
        }
        (State::Ready, Packet::Publish(p)) => {
            let Some(sub) = &mut c.subscriber else { return Err("PUBLISH to a connection that never subscribed".into()) };
            let stamp = Stamp::read(p.payload).ok_or_else(|| format!("PUBLISH payload of {} bytes has no benchmark header", p.payload.len()))?;
            let now = Instant::now();
            sub.tracker.record(stamp);
            sub.delivered += 1;
            sub.retained_flags += u64::from(p.retain);
            shared.delivered += 1;
            shared.last_delivery = Some(now);
            let now_ns = now.duration_since(shared.epoch).as_nanos() as u64;
            shared.latency.record(now_ns.saturating_sub(stamp.sent_ns));
            match p.qos {
                1 => codec::ack(&mut c.tx, Ack::PubAck, p.pid),
                2 => codec::ack(&mut c.tx, Ack::PubRec, p.pid),
                _ => {}
            }
        }
        (State::Ready, Packet::Ack { kind: Ack::PubRel, pid, .. }) => codec::ack(&mut c.tx, Ack::PubComp, pid),
        (State::Ready, Packet::Ack { kind, pid, reason }) => {
            let Some(p) = &mut c.publisher else { return Err(format!("{kind:?} to a connection that never published")) };
            if reason >= 0x80 {
                return Err(format!("{kind:?} for packet {pid} with failure reason {reason:#04x}"));
            }
            match (kind, p.inflight.pending.get(&pid).copied(), s.qos) {
                (Ack::PubAck, Some(false), 1) | (Ack::PubComp, Some(true), 2) => {
                    p.inflight.pending.remove(&pid);
                    p.completed += 1;
                    if p.completed == p.total {
                        p.finished_at = Some(Instant::now());
                    }
                }
                (Ack::PubRec, Some(false), 2) => {
                    p.inflight.pending.insert(pid, true);
                    codec::ack(&mut c.tx, Ack::PubRel, pid);
                }
                (kind, state, _) => return Err(format!("unexpected {kind:?} for packet {pid} (inflight state {state:?})")),
            }
        }
        (_, Packet::PingResp) => c.pongs += 1,
        (_, Packet::Disconnect { reason }) => return Err(format!("broker sent DISCONNECT with reason {reason:#04x}")),
        (state, packet) => return Err(format!("unexpected {packet:?} in state {state:?}")),
    }
    Ok(())
}

/// Lets a publisher encode as many messages as its window, its schedule and the tx high-water allow.
fn pump(c: &mut Conn, shared: &mut Shared, now: Instant) {
    let s = shared.settings;
    let Some(p) = &mut c.publisher else { return };
    if c.state != State::Ready || p.is_done() {
        return;
    }
    if p.payload.len() != s.payload {
        p.payload = vec![0x5A; s.payload.max(HEADER_LEN)];
    }
    let elapsed_ns = now.duration_since(shared.epoch).as_nanos() as u64;
    while p.sent < p.total && c.tx.len() - c.tx_pos < TX_HIGH_WATER && (s.qos == 0 || p.inflight.pending.len() < p.window) {
        let sent_ns = match p.rate {
            Some(rate) => {
                let due = shared.go_ns + (f64::from(p.sent) * 1e9 / rate) as u64;
                if due > elapsed_ns {
                    break;
                }
                due
            }
            None => elapsed_ns,
        };
        Stamp { publisher: p.id, seq: p.sent, sent_ns }.write(&mut p.payload);
        let topic = match &p.topic {
            Topic::Fixed(t) => t.as_str(),
            Topic::Tree(prefix) => {
                use std::fmt::Write as _;
                p.topic_buf.clear();
                let _ = write!(p.topic_buf, "{prefix}/{}/{}", p.sent / 1000, p.sent % 1000);
                p.topic_buf.as_str()
            }
        };
        let pid = if s.qos > 0 { p.inflight.alloc() } else { 0 };
        codec::publish(&mut c.tx, s.version, s.qos, p.retain, pid, topic.as_bytes(), &p.payload);
        p.sent += 1;
    }
    flush(c, shared);
    let flushed = c.tx_pos == c.tx.len();
    if let Some(p) = c.publisher.as_mut().filter(|p| s.qos == 0 && p.sent == p.total && flushed && p.finished_at.is_none()) {
        p.completed = p.sent;
        p.finished_at = Some(Instant::now());
    }
}
