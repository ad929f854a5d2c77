//! MQTT 5.0 normative statements, one test (at least) per statement, named after it. The
//! matrix (matrix.md) links every `server` statement to its test; `matrix_check` keeps the two
//! honest. Statements already proven by a scenario elsewhere are linked there, not repeated.

use crate::common::*;
use edgemq::broker::ClientId;
use edgemq::hooks::{AuthStep, ClientInfo, Hook, Point, Provides};
use edgemq::packets::{
    self, ConnAck, Disconnect, Packet, Properties, Publish, QoS, QosPid, ReasonCode, SubOptions, Subscribe,
    SubscribeFilters, TopicList, Unsubscribe, UserProps, Version::*, Will,
};
use edgemq::Options;

/// The CONNACK every default-configured MQTT 5 connection gets: receive maximum 64, topic alias
/// maximum 64, maximum packet size 256 KiB.
const CONNACK_OK: &str = "20 0e 00 00 0b 21 00 40 22 00 40 27 00 04 00 00";

fn decode_all(bytes: &[u8]) -> Vec<Packet<'_>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (p, n) = packets::decode(rest, V5, u32::MAX).unwrap().unwrap();
        out.push(p);
        rest = &rest[n..];
    }
    out
}

fn connack(bytes: &[u8]) -> ConnAck<'_> {
    match decode_all(bytes).first() {
        Some(Packet::ConnAck(a)) => *a,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

fn publish_props<'a>(topic: &'a str, payload: &'a [u8], qos: u8, id: u16, properties: Properties<'a>) -> Packet<'a> {
    let qospid = match qos {
        0 => QosPid::AtMostOnce,
        1 => QosPid::AtLeastOnce(pid(id)),
        _ => QosPid::ExactlyOnce(pid(id)),
    };
    Packet::Publish(Publish { dup: false, qospid, retain: false, topic, properties, payload })
}

fn with_dup(mut p: Packet<'_>) -> Packet<'_> {
    if let Packet::Publish(ref mut x) = p {
        x.dup = true;
    }
    p
}

fn session(secs: u32) -> Properties<'static> {
    Properties { session_expiry_interval: Some(secs), ..Properties::default() }
}

fn disconnect(t: &mut TestBroker, c: ClientId) {
    t.send(c, V5, Packet::Disconnect(Disconnect { reason: ReasonCode::Success, properties: Properties::default() }));
    t.reap();
}

fn drop_network(t: &mut TestBroker, c: ClientId) {
    t.b.on_closed(c, t.now);
    t.reap();
}

fn subscribe_many(t: &mut TestBroker, c: ClientId, id: u16, filters: &[(&str, SubOptions)]) -> Vec<u8> {
    t.send(c, V5, Packet::Subscribe(Subscribe { pid: pid(id), properties: Properties::default(), filters: SubscribeFilters::List(filters) }));
    t.take(c)
}

fn unsubscribe(t: &mut TestBroker, c: ClientId, id: u16, filters: &[&str]) -> Vec<u8> {
    t.send(c, V5, Packet::Unsubscribe(Unsubscribe { pid: pid(id), properties: Properties::default(), filters: TopicList::List(filters) }));
    t.take(c)
}

/// Sends raw bytes on a fresh MQTT 5 connection and returns what came back and whether it closed.
fn connect_raw(t: &mut TestBroker, bytes: &str) -> (Vec<u8>, bool) {
    let c = t.accept();
    t.feed(c, &hex(bytes));
    let out = t.take(c);
    let closed = t.reap() == [c];
    (out, closed)
}

/// Refuses every client whose user name is "bad"; admits the rest.
struct DenyBad;

impl Hook for DenyBad {
    fn id(&self) -> &str {
        "deny-bad"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnConnectAuthenticate])
    }
    fn on_connect_authenticate(&mut self, client: &ClientInfo<'_>, _: Option<&[u8]>) -> bool {
        client.username != Some("bad")
    }
}

/// A broker whose only authentication hook is [`DenyBad`] (no allow-all).
fn deny_bad_broker() -> TestBroker {
    let mut b = edgemq::broker::Broker::new(Options::default());
    b.hooks_mut().add(Box::new(DenyBad));
    TestBroker { b, now: edgemq::time::Instant(1_000), pending: Default::default() }
}

/// A challenge/response exchange: "X-CHALLENGE" asks for "secret".
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
            Some(b"secret") => AuthStep::Success(None),
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

fn challenge_connect(t: &mut TestBroker) -> ClientId {
    t.b.hooks_mut().add(Box::new(Challenge));
    let c = t.accept();
    let mut p = connect_packet(V5, "c", true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.properties.authentication_method = Some("X-CHALLENGE");
    }
    t.send(c, V5, p);
    c
}

// ---------------------------------------------------------------------------------------------
// 1.5 Data representation

#[test]
fn mqtt5_1_5_4_1_an_ill_formed_utf8_topic_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    // PUBLISH QoS 0, topic is the lone surrogate U+D800 encoded as ed a0 80
    t.feed(c, &hex("30 06 00 03 ed a0 80 00"));
    assert_eq!(t.take(c), hex("e0 01 81"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn mqtt5_1_5_4_2_a_null_character_in_a_topic_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("30 06 00 03 61 00 62 00"));
    assert_eq!(t.take(c), hex("e0 01 81"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn mqtt5_1_5_4_3_a_byte_order_mark_in_a_topic_is_neither_skipped_nor_stripped() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "\u{feff}t", opts(0));
    let plain = t.connect(V5, "plain");
    t.subscribe(plain, V5, "t", opts(0));
    let p = t.connect(V5, "p");
    t.feed(p, &hex("30 08 00 04 ef bb bf 74 00 78"));
    assert_eq!(t.take(s), hex("30 08 00 04 ef bb bf 74 00 78"));
    assert!(t.take(plain).is_empty(), "U+FEFF t is not t");
}

#[test]
fn mqtt5_1_5_5_1_the_server_encodes_remaining_length_in_the_fewest_bytes() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(0));
    let p = t.connect(V5, "p");
    // topic (3) + property length (1) + payload: 123 -> 127, one byte; 124 -> 128, two bytes
    t.send(p, V5, publish("t", &[7; 123], 0, 0, false));
    assert_eq!(t.take(s)[..2], hex("30 7f")[..]);
    t.send(p, V5, publish("t", &[7; 124], 0, 0, false));
    assert_eq!(t.take(s)[..3], hex("30 80 01")[..]);
}

#[test]
fn mqtt5_1_5_7_1_an_ill_formed_user_property_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    // PUBLISH QoS 0 "t", properties: user property ("\xff", "a")
    t.feed(c, &hex("30 0b 00 01 74 07 26 00 01 ff 00 01 61"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

// ---------------------------------------------------------------------------------------------
// 2 Packet format

#[test]
fn mqtt5_2_1_3_1_reserved_fixed_header_flags_get_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("c1 00")); // PINGREQ with flag bit 0 set
    assert_eq!(t.take(c), hex("e0 01 81"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn mqtt5_2_2_1_2_a_qos0_publish_is_sent_without_a_packet_identifier() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 0, 0, false));
    // [MQTT-4.3.1-1] QoS 0, DUP 0: topic, property length, payload, nothing else
    assert_eq!(t.take(s), hex("30 05 00 01 74 00 78"));
}

#[test]
fn mqtt5_2_2_1_5_acknowledgements_carry_the_packet_identifier_of_their_publish() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(0));
    let p = t.connect(V5, "p");
    t.feed(p, &hex("32 06 00 01 74 12 34 00")); // QoS 1, id 0x1234
    assert_eq!(t.take(p), hex("40 02 12 34"));
    t.feed(p, &hex("34 06 00 01 74 01 02 00")); // QoS 2, id 0x0102
    assert_eq!(t.take(p), hex("50 02 01 02"));
    t.feed(p, &hex("62 02 01 02"));
    assert_eq!(t.take(p), hex("70 02 01 02"));
}

#[test]
fn mqtt5_2_2_1_6_suback_and_unsuback_carry_the_packet_identifier_of_their_request() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("82 07 42 42 00 00 01 74 00")); // SUBSCRIBE id 0x4242 "t" QoS 0
    assert_eq!(t.take(c), hex("90 04 42 42 00 00"));
    t.feed(c, &hex("a2 06 43 43 00 00 01 74")); // UNSUBSCRIBE id 0x4343 "t"
    assert_eq!(t.take(c), hex("b0 04 43 43 00 00"));
}

#[test]
fn mqtt5_2_2_2_1_packets_without_properties_carry_a_property_length_of_zero() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    // SUBACK: id, property length 0, one reason code
    assert!(t.subscribe(c, V5, "t", opts(1)).is_empty());
    t.feed(c, &hex("82 07 00 09 00 00 01 75 01"));
    assert_eq!(t.take(c), hex("90 04 00 09 00 01"));
    // a forwarded PUBLISH without properties: property length 0 before the payload
    t.send(c, V5, publish("t", b"x", 0, 0, false));
    assert_eq!(t.take(c), hex("30 05 00 01 74 00 78"));
}

// ---------------------------------------------------------------------------------------------
// 3.1 CONNECT

#[test]
fn mqtt5_3_1_2_1_a_wrong_protocol_name_closes_the_connection() {
    let mut t = TestBroker::new();
    // "MQTX" level 5
    let (out, closed) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 58 05 02 00 3c 00 00 01 63");
    assert!(closed);
    // not processed as MQTT 5: the one refusal every MQTT version reads, then the close
    assert_eq!(out, hex("20 02 00 01"));
}

#[test]
fn mqtt5_3_1_2_3_a_set_reserved_connect_flag_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 54 05 03 00 3c 00 00 01 63");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_2_4_clean_start_discards_the_existing_session() {
    let mut t = TestBroker::new();
    let (c, _) = t.connect_full(V5, "c", false, 0, None, session(60));
    t.subscribe(c, V5, "t", opts(1));
    disconnect(&mut t, c);
    let (c, present) = t.connect_full(V5, "c", true, 0, None, session(60));
    assert!(!present, "[MQTT-3.2.2-2] clean start gets session present 0");
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 1, 1, false));
    assert!(t.take(c).is_empty(), "the old subscription is gone");
}

#[test]
fn mqtt5_3_1_2_5_clean_start_zero_resumes_the_existing_session() {
    let mut t = TestBroker::new();
    let (c, present) = t.connect_full(V5, "c", false, 0, None, session(60));
    assert!(!present, "[MQTT-3.1.2-6] [MQTT-3.2.2-3] no session yet: a new one, session present 0");
    t.subscribe(c, V5, "t", opts(1));
    disconnect(&mut t, c);
    let (c, present) = t.connect_full(V5, "c", false, 0, None, session(60));
    assert!(present, "[MQTT-3.2.2-3] session present 1");
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 1, 1, false));
    assert_eq!(t.take(c), encode(V5, publish("t", b"x", 1, 1, false)));
}

#[test]
fn mqtt5_3_1_2_9_a_will_flag_without_will_topic_and_payload_closes_the_connection() {
    let mut t = TestBroker::new();
    // flags 0x06: will + clean start; the payload holds only the client id
    let (out, closed) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 54 05 06 00 00 00 00 01 63");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_2_10_the_will_is_discarded_on_disconnect_0x00() {
    let mut t = TestBroker::new();
    let w = t.connect(V5, "w");
    t.subscribe(w, V5, "will", opts(0));
    let will = Will { topic: "will", payload: b"gone", qos: QoS::AtMostOnce, retain: false, properties: Properties::default() };
    let (c, _) = t.connect_full(V5, "c", true, 0, Some(will), Properties::default());
    t.send(c, V5, Packet::Disconnect(Disconnect { reason: ReasonCode::Success, properties: Properties::default() }));
    t.b.on_closed(c, t.now);
    t.reap();
    t.advance(60_000);
    // [MQTT-3.14.4-3]
    assert!(t.take(w).is_empty());
}

#[test]
fn mqtt5_3_1_2_11_will_qos_without_the_will_flag_closes_the_connection() {
    let mut t = TestBroker::new();
    // flags 0x0a: will QoS 1 + clean start, will flag 0
    let (out, closed) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 54 05 0a 00 00 00 00 01 63");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_2_12_will_qos_3_closes_the_connection() {
    let mut t = TestBroker::new();
    // flags 0x1e: will QoS 3 + will + clean start; will properties 0, topic "w", payload "x"
    let (out, closed) = connect_raw(&mut t, "10 15 00 04 4d 51 54 54 05 1e 00 00 00 00 01 63 00 00 01 77 00 01 78");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_2_13_will_retain_without_the_will_flag_closes_the_connection() {
    let mut t = TestBroker::new();
    // flags 0x22: will retain + clean start, will flag 0
    let (out, closed) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 54 05 22 00 00 00 00 01 63");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_2_16_a_user_name_without_the_user_name_flag_closes_the_connection() {
    let mut t = TestBroker::new();
    // flags 0x02 but a user name "u" follows the client id
    let (out, closed) = connect_raw(&mut t, "10 11 00 04 4d 51 54 54 05 02 00 00 00 00 01 63 00 01 75");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_2_17_the_user_name_flag_without_a_user_name_closes_the_connection() {
    let mut t = TestBroker::new();
    // flags 0x82: user name flag + clean start, payload ends after the client id
    let (out, closed) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 54 05 82 00 00 00 00 01 63");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_2_18_a_password_without_the_password_flag_closes_the_connection() {
    let mut t = TestBroker::new();
    // flags 0x82 with user name "u", then a password "p" with the password flag clear
    let (out, closed) = connect_raw(&mut t, "10 14 00 04 4d 51 54 54 05 82 00 00 00 00 01 63 00 01 75 00 01 70");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_2_19_the_password_flag_without_a_password_closes_the_connection_and_with_one_connects() {
    let mut t = TestBroker::new();
    // flags 0x42: password flag + clean start, no password
    let (out, closed) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 54 05 42 00 00 00 00 01 63");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
    // a password without a user name is legal in 5.0
    let (out, closed) = connect_raw(&mut t, "10 11 00 04 4d 51 54 54 05 42 00 00 00 00 01 64 00 01 70");
    assert!(!closed);
    assert_eq!(out, hex(CONNACK_OK));
}

#[test]
fn mqtt5_3_1_2_27_a_client_without_topic_alias_maximum_gets_no_topic_alias() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "a/b", opts(0));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("a/b", b"1", 0, 0, false));
    t.send(p, V5, publish("a/b", b"2", 0, 0, false));
    assert_eq!(t.take(s), hex("30 07 00 03 61 2f 62 00 31 30 07 00 03 61 2f 62 00 32"));
}

#[test]
fn mqtt5_3_1_2_28_request_response_information_zero_gets_no_response_information() {
    let mut t = TestBroker::with(Options { response_information: Some("reply/".into()), ..Options::default() });
    let no = Properties { request_response_information: Some(0), ..Properties::default() };
    let c = t.accept();
    let mut p = connect_packet(V5, "no", true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.properties = no;
    }
    t.send(c, V5, p);
    assert_eq!(connack(&t.take(c)).properties.response_information, None);
    let c = t.accept();
    let mut p = connect_packet(V5, "yes", true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.properties.request_response_information = Some(1);
    }
    t.send(c, V5, p);
    assert_eq!(connack(&t.take(c)).properties.response_information, Some("reply/"));
}

#[test]
fn mqtt5_3_1_2_29_request_problem_information_zero_gets_no_reason_string_on_acknowledgements() {
    let mut t = TestBroker::new();
    let rpi = Properties { request_problem_information: Some(0), ..Properties::default() };
    let (c, _) = t.connect_full(V5, "c", true, 0, None, rpi);
    // a refused filter, a publish nobody hears, an unsubscribe of nothing: bare reason codes
    t.feed(c, &hex("82 0b 00 02 00 00 05 61 2f 23 2f 62 00"));
    assert_eq!(t.take(c), hex("90 04 00 02 00 8f"));
    t.feed(c, &hex("32 06 00 01 74 00 03 00"));
    assert_eq!(t.take(c), hex("40 03 00 03 10"));
    t.feed(c, &hex("a2 06 00 04 00 00 01 7a"));
    assert_eq!(t.take(c), hex("b0 04 00 04 00 11"));
}

#[test]
fn mqtt5_3_1_3_2_the_client_identifier_names_the_session_state() {
    let mut t = TestBroker::new();
    let (a, _) = t.connect_full(V5, "a", false, 0, None, session(60));
    t.subscribe(a, V5, "for/a", opts(1));
    disconnect(&mut t, a);
    let (b, _) = t.connect_full(V5, "b", false, 0, None, session(60));
    t.subscribe(b, V5, "for/b", opts(1));
    disconnect(&mut t, b);
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("for/a", b"A", 1, 1, false));
    t.send(p, V5, publish("for/b", b"B", 1, 2, false));
    let (b, present) = t.connect_full(V5, "b", false, 0, None, session(60));
    assert!(present);
    assert_eq!(t.take(b), encode(V5, publish("for/b", b"B", 1, 1, false)));
    let (a, present) = t.connect_full(V5, "a", false, 0, None, session(60));
    assert!(present);
    assert_eq!(t.take(a), encode(V5, publish("for/a", b"A", 1, 1, false)));
}

#[test]
fn mqtt5_3_1_3_4_an_ill_formed_utf8_client_identifier_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 54 05 02 00 00 00 00 01 ff");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_3_5_a_23_character_alphanumeric_client_identifier_is_allowed() {
    let mut t = TestBroker::new();
    let id = "0123456789abcdefghijkLM";
    assert_eq!(id.len(), 23);
    let c = t.accept();
    t.send(c, V5, connect_packet(V5, id, true, 0, None));
    assert_eq!(t.take(c), hex(CONNACK_OK));
}

/// Rejects every client identifier that starts with "bad-", as a deployment's naming policy would.
struct IdPolicy;

impl Hook for IdPolicy {
    fn id(&self) -> &str {
        "id-policy"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnConnect])
    }
    fn on_connect(&mut self, client: &ClientInfo<'_>, _: &Packet<'_>) -> Result<(), ReasonCode> {
        if client.client_id.starts_with("bad-") {
            Err(ReasonCode::ClientIdentifierNotValid)
        } else {
            Ok(())
        }
    }
}

#[test]
fn mqtt5_3_1_3_8_a_rejected_client_identifier_gets_connack_0x85_and_is_closed() {
    let hooks: Vec<Box<dyn Hook>> = vec![Box::new(IdPolicy), Box::new(edgemq::hooks::AllowAll)];
    let mut t = TestBroker::with_hooks(Options::default(), hooks);
    let watcher = t.connect(V5, "w");
    t.subscribe(watcher, V5, "t", opts(0));
    // CONNECT with client id "bad-1", then a pipelined PUBLISH to "t" and a PINGREQ in the same read
    let (out, closed) = connect_raw(
        &mut t,
        "10 12 00 04 4d 51 54 54 05 02 00 00 00 00 05 62 61 64 2d 31
         30 05 00 01 74 00 78
         c0 00",
    );
    // CONNACK: session present 0, reason 0x85 Client Identifier not valid, no properties; then
    // the connection is closed and nothing after the CONNECT is processed
    assert_eq!(out, hex("20 03 00 85 00"));
    assert!(closed);
    assert!(t.take(watcher).is_empty(), "the pipelined PUBLISH was not processed");
    // an identifier the policy accepts connects as usual
    let (out, closed) = connect_raw(&mut t, "10 13 00 04 4d 51 54 54 05 02 00 00 00 00 06 67 6f 6f 64 2d 31");
    assert!(!closed);
    assert_eq!(out, hex(CONNACK_OK));
}

#[test]
fn mqtt5_3_1_3_10_will_user_properties_are_published_in_their_order() {
    let mut t = TestBroker::new();
    let w = t.connect(V5, "w");
    t.subscribe(w, V5, "will", opts(0));
    let user = [("k", "2"), ("a", "1"), ("k", "1")];
    let props = Properties { user: UserProps::List(&user), ..Properties::default() };
    let will = Will { topic: "will", payload: b"gone", qos: QoS::AtMostOnce, retain: false, properties: props };
    let (c, _) = t.connect_full(V5, "c", true, 0, Some(will), Properties::default());
    drop_network(&mut t, c);
    assert_eq!(t.take(w), encode(V5, publish_props("will", b"gone", 0, 0, props)));
}

#[test]
fn mqtt5_3_1_3_11_an_ill_formed_utf8_will_topic_closes_the_connection() {
    let mut t = TestBroker::new();
    // will flag + clean start; will properties 0, will topic "\xff", will payload "x"
    let (out, closed) = connect_raw(&mut t, "10 15 00 04 4d 51 54 54 05 06 00 00 00 00 01 63 00 00 01 ff 00 01 78");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_3_12_an_ill_formed_utf8_user_name_closes_the_connection() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 11 00 04 4d 51 54 54 05 82 00 00 00 00 01 63 00 01 ff");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_4_1_a_connect_whose_client_identifier_overruns_the_packet_closes_the_connection() {
    let mut t = TestBroker::new();
    // the client id claims 9 bytes, 1 is there
    let (out, closed) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 54 05 02 00 00 00 00 09 63");
    assert!(closed);
    assert_eq!(out, hex("20 03 00 81 00"));
}

#[test]
fn mqtt5_3_1_4_2_a_client_the_authentication_refuses_gets_connack_0x86_and_is_closed() {
    let mut t = deny_bad_broker();
    // flags 0x82: user name "bad"
    let (out, closed) = connect_raw(&mut t, "10 13 00 04 4d 51 54 54 05 82 00 00 00 00 01 63 00 03 62 61 64");
    assert!(closed);
    // [MQTT-3.2.2-6] session present 0 with a failure code; [MQTT-3.2.2-7] then closed
    assert_eq!(out, hex("20 03 00 86 00"));
}

#[test]
fn mqtt5_3_1_4_5_an_accepted_connect_gets_connack_0x00() {
    let mut t = TestBroker::new();
    let (out, closed) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 54 05 02 00 3c 00 00 01 63");
    assert!(!closed);
    assert_eq!(out, hex(CONNACK_OK));
}

#[test]
fn mqtt5_3_1_4_6_after_refusing_a_connect_the_server_processes_nothing_more() {
    let mut t = deny_bad_broker();
    let watcher = t.connect(V5, "w");
    t.subscribe(watcher, V5, "t", opts(0));
    // a refused CONNECT (user "bad"), a pipelined PUBLISH to "t" and a PINGREQ in the same read
    let (out, closed) = connect_raw(
        &mut t,
        "10 13 00 04 4d 51 54 54 05 82 00 00 00 00 01 63 00 03 62 61 64
         30 05 00 01 74 00 78
         c0 00",
    );
    assert!(closed);
    assert_eq!(out, hex("20 03 00 86 00"));
    assert!(t.take(watcher).is_empty(), "the pipelined PUBLISH was not processed");
}

// ---------------------------------------------------------------------------------------------
// 3.2 CONNACK

#[test]
fn mqtt5_3_2_0_1_connack_is_the_first_packet_the_server_sends() {
    let mut t = TestBroker::new();
    // CONNECT and a pipelined PINGREQ: CONNACK first, then PINGRESP
    let (out, _) = connect_raw(&mut t, "10 0e 00 04 4d 51 54 54 05 02 00 3c 00 00 01 63 c0 00");
    assert_eq!(out, [hex(CONNACK_OK), hex("d0 00")].concat());
}

#[test]
fn mqtt5_3_2_2_1_connack_flag_bits_7_to_1_are_zero() {
    let mut t = TestBroker::new();
    let (c, _) = t.connect_full(V5, "c", false, 0, None, session(60));
    disconnect(&mut t, c);
    let c = t.accept();
    let mut p = connect_packet(V5, "c", false, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.properties = session(60);
    }
    t.send(c, V5, p);
    let out = t.take(c);
    assert_eq!(out[2], 0x01, "session present and nothing else: {out:02x?}");
}

#[test]
fn mqtt5_3_2_2_9_a_server_without_qos_2_sends_maximum_qos() {
    let mut t = TestBroker::with(Options { max_qos: 1, ..Options::default() });
    let c = t.accept();
    t.send(c, V5, connect_packet(V5, "c", true, 0, None));
    assert_eq!(connack(&t.take(c)).properties.maximum_qos, Some(1));
}

#[test]
fn mqtt5_3_2_2_10_a_server_with_maximum_qos_1_grants_qos_1_to_a_qos_2_subscribe() {
    let mut t = TestBroker::with(Options { max_qos: 1, ..Options::default() });
    let c = t.connect(V5, "c");
    // [MQTT-3.8.4-7] the reason code is the granted QoS
    assert_eq!(subscribe_many(&mut t, c, 5, &[("t", opts(2))]), hex("90 04 00 05 00 01"));
}

#[test]
fn mqtt5_3_2_2_12_a_will_qos_above_maximum_qos_gets_connack_0x9b() {
    let mut t = TestBroker::with(Options { max_qos: 1, ..Options::default() });
    let will = Will { topic: "w", payload: b"x", qos: QoS::ExactlyOnce, retain: false, properties: Properties::default() };
    let c = t.accept();
    t.send(c, V5, connect_packet(V5, "c", true, 0, Some(will)));
    assert_eq!(t.take(c), hex("20 03 00 9b 00"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn mqtt5_3_2_2_13_a_will_retain_without_retain_available_gets_connack_0x9a() {
    let mut t = TestBroker::with(Options { retain_available: false, ..Options::default() });
    let will = Will { topic: "w", payload: b"x", qos: QoS::AtMostOnce, retain: true, properties: Properties::default() };
    let c = t.accept();
    t.send(c, V5, connect_packet(V5, "c", true, 0, Some(will)));
    assert_eq!(t.take(c), hex("20 03 00 9a 00"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn mqtt5_3_2_2_16_every_assigned_client_identifier_is_unique() {
    let mut t = TestBroker::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let c = t.accept();
        t.send(c, V5, connect_packet(V5, "", true, 0, None));
        let out = t.take(c);
        ids.push(connack(&out).properties.assigned_client_identifier.expect("assigned").to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
}

#[test]
fn mqtt5_3_2_2_19_connack_carries_no_reason_string_or_user_property() {
    let mut t = TestBroker::new();
    let small = Properties { maximum_packet_size: Some(16), ..Properties::default() };
    let c = t.accept();
    let mut p = connect_packet(V5, "c", true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.properties = small;
    }
    t.send(c, V5, p);
    let out = t.take(c);
    assert!(out.len() <= 16, "{out:02x?}");
    let a = connack(&out);
    assert_eq!(a.properties.reason_string, None);
    assert_eq!(a.properties.user.iter().count(), 0);
}

// ---------------------------------------------------------------------------------------------
// 3.3 PUBLISH

#[test]
fn mqtt5_3_3_1_2_dup_on_a_qos0_publish_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("38 05 00 01 74 00 78"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_3_1_3_an_incoming_dup_flag_is_not_forwarded() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, with_dup(publish("t", b"x", 1, 4, false)));
    assert_eq!(t.take(s), encode(V5, publish("t", b"x", 1, 1, false)));
}

#[test]
fn mqtt5_3_3_1_4_a_publish_with_both_qos_bits_set_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("36 07 00 01 74 00 01 00 78"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_3_1_8_retain_zero_neither_stores_nor_removes_the_retained_message() {
    let mut t = TestBroker::new();
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("r", b"kept", 0, 0, true));
    t.send(p, V5, publish("r", b"live", 0, 0, false));
    t.send(p, V5, publish("other", b"live", 0, 0, false));
    let s = t.connect(V5, "s");
    assert_eq!(t.subscribe(s, V5, "#", opts(0)), encode(V5, publish("r", b"kept", 0, 0, true)));
}

#[test]
fn mqtt5_3_3_2_3_the_topic_sent_to_a_subscriber_matches_its_filter() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "a/+/c", opts(0));
    let p = t.connect(V5, "p");
    for topic in ["a/b/c", "a/b/d", "a/b/c/d", "a/c"] {
        t.send(p, V5, publish(topic, b"x", 0, 0, false));
    }
    assert_eq!(t.take(s), encode(V5, publish("a/b/c", b"x", 0, 0, false)));
}

#[test]
fn mqtt5_3_3_2_7_topic_aliases_do_not_carry_over_to_a_new_connection() {
    let mut t = TestBroker::new();
    let (p, _) = t.connect_full(V5, "p", false, 0, None, session(60));
    let alias = Properties { topic_alias: Some(1), ..Properties::default() };
    t.send(p, V5, publish_props("long/topic", b"1", 0, 0, alias));
    disconnect(&mut t, p);
    let (p, present) = t.connect_full(V5, "p", false, 0, None, session(60));
    assert!(present);
    t.send(p, V5, publish_props("", b"2", 0, 0, alias));
    assert_eq!(t.take(p), hex("e0 01 82"));
}

#[test]
fn mqtt5_3_3_2_13_an_ill_formed_utf8_response_topic_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    // properties: response topic (0x08) "\xff"
    t.feed(c, &hex("30 08 00 01 74 04 08 00 01 ff"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_3_2_19_an_ill_formed_utf8_content_type_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    // properties: content type (0x03) "\xff"
    t.feed(c, &hex("30 08 00 01 74 04 03 00 01 ff"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_3_4_1_each_qos_gets_its_response() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(0));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"0", 0, 0, false));
    assert!(t.take(p).is_empty(), "QoS 0: no response");
    t.send(p, V5, publish("t", b"1", 1, 1, false));
    assert_eq!(t.take(p), hex("40 02 00 01"));
    t.send(p, V5, publish("t", b"2", 2, 2, false));
    assert_eq!(t.take(p), hex("50 02 00 02"));
}

#[test]
fn mqtt5_3_3_4_10_a_full_send_quota_still_lets_other_packets_through() {
    let mut t = TestBroker::new();
    let props = Properties { receive_maximum: Some(1), ..Properties::default() };
    let (s, _) = t.connect_full(V5, "s", true, 0, None, props);
    t.subscribe(s, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"1", 1, 1, false));
    t.send(p, V5, publish("t", b"2", 1, 2, false));
    assert_eq!(t.take(s), encode(V5, publish("t", b"1", 1, 1, false)));
    // [MQTT-4.9.0-3] quota 0: PINGRESP and SUBACK still go out, the second PUBLISH waits
    t.send(s, V5, Packet::PingReq);
    assert_eq!(t.take(s), hex("d0 00"));
    assert_eq!(subscribe_many(&mut t, s, 9, &[("u", opts(0))]), hex("90 04 00 09 00 00"));
}

#[test]
fn mqtt5_3_4_2_2_acknowledgements_carry_no_reason_string_or_user_property() {
    let mut t = TestBroker::new();
    // a client whose maximum packet size leaves no room for either
    let small = Properties { maximum_packet_size: Some(16), ..Properties::default() };
    let (c, _) = t.connect_full(V5, "c", true, 0, None, small);
    let mut out = Vec::new();
    t.feed(c, &hex("82 07 00 01 00 00 01 74 02")); // SUBSCRIBE t QoS 2
    out.push(t.take(c));
    t.feed(c, &hex("32 06 00 01 75 00 02 00")); // PUBLISH QoS 1 to "u"
    out.push(t.take(c));
    t.feed(c, &hex("34 06 00 01 75 00 03 00")); // PUBLISH QoS 2 to "u"
    out.push(t.take(c));
    t.feed(c, &hex("62 02 00 03")); // PUBREL
    out.push(t.take(c));
    t.feed(c, &hex("a2 06 00 04 00 00 01 74")); // UNSUBSCRIBE t
    out.push(t.take(c));
    assert_eq!(
        out,
        [
            hex("90 04 00 01 00 02"),
            hex("40 03 00 02 10"), // 0x10 no matching subscribers
            hex("50 03 00 03 10"),
            hex("70 02 00 03"),
            hex("b0 04 00 04 00 00"),
        ]
    );
}

#[test]
fn mqtt5_3_6_1_1_pubrel_with_flags_0000_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("34 06 00 01 74 00 01 00"));
    t.take(c);
    t.feed(c, &hex("60 02 00 01"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_6_2_1_the_server_sends_pubrel_with_reason_code_success() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(2));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 2, 1, false));
    t.take(s);
    t.feed(s, &hex("50 02 00 01"));
    assert_eq!(t.take(s), hex("62 02 00 01"));
}

// ---------------------------------------------------------------------------------------------
// 3.8 SUBSCRIBE, 3.9 SUBACK

#[test]
fn mqtt5_3_8_1_1_subscribe_with_flags_0000_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("80 07 00 01 00 00 01 74 00"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_8_3_1_an_ill_formed_utf8_topic_filter_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("82 07 00 01 00 00 01 ff 00"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_8_3_2_a_subscribe_without_filters_gets_disconnect_0x82() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("82 03 00 01 00"));
    assert_eq!(t.take(c), hex("e0 01 82"));
}

#[test]
fn mqtt5_3_8_3_4_no_local_on_a_shared_subscription_gets_disconnect_0x82() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    // options 0x04: No Local
    t.feed(c, &hex("82 10 00 01 00 00 0a 24 73 68 61 72 65 2f 67 2f 74 04"));
    assert_eq!(t.take(c), hex("e0 01 82"));
}

#[test]
fn mqtt5_3_8_3_5_reserved_subscription_option_bits_get_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("82 07 00 01 00 00 01 74 40"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_8_4_3_an_identical_filter_replaces_the_subscription() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(0));
    t.subscribe(s, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 1, 1, false));
    // one delivery, at the new QoS
    assert_eq!(t.take(s), encode(V5, publish("t", b"x", 1, 1, false)));
}

#[test]
fn mqtt5_3_8_4_5_several_filters_get_one_suback_with_a_code_each_in_order() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    let out = subscribe_many(&mut t, c, 3, &[("a", opts(0)), ("b/#/c", opts(1)), ("c", opts(2))]);
    // [MQTT-3.8.4-6] [MQTT-3.9.3-1]
    assert_eq!(out, hex("90 06 00 03 00 00 8f 02"));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("c", b"x", 0, 0, false));
    assert_eq!(t.take(c), encode(V5, publish("c", b"x", 0, 0, false)));
}

// ---------------------------------------------------------------------------------------------
// 3.10 UNSUBSCRIBE

#[test]
fn mqtt5_3_10_1_1_unsubscribe_with_flags_0000_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("a0 06 00 01 00 00 01 74"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_10_3_1_an_ill_formed_utf8_unsubscribe_filter_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("a2 06 00 01 00 00 01 ff"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_10_3_2_an_unsubscribe_without_filters_gets_disconnect_0x82() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("a2 03 00 01 00"));
    assert_eq!(t.take(c), hex("e0 01 82"));
}

#[test]
fn mqtt5_3_10_4_1_unsubscribe_compares_filters_character_by_character() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.subscribe(c, V5, "a/b", opts(0));
    assert_eq!(unsubscribe(&mut t, c, 2, &["a/+"]), hex("b0 04 00 02 00 11"));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("a/b", b"x", 0, 0, false));
    assert_eq!(t.take(c), encode(V5, publish("a/b", b"x", 0, 0, false)));
    assert_eq!(unsubscribe(&mut t, c, 3, &["a/b"]), hex("b0 04 00 03 00 00"));
}

#[test]
fn mqtt5_3_10_4_2_after_unsubscribe_no_new_messages_are_sent() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.subscribe(c, V5, "t", opts(1));
    unsubscribe(&mut t, c, 2, &["t"]);
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 1, 1, false));
    assert!(t.take(c).is_empty());
}

#[test]
fn mqtt5_3_10_4_3_qos1_deliveries_started_before_unsubscribe_complete() {
    let mut t = TestBroker::new();
    let (c, _) = t.connect_full(V5, "c", false, 0, None, session(60));
    t.subscribe(c, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 1, 1, false));
    assert_eq!(t.take(c), encode(V5, publish("t", b"x", 1, 1, false)));
    unsubscribe(&mut t, c, 2, &["t"]);
    // still owed after the unsubscribe: resent on resume
    drop_network(&mut t, c);
    let (c, _) = t.connect_full(V5, "c", false, 0, None, session(60));
    assert_eq!(t.take(c), encode(V5, with_dup(publish("t", b"x", 1, 1, false))));
    t.send(c, V5, Packet::PubAck(ack(1)));
    assert!(t.take(c).is_empty());
    assert_eq!(t.b.stats(t.now).inflight, 0);
}

// ---------------------------------------------------------------------------------------------
// 3.12 PINGREQ, 3.14 DISCONNECT, 3.15 AUTH

#[test]
fn mqtt5_3_12_4_1_pingreq_gets_pingresp() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("c0 00"));
    assert_eq!(t.take(c), hex("d0 00"));
}

#[test]
fn mqtt5_3_14_0_1_no_disconnect_is_sent_before_connack() {
    let mut t = TestBroker::new();
    let c = challenge_connect(&mut t);
    t.take(c);
    // a PUBLISH in the middle of the authentication exchange: refused with CONNACK, not DISCONNECT
    t.feed(c, &hex("30 05 00 01 74 00 78"));
    let out = t.take(c);
    assert_eq!(out[0], 0x20, "{out:02x?}");
    assert_eq!(t.reap(), [c]);
}

#[test]
fn mqtt5_3_14_1_1_disconnect_with_reserved_flags_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("e1 00"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_3_14_4_1_nothing_is_sent_after_the_servers_disconnect() {
    let mut t = TestBroker::new();
    let (a, _) = t.connect_full(V5, "dup", false, 0, None, session(60));
    t.subscribe(a, V5, "t", opts(0));
    let _b = t.connect_full(V5, "dup", false, 0, None, session(60));
    assert_eq!(t.take(a), hex("e0 01 8e"));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 0, 0, false));
    t.send(a, V5, Packet::PingReq);
    assert!(t.take(a).is_empty());
}

#[test]
fn mqtt5_3_15_1_1_auth_with_reserved_flags_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("f1 00"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

// ---------------------------------------------------------------------------------------------
// 4 Operational behaviour

#[test]
fn mqtt5_4_1_0_1_session_state_lives_as_long_as_the_connection() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c"); // session expiry 0
    t.subscribe(c, V5, "t", opts(1));
    t.advance(3_600_000);
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 1, 1, false));
    assert_eq!(t.take(c), encode(V5, publish("t", b"x", 1, 1, false)));
}

#[test]
fn mqtt5_4_3_2_3_a_qos1_publish_stays_unacknowledged_until_puback() {
    let mut t = TestBroker::new();
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(60));
    t.subscribe(s, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 1, 1, false));
    t.take(s);
    drop_network(&mut t, s);
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(60));
    assert_eq!(t.take(s), encode(V5, with_dup(publish("t", b"x", 1, 1, false))));
    t.send(s, V5, Packet::PubAck(ack(1)));
    drop_network(&mut t, s);
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(60));
    assert!(t.take(s).is_empty(), "acknowledged: never sent again");
}

#[test]
fn mqtt5_4_3_2_5_after_puback_the_same_packet_identifier_is_a_new_message() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(0));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"1", 1, 7, false));
    assert_eq!(t.take(p), hex("40 02 00 07"));
    t.send(p, V5, with_dup(publish("t", b"2", 1, 7, false)));
    assert_eq!(t.take(p), hex("40 02 00 07"));
    assert_eq!(t.take(s), [encode(V5, publish("t", b"1", 0, 0, false)), encode(V5, publish("t", b"2", 0, 0, false))].concat());
}

#[test]
fn mqtt5_4_3_3_3_a_qos2_publish_stays_unacknowledged_until_pubrec() {
    let mut t = TestBroker::new();
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(60));
    t.subscribe(s, V5, "t", opts(2));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 2, 1, false));
    assert_eq!(t.take(s), encode(V5, publish("t", b"x", 2, 1, false)));
    drop_network(&mut t, s);
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(60));
    assert_eq!(t.take(s), encode(V5, with_dup(publish("t", b"x", 2, 1, false))));
}

#[test]
fn mqtt5_4_3_3_5_after_pubrec_the_pubrel_is_resent_and_never_the_publish() {
    let mut t = TestBroker::new();
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(60));
    t.subscribe(s, V5, "t", opts(2));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 2, 1, false));
    t.take(s);
    t.feed(s, &hex("50 02 00 01"));
    assert_eq!(t.take(s), hex("62 02 00 01"));
    drop_network(&mut t, s);
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(60));
    // [MQTT-4.3.3-6] PUBREL again, not the PUBLISH
    assert_eq!(t.take(s), hex("62 02 00 01"));
    t.feed(s, &hex("70 02 00 01"));
    assert_eq!(t.b.stats(t.now).inflight, 0);
}

#[test]
fn mqtt5_4_3_3_7_message_expiry_does_not_apply_once_the_publish_was_sent() {
    let mut t = TestBroker::new();
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(600));
    t.subscribe(s, V5, "t", opts(2));
    let p = t.connect(V5, "p");
    let two = Properties { message_expiry_interval: Some(2), ..Properties::default() };
    t.send(p, V5, publish_props("t", b"x", 2, 1, two));
    assert_eq!(t.take(s), encode(V5, publish_props("t", b"x", 2, 1, two)));
    drop_network(&mut t, s);
    t.advance(10_000);
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(600));
    let out = t.take(s);
    let pk = decode_all(&out);
    assert!(matches!(pk.as_slice(), [Packet::Publish(Publish { dup: true, payload: b"x", .. })]), "{pk:?}");
}

#[test]
fn mqtt5_4_3_3_9_after_a_failed_pubrec_the_same_packet_identifier_is_a_new_message() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(0));
    let p = t.connect(V5, "p");
    let bad = Properties { payload_format_indicator: Some(1), ..Properties::default() };
    t.send(p, V5, publish_props("t", b"\xff", 2, 4, bad));
    assert_eq!(t.take(p), hex("50 03 00 04 99"));
    t.send(p, V5, publish("t", b"ok", 2, 4, false));
    assert_eq!(t.take(p), hex("50 02 00 04"));
    t.send(p, V5, Packet::PubRel(ack(4)));
    assert_eq!(t.take(p), hex("70 02 00 04"));
    assert_eq!(t.take(s), encode(V5, publish("t", b"ok", 0, 0, false)));
}

#[test]
fn mqtt5_4_3_3_12_after_pubcomp_the_same_packet_identifier_is_a_new_message() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(0));
    let p = t.connect(V5, "p");
    for payload in [&b"1"[..], b"2"] {
        t.send(p, V5, publish("t", payload, 2, 5, false));
        assert_eq!(t.take(p), hex("50 02 00 05"));
        t.send(p, V5, Packet::PubRel(ack(5)));
        assert_eq!(t.take(p), hex("70 02 00 05"));
    }
    assert_eq!(t.take(s), [encode(V5, publish("t", b"1", 0, 0, false)), encode(V5, publish("t", b"2", 0, 0, false))].concat());
}

#[test]
fn mqtt5_4_3_3_13_the_qos2_receiver_completes_the_exchange_after_the_message_expired() {
    let mut t = TestBroker::new();
    let p = t.connect(V5, "p");
    let one = Properties { message_expiry_interval: Some(1), ..Properties::default() };
    t.send(p, V5, publish_props("t", b"x", 2, 6, one));
    t.take(p);
    t.advance(5_000);
    t.send(p, V5, Packet::PubRel(ack(6)));
    assert_eq!(t.take(p), hex("70 02 00 06"));
}

#[test]
fn mqtt5_4_4_0_2_a_failed_puback_ends_the_delivery_without_retransmission() {
    let mut t = TestBroker::new();
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(60));
    t.subscribe(s, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 1, 1, false));
    t.take(s);
    t.feed(s, &hex("40 03 00 01 80")); // PUBACK unspecified error
    drop_network(&mut t, s);
    let (s, _) = t.connect_full(V5, "s", false, 0, None, session(60));
    assert!(t.take(s).is_empty());
}

#[test]
fn mqtt5_4_6_0_5_messages_from_one_client_reach_a_subscriber_in_order() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    for i in 1..=5u16 {
        t.send(p, V5, publish("t", &[b'0' + i as u8], 1, i, false));
    }
    let want: Vec<u8> = (1..=5u16).flat_map(|i| encode(V5, publish("t", &[b'0' + i as u8], 1, i, false))).collect();
    assert_eq!(t.take(s), want);
}

#[test]
fn mqtt5_4_7_1_1_a_misplaced_multi_level_wildcard_gets_0x8f() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    let out = subscribe_many(&mut t, c, 1, &[("a#", opts(0)), ("a/#/b", opts(0)), ("#", opts(0)), ("a/#", opts(0))]);
    assert_eq!(out, hex("90 07 00 01 00 8f 8f 00 00"));
}

#[test]
fn mqtt5_4_7_1_2_a_single_level_wildcard_must_fill_its_level() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    let out = subscribe_many(&mut t, c, 1, &[("a+", opts(0)), ("+a/b", opts(0)), ("+/+", opts(0)), ("+", opts(0))]);
    assert_eq!(out, hex("90 07 00 01 00 8f 8f 00 00"));
}

#[test]
fn mqtt5_4_7_2_1_leading_wildcards_do_not_match_dollar_topics() {
    let mut t = TestBroker::with(Options { sys_interval_secs: 0, ..Options::default() });
    let all = t.connect(V5, "all");
    t.subscribe(all, V5, "#", opts(0));
    let plus = t.connect(V5, "plus");
    t.subscribe(plus, V5, "+/y", opts(0));
    let dollar = t.connect(V5, "dollar");
    t.subscribe(dollar, V5, "$x/#", opts(0));
    // clients may not publish to `$` topics: the embedding program does
    t.b.publish("$x/y", b"d", false, QoS::AtMostOnce, t.now);
    assert!(t.take(all).is_empty());
    assert!(t.take(plus).is_empty());
    assert_eq!(t.take(dollar), encode(V5, publish("$x/y", b"d", 0, 0, false)));
}

#[test]
fn mqtt5_4_7_3_1_an_empty_topic_filter_or_topic_name_is_a_protocol_error() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    // SUBSCRIBE with an empty filter: refused as a protocol error (the codec's EmptyTopic)
    t.feed(c, &hex("82 06 00 01 00 00 00 00"));
    assert_eq!(t.take(c), hex("e0 01 82"));
    assert_eq!(t.reap(), [c]);
    // PUBLISH with an empty topic and no topic alias
    let c = t.connect(V5, "c");
    t.feed(c, &hex("30 04 00 00 00 78"));
    // MQTT 5.0 3.3.2.1: a zero-length topic without a topic alias is a protocol error
    assert_eq!(t.take(c), hex("e0 01 82"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn mqtt5_4_7_3_2_a_null_character_in_a_topic_filter_gets_disconnect_0x81() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("82 08 00 01 00 00 02 61 00 00"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn mqtt5_4_7_3_4_topics_are_matched_without_normalisation() {
    let mut t = TestBroker::new();
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "a/b", opts(0));
    let p = t.connect(V5, "p");
    for topic in ["a//b", "A/b", "a/b/", "/a/b", "a/\u{0062}\u{0301}"] {
        t.send(p, V5, publish(topic, b"x", 0, 0, false));
    }
    assert!(t.take(s).is_empty());
}

#[test]
fn mqtt5_4_8_2_1_a_shared_subscription_needs_a_non_empty_share_name() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    assert_eq!(subscribe_many(&mut t, c, 1, &[("$share//t", opts(0))]), hex("90 04 00 01 00 8f"));
}

#[test]
fn mqtt5_4_8_2_2_a_share_name_has_no_wildcards_and_is_followed_by_a_filter() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    let out = subscribe_many(&mut t, c, 1, &[("$share/g+/t", opts(0)), ("$share/g#/t", opts(0)), ("$share/g", opts(0)), ("$share/g/", opts(0)), ("$share/g/t", opts(0))]);
    assert_eq!(out, hex("90 08 00 01 00 8f 8f 8f 8f 00"));
}

#[test]
fn mqtt5_4_8_2_3_each_shared_subscriber_gets_its_own_granted_qos() {
    let mut t = TestBroker::new();
    let a = t.connect(V5, "a");
    t.subscribe(a, V5, "$share/g/t", opts(0));
    let b = t.connect(V5, "b");
    t.subscribe(b, V5, "$share/g/t", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"1", 1, 1, false));
    t.send(p, V5, publish("t", b"2", 1, 2, false));
    let (oa, ob) = (t.take(a), t.take(b));
    let (pa, pb) = (decode_all(&oa), decode_all(&ob));
    assert_eq!(pa.len() + pb.len(), 2, "{pa:?} {pb:?}");
    assert!(pa.iter().all(|x| matches!(x, Packet::Publish(Publish { qospid: QosPid::AtMostOnce, .. }))), "{pa:?}");
    assert!(pb.iter().all(|x| matches!(x, Packet::Publish(Publish { qospid: QosPid::AtLeastOnce(_), .. }))), "{pb:?}");
    assert!(!pa.is_empty() && !pb.is_empty(), "one each");
}

#[test]
fn mqtt5_4_8_2_6_a_failed_puback_to_a_shared_delivery_is_not_sent_to_another_member() {
    let mut t = TestBroker::new();
    let a = t.connect(V5, "a");
    t.subscribe(a, V5, "$share/g/t", opts(1));
    let b = t.connect(V5, "b");
    t.subscribe(b, V5, "$share/g/t", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 1, 1, false));
    let (got, other) = {
        let oa = t.take(a);
        let ob = t.take(b);
        if oa.is_empty() { (b, ob) } else { (a, oa) }
    };
    assert_eq!(other, encode(V5, publish("t", b"x", 1, 1, false)));
    t.feed(got, &hex("40 03 00 01 80"));
    assert!(t.take(a).is_empty());
    assert!(t.take(b).is_empty());
}

#[test]
fn mqtt5_4_12_0_4_a_failed_authentication_step_gets_connack_0x87_and_closes() {
    let mut t = TestBroker::new();
    let c = challenge_connect(&mut t);
    assert_eq!(t.take(c), encode(V5, auth(ReasonCode::ContinueAuthentication, Some(b"nonce"))));
    t.send(c, V5, auth(ReasonCode::ContinueAuthentication, Some(b"wrong")));
    assert_eq!(t.take(c), hex("20 03 00 87 00"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn mqtt5_4_12_0_5_auth_and_connack_carry_the_connects_authentication_method() {
    let mut t = TestBroker::new();
    let c = challenge_connect(&mut t);
    let out = t.take(c);
    let Packet::Auth(a) = decode_all(&out)[0] else { panic!("{out:02x?}") };
    assert_eq!(a.properties.authentication_method, Some("X-CHALLENGE"));
    // [MQTT-3.15.2-2] [MQTT-3.15.2-3] no Reason String or User Property on the server's AUTH
    assert_eq!(a.properties.reason_string, None);
    assert_eq!(a.properties.user.iter().count(), 0);
    t.send(c, V5, auth(ReasonCode::ContinueAuthentication, Some(b"secret")));
    let out = t.take(c);
    let a = connack(&out);
    assert_eq!(a.reason, ReasonCode::Success);
    assert_eq!(a.properties.authentication_method, Some("X-CHALLENGE"));
}

#[test]
fn mqtt5_4_8_2_4_a_shared_qos2_delivery_cut_off_by_a_disconnect_completes_on_reconnect() {
    let mut t = TestBroker::new();
    let (a, _) = t.connect_full(V5, "a", false, 0, None, session(60));
    t.subscribe(a, V5, "$share/g/t", opts(2));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 2, 1, false));
    assert_eq!(t.take(a), encode(V5, publish("t", b"x", 2, 1, false)));
    drop_network(&mut t, a);
    let (a, _) = t.connect_full(V5, "a", false, 0, None, session(60));
    assert_eq!(t.take(a), encode(V5, with_dup(publish("t", b"x", 2, 1, false))));
}

#[test]
fn mqtt5_4_8_2_5_a_shared_qos2_message_whose_session_ended_goes_to_no_other_member() {
    let mut t = TestBroker::new();
    let a = t.connect(V5, "a"); // session expiry 0: the session ends with the connection
    t.subscribe(a, V5, "$share/g/t", opts(2));
    let b = t.connect(V5, "b");
    t.subscribe(b, V5, "$share/g/t", opts(2));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("t", b"x", 2, 1, false));
    let (got, other) = {
        let (oa, ob) = (t.take(a), t.take(b));
        assert_eq!([oa.is_empty(), ob.is_empty()].iter().filter(|e| !**e).count(), 1, "one member got it");
        if oa.is_empty() { (b, a) } else { (a, b) }
    };
    drop_network(&mut t, got);
    t.advance(60_000);
    assert!(t.take(other).is_empty());
}
