//! Retained messages [MQTT-3.3.1-5..12].

use crate::common::*;
use edgemq::packets::{Packet, Properties, Publish, QosPid, SubOptions, UserProps, Version::*};
use edgemq::Options;

fn retained(topic: &str, payload: &[u8]) -> Vec<u8> {
    // delivered on subscribe: RETAIN flag set, QoS 0 here
    encode(V3_1_1, publish(topic, payload, 0, 0, true))
}

#[test]
fn a_retained_message_is_delivered_on_subscribe_with_the_retain_flag() {
    let mut t = TestBroker::new();
    let p = t.connect(V3_1_1, "p");
    t.send(p, V3_1_1, publish("r/1", b"v1", 0, 0, true));
    let s = t.connect(V3_1_1, "s");
    assert_eq!(t.subscribe(s, V3_1_1, "r/1", opts(0)), retained("r/1", b"v1"));
}

#[test]
fn a_retained_message_is_replaced_and_cleared_by_an_empty_payload() {
    let mut t = TestBroker::new();
    let p = t.connect(V3_1_1, "p");
    t.send(p, V3_1_1, publish("r/1", b"v1", 0, 0, true));
    t.send(p, V3_1_1, publish("r/1", b"v2", 0, 0, true));
    let s = t.connect(V3_1_1, "s");
    assert_eq!(t.subscribe(s, V3_1_1, "r/1", opts(0)), retained("r/1", b"v2"));
    // [MQTT-3.3.1-6] an empty retained payload clears it (and is still forwarded live, without RETAIN)
    t.send(p, V3_1_1, publish("r/1", b"", 0, 0, true));
    assert_eq!(t.take(s), encode(V3_1_1, publish("r/1", b"", 0, 0, false)));
    let s2 = t.connect(V3_1_1, "s2");
    assert_eq!(t.subscribe(s2, V3_1_1, "r/1", opts(0)), Vec::<u8>::new());
}

#[test]
fn a_wildcard_subscription_receives_every_matching_retained_message() {
    let mut t = TestBroker::new();
    let p = t.connect(V3_1_1, "p");
    for topic in ["r/a", "r/b", "x/c"] {
        t.send(p, V3_1_1, publish(topic, topic.as_bytes(), 0, 0, true));
    }
    let s = t.connect(V3_1_1, "s");
    let mut got = t.subscribe(s, V3_1_1, "r/#", opts(0));
    let mut want = [retained("r/a", b"r/a"), retained("r/b", b"r/b")];
    // order of retained delivery is not specified: compare as sets of packets
    let a = want[0].len();
    if got[..a] != want[0][..] {
        want.swap(0, 1);
    }
    assert_eq!(std::mem::take(&mut got), want.concat());
}

#[test]
fn live_messages_are_forwarded_without_retain_unless_retain_as_published() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "a", opts(0));
    let rap = t.connect(V5, "rap");
    t.subscribe(rap, V5, "a", SubOptions { retain_as_published: true, ..opts(0) });
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("a", b"x", 0, 0, true));
    assert_eq!(t.take(s), encode(V5, publish("a", b"x", 0, 0, false)));
    assert_eq!(t.take(rap), encode(V5, publish("a", b"x", 0, 0, true)));
}

#[test]
fn retain_handling_two_sends_no_retained_and_one_only_for_a_new_subscription() {
    let mut t = TestBroker::new();
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("a", b"x", 0, 0, true));
    let s = t.connect(V5, "s");
    assert!(t.subscribe(s, V5, "a", SubOptions { retain_handling: 2, ..opts(0) }).is_empty());
    let s1 = t.connect(V5, "s1");
    assert!(!t.subscribe(s1, V5, "a", SubOptions { retain_handling: 1, ..opts(0) }).is_empty());
    assert!(t.subscribe(s1, V5, "a", SubOptions { retain_handling: 1, ..opts(0) }).is_empty());
    assert!(!t.subscribe(s1, V5, "a", SubOptions { retain_handling: 0, ..opts(0) }).is_empty());
}

#[test]
fn the_retained_count_bound_refuses_new_topics_but_delivers_the_message() {
    let mut t = TestBroker::with(Options { max_retained_messages: 1, ..Options::default() });
    let live = t.connect(V3_1_1, "live");
    t.subscribe(live, V3_1_1, "#", opts(0));
    let p = t.connect(V3_1_1, "p");
    t.send(p, V3_1_1, publish("r/1", b"1", 0, 0, true));
    t.send(p, V3_1_1, publish("r/2", b"2", 0, 0, true));
    assert_eq!(t.take(live).len(), 2 * encode(V3_1_1, publish("r/1", b"1", 0, 0, false)).len());
    let s = t.connect(V3_1_1, "s");
    assert_eq!(t.subscribe(s, V3_1_1, "r/#", opts(0)), retained("r/1", b"1"));
    assert_eq!(t.b.stats(t.now).retained_messages, 1);
}

#[test]
fn an_expired_retained_message_is_not_delivered() {
    let mut t = TestBroker::new();
    let p = t.connect(V5, "p");
    let props = Properties { message_expiry_interval: Some(2), ..Properties::default() };
    t.send(p, V5, Packet::Publish(Publish { dup: false, qospid: QosPid::AtMostOnce, retain: true, topic: "e", properties: props, payload: b"x" }));
    t.advance(3_000);
    let s = t.connect(V5, "s");
    assert!(t.subscribe(s, V5, "e", opts(0)).is_empty());
}

#[test]
fn sys_clients_connected_is_published_every_interval_and_follows_clients() {
    let mut t = TestBroker::with(Options { sys_interval_secs: 10, ..Options::default() });
    t.b.start(t.now);
    let s = t.connect(V3_1_1, "s");
    t.subscribe(s, V3_1_1, "$SYS/broker/clients/connected", opts(0));
    t.advance(10_000);
    assert_eq!(t.take(s), encode(V3_1_1, publish("$SYS/broker/clients/connected", b"1", 0, 0, false)));
    let _other = t.connect(V3_1_1, "other");
    t.advance(10_000);
    assert_eq!(t.take(s), encode(V3_1_1, publish("$SYS/broker/clients/connected", b"2", 0, 0, false)));
}

#[test]
fn a_hash_subscription_does_not_receive_sys_topics() {
    let mut t = TestBroker::with(Options { sys_interval_secs: 10, ..Options::default() });
    t.b.start(t.now);
    let s = t.connect(V3_1_1, "s");
    t.subscribe(s, V3_1_1, "#", opts(0));
    t.advance(10_000);
    // [MQTT-4.7.2-1] wildcards at the first level do not match `$` topics
    assert!(t.take(s).is_empty());
}

/// Issue 13: the retained byte bound counts every property a publisher sizes, not only topic and
/// payload. 10,000 retained messages of a 1-byte payload, each with four properties of 65,535
/// bytes: a bound that counted only topic and payload would keep all of them (2.6 GB).
#[test]
fn the_retained_byte_bound_counts_every_property() {
    const BIG: usize = 65_535;
    let o = Options { max_packet_size: 512 * 1024, sys_interval_secs: 0, ..Options::default() };
    let (max_bytes, max_count) = (o.max_retained_bytes, o.max_retained_messages);
    let mut t = TestBroker::with(o);
    let p = t.connect(V5, "p");
    let (text, data) = ("c".repeat(BIG), vec![0xab; BIG]);
    let user = [("k", &text[1..])];
    let mut wire = Vec::new();
    let fits = max_bytes / (4 * BIG);
    for i in 0..10_000 {
        let topic = format!("big/{i}");
        let properties = Properties {
            content_type: Some(&text),
            response_topic: Some(&text),
            correlation_data: Some(&data),
            user: UserProps::List(&user),
            ..Properties::default()
        };
        wire.clear();
        Packet::Publish(Publish { dup: false, qospid: QosPid::AtMostOnce, retain: true, topic: &topic, properties, payload: b"x" })
            .encode(V5, &mut wire)
            .unwrap();
        t.feed(p, &wire);
        let kept = t.b.stats(t.now).retained_messages as usize;
        assert!(t.b.retained_bytes() <= max_bytes, "{} retained bytes after {i}", t.b.retained_bytes());
        assert!(kept <= fits, "{kept} messages of {} bytes each retained within {max_bytes} bytes", 4 * BIG);
    }
    let stats = t.b.stats(t.now);
    let kept = stats.retained_messages as usize;
    // Filled up to the bound (each message costs its properties plus under 1 KiB more), then
    // refused: by the byte bound, the count bound is far away.
    assert!(kept >= max_bytes / (4 * BIG + 1024) && kept < max_count, "{kept} kept");
    assert_eq!(stats.messages_dropped as usize, 10_000 - kept, "each refusal is counted");
    // The ones kept are whole: every property comes back on subscribe.
    let s = t.connect(V5, "s");
    let got = t.subscribe(s, V5, "big/0", opts(0));
    assert!(got.len() > 4 * BIG, "{} bytes", got.len());
}
