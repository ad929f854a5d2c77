//! Test fixtures: a socket-free broker with a fake clock, packet builders, and assertions on
//! the exact bytes the broker writes.
#![allow(dead_code)]

use edgemq::broker::{Broker, ClientId, PeerInfo};
use edgemq::hooks::AllowAll;
use edgemq::packets::{self, Packet, Version};
use edgemq::time::Instant;
use edgemq::Options;

/// A broker driven by hand: bytes in, bytes out, time moved explicitly.
pub struct TestBroker {
    pub b: Broker,
    pub now: Instant,
    /// Output already taken from the broker but not yet looked at by the test.
    pub pending: std::collections::HashMap<ClientId, Vec<u8>>,
}

impl TestBroker {
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    pub fn with(opts: Options) -> Self {
        let mut b = Broker::new(opts);
        b.hooks_mut().add(Box::new(AllowAll));
        TestBroker { b, now: Instant(1_000), pending: Default::default() }
    }

    /// A broker with exactly these hooks, in order (no AllowAll unless given).
    pub fn with_hooks(opts: Options, hooks: Vec<Box<dyn edgemq::hooks::Hook>>) -> Self {
        let mut b = Broker::new(opts);
        for h in hooks {
            b.hooks_mut().add(h);
        }
        TestBroker { b, now: Instant(1_000), pending: Default::default() }
    }

    pub fn accept(&mut self) -> ClientId {
        let peer = PeerInfo { remote: "127.0.0.1:5000".into(), listener: "t".into(), allow_anonymous: true, cert_username: None };
        self.b.accept(peer, self.now).unwrap()
    }

    pub fn feed(&mut self, id: ClientId, bytes: &[u8]) {
        self.b.on_bytes(id, bytes, self.now);
    }

    pub fn send(&mut self, id: ClientId, v: Version, p: Packet<'_>) {
        let mut out = Vec::new();
        p.encode(v, &mut out).unwrap();
        self.feed(id, &out);
    }

    /// Everything the broker wants written to `id`, consumed.
    pub fn take(&mut self, id: ClientId) -> Vec<u8> {
        let mut out = self.pending.remove(&id).unwrap_or_default();
        out.extend_from_slice(self.b.output(id));
        let written = self.b.output(id).len();
        self.b.consume_output(id, written, self.now);
        let more = self.b.output(id).to_vec();
        if more.is_empty() {
            out
        } else {
            out.extend(self.take(id));
            out
        }
    }

    /// Decodes everything written to `id` into owned debug strings, for readable assertions.
    pub fn take_packets(&mut self, id: ClientId, v: Version) -> Vec<String> {
        let bytes = self.take(id);
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (p, n) = packets::decode(rest, v, u32::MAX).unwrap().unwrap();
            out.push(format!("{p:?}"));
            rest = &rest[n..];
        }
        out
    }

    /// Advances the clock and runs timers.
    pub fn advance(&mut self, ms: u64) {
        self.now = Instant(self.now.0 + ms);
        self.b.tick(self.now);
    }

    /// Finishes closes the broker asked for, as the server would.
    pub fn reap(&mut self) -> Vec<ClientId> {
        let mut ids = Vec::new();
        self.b.take_closes(&mut ids);
        for &id in &ids {
            self.b.release(id);
        }
        ids
    }
}

/// Parses "10 0c 00 04 ..." hex (whitespace and `#` comments ignored).
pub fn hex(s: &str) -> Vec<u8> {
    s.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split_whitespace())
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

use edgemq::packets::{
    Ack, ConnAck, Connect, PacketId, Properties, Publish, QoS, QosPid, ReasonCode, SubAck, SubOptions,
    Subscribe, SubscribeFilters, Will,
};

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

pub fn encode(v: Version, p: Packet<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    p.encode(v, &mut out).unwrap();
    out
}

pub fn connect_packet<'a>(v: Version, id: &'a str, clean: bool, keep_alive: u16, will: Option<Will<'a>>) -> Packet<'a> {
    Packet::Connect(Connect {
        version: v,
        clean_start: clean,
        keep_alive,
        client_id: id,
        will,
        username: None,
        password: None,
        properties: Properties::default(),
    })
}

pub fn publish<'a>(topic: &'a str, payload: &'a [u8], qos: u8, p: u16, retain: bool) -> Packet<'a> {
    let qospid = match qos {
        0 => QosPid::AtMostOnce,
        1 => QosPid::AtLeastOnce(pid(p)),
        _ => QosPid::ExactlyOnce(pid(p)),
    };
    Packet::Publish(Publish { dup: false, qospid, retain, topic, properties: Properties::default(), payload })
}

pub fn ack(n: u16) -> Ack<'static> {
    Ack::ok(pid(n))
}

pub fn opts(qos: u8) -> SubOptions {
    SubOptions { qos: QoS::from_u8(qos).unwrap(), ..SubOptions::default() }
}

impl TestBroker {
    /// Connects a client (CONNECT, expects CONNACK success) and returns its id and whether a
    /// session was present.
    pub fn connect_full(&mut self, v: Version, id: &str, clean: bool, keep_alive: u16, will: Option<Will<'_>>, props: Properties<'_>) -> (ClientId, bool) {
        let c = self.accept();
        let mut p = connect_packet(v, id, clean, keep_alive, will);
        if let Packet::Connect(ref mut k) = p {
            k.properties = props;
        }
        self.send(c, v, p);
        let out = self.take(c);
        let (pkt, n) = packets::decode(&out, v, u32::MAX).unwrap().unwrap();
        if n < out.len() {
            self.pending.insert(c, out[n..].to_vec());
        }
        match pkt {
            Packet::ConnAck(ConnAck { reason: ReasonCode::Success, session_present, .. }) => (c, session_present),
            other => panic!("expected CONNACK success, got {other:?}"),
        }
    }

    pub fn connect(&mut self, v: Version, id: &str) -> ClientId {
        self.connect_full(v, id, true, 0, None, Properties::default()).0
    }

    pub fn subscribe(&mut self, c: ClientId, v: Version, filter: &str, o: SubOptions) -> Vec<u8> {
        let f = [(filter, o)];
        self.send(c, v, Packet::Subscribe(Subscribe { pid: pid(1), properties: Properties::default(), filters: SubscribeFilters::List(&f) }));
        let out = self.take(c);
        let (pkt, n) = packets::decode(&out, v, u32::MAX).unwrap().unwrap();
        match pkt {
            Packet::SubAck(SubAck { codes, .. }) => {
                let codes = codes.to_vec();
                let rest = out[n..].to_vec();
                assert_eq!(codes.len(), 1);
                // Anything after the SUBACK (retained messages) is returned.
                let _ = codes;
                rest
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }
}
