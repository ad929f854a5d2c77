//! Property tests: generated packets of every type and version survive
//! `decode(encode(p)) == p` with `encoded_len == bytes written`, and `decode` never panics on
//! arbitrary bytes in any version (and whatever it accepts re-encodes to the same packet).
//!
//! Generated borrowed data is leaked: a test process, a few thousand small strings.

use edgemq::packets::{
    decode, Ack, ConnAck, Connect, Disconnect, Packet, PacketId, PropContext, Properties, Publish,
    QoS, QosPid, ReasonCode, SubAck, SubIds, SubOptions, Subscribe, SubscribeFilters, TopicList,
    Unsubscribe, UserProps, Version, Will,
};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

fn leak_str(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}
fn leak_bytes(b: Vec<u8>) -> &'static [u8] {
    Box::leak(b.into_boxed_slice())
}
fn leak<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V3_1), Just(Version::V3_1_1), Just(Version::V5)]
}

/// MQTT strings: any Unicode but U+0000 (Rust strings cannot hold surrogates).
fn text() -> impl Strategy<Value = &'static str> {
    "[^\u{0}]{0,6}".prop_map(leak_str)
}
fn bin() -> impl Strategy<Value = &'static [u8]> {
    vec(any::<u8>(), 0..8).prop_map(leak_bytes)
}
/// Topic names: non-empty, no wildcards, no U+0000.
fn topic() -> impl Strategy<Value = &'static str> {
    "[^\u{0}+#]{1,6}".prop_map(leak_str)
}
/// Topic filters: non-empty (wildcard placement is not the codec's business).
fn filter() -> impl Strategy<Value = &'static str> {
    "[^\u{0}]{1,6}".prop_map(leak_str)
}
fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)]
}
fn pid() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|n| PacketId::new(n).unwrap())
}

/// The packets each property may appear in (MQTT 5.0 table 2.2.2.2), written out again here
/// rather than taken from the codec, so that a mistake in either shows up.
fn allowed(ctx: PropContext) -> &'static [u8] {
    use PropContext::*;
    match ctx {
        Will => &[0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26],
        Connect => &[0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27],
        ConnAck => &[
            0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A,
        ],
        Publish => &[0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26],
        PubAck | PubRec | PubRel | PubComp | SubAck | UnsubAck => &[0x1F, 0x26],
        Subscribe => &[0x0B, 0x26],
        Unsubscribe => &[0x26],
        Disconnect => &[0x11, 0x1C, 0x1F, 0x26],
        Auth => &[0x15, 0x16, 0x1F, 0x26],
    }
}

/// Random properties, then only those allowed in `ctx` are kept.
fn props(ctx: PropContext) -> impl Strategy<Value = Properties<'static>> {
    let a = (of(0u8..2), of(any::<u32>()), of(text()), of(topic()), of(bin()), vec(1u32..268_435_456, 0..3), of(any::<u32>()), of(text()));
    let b = (of(any::<u16>()), of(text()), of(bin()), of(0u8..2), of(any::<u32>()), of(0u8..2), of(text()), of(text()));
    let c = (of(text()), of(1u16..), of(any::<u16>()), of(1u16..), of(0u8..2), of(0u8..2), vec((text(), text()), 0..3), of(1u32..));
    let d = (of(0u8..2), of(0u8..2), of(0u8..2));
    (a, b, c, d).prop_map(move |(a, b, c, d)| {
        let ok = allowed(ctx);
        let k = |id: u8| ok.contains(&id);
        let mut subids = a.5;
        if ctx == PropContext::Subscribe {
            subids.truncate(1);
        }
        Properties {
            payload_format_indicator: a.0.filter(|_| k(0x01)),
            message_expiry_interval: a.1.filter(|_| k(0x02)),
            content_type: a.2.filter(|_| k(0x03)),
            response_topic: a.3.filter(|_| k(0x08)),
            correlation_data: a.4.filter(|_| k(0x09)),
            subscription_ids: SubIds::List(if k(0x0B) { leak(subids) } else { &[] }),
            session_expiry_interval: a.6.filter(|_| k(0x11)),
            assigned_client_identifier: a.7.filter(|_| k(0x12)),
            server_keep_alive: b.0.filter(|_| k(0x13)),
            authentication_method: b.1.filter(|_| k(0x15)),
            authentication_data: b.2.filter(|_| k(0x16)),
            request_problem_information: b.3.filter(|_| k(0x17)),
            will_delay_interval: b.4.filter(|_| k(0x18)),
            request_response_information: b.5.filter(|_| k(0x19)),
            response_information: b.6.filter(|_| k(0x1A)),
            server_reference: b.7.filter(|_| k(0x1C)),
            reason_string: c.0.filter(|_| k(0x1F)),
            receive_maximum: c.1.filter(|_| k(0x21)),
            topic_alias_maximum: c.2.filter(|_| k(0x22)),
            topic_alias: c.3.filter(|_| k(0x23)),
            maximum_qos: c.4.filter(|_| k(0x24)),
            retain_available: c.5.filter(|_| k(0x25)),
            user: UserProps::List(if k(0x26) { leak(c.6) } else { &[] }),
            maximum_packet_size: c.7.filter(|_| k(0x27)),
            wildcard_subscription_available: d.0.filter(|_| k(0x28)),
            subscription_identifier_available: d.1.filter(|_| k(0x29)),
            shared_subscription_available: d.2.filter(|_| k(0x2A)),
        }
    })
}

/// Properties for a version: none before 5.0 (the encoder drops them, so they cannot round-trip).
fn vprops(v: Version, ctx: PropContext) -> BoxedStrategy<Properties<'static>> {
    if v.is_v5() {
        props(ctx).boxed()
    } else {
        Just(Properties::default()).boxed()
    }
}

/// Reason codes of 5.0 allowed in a packet (section 2.4), or the only 3.x value.
fn reason(v: Version, codes: &'static [u8]) -> BoxedStrategy<ReasonCode> {
    if v.is_v5() {
        proptest::sample::select(codes).prop_map(|c| ReasonCode::from_u8(c).unwrap()).boxed()
    } else {
        Just(ReasonCode::Success).boxed()
    }
}

const CONNACK: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B,
    0x9C, 0x9D, 0x9F,
];
const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL: &[u8] = &[0x00, 0x92];
const SUBACK: &[u8] = &[0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2];
const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH: &[u8] = &[0x00, 0x18, 0x19];

fn connect(v: Version) -> impl Strategy<Value = Packet<'static>> {
    let will = (topic(), bin(), qos(), any::<bool>(), vprops(v, PropContext::Will))
        .prop_map(|(topic, payload, qos, retain, properties)| Will { topic, payload, qos, retain, properties });
    (any::<bool>(), any::<u16>(), text(), of(will), of(text()), of(bin()), vprops(v, PropContext::Connect)).prop_map(
        move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
            // [MQTT-3.1.2-22]: 3.x has no password without a user name
            let password = if v.is_v5() || username.is_some() { password } else { None };
            Packet::Connect(Connect { version: v, clean_start, keep_alive, client_id, will, username, password, properties })
        },
    )
}

fn publish(v: Version) -> impl Strategy<Value = Packet<'static>> {
    (any::<bool>(), qos(), pid(), any::<bool>(), topic(), any::<bool>(), vprops(v, PropContext::Publish), bin()).prop_map(
        |(dup, qos, pid, retain, topic, alias_only, properties, payload)| {
            let qospid = QosPid::from_parts(qos, pid);
            // 5.0: a topic alias may stand for the topic name
            let topic = if alias_only && properties.topic_alias.is_some() { "" } else { topic };
            Packet::Publish(Publish { dup: dup && qos != QoS::AtMostOnce, qospid, retain, topic, properties, payload })
        },
    )
}

fn ack(v: Version) -> impl Strategy<Value = Packet<'static>> {
    (0u8..4, pid()).prop_flat_map(move |(k, pid)| {
        let (codes, ctx) = match k {
            0 => (PUBACK, PropContext::PubAck),
            1 => (PUBACK, PropContext::PubRec),
            2 => (PUBREL, PropContext::PubRel),
            _ => (PUBREL, PropContext::PubComp),
        };
        (reason(v, codes), vprops(v, ctx)).prop_map(move |(reason, properties)| {
            let a = Ack { pid, reason, properties };
            match k {
                0 => Packet::PubAck(a),
                1 => Packet::PubRec(a),
                2 => Packet::PubRel(a),
                _ => Packet::PubComp(a),
            }
        })
    })
}

fn subscribe(v: Version) -> impl Strategy<Value = Packet<'static>> {
    let opts = (qos(), any::<bool>(), any::<bool>(), 0u8..3).prop_map(move |(qos, nl, rap, rh)| {
        if v.is_v5() {
            SubOptions { qos, no_local: nl, retain_as_published: rap, retain_handling: rh }
        } else {
            SubOptions { qos, ..SubOptions::default() }
        }
    });
    (pid(), vprops(v, PropContext::Subscribe), vec((filter(), opts), 1..4)).prop_map(|(pid, properties, fs)| {
        Packet::Subscribe(Subscribe { pid, properties, filters: SubscribeFilters::List(leak(fs)) })
    })
}

fn suback(v: Version) -> impl Strategy<Value = Packet<'static>> {
    let codes: &'static [u8] = if v.is_v5() { SUBACK } else { &[0, 1, 2, 0x80] };
    (pid(), vprops(v, PropContext::SubAck), vec(proptest::sample::select(codes), 1..4))
        .prop_map(|(pid, properties, c)| Packet::SubAck(SubAck { pid, properties, codes: leak(c) }))
}

fn unsubscribe(v: Version) -> impl Strategy<Value = Packet<'static>> {
    (pid(), vprops(v, PropContext::Unsubscribe), vec(filter(), 1..4))
        .prop_map(|(pid, properties, fs)| Packet::Unsubscribe(Unsubscribe { pid, properties, filters: TopicList::List(leak(fs)) }))
}

fn unsuback(v: Version) -> impl Strategy<Value = Packet<'static>> {
    let n = if v.is_v5() { 1..4 } else { 0..1 };
    (pid(), vprops(v, PropContext::UnsubAck), vec(proptest::sample::select(UNSUBACK), n))
        .prop_map(|(pid, properties, c)| Packet::UnsubAck(SubAck { pid, properties, codes: leak(c) }))
}

fn disconnect(v: Version) -> impl Strategy<Value = Packet<'static>> {
    (reason(v, DISCONNECT), vprops(v, PropContext::Disconnect))
        .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }))
}

fn auth() -> impl Strategy<Value = Packet<'static>> {
    (reason(Version::V5, AUTH), props(PropContext::Auth))
        .prop_map(|(reason, properties)| Packet::Auth(Disconnect { reason, properties }))
}

fn connack(v: Version) -> impl Strategy<Value = Packet<'static>> {
    let r: BoxedStrategy<ReasonCode> = if v.is_v5() {
        reason(v, CONNACK)
    } else {
        (0u8..6).prop_map(|c| ReasonCode::from_v3_connack(c).unwrap()).boxed()
    };
    (any::<bool>(), r, vprops(v, PropContext::ConnAck))
        .prop_map(|(session_present, reason, properties)| Packet::ConnAck(ConnAck { session_present, reason, properties }))
}

/// A packet of any type valid in `v`, with the version.
fn packet() -> impl Strategy<Value = (Version, Packet<'static>)> {
    version().prop_flat_map(|v| {
        let common = prop_oneof![
            connect(v),
            connack(v),
            publish(v),
            ack(v),
            subscribe(v),
            suback(v),
            unsubscribe(v),
            unsuback(v),
            Just(Packet::PingReq),
            Just(Packet::PingResp),
            disconnect(v),
        ];
        let any_type = if v.is_v5() { prop_oneof![10 => common, 1 => auth()].boxed() } else { common.boxed() };
        (Just(v), any_type)
    })
}

fn encode(p: &Packet<'_>, v: Version) -> Vec<u8> {
    let mut out = Vec::new();
    let n = p.encode(v, &mut out).unwrap();
    assert_eq!(n, out.len(), "encode returns the bytes written");
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn every_generated_packet_round_trips_and_encoded_len_is_exact((v, p) in packet()) {
        let out = encode(&p, v);
        prop_assert_eq!(p.encoded_len(v), out.len());
        let (q, used) = decode(&out, v, u32::MAX)
            .unwrap_or_else(|e| panic!("{e:?} decoding {out:02x?} from {p:?}"))
            .unwrap_or_else(|| panic!("incomplete: {out:02x?}"));
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(q, p);
        // the decoded (raw, borrowed) form re-encodes to the very same bytes
        prop_assert_eq!(encode(&q, v), out.clone());
        // and a frame that is exactly the maximum packet size is accepted, one byte less is not
        let n = out.len() as u32;
        prop_assert!(decode(&out, v, n).is_ok());
        let too_large = matches!(decode(&out, v, n - 1), Err(edgemq::packets::DecodeError::PacketTooLarge { .. }));
        prop_assert!(too_large, "one byte over the maximum is PacketTooLarge");
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(v in version(), bytes in vec(any::<u8>(), 0..96)) {
        check_arbitrary(v, &bytes)?;
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_packets((v, p) in packet(), edits in vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        let mut bytes = encode(&p, v);
        for (i, b) in edits {
            let n = bytes.len();
            bytes[i % n] = b;
        }
        let keep = cut % (bytes.len() + 1);
        check_arbitrary(v, &bytes[..keep.max(1)])?;
        check_arbitrary(v, &bytes)?;
    }
}

/// Whatever `decode` accepts fits in the buffer and re-encodes to a packet that decodes equal.
fn check_arbitrary(v: Version, bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(Some((p, used))) = decode(bytes, v, u32::MAX) {
        prop_assert!(used <= bytes.len());
        let out = encode(&p, v);
        prop_assert_eq!(p.encoded_len(v), out.len());
        let (q, _) = decode(&out, v, u32::MAX).unwrap().unwrap();
        prop_assert_eq!(q, p);
    }
    Ok(())
}
