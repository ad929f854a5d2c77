//! QoS 0/1/2 flows, delivery at min(publish, granted) QoS, redelivery, packet ids.

use crate::common::*;
use edgemq::packets::{Packet, Properties, Publish, QosPid, Version::*};

#[test]
fn a_message_is_delivered_at_the_lower_of_publish_and_granted_qos() {
    let mut t = TestBroker::new();
    let s = t.connect(V3_1_1, "s");
    t.subscribe(s, V3_1_1, "a/+", opts(1));
    let p = t.connect(V3_1_1, "p");
    t.send(p, V3_1_1, publish("a/b", b"x", 2, 9, false));
    assert_eq!(t.take(p), encode(V3_1_1, Packet::PubRec(ack(9))));
    // QoS 2 published, QoS 1 granted: delivered at QoS 1 with the subscriber's own packet id.
    assert_eq!(t.take(s), encode(V3_1_1, publish("a/b", b"x", 1, 1, false)));
    t.send(p, V3_1_1, publish("a/b", b"y", 0, 0, false));
    assert_eq!(t.take(s), encode(V3_1_1, publish("a/b", b"y", 0, 0, false)));
}

#[test]
fn qos2_resent_with_dup_before_pubrel_is_delivered_once() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(2));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"once", 2, 5, false));
    assert_eq!(t.take(p), encode(V5, Packet::PubRec(ack(5))));
    let mut dup = publish("t", b"once", 2, 5, false);
    if let Packet::Publish(ref mut x) = dup {
        x.dup = true;
    }
    t.send(p, V5, dup);
    assert_eq!(t.take(p), encode(V5, Packet::PubRec(ack(5))));
    t.send(p, V5, Packet::PubRel(ack(5)));
    assert_eq!(t.take(p), encode(V5, Packet::PubComp(ack(5))));
    // exactly one delivery
    assert_eq!(t.take(s), encode(V5, publish("t", b"once", 2, 1, false)));
}

#[test]
fn outbound_qos2_completes_with_pubrec_pubrel_pubcomp() {
    let mut t = TestBroker::new();
    let s = t.connect(V3_1_1, "s");
    t.subscribe(s, V3_1_1, "t", opts(2));
    let p = t.connect(V3_1_1, "p");
    t.send(p, V3_1_1, publish("t", b"m", 2, 1, false));
    t.take(p);
    assert_eq!(t.take(s), encode(V3_1_1, publish("t", b"m", 2, 1, false)));
    t.send(s, V3_1_1, Packet::PubRec(ack(1)));
    assert_eq!(t.take(s), encode(V3_1_1, Packet::PubRel(ack(1))));
    t.send(s, V3_1_1, Packet::PubComp(ack(1)));
    assert_eq!(t.b.stats(t.now).inflight, 0);
}

#[test]
fn unacknowledged_qos1_is_resent_with_dup_and_the_same_id_after_reconnect() {
    let mut t = TestBroker::new();
    let (s, _) = t.connect_full(V3_1_1, "s", false, 0, None, Properties::default());
    t.subscribe(s, V3_1_1, "t", opts(1));
    let p = t.connect(V3_1_1, "p");
    t.send(p, V3_1_1, publish("t", b"m", 1, 1, false));
    assert_eq!(t.take(s), encode(V3_1_1, publish("t", b"m", 1, 1, false)));
    t.b.on_closed(s, t.now); // network drop, no PUBACK
    t.reap();
    let (s2, present) = t.connect_full(V3_1_1, "s", false, 0, None, Properties::default());
    assert!(present, "[MQTT-3.2.2-2] session present on resume");
    let mut again = publish("t", b"m", 1, 1, false);
    if let Packet::Publish(Publish { ref mut dup, .. }) = again {
        *dup = true;
    }
    // [MQTT-4.4.0-1] resent with DUP=1 and the same packet id
    assert_eq!(t.take(s2), encode(V3_1_1, again));
}

#[test]
fn packet_ids_in_flight_are_not_reused() {
    let mut t = TestBroker::new();
    let s = t.connect(V3_1_1, "s");
    t.subscribe(s, V3_1_1, "t", opts(1));
    let p = t.connect(V3_1_1, "p");
    for i in 1..=3u16 {
        t.send(p, V3_1_1, publish("t", b"m", 1, i, false));
    }
    let out = t.take(s);
    let mut rest = &out[..];
    let mut ids = Vec::new();
    while !rest.is_empty() {
        let (pk, n) = edgemq::packets::decode(rest, V3_1_1, u32::MAX).unwrap().unwrap();
        if let Packet::Publish(Publish { qospid: QosPid::AtLeastOnce(id), .. }) = pk {
            ids.push(id.get());
        }
        rest = &rest[n..];
    }
    assert_eq!(ids, [1, 2, 3]);
    t.send(s, V3_1_1, Packet::PubAck(ack(2)));
    t.send(p, V3_1_1, publish("t", b"m", 1, 4, false));
    // id 2 is free again, 1 and 3 are still in flight: the next id is 4 (ids advance), never 1 or 3
    let next = t.take(s);
    let (pk, _) = edgemq::packets::decode(&next, V3_1_1, u32::MAX).unwrap().unwrap();
    let Packet::Publish(Publish { qospid: QosPid::AtLeastOnce(id), .. }) = pk else { panic!("{pk:?}") };
    assert!(id.get() != 1 && id.get() != 3);
}

#[test]
fn the_inflight_window_follows_the_client_receive_maximum() {
    let mut t = TestBroker::new();
    let props = Properties { receive_maximum: Some(2), ..Properties::default() };
    let (s, _) = t.connect_full(V5, "s", true, 0, None, props);
    t.subscribe(s, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    for i in 1..=3u16 {
        t.send(p, V5, publish("t", b"m", 1, i, false));
    }
    let first = t.take(s);
    assert_eq!(first, [encode(V5, publish("t", b"m", 1, 1, false)), encode(V5, publish("t", b"m", 1, 2, false))].concat());
    t.send(s, V5, Packet::PubAck(ack(1)));
    assert_eq!(t.take(s), encode(V5, publish("t", b"m", 1, 3, false)));
}

#[test]
fn a_v311_client_is_not_held_to_the_v5_receive_maximum_for_qos2() {
    // 3.1.1 has no Receive Maximum: the client was never told ours, so more unacknowledged
    // QoS 2 PUBLISH than it is not a protocol error (loadgen's pairs q2 v4 window of 100 was
    // closed at 64). 5.0 clients still get DISCONNECT 0x93 (statements_v5).
    let mut t = TestBroker::with(edgemq::Options { receive_maximum: 4, ..edgemq::Options::default() });
    let s = t.connect(V3_1_1, "s");
    t.subscribe(s, V3_1_1, "t", opts(0));
    let p = t.connect(V3_1_1, "p");
    for i in 1..=10u16 {
        t.send(p, V3_1_1, publish("t", b"x", 2, i, false));
        assert_eq!(t.take(p), encode(V3_1_1, Packet::PubRec(ack(i))), "PUBREC {i}");
    }
    assert!(!t.b.is_closing(p));
    assert_eq!(t.take(s).len(), 10 * encode(V3_1_1, publish("t", b"x", 0, 0, false)).len());
    for i in 1..=10u16 {
        t.send(p, V3_1_1, Packet::PubRel(ack(i)));
        assert_eq!(t.take(p), encode(V3_1_1, Packet::PubComp(ack(i))));
    }
}

#[test]
fn a_v311_client_is_closed_beyond_receive_maximum_v3_and_counted() {
    // 3.x has no receive maximum and no DISCONNECT from the server: beyond receive_maximum_v3
    // QoS 2 PUBLISH awaiting PUBREL the connection is closed (the will is published), so the
    // identifiers a 3.x session keeps stay bounded.
    let mut t = TestBroker::with(edgemq::Options { receive_maximum: 2, receive_maximum_v3: 4, ..edgemq::Options::default() });
    let p = t.connect(V3_1_1, "p");
    for i in 1..=4u16 {
        t.send(p, V3_1_1, publish("t", b"x", 2, i, false));
        assert_eq!(t.take(p), encode(V3_1_1, Packet::PubRec(ack(i))), "PUBREC {i}");
    }
    // a resend of one awaiting PUBREL is not a new one: PUBREC again
    t.send(p, V3_1_1, publish("t", b"x", 2, 3, false));
    assert_eq!(t.take(p), encode(V3_1_1, Packet::PubRec(ack(3))));
    assert!(!t.b.is_closing(p));
    assert_eq!(t.b.stats(t.now).receive_maximum_exceeded, 0);
    t.send(p, V3_1_1, publish("t", b"x", 2, 5, false));
    assert!(t.take(p).is_empty(), "no DISCONNECT in 3.x");
    assert!(t.b.is_closing(p));
    assert_eq!(t.b.stats(t.now).receive_maximum_exceeded, 1);

    // Releasing ids makes room again: PUBREL frees one, and the next new id is accepted.
    let q = t.connect(V3_1_1, "q");
    for i in 1..=4u16 {
        t.send(q, V3_1_1, publish("t", b"x", 2, i, false));
    }
    t.send(q, V3_1_1, Packet::PubRel(ack(2)));
    t.take(q);
    t.send(q, V3_1_1, publish("t", b"x", 2, 9, false));
    assert_eq!(t.take(q), encode(V3_1_1, Packet::PubRec(ack(9))));
    assert!(!t.b.is_closing(q));
}

#[test]
fn a_v5_client_beyond_the_receive_maximum_is_counted_too() {
    let mut t = TestBroker::with(edgemq::Options { receive_maximum: 1, ..edgemq::Options::default() });
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"1", 2, 7, false));
    t.take(p);
    t.send(p, V5, publish("t", b"2", 2, 8, false));
    assert_eq!(t.take(p), hex("e0 01 93"), "[MQTT-3.3.4-7] DISCONNECT 0x93");
    assert_eq!(t.b.stats(t.now).receive_maximum_exceeded, 1);
}
