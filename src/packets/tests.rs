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

// ---------------------------------------------------------------------------------------------
// Exhaustive small domains

const VERSIONS: [Version; 3] = [Version::V3_1, Version::V3_1_1, Version::V5];

/// What the first byte alone must give, written from the fixed-header table of each version
/// (MQTT 5.0 2.1.3, 3.1.1 2.2.2, 3.1 2.1) rather than from the codec. `Ok(())` means "legal".
fn first_byte_rule(first: u8, v: Version) -> Result<(), DecodeError> {
    let (t, flags) = (first >> 4, first & 0x0f);
    match t {
        0 => Err(DecodeError::ReservedPacketType),
        15 if !v.is_v5() => Err(DecodeError::ReservedPacketType),
        3 if (flags >> 1) & 3 == 3 => Err(DecodeError::InvalidQoS),
        3 if (flags >> 1) & 3 == 0 && flags & 8 != 0 => Err(DecodeError::DupOnQoS0),
        3 => Ok(()),
        6 | 8 | 10 if flags == 0x02 => Ok(()),
        // 3.1 re-deliveries carry DUP
        6 | 8 | 10 if v == Version::V3_1 && flags == 0x0a => Ok(()),
        _ if flags == 0 && !matches!(t, 6 | 8 | 10) => Ok(()),
        _ => Err(DecodeError::BadHeaderFlags),
    }
}

/// A minimal valid body for a legal first byte.
fn minimal_body(first: u8, v: Version) -> Vec<u8> {
    let p5 = |b: &mut Vec<u8>| {
        if v.is_v5() {
            b.push(0)
        }
    };
    let mut b = Vec::new();
    match first >> 4 {
        1 => {
            let name = v.protocol_name().as_bytes();
            b.extend_from_slice(&[0, name.len() as u8]);
            b.extend_from_slice(name);
            b.extend_from_slice(&[v.level(), 0x02, 0, 60]);
            p5(&mut b);
            b.extend_from_slice(&[0, 1, b'c']);
        }
        2 => {
            b.extend_from_slice(&[0, 0]);
            p5(&mut b);
        }
        3 => {
            b.extend_from_slice(&[0, 1, b't']);
            if (first >> 1) & 3 != 0 {
                b.extend_from_slice(&[0, 1]);
            }
            p5(&mut b);
        }
        4..=7 => b.extend_from_slice(&[0, 1]),
        8 => {
            b.extend_from_slice(&[0, 1]);
            p5(&mut b);
            b.extend_from_slice(&[0, 1, b'#', 0]);
        }
        9 => {
            b.extend_from_slice(&[0, 1]);
            p5(&mut b);
            b.push(0);
        }
        10 => {
            b.extend_from_slice(&[0, 1]);
            p5(&mut b);
            b.extend_from_slice(&[0, 1, b'#']);
        }
        11 => {
            b.extend_from_slice(&[0, 1]);
            if v.is_v5() {
                b.extend_from_slice(&[0, 0]);
            }
        }
        _ => {}
    }
    b
}

#[test]
fn every_first_byte_in_every_version_decodes_or_fails_as_the_header_table_says() {
    for v in VERSIONS {
        for first in 0..=255u8 {
            let rule = first_byte_rule(first, v);
            // the first byte is judged before any length byte arrives
            let one = [first];
            let alone = decode(&one, v, u32::MAX);
            match rule {
                Err(e) => {
                    assert_eq!(alone, Err(e), "first byte {first:#04x} alone, {v:?}");
                    assert_eq!(decode(&[first, 0], v, u32::MAX), Err(e), "{first:#04x} 00, {v:?}");
                }
                Ok(()) => {
                    assert_eq!(alone, Ok(None), "first byte {first:#04x} alone needs more, {v:?}");
                    let body = minimal_body(first, v);
                    let mut frame = vec![first, body.len() as u8];
                    frame.extend_from_slice(&body);
                    let (p, used) = decode(&frame, v, u32::MAX)
                        .unwrap_or_else(|e| panic!("{first:#04x} {v:?}: {e:?} for {frame:02x?}"))
                        .unwrap();
                    assert_eq!(used, frame.len());
                    assert_eq!(p.type_id(), first >> 4, "{first:#04x} {v:?}");
                    if let Packet::Publish(pb) = p {
                        assert_eq!(pb.dup, first & 8 != 0);
                        assert_eq!(pb.qospid.qos().as_u8(), (first >> 1) & 3);
                        assert_eq!(pb.retain, first & 1 != 0);
                    }
                    // with remaining length 0, only the packets without a body are whole
                    let two = [first, 0];
                    let empty = decode(&two, v, u32::MAX);
                    match first >> 4 {
                        12..=14 => assert!(matches!(empty, Ok(Some((_, 2)))), "{first:#04x} 00 {v:?}: {empty:?}"),
                        15 => assert!(matches!(empty, Ok(Some((Packet::Auth(_), 2))))),
                        _ => assert_eq!(empty, Err(DecodeError::BadLength), "{first:#04x} 00 {v:?}"),
                    }
                }
            }
        }
    }
}

/// Encodes a remaining length as a variable byte integer.
fn varint(n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    primitives::put_varint(&mut out, n);
    out
}

#[test]
fn every_remaining_length_boundary_is_read_from_the_fixed_header() {
    for (rl, len) in [(0u32, 1usize), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (2_097_151, 3), (2_097_152, 4), (268_435_455, 4)]
    {
        let mut head = vec![0x30];
        head.extend(varint(rl));
        assert_eq!(head.len(), 1 + len);
        for v in VERSIONS {
            assert_eq!(
                decode_header(&head, v, u32::MAX),
                Ok(Some(FrameHeader { first: 0x30, remaining: rl, header_len: 1 + len }))
            );
            // a strict prefix of the length asks for more bytes
            for cut in 1..head.len() {
                assert_eq!(decode_header(&head[..cut], v, u32::MAX), Ok(None));
            }
            let total = (1 + len) as u32 + rl;
            // exactly the maximum is fine (the body is still missing), one byte less is refused
            if rl > 0 {
                assert_eq!(decode(&head, v, total), Ok(None), "rl {rl} {v:?}");
            }
            assert_eq!(decode(&head, v, total - 1), Err(DecodeError::PacketTooLarge { size: u64::from(total) }));
        }
    }
}

#[test]
fn publish_frames_at_every_length_boundary_decode_whole() {
    for rl in [3usize, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152] {
        for v in [Version::V3_1_1, Version::V5] {
            let mut body = vec![0, 1, b't'];
            if v.is_v5() {
                body.push(0);
            }
            if body.len() > rl {
                continue;
            }
            body.resize(rl, 0xab);
            let mut frame = vec![0x30];
            frame.extend(varint(rl as u32));
            frame.extend_from_slice(&body);
            let (p, used) = decode(&frame, v, u32::MAX).unwrap().unwrap();
            assert_eq!(used, frame.len());
            let Packet::Publish(pb) = p else { panic!("not a PUBLISH") };
            assert_eq!(pb.payload.len(), rl - if v.is_v5() { 4 } else { 3 });
            assert_eq!(p.encoded_len(v), frame.len());
        }
    }
}

#[test]
fn a_header_claiming_more_than_the_maximum_is_refused_without_its_body() {
    for v in VERSIONS {
        assert_eq!(
            decode(&[0x30, 0xff, 0xff, 0xff, 0x7f], v, 1024),
            Err(DecodeError::PacketTooLarge { size: 268_435_460 })
        );
        // two length bytes are enough to know 16,383 + 3 > 1024
        assert_eq!(decode(&[0x30, 0xff, 0x7f], v, 1024), Err(DecodeError::PacketTooLarge { size: 16_386 }));
        assert_eq!(DecodeError::PacketTooLarge { size: 0 }.reason_code(), ReasonCode::PacketTooLarge);
    }
}
