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

/// 2^13 clients: every table of the core is then exactly full at a power-of-two capacity, so the
/// count has no growth slack in it.
const CLIENTS: usize = 8192;

/// The bound this test holds the core to (bytes per idle 5.0 connection: connection slot,
/// session, client id, remote address, client-id index entry, timer entry).
const BOUND: usize = 430;

#[test]
fn an_idle_connection_costs_a_bounded_number_of_heap_bytes() {
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
