//! MQTT 3.1.1 normative statements, one test (at least) per statement, named after it. In 3.1.1
//! the server answers a violation by closing the connection without a word (no DISCONNECT
//! packet exists server to client), so most of these assert "nothing sent, connection closed".

use crate::common::*;
use edgemq::broker::ClientId;
use edgemq::hooks::{Access, ClientInfo, Hook, Point, Provides};
use edgemq::packets::{Disconnect, Packet, Properties, Publish, QoS, ReasonCode, SubOptions, Subscribe, SubscribeFilters, TopicList, Unsubscribe, Version::*};
use edgemq::Options;

const V: edgemq::packets::Version = V3_1_1;

/// Feeds bytes to a connected client and expects the connection closed with nothing sent.
fn closes_silently(t: &mut TestBroker, c: ClientId, bytes: &str) {
    t.feed(c, &hex(bytes));
    assert!(t.take(c).is_empty(), "a 3.1.1 client gets no packet, only the close");
    assert_eq!(t.reap(), [c]);
}

/// A CONNECT in raw bytes on a fresh connection: what came back, and whether it closed.
fn connect_raw(t: &mut TestBroker, bytes: &str) -> (Vec<u8>, bool) {
    let c = t.accept();
    t.feed(c, &hex(bytes));
    let out = t.take(c);
    let closed = t.reap() == [c];
    (out, closed)
}

fn disconnect(t: &mut TestBroker, c: ClientId) {
    t.send(c, V, Packet::Disconnect(Disconnect { reason: ReasonCode::Success, properties: Properties::default() }));
    t.reap();
}

fn drop_network(t: &mut TestBroker, c: ClientId) {
    t.b.on_closed(c, t.now);
    t.reap();
}

fn persistent(t: &mut TestBroker, id: &str) -> (ClientId, bool) {
    t.connect_full(V, id, false, 0, None, Properties::default())
}

fn subscribe_many(t: &mut TestBroker, c: ClientId, id: u16, filters: &[(&str, SubOptions)]) -> Vec<u8> {
    t.send(c, V, Packet::Subscribe(Subscribe { pid: pid(id), properties: Properties::default(), filters: SubscribeFilters::List(filters) }));
    t.take(c)
}

fn unsubscribe(t: &mut TestBroker, c: ClientId, id: u16, filters: &[&str]) -> Vec<u8> {
    t.send(c, V, Packet::Unsubscribe(Unsubscribe { pid: pid(id), properties: Properties::default(), filters: TopicList::List(filters) }));
    t.take(c)
}

fn with_dup(mut p: Packet<'_>) -> Packet<'_> {
    if let Packet::Publish(Publish { ref mut dup, .. }) = p {
        *dup = true;
    }
    p
}

// ---------------------------------------------------------------------------------------------
// 1.5 and 2: data representation, fixed header, packet identifiers

#[test]
fn mqtt311_1_5_3_1_an_ill_formed_utf8_topic_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "30 06 00 03 ed a0 80 78"); // topic = U+D800
}

#[test]
fn mqtt311_1_5_3_2_a_null_character_in_a_topic_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "30 06 00 03 61 00 62 78");
}

#[test]
fn mqtt311_1_5_3_3_a_byte_order_mark_in_a_topic_is_kept() {
    let mut t = TestBroker::new();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "\u{feff}t", opts(0));
    let p = t.connect(V, "p");
    t.feed(p, &hex("30 07 00 04 ef bb bf 74 78"));
    assert_eq!(t.take(s), hex("30 07 00 04 ef bb bf 74 78"));
}

#[test]
fn mqtt311_2_2_2_2_invalid_fixed_header_flags_close_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "c1 00"); // PINGREQ with a flag set
}

#[test]
fn mqtt311_2_3_1_1_packet_identifier_zero_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "32 06 00 01 74 00 00 78"); // QoS 1 PUBLISH, id 0
}

#[test]
fn mqtt311_2_3_1_5_a_qos0_publish_is_sent_without_a_packet_identifier() {
    let mut t = TestBroker::new();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "t", opts(2));
    let p = t.connect(V, "p");
    t.send(p, V, publish("t", b"x", 0, 0, false));
    // [MQTT-4.3.1-1] QoS 0, DUP 0, no identifier
    assert_eq!(t.take(s), hex("30 04 00 01 74 78"));
}

#[test]
fn mqtt311_2_3_1_6_acknowledgements_carry_the_packet_identifier_of_their_publish() {
    let mut t = TestBroker::new();
    let p = t.connect(V, "p");
    t.feed(p, &hex("32 06 00 01 74 12 34 78"));
    assert_eq!(t.take(p), hex("40 02 12 34"));
    t.feed(p, &hex("34 06 00 01 74 01 02 78"));
    assert_eq!(t.take(p), hex("50 02 01 02"));
    t.feed(p, &hex("62 02 01 02"));
    assert_eq!(t.take(p), hex("70 02 01 02"));
    // and the server's PUBREL carries the identifier of its PUBLISH
    let s = t.connect(V, "s");
    t.subscribe(s, V, "t", opts(2));
    t.send(p, V, publish("t", b"x", 2, 3, false));
    assert_eq!(t.take(s), hex("34 06 00 01 74 00 01 78"));
    t.feed(s, &hex("50 02 00 01"));
    assert_eq!(t.take(s), hex("62 02 00 01"));
}

#[test]
fn mqtt311_2_3_1_7_suback_and_unsuback_carry_the_packet_identifier_of_their_request() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    t.feed(c, &hex("82 06 42 42 00 01 74 01"));
    // [MQTT-3.8.4-1] [MQTT-3.8.4-2]
    assert_eq!(t.take(c), hex("90 03 42 42 01"));
    t.feed(c, &hex("a2 05 43 43 00 01 74"));
    // [MQTT-3.10.4-4]
    assert_eq!(t.take(c), hex("b0 02 43 43"));
}

// ---------------------------------------------------------------------------------------------
// 3.1 CONNECT, 3.2 CONNACK

#[test]
fn mqtt311_3_1_0_2_a_second_connect_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 63");
}

#[test]
fn mqtt311_3_1_2_3_a_set_reserved_connect_flag_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 0d 00 04 4d 51 54 54 04 03 00 3c 00 01 63");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_2_6_clean_session_discards_the_previous_session() {
    let mut t = TestBroker::new();
    let (c, _) = persistent(&mut t, "c");
    t.subscribe(c, V, "t", opts(1));
    disconnect(&mut t, c);
    let (c, present) = t.connect_full(V, "c", true, 0, None, Properties::default());
    assert!(!present, "[MQTT-3.2.2-1] session present 0");
    let p = t.connect(V, "p");
    t.send(p, V, publish("t", b"x", 1, 1, false));
    assert!(t.take(c).is_empty(), "the subscription went with the old session");
    // the clean session is not kept after the connection either
    disconnect(&mut t, c);
    let (_, present) = persistent(&mut t, "c");
    assert!(!present);
}

#[test]
fn mqtt311_3_1_2_7_retained_messages_outlive_the_session() {
    let mut t = TestBroker::new();
    let p = t.connect(V, "p");
    t.send(p, V, publish("r", b"kept", 0, 0, true));
    disconnect(&mut t, p);
    let s = t.connect(V, "s");
    assert_eq!(t.subscribe(s, V, "r", opts(0)), encode(V, publish("r", b"kept", 0, 0, true)));
}

#[test]
fn mqtt311_3_1_2_9_a_will_flag_without_will_topic_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 0d 00 04 4d 51 54 54 04 06 00 00 00 01 63");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_2_11_will_qos_without_the_will_flag_closes_the_connection() {
    let mut t = TestBroker::new();
    // [MQTT-3.1.2-13] will QoS 1 (0x08) with the will flag clear
    let (out, closed) = connect_raw(&mut t, "10 0d 00 04 4d 51 54 54 04 0a 00 00 00 01 63");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_2_12_no_will_flag_means_no_will_is_published() {
    let mut t = TestBroker::new();
    let w = t.connect(V, "w");
    t.subscribe(w, V, "#", opts(0));
    let c = t.connect(V, "c");
    drop_network(&mut t, c);
    t.advance(60_000);
    assert!(t.take(w).is_empty());
}

#[test]
fn mqtt311_3_1_2_14_will_qos_3_closes_the_connection() {
    let mut t = TestBroker::new();
    // will flag + QoS 3 + clean session, will topic "w", will message "x"
    let (out, closed) = connect_raw(&mut t, "10 13 00 04 4d 51 54 54 04 1e 00 00 00 01 63 00 01 77 00 01 78");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_2_15_will_retain_without_the_will_flag_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 0d 00 04 4d 51 54 54 04 22 00 00 00 01 63");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_2_18_a_user_name_without_the_user_name_flag_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 10 00 04 4d 51 54 54 04 02 00 00 00 01 63 00 01 75");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_2_19_the_user_name_flag_without_a_user_name_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 0d 00 04 4d 51 54 54 04 82 00 00 00 01 63");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_2_20_a_password_without_the_password_flag_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 13 00 04 4d 51 54 54 04 82 00 00 00 01 63 00 01 75 00 01 70");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_2_21_the_password_flag_without_a_password_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 10 00 04 4d 51 54 54 04 c2 00 00 00 01 63 00 01 75");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_2_22_a_password_without_a_user_name_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 10 00 04 4d 51 54 54 04 42 00 00 00 01 63 00 01 70");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_2_24_keep_alive_closes_after_one_and_a_half_intervals() {
    let mut t = TestBroker::new();
    let (c, _) = t.connect_full(V, "c", true, 4, None, Properties::default());
    t.advance(5_999);
    assert!(t.reap().is_empty());
    t.advance(2);
    assert!(t.take(c).is_empty(), "no DISCONNECT in 3.1.1");
    assert_eq!(t.reap(), [c]);
}

#[test]
fn mqtt311_3_1_3_2_the_client_identifier_names_the_session_state() {
    let mut t = TestBroker::new();
    let (a, _) = persistent(&mut t, "a");
    t.subscribe(a, V, "for/a", opts(1));
    disconnect(&mut t, a);
    let (b, _) = persistent(&mut t, "b");
    t.subscribe(b, V, "for/b", opts(1));
    disconnect(&mut t, b);
    let p = t.connect(V, "p");
    t.send(p, V, publish("for/a", b"A", 1, 1, false));
    t.send(p, V, publish("for/b", b"B", 1, 2, false));
    let (a, _) = persistent(&mut t, "a");
    assert_eq!(t.take(a), encode(V, publish("for/a", b"A", 1, 1, false)));
    let (b, _) = persistent(&mut t, "b");
    assert_eq!(t.take(b), encode(V, publish("for/b", b"B", 1, 1, false)));
}

#[test]
fn mqtt311_3_1_3_4_an_ill_formed_utf8_client_identifier_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 0d 00 04 4d 51 54 54 04 02 00 00 00 01 ff");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_3_5_a_23_character_alphanumeric_client_identifier_is_allowed() {
    let mut t = TestBroker::new();
    let c = t.accept();
    t.send(c, V, connect_packet(V, "0123456789abcdefghijkLM", true, 0, None));
    assert_eq!(t.take(c), hex("20 02 00 00"));
}

#[test]
fn mqtt311_3_1_3_6_each_empty_client_identifier_gets_its_own_session() {
    let mut t = TestBroker::new();
    let a = t.accept();
    t.send(a, V, connect_packet(V, "", true, 0, None));
    assert_eq!(t.take(a), hex("20 02 00 00"));
    let b = t.accept();
    t.send(b, V, connect_packet(V, "", true, 0, None));
    assert_eq!(t.take(b), hex("20 02 00 00"));
    // neither took the other over: both are connected, each with its own subscriptions
    assert!(t.reap().is_empty());
    t.subscribe(a, V, "for/a", opts(0));
    let p = t.connect(V, "p");
    t.send(p, V, publish("for/a", b"x", 0, 0, false));
    assert_eq!(t.take(a), encode(V, publish("for/a", b"x", 0, 0, false)));
    assert!(t.take(b).is_empty());
}

#[test]
fn mqtt311_3_1_3_10_an_ill_formed_utf8_will_topic_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 13 00 04 4d 51 54 54 04 06 00 00 00 01 63 00 01 ff 00 01 78");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_3_11_an_ill_formed_utf8_user_name_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 10 00 04 4d 51 54 54 04 82 00 00 00 01 63 00 01 ff");
    assert!(closed);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_4_1_a_malformed_connect_closes_without_connack() {
    let mut t = TestBroker::new();
    // the client id claims 9 bytes, 1 is there
    let (out, closed) = connect_raw(&mut t, "10 0d 00 04 4d 51 54 54 04 02 00 00 00 09 63");
    assert!(closed);
    // [MQTT-3.2.2-6] no return code fits: no CONNACK
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn mqtt311_3_1_4_2_a_second_client_with_the_same_id_disconnects_the_first() {
    let mut t = TestBroker::new();
    let a = t.connect(V, "dup");
    let b = t.connect(V, "dup");
    assert!(t.take(a).is_empty(), "no DISCONNECT in 3.1.1");
    assert_eq!(t.reap(), [a]);
    t.send(b, V, Packet::PingReq);
    assert_eq!(t.take(b), hex("d0 00"));
}

/// Refuses every client whose user name is "bad" (and there is no allow-all hook).
struct DenyBad;

impl Hook for DenyBad {
    fn id(&self) -> &str {
        "deny-bad"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnConnectAuthenticate, Point::OnAclCheck])
    }
    fn on_connect_authenticate(&mut self, client: &ClientInfo<'_>, _: Option<&[u8]>) -> bool {
        client.username != Some("bad")
    }
    fn on_acl_check(&mut self, _: &ClientInfo<'_>, topic: &str, access: Access) -> bool {
        !(topic.starts_with("secret") && matches!(access, Access::Write))
    }
}

fn deny_bad_broker() -> TestBroker {
    let mut b = edgemq::broker::Broker::new(Options::default());
    b.hooks_mut().add(Box::new(DenyBad));
    TestBroker { b, now: edgemq::time::Instant(1_000), pending: Default::default() }
}

#[test]
fn mqtt311_3_1_4_5_after_a_refused_connect_nothing_more_is_processed() {
    let mut t = deny_bad_broker();
    let w = t.connect(V, "w");
    t.subscribe(w, V, "t", opts(0));
    // CONNECT with user name "bad", then a pipelined PUBLISH "t" and PINGREQ
    let (out, closed) = connect_raw(
        &mut t,
        "10 12 00 04 4d 51 54 54 04 82 00 00 00 01 63 00 03 62 61 64
         30 04 00 01 74 78
         c0 00",
    );
    assert!(closed);
    assert_eq!(out, hex("20 02 00 04"), "bad user name or password, and nothing else");
    assert!(t.take(w).is_empty());
}

#[test]
fn mqtt311_3_2_0_1_connack_is_the_first_packet_the_server_sends() {
    let mut t = TestBroker::new();
    let (out, _) = connect_raw(&mut t, "10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 63 c0 00");
    assert_eq!(out, hex("20 02 00 00 d0 00"));
}

#[test]
fn mqtt311_3_2_2_3_no_stored_session_gets_session_present_0() {
    let mut t = TestBroker::new();
    let c = t.accept();
    t.send(c, V, connect_packet(V, "new", false, 0, None));
    assert_eq!(t.take(c), hex("20 02 00 00"));
}

// ---------------------------------------------------------------------------------------------
// 3.3 PUBLISH

#[test]
fn mqtt311_3_3_1_2_dup_on_a_qos0_publish_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "38 04 00 01 74 78");
}

#[test]
fn mqtt311_3_3_1_3_an_incoming_dup_flag_is_not_forwarded() {
    let mut t = TestBroker::new();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "t", opts(1));
    let p = t.connect(V, "p");
    t.send(p, V, with_dup(publish("t", b"x", 1, 4, false)));
    assert_eq!(t.take(s), hex("32 06 00 01 74 00 01 78"));
}

#[test]
fn mqtt311_3_3_1_4_a_publish_with_both_qos_bits_set_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "36 06 00 01 74 00 01 78");
}

#[test]
fn mqtt311_3_3_1_9_live_messages_are_forwarded_with_retain_0() {
    let mut t = TestBroker::new();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "r", opts(0));
    let p = t.connect(V, "p");
    t.send(p, V, publish("r", b"x", 0, 0, true));
    assert_eq!(t.take(s), hex("30 04 00 01 72 78"));
}

#[test]
fn mqtt311_3_3_1_12_retain_zero_neither_stores_nor_removes_the_retained_message() {
    let mut t = TestBroker::new();
    let p = t.connect(V, "p");
    t.send(p, V, publish("r", b"kept", 0, 0, true));
    t.send(p, V, publish("r", b"live", 0, 0, false));
    t.send(p, V, publish("other", b"live", 0, 0, false));
    let s = t.connect(V, "s");
    assert_eq!(t.subscribe(s, V, "#", opts(0)), encode(V, publish("r", b"kept", 0, 0, true)));
}

#[test]
fn mqtt311_3_3_2_2_a_wildcard_in_a_topic_name_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "30 05 00 03 61 2f 2b");
    let c = t.connect(V, "c2");
    closes_silently(&mut t, c, "30 05 00 03 61 2f 23");
}

#[test]
fn mqtt311_3_3_2_3_the_topic_sent_to_a_subscriber_matches_its_filter() {
    let mut t = TestBroker::new();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "a/#", opts(0));
    let p = t.connect(V, "p");
    for topic in ["a", "a/b", "b/a", "ab"] {
        t.send(p, V, publish(topic, b"x", 0, 0, false));
    }
    // `a/#` matches the parent level `a` too
    assert_eq!(t.take(s), [encode(V, publish("a", b"x", 0, 0, false)), encode(V, publish("a/b", b"x", 0, 0, false))].concat());
}

#[test]
fn mqtt311_3_3_4_1_each_qos_gets_its_response() {
    let mut t = TestBroker::new();
    let p = t.connect(V, "p");
    t.send(p, V, publish("t", b"0", 0, 0, false));
    assert!(t.take(p).is_empty());
    t.send(p, V, publish("t", b"1", 1, 1, false));
    assert_eq!(t.take(p), hex("40 02 00 01"));
    t.send(p, V, publish("t", b"2", 2, 2, false));
    assert_eq!(t.take(p), hex("50 02 00 02"));
}

#[test]
fn mqtt311_3_3_5_1_overlapping_subscriptions_deliver_at_the_highest_qos() {
    let mut t = TestBroker::new();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "a/#", opts(0));
    t.subscribe(s, V, "a/+", opts(2));
    let p = t.connect(V, "p");
    t.send(p, V, publish("a/b", b"x", 2, 1, false));
    assert_eq!(t.take(s), encode(V, publish("a/b", b"x", 2, 1, false)));
}

#[test]
fn mqtt311_3_3_5_2_an_unauthorized_publish_is_acknowledged_and_not_delivered() {
    let mut t = deny_bad_broker();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "secret/#", opts(1));
    let p = t.connect(V, "p");
    t.send(p, V, publish("secret/x", b"x", 1, 3, false));
    // 3.1.1 has no way to say no: a positive PUBACK, and no delivery
    assert_eq!(t.take(p), hex("40 02 00 03"));
    assert!(t.take(s).is_empty());
    assert!(t.reap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 3.6 PUBREL, 3.8 SUBSCRIBE, 3.10 UNSUBSCRIBE, 3.12 PINGREQ, 3.14 DISCONNECT

#[test]
fn mqtt311_3_6_1_1_pubrel_with_flags_0000_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    t.feed(c, &hex("34 06 00 01 74 00 01 78"));
    t.take(c);
    closes_silently(&mut t, c, "60 02 00 01");
}

#[test]
fn mqtt311_3_8_1_1_subscribe_with_flags_0000_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "80 06 00 01 00 01 74 00");
}

#[test]
fn mqtt311_3_8_3_1_an_ill_formed_utf8_topic_filter_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "82 06 00 01 00 01 ff 00");
}

#[test]
fn mqtt311_3_8_3_2_without_wildcard_support_a_wildcard_filter_gets_0x80() {
    let mut t = TestBroker::with(Options { wildcard_subscription_available: false, ..Options::default() });
    let c = t.connect(V, "c");
    assert_eq!(subscribe_many(&mut t, c, 1, &[("a/+", opts(0)), ("a/#", opts(0)), ("a/b", opts(1))]), hex("90 05 00 01 80 80 01"));
}

#[test]
fn mqtt311_3_8_3_3_a_subscribe_without_filters_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "82 02 00 01");
}

#[test]
fn mqtt311_3_8_3_4_reserved_bits_or_qos_3_in_a_subscribe_close_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "82 06 00 01 00 01 74 04");
    let c = t.connect(V, "c2");
    closes_silently(&mut t, c, "82 06 00 01 00 01 74 03");
}

#[test]
fn mqtt311_3_8_4_3_an_identical_filter_replaces_the_subscription_and_resends_retained() {
    let mut t = TestBroker::new();
    let p = t.connect(V, "p");
    t.send(p, V, publish("t", b"r", 1, 1, true));
    t.take(p);
    let s = t.connect(V, "s");
    assert_eq!(t.subscribe(s, V, "t", opts(0)), encode(V, publish("t", b"r", 0, 0, true)));
    assert_eq!(t.subscribe(s, V, "t", opts(1)), encode(V, publish("t", b"r", 1, 1, true)));
    t.send(p, V, publish("t", b"x", 1, 2, false));
    assert_eq!(t.take(s), encode(V, publish("t", b"x", 1, 2, false)), "one delivery, at the new QoS");
}

#[test]
fn mqtt311_3_8_4_4_several_filters_get_one_suback_in_order() {
    let mut t = TestBroker::with(Options { max_qos: 1, ..Options::default() });
    let c = t.connect(V, "c");
    let out = subscribe_many(&mut t, c, 3, &[("a", opts(0)), ("b/#/c", opts(1)), ("c", opts(2))]);
    // [MQTT-3.8.4-5] granted QoS or failure, [MQTT-3.9.3-1] in order
    assert_eq!(out, hex("90 05 00 03 00 80 01"));
}

#[test]
fn mqtt311_3_10_1_1_unsubscribe_with_flags_0000_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "a0 05 00 01 00 01 74");
}

#[test]
fn mqtt311_3_10_3_1_an_ill_formed_utf8_unsubscribe_filter_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "a2 05 00 01 00 01 ff");
}

#[test]
fn mqtt311_3_10_3_2_an_unsubscribe_without_filters_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "a2 02 00 01");
}

#[test]
fn mqtt311_3_10_4_1_unsubscribe_compares_filters_byte_by_byte() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    t.subscribe(c, V, "a/b", opts(0));
    assert_eq!(unsubscribe(&mut t, c, 2, &["a/+"]), hex("b0 02 00 02"));
    let p = t.connect(V, "p");
    t.send(p, V, publish("a/b", b"1", 0, 0, false));
    assert_eq!(t.take(c), encode(V, publish("a/b", b"1", 0, 0, false)));
    unsubscribe(&mut t, c, 3, &["a/b"]);
    // [MQTT-3.10.4-2] deleted: no new messages
    t.send(p, V, publish("a/b", b"2", 0, 0, false));
    assert!(t.take(c).is_empty());
}

#[test]
fn mqtt311_3_10_4_3_qos1_deliveries_started_before_unsubscribe_complete() {
    let mut t = TestBroker::new();
    let (c, _) = persistent(&mut t, "c");
    t.subscribe(c, V, "t", opts(1));
    let p = t.connect(V, "p");
    t.send(p, V, publish("t", b"x", 1, 1, false));
    assert_eq!(t.take(c), encode(V, publish("t", b"x", 1, 1, false)));
    unsubscribe(&mut t, c, 2, &["t"]);
    drop_network(&mut t, c);
    let (c, _) = persistent(&mut t, "c");
    assert_eq!(t.take(c), encode(V, with_dup(publish("t", b"x", 1, 1, false))));
    t.send(c, V, Packet::PubAck(ack(1)));
    assert_eq!(t.b.stats(t.now).inflight, 0);
}

#[test]
fn mqtt311_3_10_4_5_unsuback_is_sent_even_when_nothing_was_deleted() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    t.subscribe(c, V, "a", opts(0));
    // [MQTT-3.10.4-6] two filters, one of them unknown: one UNSUBACK
    assert_eq!(unsubscribe(&mut t, c, 7, &["a", "nope"]), hex("b0 02 00 07"));
    assert_eq!(unsubscribe(&mut t, c, 8, &["nope"]), hex("b0 02 00 08"));
}

#[test]
fn mqtt311_3_12_4_1_pingreq_gets_pingresp() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    t.feed(c, &hex("c0 00"));
    assert_eq!(t.take(c), hex("d0 00"));
}

#[test]
fn mqtt311_3_14_1_1_disconnect_with_reserved_flags_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "e1 00");
}

// ---------------------------------------------------------------------------------------------
// 4 Operational behaviour

#[test]
fn mqtt311_4_1_0_2_a_session_lasts_as_long_as_its_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c"); // clean session
    t.subscribe(c, V, "t", opts(1));
    t.advance(3_600_000);
    let p = t.connect(V, "p");
    t.send(p, V, publish("t", b"x", 1, 1, false));
    assert_eq!(t.take(c), encode(V, publish("t", b"x", 1, 1, false)));
}

#[test]
fn mqtt311_4_3_2_1_the_qos1_sender_uses_a_fresh_identifier_dup_0_and_waits_for_puback() {
    let mut t = TestBroker::new();
    let (s, _) = persistent(&mut t, "s");
    t.subscribe(s, V, "t", opts(1));
    let p = t.connect(V, "p");
    t.send(p, V, publish("t", b"1", 1, 9, false));
    t.send(p, V, publish("t", b"2", 1, 9, false));
    assert_eq!(t.take(s), hex("32 06 00 01 74 00 01 31 32 06 00 01 74 00 02 32"));
    t.send(s, V, Packet::PubAck(ack(1)));
    drop_network(&mut t, s);
    let (s, _) = persistent(&mut t, "s");
    // only the unacknowledged one comes back
    assert_eq!(t.take(s), hex("3a 06 00 01 74 00 02 32"));
}

#[test]
fn mqtt311_4_3_2_2_the_qos1_receiver_acknowledges_and_treats_a_reused_identifier_as_new() {
    let mut t = TestBroker::new();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "t", opts(0));
    let p = t.connect(V, "p");
    t.send(p, V, publish("t", b"1", 1, 7, false));
    assert_eq!(t.take(p), hex("40 02 00 07"));
    t.send(p, V, with_dup(publish("t", b"2", 1, 7, false)));
    assert_eq!(t.take(p), hex("40 02 00 07"));
    assert_eq!(t.take(s), hex("30 04 00 01 74 31 30 04 00 01 74 32"));
}

#[test]
fn mqtt311_4_3_3_2_the_qos2_receiver_delivers_once_and_treats_a_reused_identifier_as_new() {
    let mut t = TestBroker::new();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "t", opts(0));
    let p = t.connect(V, "p");
    t.send(p, V, publish("t", b"1", 2, 5, false));
    assert_eq!(t.take(p), hex("50 02 00 05"));
    t.send(p, V, with_dup(publish("t", b"1", 2, 5, false)));
    assert_eq!(t.take(p), hex("50 02 00 05"), "PUBREC again, no second delivery");
    t.send(p, V, Packet::PubRel(ack(5)));
    assert_eq!(t.take(p), hex("70 02 00 05"));
    t.send(p, V, publish("t", b"2", 2, 5, false));
    assert_eq!(t.take(p), hex("50 02 00 05"));
    assert_eq!(t.take(s), hex("30 04 00 01 74 31 30 04 00 01 74 32"));
}

#[test]
fn mqtt311_4_6_0_5_messages_from_one_client_reach_a_subscriber_in_order() {
    let mut t = TestBroker::new();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "t", opts(1));
    let p = t.connect(V, "p");
    for i in 1..=5u16 {
        t.send(p, V, publish("t", &[b'0' + i as u8], 1, i, false));
    }
    let want: Vec<u8> = (1..=5u16).flat_map(|i| encode(V, publish("t", &[b'0' + i as u8], 1, i, false))).collect();
    assert_eq!(t.take(s), want);
}

#[test]
fn mqtt311_4_7_1_2_misplaced_wildcards_get_0x80() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    let out = subscribe_many(&mut t, c, 1, &[("a#", opts(0)), ("a/#/b", opts(0)), ("a+", opts(0)), ("+a/b", opts(0)), ("+/#", opts(0))]);
    // [MQTT-4.7.1-3] `+` fills a whole level
    assert_eq!(out, hex("90 07 00 01 80 80 80 80 00"));
}

#[test]
fn mqtt311_4_7_2_1_leading_wildcards_do_not_match_dollar_topics() {
    let mut t = TestBroker::with(Options { sys_interval_secs: 0, ..Options::default() });
    let all = t.connect(V, "all");
    t.subscribe(all, V, "#", opts(0));
    let plus = t.connect(V, "plus");
    t.subscribe(plus, V, "+/y", opts(0));
    let dollar = t.connect(V, "dollar");
    t.subscribe(dollar, V, "$x/+", opts(0));
    t.b.publish("$x/y", b"d", false, QoS::AtMostOnce, t.now);
    assert!(t.take(all).is_empty());
    assert!(t.take(plus).is_empty());
    assert_eq!(t.take(dollar), encode(V, publish("$x/y", b"d", 0, 0, false)));
}

#[test]
fn mqtt311_4_7_3_1_an_empty_topic_closes_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V, "c");
    closes_silently(&mut t, c, "30 03 00 00 78");
    let c = t.connect(V, "c2");
    closes_silently(&mut t, c, "82 05 00 01 00 00 00");
}

#[test]
fn mqtt311_4_7_3_4_topics_are_matched_without_normalisation() {
    let mut t = TestBroker::new();
    let s = t.connect(V, "s");
    t.subscribe(s, V, "a/b", opts(0));
    let p = t.connect(V, "p");
    for topic in ["a//b", "A/b", "a/b/", "/a/b", "a/ b"] {
        t.send(p, V, publish(topic, b"x", 0, 0, false));
    }
    assert!(t.take(s).is_empty());
}
