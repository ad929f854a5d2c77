//! A step interpreter over the socket-free core, shared by the `core` fuzz target
//! (`tests/fuzz/fuzz_targets/core.rs`) and `tests/core_steps.rs` (both include this file by
//! path). A program is bytes: the first picks the options, then each step is an op byte and its
//! arguments, over up to [`SLOTS`] connection slots. Steps accept clients, feed them canned
//! frames (CONNECT, SUBSCRIBE, PUBLISH, acknowledgements, PINGREQ, DISCONNECT, AUTH for 3.1,
//! 3.1.1 and 5.0, parameterized by the program) or raw bytes, drain part or all of their output
//! (slow readers), close them, move the clock and tick, and run the embedding program's
//! commands (inline publish, inject, inject as a client, disconnect a client).
//!
//! After every step, as the server does at the end of a loop turn, the harness ticks, takes the
//! flushes and the closes (releasing closed connections at once, or only on a `Release` step
//! when the program asks for lazy release), then checks:
//! - [`Broker::check_invariants`];
//! - every output grew by whole packets, and is at most the delivery bound plus the bytes of
//!   non-PUBLISH packets (replies, DISCONNECT) appended since it was last empty
//!   ([`Broker::check_output_bound`]);
//! - the monotonic counters never go down;
//! - liveness: a Connected client with no partial frame and no output that is fed a PINGREQ
//!   has output (the PINGRESP) or is closing.
#![allow(dead_code)]

use edgemq::broker::{Broker, ClientId, PeerInfo};
use edgemq::hooks::{AllowAll, AuthStep, ClientInfo, Hook, Point, Provides};
use edgemq::options::{QueueFullPolicy, SharedPolicy};
use edgemq::packets::{
    Ack, Connect, Disconnect, Packet, PacketId, Properties, Publish, QoS, QosPid, ReasonCode, SubIds, SubOptions, Subscribe,
    SubscribeFilters, TopicList, Unsubscribe, Version, Will,
};
use edgemq::sys::Stats;
use edgemq::time::{Duration, Instant};
use edgemq::Options;
use std::fmt::Write as _;

/// Connection slots a program drives.
pub const SLOTS: usize = 8;

const CLIENT_IDS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", ""];
const FILTERS: [&str; 12] =
    ["t/a", "t/+", "t/#", "#", "$share/g/t/a", "$share/g/#", "$SYS/#", "w", "+/b", "t/a/", "bad/#/x", "$share/h/t/+"];
const TOPICS: [&str; 7] = ["t/a", "t/b", "w", "t/a/b", "$SYS/x", "x", "t/+"];
const PAYLOAD_LENS: [usize; 6] = [0, 1, 8, 40, 100, 300];
const KEEP_ALIVES: [u16; 4] = [0, 2, 60, 0];
const EXPIRIES: [Option<u32>; 5] = [None, Some(0), Some(3), Some(100), Some(u32::MAX)];
const RECEIVE_MAXIMA: [Option<u16>; 4] = [None, Some(1), Some(2), Some(100)];
const MAX_PACKETS: [Option<u32>; 4] = [None, Some(24), Some(64), Some(200)];
const ALIAS_MAXIMA: [Option<u16>; 3] = [None, Some(1), Some(5)];
const ADVANCES_MS: [u64; 10] = [0, 1, 50, 500, 1_000, 1_500, 3_000, 10_000, 31_000, 120_000];
const REASONS: [ReasonCode; 6] = [
    ReasonCode::Success,
    ReasonCode::DisconnectWithWill,
    ReasonCode::UnspecifiedError,
    ReasonCode::AdministrativeAction,
    ReasonCode::ContinueAuthentication,
    ReasonCode::ReAuthenticate,
];

/// The small bounds a program runs under (so every bound is hit), varied by its first byte.
pub fn options(sel: u8) -> Options {
    Options {
        max_clients: SLOTS,
        max_sessions: SLOTS + 2,
        connect_timeout_ms: 2_000,
        buffer_size: 64,
        write_batch: 128,
        buffer_memory: 2 * 64 + 512 + 1_024,
        max_packet_size: 512,
        receive_maximum: 3,
        max_inflight: 2,
        max_queued_messages: 4,
        max_queued_bytes: 600,
        queue_full_policy: match sel % 3 {
            0 => QueueFullPolicy::DropNew,
            1 => QueueFullPolicy::DropOldest,
            _ => QueueFullPolicy::Disconnect,
        },
        queue_qos0_offline: sel & 0x04 != 0,
        max_subscriptions_per_client: 4,
        max_topic_length: 32,
        max_topic_levels: 4,
        max_retained_messages: 4,
        max_retained_bytes: 800,
        max_session_expiry: 100,
        max_message_expiry: if sel & 0x08 != 0 { 50 } else { 0 },
        topic_alias_maximum: 2,
        max_qos: if sel & 0x10 != 0 { 1 } else { 2 },
        shared_policy: if sel & 0x20 != 0 { SharedPolicy::First } else { SharedPolicy::RoundRobin },
        sys_interval_secs: if sel & 0x40 != 0 { 10 } else { 0 },
        memory_limit: 0,
        ..Options::default()
    }
}

/// A CONNECT, by table indexes.
#[derive(Clone, Copy, Debug)]
pub struct ConnectSpec {
    /// 0: 3.1, 1: 3.1.1, else 5.0.
    pub version: u8,
    pub client: u8,
    pub clean: bool,
    pub keep_alive: u8,
    /// 0: no will; else bits: qos (2), retain, delay 2 s (5.0).
    pub will: u8,
    pub expiry: u8,
    pub receive_max: u8,
    pub max_packet: u8,
    pub alias_max: u8,
    pub username: bool,
    /// Enhanced authentication with method "m" (5.0).
    pub auth: bool,
}

/// A canned frame, encoded for the connection's version when fed.
#[derive(Clone, Copy, Debug)]
pub enum Frame {
    Connect(ConnectSpec),
    Subscribe { pid: u16, filter: u8, filter2: Option<u8>, opts: u8, sub_id: bool },
    Unsubscribe { pid: u16, filter: u8 },
    Publish { topic: u8, qos: u8, retain: bool, dup: bool, pid: u16, len: u8, expiry: bool, alias: u8 },
    /// PUBACK (4), PUBREC (5), PUBREL (6) or PUBCOMP (7).
    Ack { kind: u8, pid: u16, fail: bool },
    PingReq,
    Disconnect { reason: u8, expiry: u8 },
    Auth { reason: u8, data: u8 },
}

/// One step of a program.
#[derive(Clone, Debug)]
pub enum Step {
    Accept { slot: u8 },
    /// Close the slot's connection if any (a reconnect), accept, feed a CONNECT.
    Connect { slot: u8, spec: ConnectSpec },
    /// A canned frame, in two `on_bytes` calls when `split` is within it.
    Send { slot: u8, frame: Frame, split: u8 },
    /// The first `keep` bytes of a canned frame only.
    Partial { slot: u8, frame: Frame, keep: u8 },
    /// The same frame `count` times in one call: a client that writes without reading.
    Flood { slot: u8, frame: Frame, count: u8 },
    Raw { slot: u8, bytes: Vec<u8> },
    /// Consume this many bytes of output (all of it for `None`).
    Drain { slot: u8, amount: Option<u16> },
    /// The socket closed: `on_closed`.
    Close { slot: u8 },
    /// The server finished a closing connection: `release`.
    Release { slot: u8 },
    Advance { ms: u64 },
    /// Jump to the next deadline.
    ToDeadline,
    Publish { topic: u8, qos: u8, retain: bool, len: u8 },
    DisconnectClient { client: u8, reason: u8 },
    Inject { frame: Frame },
    InjectAs { client: u8, frame: Frame },
    /// Drain all output, feed a PINGREQ, expect a PINGRESP (the liveness check).
    Ping { slot: u8 },
}

struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn pid(&mut self) -> Option<u16> {
        // Mostly the identifiers the broker hands out first.
        let b = self.byte()?;
        Some(if b < 0xF0 { u16::from(b % 4) + 1 } else { u16::from(b) << 4 | u16::from(b & 0xF) })
    }

    fn connect(&mut self) -> Option<ConnectSpec> {
        let (a, b, c) = (self.byte()?, self.byte()?, self.byte()?);
        Some(ConnectSpec {
            version: a % 3,
            client: (a >> 2) % CLIENT_IDS.len() as u8,
            clean: a & 0x20 != 0,
            keep_alive: (a >> 6) % KEEP_ALIVES.len() as u8,
            will: b & 0x0F,
            expiry: (b >> 4) % EXPIRIES.len() as u8,
            receive_max: c % RECEIVE_MAXIMA.len() as u8,
            max_packet: (c >> 2) % MAX_PACKETS.len() as u8,
            alias_max: (c >> 4) % ALIAS_MAXIMA.len() as u8,
            username: c & 0x40 != 0,
            auth: c & 0x80 != 0 && b & 0x0F == 0x0F,
        })
    }

    fn frame(&mut self) -> Option<Frame> {
        let k = self.byte()?;
        Some(match k % 20 {
            0 => Frame::Connect(self.connect()?),
            1..=5 => {
                let (f, o) = (self.byte()?, self.byte()?);
                Frame::Subscribe {
                    pid: self.pid()?,
                    filter: f % FILTERS.len() as u8,
                    filter2: (f & 0x80 != 0).then_some((f >> 4) % FILTERS.len() as u8),
                    opts: o,
                    sub_id: k & 0x80 != 0,
                }
            }
            6 => Frame::Unsubscribe { pid: self.pid()?, filter: self.byte()? % FILTERS.len() as u8 },
            7..=11 => {
                let (a, b) = (self.byte()?, self.byte()?);
                Frame::Publish {
                    topic: a % TOPICS.len() as u8,
                    qos: (a >> 3) % 3,
                    retain: a & 0x20 != 0,
                    dup: a & 0x40 != 0,
                    pid: self.pid()?,
                    len: b % PAYLOAD_LENS.len() as u8,
                    expiry: b & 0x10 != 0,
                    alias: (b >> 5).saturating_sub(4),
                }
            }
            12..=15 => {
                let a = self.byte()?;
                Frame::Ack { kind: 4 + a % 4, pid: self.pid()?, fail: a & 0x80 != 0 }
            }
            16 | 17 => Frame::PingReq,
            18 if k & 0x60 != 0 => Frame::PingReq,
            18 => {
                let a = self.byte()?;
                Frame::Disconnect { reason: a % 4, expiry: (a >> 2) % EXPIRIES.len() as u8 }
            }
            _ if k & 0x60 != 0 => Frame::PingReq,
            _ => {
                let a = self.byte()?;
                Frame::Auth { reason: 4 + (a & 1), data: a >> 1 }
            }
        })
    }

    fn step(&mut self) -> Option<Step> {
        let op = self.byte()?;
        let slot = (op >> 5) % SLOTS as u8;
        Some(match op % 32 {
            0 => Step::Accept { slot },
            1..=4 => Step::Connect { slot, spec: self.connect()? },
            5..=14 | 29..=31 => Step::Send { slot, frame: self.frame()?, split: self.byte()? },
            15 => Step::Partial { slot, frame: self.frame()?, keep: self.byte()? },
            16 => Step::Flood { slot, frame: self.frame()?, count: self.byte()? },
            17 => {
                let n = (self.byte()? % 24) as usize;
                let mut bytes = Vec::with_capacity(n);
                for _ in 0..n {
                    bytes.push(self.byte()?);
                }
                Step::Raw { slot, bytes }
            }
            18..=21 => {
                let a = self.byte()?;
                Step::Drain { slot, amount: (a < 0xC0).then_some(u16::from(a) * 3) }
            }
            22 => match self.byte()? % 4 {
                0 => Step::Close { slot },
                1 => Step::Release { slot },
                2 => Step::ToDeadline,
                _ => Step::Advance { ms: ADVANCES_MS[slot as usize % ADVANCES_MS.len()] },
            },
            23 => Step::Advance { ms: ADVANCES_MS[self.byte()? as usize % ADVANCES_MS.len()] },
            24..=26 => {
                let (a, b) = (self.byte()?, self.byte()?);
                match a % 4 {
                    0 | 1 => Step::Publish { topic: (a >> 2) % TOPICS.len() as u8, qos: b % 3, retain: b & 4 != 0, len: (b >> 3) % PAYLOAD_LENS.len() as u8 },
                    2 => Step::DisconnectClient { client: (a >> 2) % CLIENT_IDS.len() as u8, reason: b % 4 },
                    _ => {
                        let frame = self.frame()?;
                        if b & 1 == 0 {
                            Step::Inject { frame }
                        } else {
                            Step::InjectAs { client: (a >> 2) % CLIENT_IDS.len() as u8, frame }
                        }
                    }
                }
            }
            _ => Step::Ping { slot },
        })
    }
}

/// Decodes a program into its options selector and steps (at most `max_steps`).
pub fn decode(data: &[u8], max_steps: usize) -> (u8, Vec<Step>) {
    let mut input = Input { data, pos: 1 };
    let sel = data.first().copied().unwrap_or(0);
    let mut steps = Vec::new();
    while steps.len() < max_steps {
        match input.step() {
            Some(s) => steps.push(s),
            None => break,
        }
    }
    (sel, steps)
}

/// Encodes a canned frame for `v`.
pub fn encode(frame: &Frame, v: Version) -> Vec<u8> {
    let mut out = Vec::new();
    let pid = |p: u16| PacketId::new(p).unwrap_or(PacketId::new(1).expect("1 is not 0"));
    let payload = [b'p'; 300];
    let (opts, filters);
    let pkt = match *frame {
        Frame::Connect(ref spec) => return encode_connect(spec),
        Frame::Subscribe { pid: p, filter, filter2, opts: o, sub_id } => {
            let so = |b: u8| SubOptions {
                qos: QoS::from_u8(b % 3).unwrap_or(QoS::AtMostOnce),
                no_local: b & 0x44 == 0x44,
                retain_as_published: b & 0x08 != 0,
                retain_handling: (b >> 4) % 3,
            };
            let one = (FILTERS[filter as usize], so(o));
            opts = match filter2 {
                Some(f2) => vec![one, (FILTERS[f2 as usize], so(o >> 2))],
                None => vec![one],
            };
            let ids = [u32::from(p % 3) + 1];
            let properties = Properties { subscription_ids: SubIds::List(if sub_id { &ids } else { &[] }), ..Properties::default() };
            let s = Subscribe { pid: pid(p), properties, filters: SubscribeFilters::List(&opts) };
            Packet::Subscribe(s).encode(v, &mut out).ok();
            return out;
        }
        Frame::Unsubscribe { pid: p, filter } => {
            filters = [FILTERS[filter as usize]];
            Packet::Unsubscribe(Unsubscribe { pid: pid(p), properties: Properties::default(), filters: TopicList::List(&filters) })
        }
        Frame::Publish { topic, qos, retain, dup, pid: p, len, expiry, alias } => {
            let qos = QoS::from_u8(qos).unwrap_or(QoS::AtMostOnce);
            // alias 0: none; 1/2: that alias with the topic; 3: alias 1 without the topic.
            let (topic, topic_alias) = match (alias, v.is_v5()) {
                (1 | 2, true) => (TOPICS[topic as usize], Some(u16::from(alias))),
                (3, true) => ("", Some(1)),
                _ => (TOPICS[topic as usize], None),
            };
            let properties =
                Properties { message_expiry_interval: expiry.then_some(2), topic_alias, ..Properties::default() };
            Packet::Publish(Publish {
                dup: dup && qos != QoS::AtMostOnce,
                qospid: QosPid::from_parts(qos, pid(p)),
                retain,
                topic,
                properties,
                payload: &payload[..PAYLOAD_LENS[len as usize]],
            })
        }
        Frame::Ack { kind, pid: p, fail } => {
            let reason = if fail && v.is_v5() { ReasonCode::UnspecifiedError } else { ReasonCode::Success };
            let a = Ack { pid: pid(p), reason, properties: Properties::default() };
            match kind {
                4 => Packet::PubAck(a),
                5 => Packet::PubRec(a),
                6 => Packet::PubRel(a),
                _ => Packet::PubComp(a),
            }
        }
        Frame::PingReq => Packet::PingReq,
        Frame::Disconnect { reason, expiry } => {
            let properties = Properties { session_expiry_interval: EXPIRIES[expiry as usize], ..Properties::default() };
            Packet::Disconnect(Disconnect { reason: REASONS[reason as usize % 4], properties })
        }
        Frame::Auth { reason, data } => {
            let data: &[u8] = match data % 3 {
                0 => b"c",
                1 => b"ok",
                _ => b"no",
            };
            let properties = Properties { authentication_method: Some("m"), authentication_data: Some(data), ..Properties::default() };
            Packet::Auth(Disconnect { reason: REASONS[reason as usize % REASONS.len()], properties })
        }
    };
    // An encoding error (a field the version cannot carry) leaves what was written: raw bytes.
    pkt.encode(v, &mut out).ok();
    out
}

fn spec_version(spec: &ConnectSpec) -> Version {
    match spec.version {
        0 => Version::V3_1,
        1 => Version::V3_1_1,
        _ => Version::V5,
    }
}

fn encode_connect(spec: &ConnectSpec) -> Vec<u8> {
    let v = spec_version(spec);
    let will = (spec.will != 0).then(|| Will {
        topic: if spec.will & 4 != 0 { "w" } else { "t/w" },
        payload: b"gone",
        qos: QoS::from_u8(spec.will % 3).unwrap_or(QoS::AtMostOnce),
        retain: spec.will & 8 != 0,
        properties: Properties { will_delay_interval: (spec.will & 3 == 3).then_some(2), ..Properties::default() },
    });
    let properties = Properties {
        session_expiry_interval: EXPIRIES[spec.expiry as usize],
        receive_maximum: RECEIVE_MAXIMA[spec.receive_max as usize],
        maximum_packet_size: MAX_PACKETS[spec.max_packet as usize],
        topic_alias_maximum: ALIAS_MAXIMA[spec.alias_max as usize],
        authentication_method: spec.auth.then_some("m"),
        authentication_data: spec.auth.then_some(b"c".as_slice()),
        ..Properties::default()
    };
    let c = Connect {
        version: v,
        clean_start: spec.clean,
        keep_alive: KEEP_ALIVES[spec.keep_alive as usize],
        client_id: CLIENT_IDS[spec.client as usize],
        will,
        username: spec.username.then_some("u"),
        password: spec.username.then_some(b"pw".as_slice()),
        properties,
    };
    let mut out = Vec::new();
    Packet::Connect(c).encode(v, &mut out).ok();
    out
}

/// Enhanced authentication with method "m": data "c" continues, "ok" succeeds, else fails.
struct AuthM;

impl Hook for AuthM {
    fn id(&self) -> &str {
        "auth-m"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnAuthPacket])
    }
    fn on_auth_packet(&mut self, _: &ClientInfo<'_>, method: &str, data: Option<&[u8]>, _reauth: bool) -> AuthStep {
        match (method, data) {
            ("m", Some(b"c")) => AuthStep::Continue(b"more".to_vec()),
            ("m", Some(b"ok")) => AuthStep::Success(None),
            ("m", _) => AuthStep::Fail(ReasonCode::NotAuthorized),
            _ => AuthStep::NotMine,
        }
    }
}

#[derive(Debug)]
struct Slot {
    id: ClientId,
    /// Output length after the last observation (less what was consumed since).
    out_len: usize,
    /// Bytes of non-PUBLISH packets appended since the output was last empty.
    replies: usize,
}

/// A broker, a clock and the connection slots of one program.
pub struct Harness {
    pub b: Broker,
    pub now: Instant,
    slots: [Option<Slot>; SLOTS],
    /// Closing connections are released only by a `Release` (or `Close`) step.
    lazy_release: bool,
    closing: Vec<ClientId>,
    scratch: Vec<ClientId>,
    last: Stats,
}

impl Harness {
    /// A started broker under [`options`]`(sel)`, with AllowAll and an enhanced-auth hook.
    pub fn new(sel: u8) -> Harness {
        let opts = options(sel);
        assert_eq!(opts.validate(), Ok(()));
        let mut b = Broker::new(opts);
        b.hooks_mut().add(Box::new(AllowAll));
        b.hooks_mut().add(Box::new(AuthM));
        let now = Instant(1_000);
        b.start(now);
        let last = b.stats(now);
        Harness { b, now, slots: Default::default(), lazy_release: sel & 0x80 != 0, closing: Vec::new(), scratch: Vec::new(), last }
    }

    fn id(&self, slot: u8) -> Option<ClientId> {
        self.slots[slot as usize].as_ref().map(|s| s.id)
    }

    fn version(&self, id: ClientId) -> Version {
        self.b.conn_probe(id).map_or(Version::V3_1_1, |p| p.version)
    }

    fn accept(&mut self, slot: u8) -> Option<ClientId> {
        if let Some(id) = self.id(slot) {
            return Some(id);
        }
        let peer = PeerInfo { remote: format!("10.0.0.{slot}:1883"), listener: "fuzz".into(), allow_anonymous: true, cert_username: None };
        let id = self.b.accept(peer, self.now).ok()?;
        self.slots[slot as usize] = Some(Slot { id, out_len: 0, replies: 0 });
        Some(id)
    }

    /// All of a connection's output (every chunk: retried with more slices while they are
    /// all filled).
    fn output(&self, id: ClientId) -> Vec<u8> {
        let mut bufs = vec![std::io::IoSlice::new(&[]); 64];
        loop {
            let n = self.b.output_vectored(id, &mut bufs);
            if n < bufs.len() {
                return bufs[..n].iter().flat_map(|b| b.iter().copied()).collect();
            }
            bufs.resize(bufs.len() * 2, std::io::IoSlice::new(&[]));
        }
    }

    /// Classifies what was appended to a slot's output since it was last observed.
    fn observe(&mut self, slot: usize) -> Result<(), String> {
        let Some(s) = self.slots[slot].as_ref() else { return Ok(()) };
        let id = s.id;
        if self.b.conn_probe(id).is_none() {
            self.slots[slot] = None;
            return Ok(());
        }
        let out = self.output(id);
        let s = self.slots[slot].as_mut().expect("checked above");
        if out.len() < s.out_len {
            return Err(format!("{id:?}: output shrank from {} to {} bytes without being consumed", s.out_len, out.len()));
        }
        let mut tail = &out[s.out_len..];
        while !tail.is_empty() {
            let Some(n) = frame_len(tail) else {
                return Err(format!("{id:?}: output grew by bytes that are not whole packets: {:02x?}", &out[s.out_len..]));
            };
            if tail[0] >> 4 != 3 {
                s.replies += n;
            }
            tail = &tail[n..];
        }
        s.out_len = out.len();
        self.b.check_output_bound(id, s.replies)
    }

    /// Consumes `n` bytes of a slot's output (as a write of `n` bytes would).
    fn consume(&mut self, slot: usize, n: usize) -> Result<(), String> {
        self.observe(slot)?;
        let Some(s) = self.slots[slot].as_mut() else { return Ok(()) };
        let n = n.min(s.out_len);
        s.out_len -= n;
        if s.out_len == 0 {
            s.replies = 0;
        }
        let id = s.id;
        self.b.consume_output(id, n, self.now);
        self.observe(slot)
    }

    fn feed(&mut self, slot: u8, bytes: &[u8]) {
        if let Some(id) = self.id(slot) {
            self.b.on_bytes(id, bytes, self.now);
        }
    }

    /// Runs one step, then ends the turn as the server does and checks everything.
    pub fn step(&mut self, step: &Step) -> Result<(), String> {
        match *step {
            Step::Accept { slot } => {
                self.accept(slot);
            }
            Step::Connect { slot, ref spec } => {
                // A reconnect: the old socket (if any) closed first.
                if let Some(id) = self.id(slot) {
                    self.b.on_closed(id, self.now);
                    self.closing.retain(|c| *c != id);
                    self.slots[slot as usize] = None;
                }
                if self.accept(slot).is_some() {
                    self.feed(slot, &encode_connect(spec));
                }
            }
            Step::Send { slot, ref frame, split } => {
                if let Some(id) = self.id(slot) {
                    let bytes = encode(frame, self.version(id));
                    let at = split as usize;
                    if at > 0 && at < bytes.len() {
                        self.feed(slot, &bytes[..at]);
                        self.feed(slot, &bytes[at..]);
                    } else {
                        self.feed(slot, &bytes);
                    }
                }
            }
            Step::Partial { slot, ref frame, keep } => {
                if let Some(id) = self.id(slot) {
                    let bytes = encode(frame, self.version(id));
                    self.feed(slot, &bytes[..(keep as usize).min(bytes.len())]);
                }
            }
            Step::Flood { slot, ref frame, count } => {
                if let Some(id) = self.id(slot) {
                    let bytes = encode(frame, self.version(id)).repeat(count as usize);
                    self.feed(slot, &bytes);
                }
            }
            Step::Raw { slot, ref bytes } => self.feed(slot, bytes),
            Step::Drain { slot, amount } => {
                let i = slot as usize;
                self.observe(i)?;
                if let Some(s) = self.slots[i].as_ref() {
                    let n = amount.map_or(s.out_len, usize::from);
                    self.consume(i, n)?;
                }
            }
            Step::Close { slot } => {
                if let Some(id) = self.id(slot) {
                    self.b.on_closed(id, self.now);
                    self.closing.retain(|c| *c != id);
                    self.slots[slot as usize] = None;
                }
            }
            Step::Release { slot } => {
                if let Some(id) = self.id(slot).filter(|id| self.closing.contains(id)) {
                    self.b.release(id);
                    self.closing.retain(|c| *c != id);
                    self.slots[slot as usize] = None;
                }
            }
            Step::Advance { ms } => self.now = self.now + Duration::from_millis(ms),
            Step::ToDeadline => {
                if let Some(t) = self.b.next_deadline() {
                    self.now = self.now.max(t);
                }
            }
            Step::Publish { topic, qos, retain, len } => {
                let qos = QoS::from_u8(qos).unwrap_or(QoS::AtMostOnce);
                let payload = [b'i'; 300];
                self.b.publish(TOPICS[topic as usize], &payload[..PAYLOAD_LENS[len as usize]], retain, qos, self.now);
            }
            Step::DisconnectClient { client, reason } => {
                self.b.disconnect_client(CLIENT_IDS[client as usize], REASONS[reason as usize % 4], self.now);
            }
            Step::Inject { ref frame } => {
                let _ = self.b.inject(&encode(frame, Version::V5), self.now);
            }
            Step::InjectAs { client, ref frame } => {
                let cid = CLIENT_IDS[client as usize];
                let v = self.b.connection_of(cid).map_or(Version::V5, |id| self.version(id));
                let _ = self.b.inject_as(cid, &encode(frame, v), self.now);
            }
            Step::Ping { slot } => self.ping(slot as usize)?,
        }
        self.end_turn()
    }

    /// Drains a slot's output completely, then feeds a PINGREQ: a Connected client with no
    /// partial frame gets a PINGRESP (or is closing).
    fn ping(&mut self, i: usize) -> Result<(), String> {
        for _ in 0..64 {
            self.observe(i)?;
            match self.slots[i].as_ref() {
                Some(s) if s.out_len > 0 => self.consume(i, s.out_len)?,
                _ => break,
            }
        }
        let Some(s) = self.slots[i].as_ref() else { return Ok(()) };
        let id = s.id;
        let ready = s.out_len == 0 && self.b.conn_probe(id).is_some_and(|p| p.connected && p.partial_input == 0);
        self.b.on_bytes(id, &[0xC0, 0x00], self.now);
        if ready && self.output(id).is_empty() && !self.b.is_closing(id) {
            return Err(format!("{id:?}: a PINGREQ with the output drained got no PINGRESP (and the client is not closing)"));
        }
        Ok(())
    }

    /// What the server does at the end of a loop turn, then the checks.
    fn end_turn(&mut self) -> Result<(), String> {
        self.b.tick(self.now);
        self.b.retry_budget_waiters(self.now);
        self.scratch.clear();
        self.b.take_flushes(&mut self.scratch);
        self.scratch.clear();
        self.b.take_closes(&mut self.scratch);
        for id in core::mem::take(&mut self.scratch) {
            if self.lazy_release {
                self.closing.push(id);
            } else {
                self.b.release(id);
            }
        }
        for i in 0..SLOTS {
            self.observe(i)?;
        }
        self.b.check_invariants()?;
        let s = self.b.stats(self.now);
        let l = &self.last;
        let monotonic = [
            ("connections_total", l.connections_total, s.connections_total),
            ("clients_maximum", l.clients_maximum, s.clients_maximum),
            ("messages_received", l.messages_received, s.messages_received),
            ("messages_sent", l.messages_sent, s.messages_sent),
            ("messages_dropped", l.messages_dropped, s.messages_dropped),
            ("bytes_received", l.bytes_received, s.bytes_received),
            ("bytes_sent", l.bytes_sent, s.bytes_sent),
            ("packets_received", l.packets_received, s.packets_received),
            ("packets_sent", l.packets_sent, s.packets_sent),
        ];
        if let Some((name, a, b)) = monotonic.iter().find(|(_, a, b)| b < a) {
            return Err(format!("counter {name} went down from {a} to {b}"));
        }
        self.last = s;
        Ok(())
    }
}

/// The length of the whole packet at the start of `b`, if it is all there.
fn frame_len(b: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for i in 0..4 {
        let byte = *b.get(1 + i)?;
        len |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let total = 2 + i + len;
            return (b.len() >= total).then_some(total);
        }
    }
    None
}

/// Runs a program; on failure (a broken invariant or a panic), the error names the step and
/// lists the steps up to it.
pub fn run(data: &[u8], max_steps: usize) -> Result<(), String> {
    let (sel, steps) = decode(data, max_steps);
    run_steps(sel, &steps).map_err(|(i, e)| {
        let mut msg = format!("step {i} of options {sel:#04x}: {e}\nsteps:\n");
        for (j, s) in steps[..=i].iter().enumerate() {
            let _ = writeln!(msg, "  {j:3} {s:?}");
        }
        let min = minimize(sel, &steps);
        let _ = writeln!(msg, "minimized to {} steps:", min.len());
        for s in &min {
            let _ = writeln!(msg, "  {s:?}");
        }
        msg
    })
}

/// Known broker bug: a client's own QoS 2 PUBLISH that disconnects it while it is routed (it
/// subscribes to the topic, its queue is full and `queue_full_policy` is `disconnect`) ends its
/// session (expiry 0), and `on_publish` then indexes the removed session to record the packet
/// identifier: "invalid key" panic in src/broker/flow.rs (`self.sessions[key]` after
/// `route`). While true, a program that panics there stops as passed (the broker's state after
/// a panic means nothing); flip to false once fixed.
pub const KNOWN_GAP_OWN_PUBLISH_ENDS_SESSION: bool = false;

thread_local! {
    /// Where the last panic inside a step happened (recorded by the hook [`quiet_panics`]
    /// installs), and whether a step is running.
    static PANIC_AT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    static IN_STEP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs a panic hook that records where a panic inside a step happened instead of printing
/// it (the harness reports it with the steps); other panics go to the hook it replaces.
pub fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_STEP.with(|s| s.get()) {
                return previous(info);
            }
            let at = info.location().map_or(String::new(), |l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let what = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            PANIC_AT.with(|p| *p.borrow_mut() = format!("{what} at {at}"));
        }));
    });
}

/// Runs steps under [`options`]`(sel)`; on failure, the index of the failing step and why.
pub fn run_steps(sel: u8, steps: &[Step]) -> Result<(), (usize, String)> {
    quiet_panics();
    let mut h = Harness::new(sel);
    for (i, step) in steps.iter().enumerate() {
        IN_STEP.with(|s| s.set(true));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.step(step)));
        IN_STEP.with(|s| s.set(false));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err((i, format!("broke an invariant: {e}"))),
            Err(_) => {
                let what = PANIC_AT.with(|p| core::mem::take(&mut *p.borrow_mut()));
                // (The path is absolute in some builds.)
                if KNOWN_GAP_OWN_PUBLISH_ENDS_SESSION && what.starts_with("invalid key at ") && what.contains("src/broker/flow.rs:") {
                    return Ok(());
                }
                return Err((i, format!("panicked: {what}")));
            }
        }
    }
    Ok(())
}

/// Removes steps while the program still fails with an error starting like `same` (the first
/// line up to its first digit, so ids and counts may differ): a minimal reproducer.
pub fn minimize(sel: u8, steps: &[Step]) -> Vec<Step> {
    let key = |e: &str| e.chars().take_while(|c| !c.is_ascii_digit() && *c != '(').collect::<String>();
    let Err((i, e)) = run_steps(sel, steps) else { return steps.to_vec() };
    let want = key(&e);
    let mut cur: Vec<Step> = steps[..=i].to_vec();
    let mut chunk = cur.len() / 2;
    let mut last_len = usize::MAX;
    while chunk >= 1 || cur.len() < last_len {
        if chunk == 0 {
            last_len = cur.len();
            chunk = 1;
        }
        let mut at = 0;
        while at < cur.len() {
            let mut cand = cur.clone();
            cand.drain(at..(at + chunk).min(cand.len()));
            match run_steps(sel, &cand) {
                Err((j, e)) if key(&e) == want => {
                    cand.truncate(j + 1);
                    cur = cand;
                }
                _ => at += chunk,
            }
        }
        chunk /= 2;
    }
    cur
}
