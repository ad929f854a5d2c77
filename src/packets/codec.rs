//! Decoding and encoding of whole packets.

use super::error::{DecodeError, EncodeError};
use super::primitives::{check_field, put_bin, put_u16, put_varint, read_varint, varint_len, Reader, Writer, VARINT_MAX};
use super::properties::{PropContext, Properties};
use super::reason::{ReasonCode, ReasonContext};
use super::*;

/// The fixed header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The first byte (type and flags).
    pub first: u8,
    /// Remaining length.
    pub remaining: u32,
    /// Length of the fixed header (2 to 5).
    pub header_len: usize,
}

impl FrameHeader {
    /// Total frame length.
    pub fn total(&self) -> usize {
        self.header_len + self.remaining as usize
    }
}

/// Checks the first byte: type not reserved and flags as the type requires [MQTT-2.1.3-1].
fn check_first_byte(first: u8, version: Version) -> Result<(), DecodeError> {
    let flags = first & 0x0f;
    let ok = match first >> 4 {
        0 => return Err(DecodeError::ReservedPacketType),
        3 => {
            let qos = (flags >> 1) & 3;
            if qos == 3 {
                return Err(DecodeError::InvalidQoS);
            }
            if qos == 0 && flags & 0x08 != 0 {
                return Err(DecodeError::DupOnQoS0);
            }
            true
        }
        // MQTT 3.1 sets DUP (bit 3) when it re-delivers a PUBREL, SUBSCRIBE or UNSUBSCRIBE
        // (3.1 section 2.1, "DUP"); 3.1.1 and 5.0 require exactly 0010 [MQTT-2.1.3-1].
        6 | 8 | 10 if version == Version::V3_1 => flags & 0x07 == 0x02,
        6 | 8 | 10 => flags == 0x02,
        15 if !version.is_v5() => return Err(DecodeError::ReservedPacketType),
        _ => flags == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::BadHeaderFlags)
    }
}

/// Reads and checks the fixed header. A frame larger than `max_packet_size` is refused here,
/// from the header alone, before any byte of its body is needed.
pub fn decode_header(buf: &[u8], version: Version, max_packet_size: u32) -> Result<Option<FrameHeader>, DecodeError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    check_first_byte(first, version)?;
    let Some((remaining, n)) = read_varint(&buf[1..])? else { return Ok(None) };
    let total = 1 + n as u64 + remaining as u64;
    if total > max_packet_size as u64 {
        return Err(DecodeError::PacketTooLarge { size: total });
    }
    Ok(Some(FrameHeader { first, remaining, header_len: 1 + n }))
}

/// The protocol level byte of a CONNECT at the start of `buf` (with a valid protocol name), if
/// that much of it is there.
/// Lets a server answer a malformed 5.0 CONNECT with a 5.0 CONNACK.
pub fn connect_level(buf: &[u8]) -> Option<u8> {
    if buf.first()? >> 4 != 1 {
        return None;
    }
    let (_, n) = read_varint(&buf[1..]).ok()??;
    let body = buf.get(1 + n..)?;
    let name_len = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    // [MQTT-3.1.2-1] with another protocol name the packet is not this protocol's at all.
    match body.get(2..2 + name_len)? {
        b"MQTT" | b"MQIsdp" => body.get(2 + name_len).copied(),
        _ => None,
    }
}

/// Decodes one packet from the start of `buf`. `Ok(None)`: more bytes are needed. The version
/// is the connection's; CONNECT ignores it and carries its own.
pub fn decode(buf: &[u8], version: Version, max_packet_size: u32) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    let Some(h) = decode_header(buf, version, max_packet_size)? else { return Ok(None) };
    let total = h.total();
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[h.header_len..total];
    let mut r = Reader::new(body);
    let p = decode_body(h.first, &mut r, version)?;
    if !r.is_empty() {
        return Err(DecodeError::BadLength);
    }
    Ok(Some((p, total)))
}

fn pid(r: &mut Reader<'_>) -> Result<PacketId, DecodeError> {
    PacketId::new(r.u16()?).ok_or(DecodeError::ZeroPacketId)
}

fn props<'a>(r: &mut Reader<'a>, v: Version, ctx: PropContext) -> Result<Properties<'a>, DecodeError> {
    if v.is_v5() {
        Properties::decode(r, ctx)
    } else {
        Ok(Properties::default())
    }
}

fn reason(b: u8, ctx: ReasonContext) -> Result<ReasonCode, DecodeError> {
    match ReasonCode::from_u8(b) {
        Some(rc) if rc.allowed_in(ctx) => Ok(rc),
        _ => Err(DecodeError::InvalidReasonCode(b)),
    }
}

/// Parses a subscription options byte.
pub(crate) fn sub_options(b: u8, v: Version) -> Result<SubOptions, DecodeError> {
    if !v.is_v5() {
        let qos = QoS::from_u8(b & 3).ok_or(DecodeError::InvalidQoS)?;
        // [MQTT-3.8.3-4] (3.1.1) the upper six bits are reserved.
        if b & 0xfc != 0 {
            return Err(DecodeError::BadSubscriptionOptions);
        }
        return Ok(SubOptions { qos, ..SubOptions::default() });
    }
    // [MQTT-3.8.3-5] bits 6 and 7 are reserved (malformed); Maximum QoS 3 and Retain Handling 3
    // are protocol errors (3.8.3.1).
    if b & 0xc0 != 0 {
        return Err(DecodeError::BadSubscriptionOptions);
    }
    let rh = (b >> 4) & 3;
    let qos = QoS::from_u8(b & 3).ok_or(DecodeError::SubscriptionOptionValue)?;
    if rh == 3 {
        return Err(DecodeError::SubscriptionOptionValue);
    }
    Ok(SubOptions { qos, no_local: b & 4 != 0, retain_as_published: b & 8 != 0, retain_handling: rh })
}

/// Validates a SUBSCRIBE (`options: Some(version)`: each filter has an options byte) or
/// UNSUBSCRIBE payload: at least one filter [MQTT-3.8.3-3] [MQTT-3.10.3-2], none empty.
fn check_filters(payload: &[u8], options: Option<Version>) -> Result<(), DecodeError> {
    let mut pr = Reader::new(payload);
    if pr.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    while !pr.is_empty() {
        if pr.str()?.is_empty() {
            return Err(DecodeError::EmptyTopic);
        }
        if let Some(v) = options {
            sub_options(pr.u8()?, v)?;
        }
    }
    Ok(())
}

fn decode_body<'a>(first: u8, r: &mut Reader<'a>, v: Version) -> Result<Packet<'a>, DecodeError> {
    let flags = first & 0x0f;
    Ok(match first >> 4 {
        1 => Packet::Connect(decode_connect(r)?),
        2 => {
            let ack_flags = r.u8()?;
            // [MQTT-3.2.2-1] bits 7-1 of the acknowledge flags are reserved.
            if ack_flags & 0xfe != 0 {
                return Err(DecodeError::BadHeaderFlags);
            }
            let code = r.u8()?;
            let reason = if v.is_v5() {
                reason(code, ReasonContext::ConnAck)?
            } else {
                ReasonCode::from_v3_connack(code).ok_or(DecodeError::InvalidReasonCode(code))?
            };
            let properties = props(r, v, PropContext::ConnAck)?;
            Packet::ConnAck(ConnAck { session_present: ack_flags & 1 != 0, reason, properties })
        }
        3 => {
            let qos = QoS::from_u8((flags >> 1) & 3).ok_or(DecodeError::InvalidQoS)?;
            let topic = r.str()?;
            // [MQTT-3.3.2-2] no wildcards in a topic name.
            if topic.bytes().any(|b| b == b'+' || b == b'#') {
                return Err(DecodeError::TopicWildcard);
            }
            let qospid = match qos {
                QoS::AtMostOnce => QosPid::AtMostOnce,
                _ => QosPid::from_parts(qos, pid(r)?),
            };
            let properties = props(r, v, PropContext::Publish)?;
            // [MQTT-4.7.3-1] a topic name is at least one character (5.0: unless an alias stands in).
            if topic.is_empty() && properties.topic_alias.is_none() {
                return Err(DecodeError::EmptyTopic);
            }
            if properties.topic_alias == Some(0) {
                return Err(DecodeError::InvalidPropertyValue(0x23));
            }
            Packet::Publish(Publish {
                dup: flags & 8 != 0,
                qospid,
                retain: flags & 1 != 0,
                topic,
                properties,
                payload: r.rest(),
            })
        }
        t @ 4..=7 => {
            let (ctx, pctx) = match t {
                4 => (ReasonContext::PubAck, PropContext::PubAck),
                5 => (ReasonContext::PubAck, PropContext::PubRec),
                6 => (ReasonContext::PubRel, PropContext::PubRel),
                _ => (ReasonContext::PubRel, PropContext::PubComp),
            };
            let pid = pid(r)?;
            let mut ack = Ack::ok(pid);
            if v.is_v5() && !r.is_empty() {
                ack.reason = reason(r.u8()?, ctx)?;
                if !r.is_empty() {
                    ack.properties = Properties::decode(r, pctx)?;
                }
            }
            match t {
                4 => Packet::PubAck(ack),
                5 => Packet::PubRec(ack),
                6 => Packet::PubRel(ack),
                _ => Packet::PubComp(ack),
            }
        }
        8 => {
            let pid = pid(r)?;
            let properties = props(r, v, PropContext::Subscribe)?;
            let payload = r.rest();
            check_filters(payload, Some(v))?;
            Packet::Subscribe(Subscribe { pid, properties, filters: SubscribeFilters::Raw(payload, v) })
        }
        t @ (9 | 11) => {
            let pid = pid(r)?;
            let ctx = if t == 9 { PropContext::SubAck } else { PropContext::UnsubAck };
            let properties = props(r, v, ctx)?;
            let codes = r.rest();
            for &c in codes {
                let ok = match (t, v.is_v5()) {
                    (9, true) => reason(c, ReasonContext::SubAck).is_ok(),
                    (9, false) => matches!(c, 0 | 1 | 2 | 0x80),
                    (_, true) => reason(c, ReasonContext::UnsubAck).is_ok(),
                    (_, false) => false,
                };
                if !ok {
                    return Err(DecodeError::InvalidReasonCode(c));
                }
            }
            if codes.is_empty() && (t == 9 || v.is_v5()) {
                return Err(DecodeError::BadLength);
            }
            let a = SubAck { pid, properties, codes };
            if t == 9 {
                Packet::SubAck(a)
            } else {
                Packet::UnsubAck(a)
            }
        }
        10 => {
            let pid = pid(r)?;
            let properties = props(r, v, PropContext::Unsubscribe)?;
            let payload = r.rest();
            check_filters(payload, None)?;
            Packet::Unsubscribe(Unsubscribe { pid, properties, filters: TopicList::Raw(payload) })
        }
        12 => Packet::PingReq,
        13 => Packet::PingResp,
        t @ (14 | 15) => {
            let (rctx, pctx) = if t == 14 {
                (ReasonContext::Disconnect, PropContext::Disconnect)
            } else {
                (ReasonContext::Auth, PropContext::Auth)
            };
            let mut d = Disconnect { reason: ReasonCode::Success, properties: Properties::default() };
            if v.is_v5() && !r.is_empty() {
                d.reason = reason(r.u8()?, rctx)?;
                if !r.is_empty() {
                    d.properties = Properties::decode(r, pctx)?;
                }
            }
            if t == 14 {
                Packet::Disconnect(d)
            } else {
                Packet::Auth(d)
            }
        }
        _ => return Err(DecodeError::ReservedPacketType),
    })
}

fn decode_connect<'a>(r: &mut Reader<'a>) -> Result<Connect<'a>, DecodeError> {
    let name = r.bin()?;
    let level = r.u8()?;
    let version = match level {
        3 => Version::V3_1,
        4 => Version::V3_1_1,
        5 => Version::V5,
        other => {
            if name != b"MQTT" && name != b"MQIsdp" {
                return Err(DecodeError::BadProtocolName);
            }
            return Err(DecodeError::UnsupportedProtocolVersion(other));
        }
    };
    if name != version.protocol_name().as_bytes() {
        return Err(DecodeError::BadProtocolName);
    }
    let flags = r.u8()?;
    if flags & 1 != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 3;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if will_qos == 3 {
        return Err(DecodeError::InvalidQoS);
    }
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(DecodeError::WillFlags);
    }
    if !version.is_v5() && has_password && !has_username {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = r.u16()?;
    let properties = props(r, version, PropContext::Connect)?;
    let client_id = r.str()?;
    let will = if will_flag {
        let properties = props(r, version, PropContext::Will)?;
        let topic = r.str()?;
        if topic.is_empty() {
            return Err(DecodeError::EmptyTopic);
        }
        if topic.bytes().any(|b| b == b'+' || b == b'#') {
            return Err(DecodeError::TopicWildcard);
        }
        let payload = r.bin()?;
        let qos = QoS::from_u8(will_qos).ok_or(DecodeError::InvalidQoS)?;
        Some(Will { topic, payload, qos, retain: will_retain, properties })
    } else {
        None
    };
    let username = if has_username { Some(r.str()?) } else { None };
    let password = if has_password { Some(r.bin()?) } else { None };
    Ok(Connect { version, clean_start: flags & 0x02 != 0, keep_alive, client_id, will, username, password, properties })
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn props_len(p: &Properties<'_>, v: Version) -> usize {
    if v.is_v5() {
        p.encoded_len()
    } else {
        0
    }
}

fn put_props(w: &mut impl Writer, p: &Properties<'_>, v: Version) {
    if v.is_v5() {
        p.encode(w);
    }
}

/// Ack body length: the short forms of 5.0 where the reason is success and there are no
/// properties (3.4.2.1).
fn ack_len(a: &Ack<'_>, v: Version) -> usize {
    if !v.is_v5() || (a.reason == ReasonCode::Success && a.properties.is_empty()) {
        2
    } else if a.properties.is_empty() {
        3
    } else {
        3 + a.properties.encoded_len()
    }
}

fn reason_body_len(d: &Disconnect<'_>, v: Version) -> usize {
    if !v.is_v5() || (d.reason == ReasonCode::Success && d.properties.is_empty()) {
        0
    } else if d.properties.is_empty() {
        1
    } else {
        1 + d.properties.encoded_len()
    }
}

impl Packet<'_> {
    fn body_len(&self, v: Version) -> usize {
        match self {
            Packet::Connect(c) => {
                let v = c.version;
                let mut n = 2 + v.protocol_name().len() + 1 + 1 + 2 + props_len(&c.properties, v);
                n += 2 + c.client_id.len();
                if let Some(w) = &c.will {
                    n += props_len(&w.properties, v) + 2 + w.topic.len() + 2 + w.payload.len();
                }
                n += c.username.map_or(0, |u| 2 + u.len());
                n += c.password.map_or(0, |p| 2 + p.len());
                n
            }
            Packet::ConnAck(a) => 2 + props_len(&a.properties, v),
            Packet::Publish(p) => {
                2 + p.topic.len()
                    + if p.qospid.pid().is_some() { 2 } else { 0 }
                    + props_len(&p.properties, v)
                    + p.payload.len()
            }
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => ack_len(a, v),
            Packet::Subscribe(s) => {
                2 + props_len(&s.properties, v) + s.filters.iter().map(|(f, _)| 2 + f.len() + 1).sum::<usize>()
            }
            Packet::SubAck(a) => 2 + props_len(&a.properties, v) + a.codes.len(),
            Packet::UnsubAck(a) => {
                if v.is_v5() {
                    2 + a.properties.encoded_len() + a.codes.len()
                } else {
                    2
                }
            }
            Packet::Unsubscribe(u) => 2 + props_len(&u.properties, v) + u.filters.iter().map(|f| 2 + f.len()).sum::<usize>(),
            Packet::PingReq | Packet::PingResp => 0,
            Packet::Disconnect(d) | Packet::Auth(d) => reason_body_len(d, v),
        }
    }

    /// Total encoded size in bytes for a connection of version `v`.
    pub fn encoded_len(&self, v: Version) -> usize {
        let b = self.body_len(v);
        1 + varint_len(b as u32) + b
    }

    fn check(&self, v: Version) -> Result<(), EncodeError> {
        let p = |p: &Properties<'_>| if v.is_v5() { p.check() } else { Ok(()) };
        match self {
            Packet::Connect(c) => {
                check_field(c.client_id.as_bytes())?;
                p(&c.properties)?;
                if let Some(w) = &c.will {
                    check_field(w.topic.as_bytes())?;
                    check_field(w.payload)?;
                    p(&w.properties)?;
                }
                check_field(c.username.unwrap_or("").as_bytes())?;
                check_field(c.password.unwrap_or(b""))?;
            }
            Packet::Publish(pb) => {
                check_field(pb.topic.as_bytes())?;
                p(&pb.properties)?;
            }
            Packet::Subscribe(s) => {
                p(&s.properties)?;
                for (f, _) in s.filters.iter() {
                    check_field(f.as_bytes())?;
                }
            }
            Packet::Unsubscribe(u) => {
                p(&u.properties)?;
                for f in u.filters.iter() {
                    check_field(f.as_bytes())?;
                }
            }
            Packet::ConnAck(ConnAck { properties, .. })
            | Packet::SubAck(SubAck { properties, .. })
            | Packet::UnsubAck(SubAck { properties, .. })
            | Packet::PubAck(Ack { properties, .. })
            | Packet::PubRec(Ack { properties, .. })
            | Packet::PubRel(Ack { properties, .. })
            | Packet::PubComp(Ack { properties, .. })
            | Packet::Disconnect(Disconnect { properties, .. })
            | Packet::Auth(Disconnect { properties, .. }) => p(properties)?,
            Packet::PingReq | Packet::PingResp => {}
        }
        Ok(())
    }

    /// Writes the packet for a connection of version `v` (properties are dropped for 3.x) and
    /// returns the number of bytes written, which equals [`Packet::encoded_len`].
    pub fn encode(&self, v: Version, w: &mut impl Writer) -> Result<usize, EncodeError> {
        if let Packet::Publish(p) = self {
            return encode_publish(p, v, w);
        }
        let body = self.body_len(v);
        if body > VARINT_MAX as usize {
            return Err(EncodeError::TooLarge);
        }
        self.check(v)?;
        let flags = match self {
            Packet::Publish(p) => (p.dup as u8) << 3 | p.qospid.qos().as_u8() << 1 | p.retain as u8,
            Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0x02,
            _ => 0,
        };
        w.put_u8(self.type_id() << 4 | flags);
        put_varint(w, body as u32);
        match self {
            Packet::Connect(c) => {
                let cv = c.version;
                put_bin(w, cv.protocol_name().as_bytes());
                w.put_u8(cv.level());
                let mut f = (c.clean_start as u8) << 1;
                if let Some(will) = &c.will {
                    f |= 0x04 | will.qos.as_u8() << 3 | (will.retain as u8) << 5;
                }
                f |= (c.password.is_some() as u8) << 6 | (c.username.is_some() as u8) << 7;
                w.put_u8(f);
                put_u16(w, c.keep_alive);
                put_props(w, &c.properties, cv);
                put_bin(w, c.client_id.as_bytes());
                if let Some(will) = &c.will {
                    put_props(w, &will.properties, cv);
                    put_bin(w, will.topic.as_bytes());
                    put_bin(w, will.payload);
                }
                if let Some(u) = c.username {
                    put_bin(w, u.as_bytes());
                }
                if let Some(p) = c.password {
                    put_bin(w, p);
                }
            }
            Packet::ConnAck(a) => {
                w.put_u8(a.session_present as u8);
                w.put_u8(if v.is_v5() { a.reason.as_u8() } else { a.reason.to_v3_connack() });
                put_props(w, &a.properties, v);
            }
            Packet::Publish(p) => {
                put_bin(w, p.topic.as_bytes());
                if let Some(pid) = p.qospid.pid() {
                    put_u16(w, pid.get());
                }
                put_props(w, &p.properties, v);
                w.put(p.payload);
            }
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                put_u16(w, a.pid.get());
                let n = ack_len(a, v);
                if n >= 3 {
                    w.put_u8(a.reason.as_u8());
                }
                if n > 3 {
                    a.properties.encode(w);
                }
            }
            Packet::Subscribe(s) => {
                put_u16(w, s.pid.get());
                put_props(w, &s.properties, v);
                for (f, o) in s.filters.iter() {
                    put_bin(w, f.as_bytes());
                    w.put_u8(if v.is_v5() { o.to_byte() } else { o.qos.as_u8() });
                }
            }
            Packet::SubAck(a) => {
                put_u16(w, a.pid.get());
                put_props(w, &a.properties, v);
                if v.is_v5() {
                    w.put(a.codes);
                } else {
                    for &c in a.codes {
                        let rc = ReasonCode::from_u8(c).unwrap_or(ReasonCode::UnspecifiedError);
                        w.put_u8(rc.to_v3_suback());
                    }
                }
            }
            Packet::UnsubAck(a) => {
                put_u16(w, a.pid.get());
                if v.is_v5() {
                    a.properties.encode(w);
                    w.put(a.codes);
                }
            }
            Packet::Unsubscribe(u) => {
                put_u16(w, u.pid.get());
                put_props(w, &u.properties, v);
                for f in u.filters.iter() {
                    put_bin(w, f.as_bytes());
                }
            }
            Packet::PingReq | Packet::PingResp => {}
            Packet::Disconnect(d) | Packet::Auth(d) => {
                let n = reason_body_len(d, v);
                if n >= 1 {
                    w.put_u8(d.reason.as_u8());
                }
                if n > 1 {
                    d.properties.encode(w);
                }
            }
        }
        Ok(1 + varint_len(body as u32) + body)
    }
}

/// PUBLISH, the hot path of every delivery: the property block's length is computed once
/// (the generic path computes it for the body length and again for the block's prefix).
fn encode_publish(p: &Publish<'_>, v: Version, w: &mut impl Writer) -> Result<usize, EncodeError> {
    let props = if v.is_v5() { Some(p.properties.body_len()) } else { None };
    let props_len = props.map_or(0, |n| varint_len(n as u32) + n);
    let body = 2 + p.topic.len() + if p.qospid.pid().is_some() { 2 } else { 0 } + props_len + p.payload.len();
    if body > VARINT_MAX as usize {
        return Err(EncodeError::TooLarge);
    }
    check_field(p.topic.as_bytes())?;
    if props.is_some_and(|n| n > 0) {
        p.properties.check()?;
    }
    w.put_u8(3 << 4 | (p.dup as u8) << 3 | p.qospid.qos().as_u8() << 1 | p.retain as u8);
    put_varint(w, body as u32);
    put_bin(w, p.topic.as_bytes());
    if let Some(pid) = p.qospid.pid() {
        put_u16(w, pid.get());
    }
    if let Some(n) = props {
        put_varint(w, n as u32);
        if n > 0 {
            p.properties.encode_body(w);
        }
    }
    w.put(p.payload);
    Ok(1 + varint_len(body as u32) + body)
}
