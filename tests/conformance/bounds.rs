//! Nothing accumulates over a long run: what a connection or session leaves behind (timer
//! entries, offline sessions, expired retained messages) goes with it.

use crate::common::*;
use edgemq::packets::{Disconnect, Packet, Properties, Publish, QosPid, ReasonCode, Version::*};
use edgemq::hooks::{AllowAll, Hook, Point, Provides};
use edgemq::storage::ClientRecord;
use edgemq::Options;

/// Most timer entries the heap may hold (live and stale) for this many connections and sessions.
fn timer_bound(t: &TestBroker) -> usize {
    2 * (t.b.connection_count() + t.b.session_count() + 2) + 64
}

#[test]
fn timer_entries_of_closed_connections_and_removed_sessions_do_not_accumulate() {
    let mut t = TestBroker::new();
    t.b.start(t.now);
    let expiry = Properties { session_expiry_interval: Some(1), ..Properties::default() };
    for i in 0..10_000 {
        // keep alive 65535: its entry would stay 27 h after the connection is gone
        let (c, _) = t.connect_full(V5, &format!("c{i}"), true, u16::MAX, None, expiry);
        if i % 2 == 0 {
            t.send(c, V5, Packet::Disconnect(Disconnect { reason: ReasonCode::Success, properties: Properties::default() }));
        } else {
            t.b.on_closed(c, t.now);
        }
        t.reap();
        t.advance(1);
        assert!(t.b.timer_entries() <= timer_bound(&t), "{} entries at cycle {i}", t.b.timer_entries());
    }
    assert!(t.b.session_count() > 500, "sessions wait for their expiry");
    t.advance(1_000);
    assert_eq!((t.b.connection_count(), t.b.session_count()), (0, 0));
    assert!(t.b.timer_entries() <= timer_bound(&t), "{} entries left", t.b.timer_entries());
}

// ---- persistent_client_expiration --------------------------------------------------------

/// A 3.1.1 client with clean session 0 that subscribes to `t` and drops its connection.
fn persistent_v311_gone(t: &mut TestBroker, id: &str) -> bool {
    let (c, present) = t.connect_full(V3_1_1, id, false, 0, None, Properties::default());
    t.subscribe(c, V3_1_1, "t", opts(1));
    t.b.on_closed(c, t.now);
    present
}

#[test]
fn an_offline_v311_session_expires_after_persistent_client_expiration() {
    let mut t = TestBroker::with(Options { persistent_client_expiration: 60, sys_interval_secs: 0, ..Options::default() });
    t.b.start(t.now);
    assert!(!persistent_v311_gone(&mut t, "p"));
    t.advance(59_999);
    assert_eq!(t.b.session_count(), 1, "kept until the interval has passed");
    // Coming back in time resumes it, and the interval starts again at the next disconnect.
    assert!(persistent_v311_gone(&mut t, "p"), "session present");
    t.advance(59_999);
    assert_eq!(t.b.session_count(), 1);
    t.advance(1);
    assert_eq!(t.b.session_count(), 0, "expired: subscriptions and queue go with it");
    assert_eq!(t.b.stats(t.now).subscriptions, 0);
    assert!(!persistent_v311_gone(&mut t, "p"), "a new session");
}

#[test]
fn persistent_client_expiration_defaults_to_a_week_zero_is_never_and_max_session_expiry_caps_it() {
    assert_eq!(Options::default().persistent_client_expiration, 7 * 24 * 3600);
    let week = 7 * 24 * 3600 * 1000;
    let mut t = TestBroker::with(Options { sys_interval_secs: 0, ..Options::default() });
    persistent_v311_gone(&mut t, "p");
    t.advance(week - 1);
    assert_eq!(t.b.session_count(), 1);
    t.advance(1);
    assert_eq!(t.b.session_count(), 0);

    let mut t = TestBroker::with(Options { persistent_client_expiration: 0, sys_interval_secs: 0, ..Options::default() });
    persistent_v311_gone(&mut t, "p");
    t.advance(100 * week);
    assert_eq!(t.b.session_count(), 1, "0: never, as Mosquitto's default");

    let o = Options { persistent_client_expiration: 3600, max_session_expiry: 10, sys_interval_secs: 0, ..Options::default() };
    let mut t = TestBroker::with(o);
    persistent_v311_gone(&mut t, "p");
    t.advance(10_000);
    assert_eq!(t.b.session_count(), 0, "capped by max_session_expiry");
}

struct StoredForever;

impl Hook for StoredForever {
    fn id(&self) -> &str {
        "stored-forever"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::StoredClients])
    }
    fn stored_clients(&mut self) -> Vec<ClientRecord> {
        let forever = |id: &str, protocol_level| ClientRecord { client_id: id.into(), protocol_level, session_expiry_secs: u32::MAX, ..ClientRecord::default() };
        vec![forever("v311", 4), forever("v31", 3), forever("v5", 5)]
    }
}

#[test]
fn a_restored_v3_session_stored_as_never_expiring_follows_persistent_client_expiration() {
    let o = Options { persistent_client_expiration: 60, sys_interval_secs: 0, ..Options::default() };
    let mut t = TestBroker::with_hooks(o, vec![Box::new(AllowAll), Box::new(StoredForever)]);
    t.b.start(t.now);
    assert_eq!(t.b.session_count(), 3);
    t.advance(60_000);
    // a 5.0 client asked for 0xFFFFFFFF itself: its session does not expire (5.0 3.1.2.11.2)
    assert_eq!(t.b.session_count(), 1, "the 3.x sessions expired, the 5.0 one is kept");
}

// ---- retained messages -------------------------------------------------------------------

#[test]
fn expired_retained_messages_are_swept_with_sys_off() {
    let mut t = TestBroker::with(Options { sys_interval_secs: 0, ..Options::default() });
    t.b.start(t.now);
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("keep", b"k", 0, 0, true));
    let kept = t.b.retained_bytes();
    for i in 0..100 {
        let props = Properties { message_expiry_interval: Some(1), ..Properties::default() };
        let topic = format!("gone/{i}");
        t.send(p, V5, Packet::Publish(Publish { dup: false, qospid: QosPid::AtMostOnce, retain: true, topic: &topic, properties: props, payload: &[1; 1000] }));
    }
    assert_eq!(t.b.stats(t.now).retained_messages, 101);
    // Nobody subscribes to them, so nothing else would ever look at them: the compaction
    // (every 30 s) sweeps them [MQTT-3.3.2-5].
    t.advance(30_000);
    assert_eq!(t.b.stats(t.now).retained_messages, 1);
    assert_eq!(t.b.retained_bytes(), kept, "their bytes are given back to max_retained_bytes");
}
