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
}

impl TestBroker {
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    pub fn with(opts: Options) -> Self {
        let mut b = Broker::new(opts);
        b.hooks_mut().add(Box::new(AllowAll));
        TestBroker { b, now: Instant(1_000) }
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
        let out = self.b.output(id).to_vec();
        self.b.consume_output(id, out.len(), self.now);
        // pumping may have produced more
        let more = self.b.output(id).to_vec();
        if more.is_empty() {
            out
        } else {
            let mut all = out;
            all.extend(self.take(id));
            all
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
