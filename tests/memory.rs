//! The heap an idle connection costs, through the socket-free core, counted by a global
//! allocator that charges what glibc's malloc takes per request. This is the deterministic part
//! of the "RSS per idle connection" that `benches/loadgen --scenario connections` measures from
//! /proc (which adds the server's socket slot, allocator fragmentation and the kernel's view).
#![allow(unsafe_code)] // the counting allocator below, test only

use edgemq::broker::{Broker, PeerInfo};
use edgemq::hooks::AllowAll;
use edgemq::packets::{Connect, Packet, Properties, Version};
use edgemq::time::Instant;
use edgemq::Options;
use std::alloc::{GlobalAlloc, Layout, System};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// What glibc malloc uses for a request: an 8-byte header, 16-byte granules, 32 bytes at least.
fn chunk(n: usize) -> usize {
    ((n + 8 + 15) & !15).max(32)
}

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            LIVE.fetch_add(chunk(l.size()), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(chunk(l.size()), Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's pointer, layout and size.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_sub(chunk(l.size()), Relaxed);
            LIVE.fetch_add(chunk(new), Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The counter is global: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// 2^13 clients: every table of the core is then exactly full at a power-of-two capacity, so the
/// count has no growth slack in it.
const CLIENTS: usize = 8192;

/// The bound this test holds the core to (bytes per idle 5.0 connection: connection slot,
/// session, client id, client-id index entry, timer entry; 333 today).
const BOUND: usize = 360;

#[test]
fn an_idle_connection_costs_a_bounded_number_of_heap_bytes() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let opts = Options { max_clients: 20_000, max_sessions: 20_000, ..Options::default() };
    let mut b = Broker::new(opts);
    b.hooks_mut().add(Box::new(AllowAll));
    let listener: Rc<str> = "default".into();
    let now = Instant(1_000);
    let mut wire = Vec::new();
    let mut connect = |b: &mut Broker, i: usize| {
        let peer = PeerInfo { remote: format!("127.0.0.1:{}", 10_000 + i), listener: listener.clone(), allow_anonymous: true, cert_username: None };
        let id = b.accept(peer, now).unwrap();
        let client_id = format!("sensor-{i:06}");
        let c = Connect { version: Version::V5, clean_start: true, keep_alive: 60, client_id: &client_id, will: None, username: None, password: None, properties: Properties::default() };
        wire.clear();
        Packet::Connect(c).encode(Version::V5, &mut wire).unwrap();
        b.on_bytes(id, &wire, now);
        let n = b.output(id).len();
        assert!(n >= 4, "CONNACK expected");
        b.consume_output(id, n, now);
    };
    connect(&mut b, 0); // the pooled output buffer and the lazily built tables, once
    let before = LIVE.load(Relaxed);
    for i in 1..CLIENTS {
        connect(&mut b, i);
    }
    let per = (LIVE.load(Relaxed) - before) / (CLIENTS - 1);
    eprintln!("heap per idle connection: {per} bytes");
    assert_eq!(b.connection_count(), CLIENTS);
    assert!(per <= BOUND, "an idle connection costs {per} bytes of heap, more than {BOUND}");
    assert!(per >= 200, "{per} bytes: the counting allocator is not counting");
}

/// After a burst of QoS 1 deliveries is acknowledged, the periodic compaction gives the queue and
/// window capacity back (and trims the buffer pools): a subscriber that was busy once costs what
/// an idle one costs.
#[test]
fn a_burst_long_past_costs_an_idle_subscriber_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use edgemq::packets::{Ack, PacketId, Publish, QoS, QosPid, SubOptions, Subscribe, SubscribeFilters};
    let opts = Options { max_clients: 2_000, max_sessions: 2_000, ..Options::default() };
    let mut b = Broker::new(opts);
    b.hooks_mut().add(Box::new(AllowAll));
    let mut now = Instant(1_000);
    b.start(now);
    let listener: Rc<str> = "default".into();
    let mut wire = Vec::new();
    let drain = |b: &mut Broker, id, now| {
        let mut out = Vec::new();
        loop {
            let chunk = b.output(id).to_vec();
            if chunk.is_empty() {
                return out;
            }
            b.consume_output(id, chunk.len(), now);
            out.extend(chunk);
        }
    };
    let mut clients = Vec::new();
    for i in 0..1000 {
        let peer = PeerInfo { remote: format!("127.0.0.1:{}", 10_000 + i), listener: listener.clone(), allow_anonymous: true, cert_username: None };
        let id = b.accept(peer, now).unwrap();
        let client_id = format!("sub-{i:04}");
        let c = Connect { version: Version::V3_1_1, clean_start: true, keep_alive: 0, client_id: &client_id, will: None, username: None, password: None, properties: Properties::default() };
        wire.clear();
        Packet::Connect(c).encode(Version::V3_1_1, &mut wire).unwrap();
        let f = [("burst", SubOptions { qos: QoS::AtLeastOnce, ..SubOptions::default() })];
        Packet::Subscribe(Subscribe { pid: PacketId::new(1).unwrap(), properties: Properties::default(), filters: SubscribeFilters::List(&f) })
            .encode(Version::V3_1_1, &mut wire)
            .unwrap();
        b.on_bytes(id, &wire, now);
        drain(&mut b, id, now);
        clients.push(id);
    }
    let idle = LIVE.load(Relaxed);

    // A burst: 20 QoS 1 messages to every subscriber, then every PUBACK.
    let publisher = clients[0];
    for n in 1..=20u16 {
        wire.clear();
        let qospid = QosPid::AtLeastOnce(PacketId::new(100 + n).unwrap());
        let p = Publish { dup: false, qospid, retain: false, topic: "burst", properties: Properties::default(), payload: &[7; 100] };
        Packet::Publish(p).encode(Version::V3_1_1, &mut wire).unwrap();
        b.on_bytes(publisher, &wire, now);
    }
    for &id in &clients {
        drain(&mut b, id, now);
        wire.clear();
        for pid in 1..=20u16 {
            Packet::PubAck(Ack::ok(PacketId::new(pid).unwrap())).encode(Version::V3_1_1, &mut wire).unwrap();
        }
        b.on_bytes(id, &wire, now);
        drain(&mut b, id, now);
    }
    let busy = LIVE.load(Relaxed);
    now = Instant(now.millis() + 31_000);
    b.tick(now);
    let after = LIVE.load(Relaxed);
    eprintln!("per subscriber: idle {idle}, after the burst {busy}, after compaction {after} (bytes in total)");
    assert!(busy > idle + 1000 * 100, "the burst left no capacity behind ({busy} vs {idle}): the test proves nothing");
    // What compaction keeps on purpose: 8 pooled buffers of buffer_size (4 KiB) and 8 chunk lists.
    let kept = 8 * (4096 + 16) + 8 * 128;
    assert!(after <= idle + kept + 1000 * 8, "{} bytes per subscriber still held after compaction", (after - idle - kept.min(after - idle)) / 1000);
}
