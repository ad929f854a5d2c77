//! Codec tests: byte vectors from the specification, round trips, exhaustive small domains.

use super::*;

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn roundtrip(p: Packet<'_>, v: Version) -> Vec<u8> {
    let mut out = Vec::new();
    let n = p.encode(v, &mut out).unwrap();
    assert_eq!(n, out.len());
    assert_eq!(p.encoded_len(v), out.len());
    let (q, used) = decode(&out, v, u32::MAX).unwrap().unwrap();
    assert_eq!(used, out.len());
    assert_eq!(q, p);
    out
}

#[test]
fn v311_connect_with_will_and_credentials_round_trips() {
    let c = Connect {
        version: Version::V3_1_1,
        clean_start: true,
        keep_alive: 60,
        client_id: "c1",
        will: Some(Will { topic: "w", payload: b"bye", qos: QoS::AtLeastOnce, retain: true, properties: Properties::default() }),
        username: Some("u"),
        password: Some(b"p"),
        properties: Properties::default(),
    };
    let b = roundtrip(Packet::Connect(c), Version::V3_1_1);
    assert_eq!(&b[..12], &[0x10, 28, 0, 4, b'M', b'Q', b'T', b'T', 4, 0b1110_1110, 0, 60]);
}

#[test]
fn v5_publish_with_properties_round_trips() {
    let user = [("k", "v")];
    let p = Publish {
        dup: false,
        qospid: QosPid::ExactlyOnce(pid(7)),
        retain: true,
        topic: "a/b",
        properties: Properties {
            message_expiry_interval: Some(30),
            user: UserProps::List(&user),
            subscription_ids: SubIds::List(&[1, 300]),
            ..Properties::default()
        },
        payload: b"hello",
    };
    roundtrip(Packet::Publish(p), Version::V5);
}

#[test]
fn qos0_publish_is_byte_exact() {
    let p = Publish { dup: false, qospid: QosPid::AtMostOnce, retain: false, topic: "a/b", properties: Properties::default(), payload: b"hi" };
    assert_eq!(roundtrip(Packet::Publish(p), Version::V3_1_1), [0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i']);
    assert_eq!(roundtrip(Packet::Publish(p), Version::V5), [0x30, 8, 0, 3, b'a', b'/', b'b', 0, b'h', b'i']);
}

#[test]
fn short_v5_acks_omit_reason_and_properties() {
    assert_eq!(roundtrip(Packet::PubAck(Ack::ok(pid(1))), Version::V5), [0x40, 2, 0, 1]);
    let a = Ack { reason: ReasonCode::NoMatchingSubscribers, ..Ack::ok(pid(1)) };
    assert_eq!(roundtrip(Packet::PubAck(a), Version::V5), [0x40, 3, 0, 1, 0x10]);
}
