//! MQTT 5 features through the socket-free core.

use crate::common::*;
use edgemq::hooks::{AuthStep, ClientInfo, Hook, Point, Provides};
use edgemq::packets::{self, Disconnect, Packet, Properties, Publish, QosPid, ReasonCode, SubIds, SubOptions, Subscribe, SubscribeFilters, UserProps, Version::*};
use edgemq::Options;

fn publish_props<'a>(topic: &'a str, payload: &'a [u8], qos: u8, id: u16, properties: Properties<'a>) -> Packet<'a> {
    let qospid = match qos {
        0 => QosPid::AtMostOnce,
        1 => QosPid::AtLeastOnce(pid(id)),
        _ => QosPid::ExactlyOnce(pid(id)),
    };
    Packet::Publish(Publish { dup: false, qospid, retain: false, topic, properties, payload })
}

#[test]
fn properties_are_forwarded_unchanged_to_v5_and_stripped_for_v311() {
    let mut t = TestBroker::new();
    let s5 = t.connect(V5, "s5");
    t.subscribe(s5, V5, "rr", opts(0));
    let s3 = t.connect(V3_1_1, "s3");
    t.subscribe(s3, V3_1_1, "rr", opts(0));
    let p = t.connect(V5, "p");
    let user = [("a", "1"), ("b", "2"), ("a", "3")];
    let props = Properties {
        user: UserProps::List(&user),
        content_type: Some("text/plain"),
        payload_format_indicator: Some(1),
        response_topic: Some("reply/here"),
        correlation_data: Some(b"\x00\x01corr"),
        ..Properties::default()
    };
    t.send(p, V5, publish_props("rr", b"req", 0, 0, props));
    // [MQTT-3.3.2-17..20] forwarded unchanged, user properties in order [MQTT-3.3.2-18]
    assert_eq!(t.take(s5), encode(V5, publish_props("rr", b"req", 0, 0, props)));
    assert_eq!(t.take(s3), encode(V3_1_1, publish("rr", b"req", 0, 0, false)));
}

#[test]
fn an_invalid_utf8_payload_with_format_indicator_one_gets_0x99() {
    let mut t = TestBroker::new();
    let p = t.connect(V5, "p");
    let props = Properties { payload_format_indicator: Some(1), ..Properties::default() };
    t.send(p, V5, publish_props("t", b"\xff\xfe", 1, 3, props));
    assert_eq!(t.take(p), hex("40 03 00 03 99"));
}

#[test]
fn puback_says_no_matching_subscribers_when_nobody_listens() {
    let mut t = TestBroker::new();
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("nobody", b"x", 1, 1, false));
    assert_eq!(t.take(p), hex("40 03 00 01 10"));
}

#[test]
fn inbound_topic_aliases_resolve_and_an_alias_beyond_the_maximum_gets_0x94() {
    let mut t = TestBroker::with(Options { topic_alias_maximum: 2, ..Options::default() });
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "long/topic", opts(0));
    let p = t.connect(V5, "p");
    let set = Properties { topic_alias: Some(2), ..Properties::default() };
    t.send(p, V5, publish_props("long/topic", b"1", 0, 0, set));
    t.send(p, V5, publish_props("", b"2", 0, 0, set));
    assert_eq!(t.take(s), [encode(V5, publish("long/topic", b"1", 0, 0, false)), encode(V5, publish("long/topic", b"2", 0, 0, false))].concat());
    let bad = Properties { topic_alias: Some(3), ..Properties::default() };
    t.send(p, V5, publish_props("x", b"3", 0, 0, bad));
    assert_eq!(t.take(p), hex("e0 01 94"));
}

#[test]
fn an_unknown_inbound_alias_with_an_empty_topic_is_a_protocol_error() {
    let mut t = TestBroker::new();
    let p = t.connect(V5, "p");
    t.send(p, V5, publish_props("", b"x", 0, 0, Properties { topic_alias: Some(1), ..Properties::default() }));
    assert_eq!(t.take(p), hex("e0 01 82"));
}

#[test]
fn outbound_topic_aliases_are_assigned_within_the_client_maximum() {
    let mut t = TestBroker::new();
    let props = Properties { topic_alias_maximum: Some(1), ..Properties::default() };
    let (s, _) = t.connect_full(V5, "s", true, 0, None, props);
    t.subscribe(s, V5, "#", opts(0));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("a/b", b"1", 0, 0, false));
    t.send(p, V5, publish("a/b", b"2", 0, 0, false));
    t.send(p, V5, publish("c", b"3", 0, 0, false));
    let alias = Properties { topic_alias: Some(1), ..Properties::default() };
    assert_eq!(
        t.take(s),
        [
            encode(V5, publish_props("a/b", b"1", 0, 0, alias)),
            encode(V5, publish_props("", b"2", 0, 0, alias)),
            // the one alias is taken: full topic, no alias
            encode(V5, publish("c", b"3", 0, 0, false)),
        ]
        .concat()
    );
}

#[test]
fn no_local_keeps_a_clients_own_messages_from_it() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.subscribe(c, V5, "chat", SubOptions { no_local: true, ..opts(0) });
    t.send(c, V5, publish("chat", b"me", 0, 0, false));
    assert!(t.take(c).is_empty());
    let other = t.connect(V5, "o");
    t.send(other, V5, publish("chat", b"you", 0, 0, false));
    assert_eq!(t.take(c), encode(V5, publish("chat", b"you", 0, 0, false)));
}

fn subscribe_with_id(t: &mut TestBroker, c: edgemq::broker::ClientId, filter: &str, id: u32, q: u8) {
    let f = [(filter, opts(q))];
    let ids = [id];
    let props = Properties { subscription_ids: SubIds::List(&ids), ..Properties::default() };
    t.send(c, V5, Packet::Subscribe(Subscribe { pid: pid(7), properties: props, filters: SubscribeFilters::List(&f) }));
    t.take(c);
}

#[test]
fn overlapping_subscriptions_give_one_delivery_at_the_highest_qos_with_every_identifier() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    subscribe_with_id(&mut t, s, "a/#", 1, 0);
    subscribe_with_id(&mut t, s, "a/+", 2, 1);
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("a/b", b"x", 2, 1, false));
    let out = t.take(s);
    let (pk, n) = packets::decode(&out, V5, u32::MAX).unwrap().unwrap();
    assert_eq!(n, out.len(), "[MQTT-3.3.4-2] exactly one delivery");
    let Packet::Publish(p) = pk else { panic!("{pk:?}") };
    assert_eq!(p.qospid.qos().as_u8(), 1);
    let mut ids: Vec<u32> = p.properties.subscription_ids.iter().collect();
    ids.sort();
    assert_eq!(ids, [1, 2], "[MQTT-3.3.4-3]");
}

#[test]
fn message_expiry_is_forwarded_as_the_remaining_interval_and_expired_queued_messages_are_dropped() {
    let mut t = TestBroker::new();
    let session = Properties { session_expiry_interval: Some(300), ..Properties::default() };
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session);
    t.subscribe(s, V5, "e", opts(1));
    t.send(s, V5, Packet::Disconnect(Disconnect { reason: ReasonCode::Success, properties: Properties::default() }));
    t.reap();
    let p = t.connect(V5, "p");
    let ten = Properties { message_expiry_interval: Some(10), ..Properties::default() };
    let two = Properties { message_expiry_interval: Some(2), ..Properties::default() };
    t.send(p, V5, publish_props("e", b"lives", 1, 1, ten));
    t.send(p, V5, publish_props("e", b"dies", 1, 2, two));
    t.advance(4_000);
    let (s2, _) = t.connect_full(V5, "s", false, 0, None, session);
    let six = Properties { message_expiry_interval: Some(6), ..Properties::default() };
    // [MQTT-3.3.2-6] the interval left; [MQTT-3.3.2-5] the expired one is not delivered
    assert_eq!(t.take(s2), encode(V5, publish_props("e", b"lives", 1, 1, six)));
}

#[test]
fn session_expiry_zero_ends_the_session_and_a_positive_one_keeps_it_for_that_long() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "gone");
    t.b.on_closed(c, t.now);
    assert_eq!(t.b.session_count(), 0);
    let props = Properties { session_expiry_interval: Some(10), ..Properties::default() };
    let (c, _) = t.connect_full(V5, "kept", false, 0, None, props);
    t.b.on_closed(c, t.now);
    t.advance(9_000);
    assert_eq!(t.b.session_count(), 1);
    t.advance(1_001);
    assert_eq!(t.b.session_count(), 0);
}

#[test]
fn disconnect_cannot_raise_a_session_expiry_of_zero() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    let props = Properties { session_expiry_interval: Some(60), ..Properties::default() };
    t.send(c, V5, Packet::Disconnect(Disconnect { reason: ReasonCode::Success, properties: props }));
    // [MQTT-3.14.2-2]
    assert_eq!(t.take(c), hex("e0 01 82"));
}

#[test]
fn the_server_maximum_caps_session_expiry_and_connack_says_so() {
    let mut t = TestBroker::with(Options { max_session_expiry: 30, ..Options::default() });
    let c = t.accept();
    let mut p = connect_packet(V5, "c", false, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.properties.session_expiry_interval = Some(3600);
    }
    t.send(c, V5, p);
    let out = t.take(c);
    let (pk, _) = packets::decode(&out, V5, u32::MAX).unwrap().unwrap();
    let Packet::ConnAck(a) = pk else { panic!() };
    assert_eq!(a.properties.session_expiry_interval, Some(30));
}

#[test]
fn more_qos2_in_flight_than_the_receive_maximum_gets_0x93() {
    let mut t = TestBroker::with(Options { receive_maximum: 2, ..Options::default() });
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"1", 2, 1, false));
    t.send(p, V5, publish("t", b"2", 2, 2, false));
    t.take(p);
    t.send(p, V5, publish("t", b"3", 2, 3, false));
    assert_eq!(t.take(p), hex("e0 01 93"));
}

#[test]
fn a_message_larger_than_the_clients_maximum_packet_size_is_dropped_and_counted() {
    let mut t = TestBroker::new();
    let props = Properties { maximum_packet_size: Some(20), ..Properties::default() };
    let (s, _) = t.connect_full(V5, "s", true, 0, None, props);
    t.subscribe(s, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", &[0u8; 64], 1, 1, false));
    t.send(p, V5, publish("t", b"small", 1, 2, false));
    let before = t.b.stats(t.now).messages_dropped;
    // (packet id 1 went to the dropped message; ids need only be unused, not consecutive)
    assert_eq!(t.take(s), encode(V5, publish("t", b"small", 1, 2, false)));
    assert_eq!(before, 1);
}

#[test]
fn a_shared_group_delivers_each_message_to_one_member_in_turn() {
    let mut t = TestBroker::new();
    let a = t.connect(V5, "a");
    let b = t.connect(V5, "b");
    assert!(t.subscribe(a, V5, "$share/g/jobs/+", opts(1)).is_empty());
    t.subscribe(b, V5, "$share/g/jobs/+", opts(0));
    let p = t.connect(V5, "p");
    for i in 0..4u16 {
        t.send(p, V5, publish("jobs/x", b"j", 1, i + 1, false));
    }
    let na = t.take_packets(a, V5).len();
    let nb = t.take_packets(b, V5).len();
    assert_eq!((na, nb), (2, 2));
    // a member that disconnects stops receiving
    t.b.on_closed(b, t.now);
    t.reap();
    for i in 0..2u16 {
        t.send(p, V5, publish("jobs/x", b"j", 1, i + 10, false));
    }
    assert_eq!(t.take_packets(a, V5).len(), 2);
}

#[test]
fn shared_subscriptions_get_no_retained_messages() {
    let mut t = TestBroker::new();
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("r", b"x", 0, 0, true));
    let s = t.connect(V5, "s");
    assert!(t.subscribe(s, V5, "$share/g/r", opts(0)).is_empty());
}

#[test]
fn subscriptions_beyond_the_per_client_bound_get_0x97() {
    let mut t = TestBroker::with(Options { max_subscriptions_per_client: 1, ..Options::default() });
    let c = t.connect(V5, "c");
    t.subscribe(c, V5, "a", opts(0));
    let f = [("b", opts(0))];
    t.send(c, V5, Packet::Subscribe(Subscribe { pid: pid(2), properties: Properties::default(), filters: SubscribeFilters::List(&f) }));
    assert_eq!(t.take(c), hex("90 04 00 02 00 97"));
}

#[test]
fn an_invalid_filter_gets_0x8f_in_v5_and_0x80_in_v311() {
    let mut t = TestBroker::new();
    let c5 = t.connect(V5, "c5");
    let f = [("a/#/b", opts(0))];
    t.send(c5, V5, Packet::Subscribe(Subscribe { pid: pid(2), properties: Properties::default(), filters: SubscribeFilters::List(&f) }));
    assert_eq!(t.take(c5), hex("90 04 00 02 00 8f"));
    let c3 = t.connect(V3_1_1, "c3");
    t.send(c3, V3_1_1, Packet::Subscribe(Subscribe { pid: pid(2), properties: Properties::default(), filters: SubscribeFilters::List(&f) }));
    assert_eq!(t.take(c3), hex("90 03 00 02 80"));
}

#[test]
fn a_topic_over_the_length_bound_is_refused() {
    let mut t = TestBroker::with(Options { max_topic_length: 8, ..Options::default() });
    let c = t.connect(V5, "c");
    t.send(c, V5, publish("123456789", b"x", 0, 0, false));
    assert_eq!(t.take(c), hex("e0 01 90"));
}

#[test]
fn max_clients_refuses_the_next_connection() {
    let mut t = TestBroker::with(Options { max_clients: 2, max_sessions: 2, ..Options::default() });
    t.accept();
    t.accept();
    let peer = edgemq::broker::PeerInfo::default();
    assert!(t.b.accept(peer, t.now).is_err());
}

#[test]
fn unsubscribe_answers_per_filter() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.subscribe(c, V5, "a", opts(0));
    let f = ["a", "nope"];
    t.send(c, V5, Packet::Unsubscribe(packets::Unsubscribe { pid: pid(3), properties: Properties::default(), filters: packets::TopicList::List(&f) }));
    assert_eq!(t.take(c), hex("b0 05 00 03 00 00 11"));
}

/// A challenge/response hook: the client must answer "secret" to the challenge "nonce".
struct Challenge;

impl Hook for Challenge {
    fn id(&self) -> &str {
        "challenge"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnAuthPacket])
    }
    fn on_auth_packet(&mut self, _: &ClientInfo<'_>, method: &str, data: Option<&[u8]>, _reauth: bool) -> AuthStep {
        if method != "X-CHALLENGE" {
            return AuthStep::NotMine;
        }
        match data {
            None => AuthStep::Continue(b"nonce".to_vec()),
            Some(b"secret") => AuthStep::Success(Some(b"welcome".to_vec())),
            Some(_) => AuthStep::Fail(ReasonCode::NotAuthorized),
        }
    }
}

fn auth<'a>(reason: ReasonCode, data: Option<&'a [u8]>) -> Packet<'a> {
    Packet::Auth(Disconnect {
        reason,
        properties: Properties { authentication_method: Some("X-CHALLENGE"), authentication_data: data, ..Properties::default() },
    })
}

#[test]
fn enhanced_authentication_runs_a_challenge_through_a_hook_and_re_authenticates() {
    let mut t = TestBroker::new();
    t.b.hooks_mut().add(Box::new(Challenge));
    let c = t.accept();
    let mut p = connect_packet(V5, "c", true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.properties.authentication_method = Some("X-CHALLENGE");
    }
    t.send(c, V5, p);
    assert_eq!(t.take(c), encode(V5, auth(ReasonCode::ContinueAuthentication, Some(b"nonce"))));
    t.send(c, V5, auth(ReasonCode::ContinueAuthentication, Some(b"secret")));
    let out = t.take(c);
    let (pk, _) = packets::decode(&out, V5, u32::MAX).unwrap().unwrap();
    let Packet::ConnAck(a) = pk else { panic!("{pk:?}") };
    assert_eq!(a.reason, ReasonCode::Success);
    assert_eq!(a.properties.authentication_data, Some(&b"welcome"[..]));
    // re-authentication [MQTT-4.12.1-1]
    t.send(c, V5, auth(ReasonCode::ReAuthenticate, None));
    assert_eq!(t.take(c), encode(V5, auth(ReasonCode::ContinueAuthentication, Some(b"nonce"))));
    t.send(c, V5, auth(ReasonCode::ContinueAuthentication, Some(b"wrong")));
    assert_eq!(t.take(c), hex("e0 01 87"));
}

#[test]
fn failed_enhanced_authentications_count_against_the_address_too() {
    let mut t = TestBroker::with(Options { auth_failures_per_minute: 2, ..Options::default() });
    t.b.hooks_mut().add(Box::new(Challenge));
    let challenge = |t: &mut TestBroker| {
        let c = t.accept();
        let mut p = connect_packet(V5, "c", true, 0, None);
        if let Packet::Connect(ref mut k) = p {
            k.properties.authentication_method = Some("X-CHALLENGE");
        }
        t.send(c, V5, p);
        (c, t.take(c))
    };
    for _ in 0..2 {
        let (c, out) = challenge(&mut t);
        assert_eq!(out, encode(V5, auth(ReasonCode::ContinueAuthentication, Some(b"nonce"))));
        t.send(c, V5, auth(ReasonCode::ContinueAuthentication, Some(b"wrong")));
        assert_eq!(t.take(c), hex("20 03 00 87 00"));
    }
    // The hook is not asked any more: CONNACK 0x87 at once.
    assert_eq!(challenge(&mut t).1, hex("20 03 00 87 00"));
}

#[test]
fn a_client_maximum_packet_size_smaller_than_connack_gets_a_connack_without_properties() {
    let mut t = TestBroker::new();
    let c = t.accept();
    let mut p = connect_packet(V5, "tiny", true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.properties.maximum_packet_size = Some(8);
    }
    t.send(c, V5, p);
    assert_eq!(t.take(c), hex("20 03 00 00 00"));
}
