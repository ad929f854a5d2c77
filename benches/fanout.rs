//! Fan-out of one message to N subscribers through the socket-free broker, with the number of
//! heap allocations per published message (a counting global allocator).
//!
//! `cargo bench --bench fanout [-- N MESSAGES]` (defaults: 1000 subscribers, 2000 messages).
//! The claim it guards: a message published to N subscribers is stored once, and the
//! per-message path allocates a constant amount, not an amount proportional to N.
#![allow(unsafe_code)] // the counting allocator below, bench only

use edgemq::broker::{Broker, ClientId, PeerInfo};
use edgemq::hooks::AllowAll;
use edgemq::packets::{Connect, Packet, Properties, Publish, QoS, QosPid, SubOptions, Subscribe, SubscribeFilters, Version};
use edgemq::time::Instant;
use edgemq::Options;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn feed(b: &mut Broker, id: ClientId, p: Packet<'_>, v: Version, now: Instant) {
    let mut buf = Vec::new();
    p.encode(v, &mut buf).expect("encode");
    b.on_bytes(id, &buf, now);
}

fn drain(b: &mut Broker, id: ClientId, now: Instant) -> usize {
    let mut n = 0;
    loop {
        let len = b.output(id).len();
        if len == 0 {
            return n;
        }
        n += len;
        b.consume_output(id, len, now);
    }
}

fn connect(b: &mut Broker, name: &str, now: Instant) -> ClientId {
    let peer = PeerInfo { remote: "127.0.0.1:1".into(), listener: "bench".into(), allow_anonymous: true, cert_username: None };
    let id = b.accept(peer, now).expect("accept");
    let c = Connect { version: Version::V3_1_1, clean_start: true, keep_alive: 0, client_id: name, will: None, username: None, password: None, properties: Properties::default() };
    feed(b, id, Packet::Connect(c), Version::V3_1_1, now);
    drain(b, id, now);
    id
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let subs = args.first().copied().unwrap_or(1000);
    let messages = args.get(1).copied().unwrap_or(2000);
    let opts = Options { max_clients: subs + 10, max_sessions: subs + 10, ..Options::default() };
    let mut b = Broker::new(opts);
    b.hooks_mut().add(Box::new(AllowAll));
    let now = Instant(1);
    let ids: Vec<ClientId> = (0..subs).map(|i| connect(&mut b, &format!("s{i}"), now)).collect();
    let f = [("bench/+", SubOptions { qos: QoS::AtMostOnce, ..SubOptions::default() })];
    for &id in &ids {
        let pid = edgemq::packets::PacketId::new(1).expect("pid");
        feed(&mut b, id, Packet::Subscribe(Subscribe { pid, properties: Properties::default(), filters: SubscribeFilters::List(&f) }), Version::V3_1_1, now);
        drain(&mut b, id, now);
    }
    let publisher = connect(&mut b, "pub", now);
    let payload = vec![0x5a; 64];
    let mut frame = Vec::new();
    Packet::Publish(Publish { dup: false, qospid: QosPid::AtMostOnce, retain: false, topic: "bench/x", properties: Properties::default(), payload: &payload })
        .encode(Version::V3_1_1, &mut frame)
        .expect("encode");

    // Warm up: pooled buffers and queue capacity reach their steady state.
    for _ in 0..10 {
        b.on_bytes(publisher, &frame, now);
        for &id in &ids {
            drain(&mut b, id, now);
        }
    }
    let mut allocs = 0usize;
    let mut bytes = 0usize;
    let start = std::time::Instant::now();
    for _ in 0..messages {
        let before = ALLOCS.load(Ordering::Relaxed);
        b.on_bytes(publisher, &frame, now);
        allocs += ALLOCS.load(Ordering::Relaxed) - before;
        for &id in &ids {
            bytes += drain(&mut b, id, now);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let deliveries = (messages * subs) as f64;
    println!("fanout: {subs} subscribers, {messages} messages of 64 B (QoS 0, MQTT 3.1.1)");
    println!("  allocations per published message (publish + routing to {subs}): {:.2}", allocs as f64 / messages as f64);
    println!("  deliveries/s (including draining output): {:.0}", deliveries / secs);
    println!("  ns per delivery: {:.1}", secs * 1e9 / deliveries);
    println!("  bytes out: {bytes}");
    // The guard: routing allocates per message, never per subscriber (the message is shared,
    // output buffers and chunk lists are pooled). CI runs this bench and fails above the bound.
    let per_message = allocs as f64 / messages as f64;
    if per_message > MAX_ALLOCS_PER_MESSAGE {
        eprintln!("fanout: {per_message:.2} allocations per message, more than {MAX_ALLOCS_PER_MESSAGE}");
        std::process::exit(1);
    }
}

/// Allocations one published message may cost, whatever the number of subscribers (3 today:
/// the message, its topic and its payload).
const MAX_ALLOCS_PER_MESSAGE: f64 = 6.0;
