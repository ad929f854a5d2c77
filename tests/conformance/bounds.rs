//! Nothing accumulates over a long run: what a connection or session leaves behind (timer
//! entries, offline sessions, expired retained messages) goes with it.

use crate::common::*;
use edgemq::packets::{Disconnect, Packet, Properties, ReasonCode, Version::*};

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
        let (c, _) = t.connect_full(V5, &format!("c{i}"), true, u16::MAX, None, expiry.clone());
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
