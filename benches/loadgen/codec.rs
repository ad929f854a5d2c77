//! The load generator's own minimal MQTT client codec: exactly the packets a benchmark client sends
//! and receives, for MQTT 3.1.1 (protocol level 4) and 5.0 (level 5, always empty properties on the
//! way out).
//!
//! Encoders append to a `Vec<u8>`. [`decode`] follows the house rule: `Ok(None)` means "need more
//! bytes", `Err` means the broker sent something malformed; nothing here panics on network data.
//! It deliberately knows nothing of sockets, time or the benchmark's payload format.

use std::fmt;

/// Protocol version spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1, protocol level 4.
    V4,
    /// MQTT 5.0, protocol level 5.
    V5,
}

impl Version {
    fn level(self) -> u8 {
        match self {
            Version::V4 => 4,
            Version::V5 => 5,
        }
    }
}

/// The acknowledgement packets of the QoS 1 and 2 flows (first byte of the fixed header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // the packets' own names
pub enum Ack {
    PubAck = 0x40,
    PubRec = 0x50,
    PubRel = 0x62,
    PubComp = 0x70,
}

/// A PUBLISH as received, borrowing topic and payload from the receive buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    pub qos: u8,
    pub dup: bool,
    pub retain: bool,
    /// Packet identifier; 0 at QoS 0 (where there is none).
    pub pid: u16,
    pub topic: &'a [u8],
    pub payload: &'a [u8],
}

/// Every packet a broker may send to a benchmark client.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    ConnAck { session_present: bool, code: u8, receive_max: Option<u16> },
    Publish(Publish<'a>),
    /// PUBACK, PUBREC, PUBREL or PUBCOMP; `reason` is 0 (success) when the packet carries none.
    Ack { kind: Ack, pid: u16, reason: u8 },
    SubAck { pid: u16, codes: &'a [u8] },
    PingResp,
    Disconnect { reason: u8 },
}

/// What was wrong with the bytes a broker sent.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The remaining length used more than four bytes [MQTT-1.5.5].
    MalformedLength,
    /// The frame is larger than the generator accepts.
    TooLarge(usize),
    /// A field ran past the end of the frame.
    Truncated(&'static str),
    /// Reserved fixed-header flags were wrong for the packet type [MQTT-2.1.3-1].
    BadFlags(u8),
    /// PUBLISH with both QoS bits set [MQTT-3.3.1-4].
    BadQos,
    /// A packet type a server never sends to a client (or a reserved one).
    UnexpectedType(u8),
    /// An MQTT 5 property identifier that does not exist.
    UnknownProperty(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::MalformedLength => write!(f, "remaining length longer than 4 bytes"),
            DecodeError::TooLarge(n) => write!(f, "frame of {n} bytes is too large"),
            DecodeError::Truncated(what) => write!(f, "frame ends inside {what}"),
            DecodeError::BadFlags(b) => write!(f, "bad fixed-header flags in first byte {b:#04x}"),
            DecodeError::BadQos => write!(f, "PUBLISH with QoS 3"),
            DecodeError::UnexpectedType(t) => write!(f, "unexpected packet type {t}"),
            DecodeError::UnknownProperty(p) => write!(f, "unknown property {p:#04x}"),
        }
    }
}

/// Largest frame accepted from a broker (the generator's payloads are at most a few KiB).
pub const MAX_FRAME: usize = 1 << 20;

/// Appends a variable byte integer (at most 268,435,455).
pub fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    loop {
        let byte = (v % 128) as u8;
        v /= 128;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// CONNECT with a clean session / clean start, no will, no credentials.
pub fn connect(out: &mut Vec<u8>, v: Version, client_id: &str, keep_alive: u16) {
    connect_session(out, v, client_id, keep_alive, true, None);
}

/// CONNECT with a chosen clean start / clean session flag and, for MQTT 5, an optional Session
/// Expiry Interval (property 0x11, seconds); no will, no credentials.
pub fn connect_session(out: &mut Vec<u8>, v: Version, client_id: &str, keep_alive: u16, clean: bool, expiry: Option<u32>) {
    let expiry = expiry.filter(|_| v == Version::V5);
    let props_len = if expiry.is_some() { 5 } else { 0 };
    let props = if v == Version::V5 { 1 + props_len } else { 0 }; // property length byte + properties
    let remaining = 10 + props + 2 + client_id.len();
    out.push(0x10);
    put_varint(out, remaining);
    put_str(out, b"MQTT");
    out.push(v.level());
    out.push(if clean { 0x02 } else { 0x00 });
    out.extend_from_slice(&keep_alive.to_be_bytes());
    if v == Version::V5 {
        out.push(props_len as u8);
        if let Some(secs) = expiry {
            out.push(0x11);
            out.extend_from_slice(&secs.to_be_bytes());
        }
    }
    put_str(out, client_id.as_bytes());
}

/// PUBLISH; `pid` is ignored at QoS 0.
pub fn publish(out: &mut Vec<u8>, v: Version, qos: u8, retain: bool, pid: u16, topic: &[u8], payload: &[u8]) {
    let id_len = if qos > 0 { 2 } else { 0 };
    let props = usize::from(v == Version::V5);
    out.push(0x30 | (qos << 1) | u8::from(retain));
    put_varint(out, 2 + topic.len() + id_len + props + payload.len());
    put_str(out, topic);
    if qos > 0 {
        out.extend_from_slice(&pid.to_be_bytes());
    }
    if v == Version::V5 {
        out.push(0);
    }
    out.extend_from_slice(payload);
}

/// PUBACK/PUBREC/PUBREL/PUBCOMP with success. Identical for 3.1.1 and 5.0: a v5 remaining length
/// of 2 means reason code 0x00 and no properties [MQTT-3.4.2.1].
pub fn ack(out: &mut Vec<u8>, kind: Ack, pid: u16) {
    out.extend_from_slice(&[kind as u8, 2]);
    out.extend_from_slice(&pid.to_be_bytes());
}

/// SUBSCRIBE to one filter at `qos` (v5 options: no-local 0, retain-as-published 0, retain handling 0).
pub fn subscribe(out: &mut Vec<u8>, v: Version, pid: u16, filter: &str, qos: u8) {
    let props = usize::from(v == Version::V5);
    out.push(0x82);
    put_varint(out, 2 + props + 2 + filter.len() + 1);
    out.extend_from_slice(&pid.to_be_bytes());
    if v == Version::V5 {
        out.push(0);
    }
    put_str(out, filter.as_bytes());
    out.push(qos);
}

pub fn pingreq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xC0, 0]);
}

/// DISCONNECT, normal (v5 remaining length 0 means reason 0x00).
pub fn disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xE0, 0]);
}

/// MQTT 5 DISCONNECT, normal, that also ends the session: Session Expiry Interval 0 (allowed
/// after a CONNECT with a non-zero one [MQTT-3.14.2-2]).
pub fn disconnect_ending_session(out: &mut Vec<u8>) {
    //                    type len reason props-len  0x11 = 0 seconds
    out.extend_from_slice(&[0xE0, 7, 0x00, 5, 0x11, 0, 0, 0, 0]);
}

/// Bounds-checked reader over one frame's body.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(DecodeError::Truncated(what))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn varint(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let (v, used) = read_varint(&self.buf[self.pos..])?.ok_or(DecodeError::Truncated(what))?;
        self.pos += used;
        Ok(v)
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// Reads a variable byte integer: `Ok(None)` if `buf` ends inside it.
fn read_varint(buf: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value = 0usize;
    for (i, &b) in buf.iter().enumerate() {
        if i == 4 {
            return Err(DecodeError::MalformedLength);
        }
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 { Err(DecodeError::MalformedLength) } else { Ok(None) }
}

/// Walks an MQTT 5 property block and returns the Receive Maximum (0x21), if present.
fn receive_maximum(props: &[u8]) -> Result<Option<u16>, DecodeError> {
    let mut r = Reader { buf: props, pos: 0 };
    let mut found = None;
    while !r.is_empty() {
        let id = r.u8("property id")?;
        match id {
            0x21 => found = Some(r.u16("receive maximum")?),
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => drop(r.u8("byte property")?),
            0x13 | 0x22 | 0x23 => drop(r.u16("two-byte property")?),
            0x02 | 0x11 | 0x18 | 0x27 => drop(r.take(4, "four-byte property")?),
            0x0B => drop(r.varint("subscription identifier")?),
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                let n = r.u16("property length")?;
                r.take(usize::from(n), "string property")?;
            }
            0x26 => {
                for _ in 0..2 {
                    let n = r.u16("user property length")?;
                    r.take(usize::from(n), "user property")?;
                }
            }
            other => return Err(DecodeError::UnknownProperty(other)),
        }
    }
    Ok(found)
}

/// Skips a v5 property block (length-prefixed) and returns its bytes.
fn properties<'a>(r: &mut Reader<'a>, v: Version) -> Result<&'a [u8], DecodeError> {
    if v == Version::V4 {
        return Ok(&[]);
    }
    let n = r.varint("property length")?;
    r.take(n, "properties")
}

/// Decodes one frame from the front of `buf`: `Ok(Some((packet, bytes_used)))`, `Ok(None)` when more
/// bytes are needed, `Err` when the bytes are malformed.
pub fn decode(buf: &[u8], v: Version) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let Some((remaining, len_bytes)) = read_varint(&buf[1..])? else { return Ok(None) };
    if remaining > MAX_FRAME {
        return Err(DecodeError::TooLarge(remaining));
    }
    let total = 1 + len_bytes + remaining;
    if buf.len() < total {
        return Ok(None);
    }
    let mut r = Reader { buf: &buf[1 + len_bytes..total], pos: 0 };
    let flags = first & 0x0F;
    let fixed_flags = |want: u8| if flags == want { Ok(()) } else { Err(DecodeError::BadFlags(first)) };
    let packet = match first >> 4 {
        2 => {
            fixed_flags(0)?;
            let ack_flags = r.u8("CONNACK flags")?;
            let code = r.u8("CONNACK code")?;
            let receive_max = receive_maximum(properties(&mut r, v)?)?;
            Packet::ConnAck { session_present: ack_flags & 1 == 1, code, receive_max }
        }
        3 => {
            let qos = (flags >> 1) & 3;
            if qos == 3 {
                return Err(DecodeError::BadQos);
            }
            let n = r.u16("topic length")?;
            let topic = r.take(usize::from(n), "topic")?;
            let pid = if qos > 0 { r.u16("packet id")? } else { 0 };
            properties(&mut r, v)?;
            let payload = r.rest();
            Packet::Publish(Publish { qos, dup: flags & 8 != 0, retain: flags & 1 != 0, pid, topic, payload })
        }
        t @ 4..=7 => {
            let kind = [Ack::PubAck, Ack::PubRec, Ack::PubRel, Ack::PubComp][usize::from(t - 4)];
            fixed_flags(if kind == Ack::PubRel { 2 } else { 0 })?;
            let pid = r.u16("packet id")?;
            let reason = if r.is_empty() { 0 } else { r.u8("reason code")? };
            Packet::Ack { kind, pid, reason }
        }
        9 => {
            fixed_flags(0)?;
            let pid = r.u16("packet id")?;
            properties(&mut r, v)?;
            Packet::SubAck { pid, codes: r.rest() }
        }
        13 => {
            fixed_flags(0)?;
            Packet::PingResp
        }
        14 => {
            fixed_flags(0)?;
            let reason = if r.is_empty() { 0 } else { r.u8("reason code")? };
            Packet::Disconnect { reason }
        }
        t => return Err(DecodeError::UnexpectedType(t)),
    };
    Ok(Some((packet, total)))
}

pub(crate) mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace().map(|b| u8::from_str_radix(b, 16).expect("test vector is hex")).collect()
    }

    crate::unit_tests! {
        fn connect_v4_encodes_the_spec_example_bytes() {
            let mut out = Vec::new();
            connect(&mut out, Version::V4, "ab", 60);
            //          type len  "MQTT"            lvl flg keepalive id "ab"
            assert_eq!(out, hex("10 0e 00 04 4d 51 54 54 04 02 00 3c 00 02 61 62"));
        }

        fn connect_v5_adds_an_empty_property_length() {
            let mut out = Vec::new();
            connect(&mut out, Version::V5, "ab", 60);
            assert_eq!(out, hex("10 0f 00 04 4d 51 54 54 05 02 00 3c 00 00 02 61 62"));
        }

        fn a_persistent_v5_connect_carries_the_session_expiry_property() {
            let mut out = Vec::new();
            connect_session(&mut out, Version::V5, "ab", 30, false, Some(3600));
            //          type len  "MQTT"            lvl flg keepalive props 0x11 = 3600      id "ab"
            assert_eq!(out, hex("10 14 00 04 4d 51 54 54 05 00 00 1e 05 11 00 00 0e 10 00 02 61 62"));
        }

        fn a_persistent_v4_connect_only_clears_the_clean_session_flag() {
            let mut out = Vec::new();
            connect_session(&mut out, Version::V4, "ab", 60, false, Some(3600));
            assert_eq!(out, hex("10 0e 00 04 4d 51 54 54 04 00 00 3c 00 02 61 62"));
        }

        fn publish_qos1_v5_round_trips_through_decode() {
            let mut out = Vec::new();
            publish(&mut out, Version::V5, 1, true, 7, b"a/b", b"xyz");
            assert_eq!(out, hex("33 0b 00 03 61 2f 62 00 07 00 78 79 7a"));
            let (p, used) = decode(&out, Version::V5).unwrap().unwrap();
            assert_eq!(used, out.len());
            let want = Publish { qos: 1, dup: false, retain: true, pid: 7, topic: b"a/b", payload: b"xyz" };
            assert_eq!(p, Packet::Publish(want));
        }

        fn publish_qos0_v4_has_no_packet_id() {
            let mut out = Vec::new();
            publish(&mut out, Version::V4, 0, false, 9, b"t", b"p");
            assert_eq!(out, hex("30 04 00 01 74 70"));
        }

        fn large_publish_uses_a_multi_byte_remaining_length() {
            let mut out = Vec::new();
            publish(&mut out, Version::V4, 2, false, 1, b"t", &[0u8; 1024]);
            assert_eq!(&out[..3], &hex("34 85 08")[..]);
            let (p, used) = decode(&out, Version::V4).unwrap().unwrap();
            assert_eq!(used, out.len());
            assert!(matches!(p, Packet::Publish(Publish { qos: 2, pid: 1, .. })));
        }

        fn subscribe_v4_and_v5_differ_only_by_the_property_length() {
            let mut v4 = Vec::new();
            subscribe(&mut v4, Version::V4, 1, "a/#", 2);
            assert_eq!(v4, hex("82 08 00 01 00 03 61 2f 23 02"));
            let mut v5 = Vec::new();
            subscribe(&mut v5, Version::V5, 1, "a/#", 2);
            assert_eq!(v5, hex("82 09 00 01 00 00 03 61 2f 23 02"));
        }

        fn acks_are_four_bytes_and_pubrel_has_flags_0010() {
            let mut out = Vec::new();
            ack(&mut out, Ack::PubRel, 0x1234);
            assert_eq!(out, hex("62 02 12 34"));
        }

        fn connack_v5_reports_receive_maximum_after_skipping_other_properties() {
            // props: topic alias max (22) = 10, reason string (1f) "ok", receive maximum (21) = 20
            let b = hex("20 0e 00 00 0b 22 00 0a 1f 00 02 6f 6b 21 00 14");
            let (p, _) = decode(&b, Version::V5).unwrap().unwrap();
            assert_eq!(p, Packet::ConnAck { session_present: false, code: 0, receive_max: Some(20) });
        }

        fn connack_v4_has_no_properties() {
            let b = hex("20 02 01 00");
            let (p, _) = decode(&b, Version::V4).unwrap().unwrap();
            assert_eq!(p, Packet::ConnAck { session_present: true, code: 0, receive_max: None });
        }

        fn v5_acks_carry_an_optional_reason_code() {
            let b = hex("40 03 00 05 10");
            let (p, _) = decode(&b, Version::V5).unwrap().unwrap();
            assert_eq!(p, Packet::Ack { kind: Ack::PubAck, pid: 5, reason: 0x10 });
            let b = hex("50 02 00 05");
            let (p, _) = decode(&b, Version::V5).unwrap().unwrap();
            assert_eq!(p, Packet::Ack { kind: Ack::PubRec, pid: 5, reason: 0 });
        }

        fn suback_v5_skips_properties_before_the_codes() {
            let b = hex("90 05 00 01 00 01 80");
            let (p, _) = decode(&b, Version::V5).unwrap().unwrap();
            assert_eq!(p, Packet::SubAck { pid: 1, codes: &[0x01, 0x80] });
        }

        fn every_strict_prefix_of_a_frame_needs_more_bytes() {
            let mut out = Vec::new();
            publish(&mut out, Version::V5, 1, false, 3, b"topic", &[7u8; 300]);
            for n in 0..out.len() {
                assert_eq!(decode(&out[..n], Version::V5), Ok(None), "prefix of {n} bytes");
            }
        }

        fn two_frames_in_one_buffer_decode_one_at_a_time() {
            let b = hex("d0 00 40 02 00 09");
            let (p, used) = decode(&b, Version::V4).unwrap().unwrap();
            assert_eq!((p, used), (Packet::PingResp, 2));
            let (p, _) = decode(&b[used..], Version::V4).unwrap().unwrap();
            assert_eq!(p, Packet::Ack { kind: Ack::PubAck, pid: 9, reason: 0 });
        }

        fn malformed_frames_are_errors_not_panics() {
            assert_eq!(decode(&hex("d0 ff ff ff ff 01"), Version::V4), Err(DecodeError::MalformedLength));
            assert_eq!(decode(&hex("36 00"), Version::V4), Err(DecodeError::BadQos));
            assert_eq!(decode(&hex("60 02 00 01"), Version::V4), Err(DecodeError::BadFlags(0x60)));
            assert_eq!(decode(&hex("10 00"), Version::V4), Err(DecodeError::UnexpectedType(1)));
            assert_eq!(decode(&hex("32 02 00 05"), Version::V4), Err(DecodeError::Truncated("topic")));
            assert_eq!(decode(&hex("20 04 00 00 01 7f"), Version::V5), Err(DecodeError::UnknownProperty(0x7f)));
            assert_eq!(decode(&hex("20 05 00 00 05 21 00"), Version::V5), Err(DecodeError::Truncated("properties")));
        }

        fn every_first_byte_with_an_empty_body_decodes_or_errors_without_panicking() {
            for first in 0..=255u8 {
                for v in [Version::V4, Version::V5] {
                    let _ = decode(&[first, 0], v);
                    let _ = decode(&[first, 3, 0, 1, 0], v);
                }
            }
        }
    }
}
