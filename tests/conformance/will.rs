//! Wills, keep alive and take-over.

use crate::common::*;
use edgemq::packets::{Disconnect, Packet, Properties, QoS, ReasonCode, Version, Version::*, Will};

fn will<'a>(topic: &'a str, retain: bool, delay: Option<u32>) -> Option<Will<'a>> {
    Some(Will {
        topic,
        payload: b"gone",
        qos: QoS::AtMostOnce,
        retain,
        properties: Properties { will_delay_interval: delay, ..Properties::default() },
    })
}

fn watcher(t: &mut TestBroker, v: Version) -> edgemq::broker::ClientId {
    let w = t.connect(v, "watcher");
    t.subscribe(w, v, "will/#", opts(0));
    w
}

#[test]
fn the_will_is_sent_when_the_network_closes_without_disconnect() {
    let mut t = TestBroker::new();
    let w = watcher(&mut t, V3_1_1);
    let (c, _) = t.connect_full(V3_1_1, "c", true, 0, will("will/c", false, None), Properties::default());
    t.b.on_closed(c, t.now);
    assert_eq!(t.take(w), encode(V3_1_1, publish("will/c", b"gone", 0, 0, false)));
}

#[test]
fn the_will_is_not_sent_after_a_normal_disconnect() {
    let mut t = TestBroker::new();
    let w = watcher(&mut t, V3_1_1);
    let (c, _) = t.connect_full(V3_1_1, "c", true, 0, will("will/c", false, None), Properties::default());
    t.send(c, V3_1_1, Packet::Disconnect(Disconnect { reason: ReasonCode::Success, properties: Properties::default() }));
    t.b.on_closed(c, t.now);
    assert!(t.take(w).is_empty());
}

#[test]
fn disconnect_with_will_message_sends_the_will() {
    let mut t = TestBroker::new();
    let w = watcher(&mut t, V5);
    let (c, _) = t.connect_full(V5, "c", true, 0, will("will/c", false, None), Properties::default());
    t.send(c, V5, Packet::Disconnect(Disconnect { reason: ReasonCode::DisconnectWithWill, properties: Properties::default() }));
    assert_eq!(t.take(w), encode(V5, publish("will/c", b"gone", 0, 0, false)));
}

#[test]
fn a_retained_will_is_kept_for_later_subscribers() {
    let mut t = TestBroker::new();
    let (c, _) = t.connect_full(V3_1_1, "c", true, 0, will("will/c", true, None), Properties::default());
    t.b.on_closed(c, t.now);
    let s = t.connect(V3_1_1, "s");
    assert_eq!(t.subscribe(s, V3_1_1, "will/c", opts(0)), encode(V3_1_1, publish("will/c", b"gone", 0, 0, true)));
}

#[test]
fn keep_alive_closes_after_one_and_a_half_intervals_and_sends_the_will() {
    let mut t = TestBroker::new();
    let w = watcher(&mut t, V5);
    let (c, _) = t.connect_full(V5, "c", true, 10, will("will/c", false, None), Properties::default());
    t.advance(14_000);
    assert!(t.take(c).is_empty(), "still inside 1.5 x keep alive");
    t.send(c, V5, Packet::PingReq);
    assert_eq!(t.take(c), encode(V5, Packet::PingResp));
    t.advance(14_999);
    assert!(t.reap().is_empty());
    t.advance(2);
    // [MQTT-3.1.2-24] closed, with DISCONNECT 0x8D in 5.0
    assert_eq!(t.take(c), encode(V5, Packet::Disconnect(Disconnect { reason: ReasonCode::KeepAliveTimeout, properties: Properties::default() })));
    assert_eq!(t.reap(), [c]);
    assert_eq!(t.take(w), encode(V5, publish("will/c", b"gone", 0, 0, false)));
}

#[test]
fn a_connection_that_never_sends_connect_is_closed_at_the_connect_timeout() {
    let mut t = TestBroker::new();
    let c = t.accept();
    t.feed(c, &hex("10 0d 00 04 4d")); // half a CONNECT
    t.advance(9_999);
    assert!(t.reap().is_empty());
    t.advance(2);
    assert_eq!(t.reap(), [c]);
}

#[test]
fn a_will_with_a_delay_waits_and_is_cancelled_by_a_reconnect() {
    let mut t = TestBroker::new();
    let w = watcher(&mut t, V5);
    let session = Properties { session_expiry_interval: Some(100), ..Properties::default() };
    let (c, _) = t.connect_full(V5, "c", false, 0, will("will/c", false, Some(5)), session);
    t.b.on_closed(c, t.now);
    t.advance(4_000);
    assert!(t.take(w).is_empty(), "[MQTT-3.1.3-9] held for the will delay");
    let _ = t.connect_full(V5, "c", false, 0, None, session);
    t.advance(10_000);
    assert!(t.take(w).is_empty(), "reconnect cancelled the will");
    // a second drop with a will delay that expires
    let (c, _) = t.connect_full(V5, "c", false, 0, will("will/c", false, Some(5)), session);
    t.b.on_closed(c, t.now);
    t.advance(5_000);
    assert_eq!(t.take(w), encode(V5, publish("will/c", b"gone", 0, 0, false)));
}

#[test]
fn a_second_connect_with_the_same_id_takes_the_session_over() {
    let mut t = TestBroker::new();
    let (a, _) = t.connect_full(V5, "dup", false, 0, None, Properties { session_expiry_interval: Some(60), ..Properties::default() });
    let (b, present) = t.connect_full(V5, "dup", false, 0, None, Properties { session_expiry_interval: Some(60), ..Properties::default() });
    assert!(present);
    // [MQTT-3.1.4-3] the old connection gets DISCONNECT 0x8E and is closed
    assert_eq!(t.take(a), encode(V5, Packet::Disconnect(Disconnect { reason: ReasonCode::SessionTakenOver, properties: Properties::default() })));
    assert_eq!(t.reap(), [a]);
    assert!(!t.b.is_closing(b));
}

#[test]
fn clean_session_false_resumes_subscriptions_and_queued_messages() {
    let mut t = TestBroker::new();
    let (s, _) = t.connect_full(V3_1_1, "s", false, 0, None, Properties::default());
    t.subscribe(s, V3_1_1, "q", opts(1));
    t.send(s, V3_1_1, Packet::Disconnect(Disconnect { reason: ReasonCode::Success, properties: Properties::default() }));
    t.reap();
    let p = t.connect(V3_1_1, "p");
    t.send(p, V3_1_1, publish("q", b"while away", 1, 1, false));
    t.send(p, V3_1_1, publish("q", b"qos0 not queued", 0, 0, false));
    let (s2, present) = t.connect_full(V3_1_1, "s", false, 0, None, Properties::default());
    assert!(present);
    assert_eq!(t.take(s2), encode(V3_1_1, publish("q", b"while away", 1, 1, false)));
}
