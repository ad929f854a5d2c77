//! MQTT 5.0 properties (section 2.2.2): one struct for every packet, the allowed set per packet,
//! and a zero-copy view of the repeatable ones (user properties, subscription identifiers).

use super::error::{DecodeError, EncodeError};
use super::primitives::{
    check_field, check_mqtt_str, put_bin, put_u16, put_u32, put_varint, varint_len, Reader, Writer,
};

/// Where a property block sits; each property is allowed in some of these (MQTT 5.0 2.2.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum PropContext {
    Will = 0,
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    Disconnect = 14,
    Auth = 15,
}

const fn bits(ctxs: &[PropContext]) -> u16 {
    let mut m = 0u16;
    let mut i = 0;
    while i < ctxs.len() {
        m |= 1 << (ctxs[i] as u8);
        i += 1;
    }
    m
}

use PropContext as P;
const WILL_PUB: u16 = bits(&[P::Will, P::Publish]);
const ALL: u16 = 0xffff;

/// The packets a property identifier may appear in, or `None` for an unknown identifier.
fn allowed(id: u8) -> Option<u16> {
    Some(match id {
        0x01 | 0x02 | 0x03 | 0x08 | 0x09 => WILL_PUB,
        0x0B => bits(&[P::Publish, P::Subscribe]),
        0x11 => bits(&[P::Connect, P::ConnAck, P::Disconnect]),
        0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => bits(&[P::ConnAck]),
        0x15 | 0x16 => bits(&[P::Connect, P::ConnAck, P::Auth]),
        0x17 | 0x19 => bits(&[P::Connect]),
        0x18 => bits(&[P::Will]),
        0x1C => bits(&[P::ConnAck, P::Disconnect]),
        0x1F => bits(&[
            P::ConnAck,
            P::PubAck,
            P::PubRec,
            P::PubRel,
            P::PubComp,
            P::SubAck,
            P::UnsubAck,
            P::Disconnect,
            P::Auth,
        ]),
        0x21 | 0x22 | 0x27 => bits(&[P::Connect, P::ConnAck]),
        0x23 => bits(&[P::Publish]),
        0x26 => ALL,
        _ => return None,
    })
}

/// User properties: a view over a property block (only entries with id 0x26 are seen), or a list
/// the caller owns. Order is preserved [MQTT-3.3.2-18].
#[derive(Clone, Copy, Debug)]
pub enum UserProps<'a> {
    /// A validated property block (possibly holding other properties, which are skipped).
    Raw(&'a [u8]),
    /// Name/value pairs.
    List(&'a [(&'a str, &'a str)]),
}

impl Default for UserProps<'_> {
    fn default() -> Self {
        UserProps::List(&[])
    }
}

impl<'a> UserProps<'a> {
    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (raw, list): (&'a [u8], &'a [(&'a str, &'a str)]) = match *self {
            UserProps::Raw(r) => (r, &[]),
            UserProps::List(l) => (&[], l),
        };
        list.iter().copied().chain(RawProps::new(raw).filter_map(|p| match p {
            (0x26, Value::Pair(k, v)) => Some((k, v)),
            _ => None,
        }))
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    fn encoded_len(&self) -> usize {
        self.iter().map(|(k, v)| 1 + 2 + k.len() + 2 + v.len()).sum()
    }
}

impl PartialEq for UserProps<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for UserProps<'_> {}

/// Subscription identifiers: a view over a property block, or a list the caller owns.
#[derive(Clone, Copy, Debug)]
pub enum SubIds<'a> {
    /// A validated property block (other properties skipped).
    Raw(&'a [u8]),
    /// Identifiers.
    List(&'a [u32]),
}

impl Default for SubIds<'_> {
    fn default() -> Self {
        SubIds::List(&[])
    }
}

impl<'a> SubIds<'a> {
    /// The identifiers, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        let (raw, list): (&'a [u8], &'a [u32]) = match *self {
            SubIds::Raw(r) => (r, &[]),
            SubIds::List(l) => (&[], l),
        };
        list.iter().copied().chain(RawProps::new(raw).filter_map(|p| match p {
            (0x0B, Value::Int(v)) => Some(v),
            _ => None,
        }))
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for SubIds<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for SubIds<'_> {}

/// Every MQTT 5.0 property. Absent properties are `None` (or empty). One struct serves all
/// packets; the decoder refuses properties not allowed in the packet being decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Properties<'a> {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<&'a str>,
    pub response_topic: Option<&'a str>,
    pub correlation_data: Option<&'a [u8]>,
    pub subscription_ids: SubIds<'a>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<&'a str>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<&'a str>,
    pub authentication_data: Option<&'a [u8]>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<&'a str>,
    pub server_reference: Option<&'a str>,
    pub reason_string: Option<&'a str>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    pub user: UserProps<'a>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
}

/// A decoded property value.
#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Byte(u8),
    U16(u16),
    U32(u32),
    Int(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

fn read_value<'a>(id: u8, r: &mut Reader<'a>) -> Result<Value<'a>, DecodeError> {
    Ok(match id {
        0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => Value::Byte(r.u8()?),
        0x13 | 0x21 | 0x22 | 0x23 => Value::U16(r.u16()?),
        0x02 | 0x11 | 0x18 | 0x27 => Value::U32(r.u32()?),
        0x0B => Value::Int(r.varint()?),
        0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => Value::Str(r.str()?),
        0x09 | 0x16 => Value::Bin(r.bin()?),
        0x26 => Value::Pair(r.str()?, r.str()?),
        _ => return Err(DecodeError::PropertyNotAllowed(id)),
    })
}

/// Iterates an already-validated property block; stops (never panics) at anything odd.
struct RawProps<'a>(Reader<'a>);

impl<'a> RawProps<'a> {
    fn new(b: &'a [u8]) -> Self {
        RawProps(Reader::new(b))
    }
}

impl<'a> Iterator for RawProps<'a> {
    type Item = (u8, Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let id = self.0.varint().ok()?;
        let id = u8::try_from(id).ok()?;
        let v = read_value(id, &mut self.0).ok()?;
        Some((id, v))
    }
}

fn set_once<T>(slot: &mut Option<T>, v: T, id: u8) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty(id));
    }
    *slot = Some(v);
    Ok(())
}

fn boolean(id: u8, b: u8) -> Result<u8, DecodeError> {
    if b > 1 {
        Err(DecodeError::InvalidPropertyValue(id))
    } else {
        Ok(b)
    }
}

impl<'a> Properties<'a> {
    /// Reads a property block (length varint, then properties) for the given packet.
    pub fn decode(r: &mut Reader<'a>, ctx: PropContext) -> Result<Self, DecodeError> {
        let len = r.varint()? as usize;
        let block = r.take(len)?;
        let mut p = Properties::default();
        let mut br = Reader::new(block);
        let mut has_user = false;
        let mut has_subid = false;
        while !br.is_empty() {
            let id = br.varint()?;
            let id = u8::try_from(id).map_err(|_| DecodeError::PropertyNotAllowed(0xff))?;
            match allowed(id) {
                Some(mask) if mask & (1 << ctx as u8) != 0 => {}
                _ => return Err(DecodeError::PropertyNotAllowed(id)),
            }
            let v = read_value(id, &mut br)?;
            match (id, v) {
                (0x01, Value::Byte(b)) => set_once(&mut p.payload_format_indicator, boolean(id, b)?, id)?,
                (0x02, Value::U32(x)) => set_once(&mut p.message_expiry_interval, x, id)?,
                (0x03, Value::Str(s)) => set_once(&mut p.content_type, s, id)?,
                (0x08, Value::Str(s)) => set_once(&mut p.response_topic, s, id)?,
                (0x09, Value::Bin(b)) => set_once(&mut p.correlation_data, b, id)?,
                (0x0B, Value::Int(x)) => {
                    // (MQTT 5.0 §3.8.2.1.2) a subscription identifier of 0 is a protocol error;
                    // only one is allowed in SUBSCRIBE.
                    if x == 0 {
                        return Err(DecodeError::InvalidPropertyValue(id));
                    }
                    if has_subid && ctx == PropContext::Subscribe {
                        return Err(DecodeError::DuplicateProperty(id));
                    }
                    has_subid = true;
                }
                (0x11, Value::U32(x)) => set_once(&mut p.session_expiry_interval, x, id)?,
                (0x12, Value::Str(s)) => set_once(&mut p.assigned_client_identifier, s, id)?,
                (0x13, Value::U16(x)) => set_once(&mut p.server_keep_alive, x, id)?,
                (0x15, Value::Str(s)) => set_once(&mut p.authentication_method, s, id)?,
                (0x16, Value::Bin(b)) => set_once(&mut p.authentication_data, b, id)?,
                (0x17, Value::Byte(b)) => set_once(&mut p.request_problem_information, boolean(id, b)?, id)?,
                (0x18, Value::U32(x)) => set_once(&mut p.will_delay_interval, x, id)?,
                (0x19, Value::Byte(b)) => set_once(&mut p.request_response_information, boolean(id, b)?, id)?,
                (0x1A, Value::Str(s)) => set_once(&mut p.response_information, s, id)?,
                (0x1C, Value::Str(s)) => set_once(&mut p.server_reference, s, id)?,
                (0x1F, Value::Str(s)) => set_once(&mut p.reason_string, s, id)?,
                (0x21, Value::U16(x)) => {
                    // Receive Maximum 0 is a protocol error (3.1.2.11.3).
                    if x == 0 {
                        return Err(DecodeError::InvalidPropertyValue(id));
                    }
                    set_once(&mut p.receive_maximum, x, id)?
                }
                (0x22, Value::U16(x)) => set_once(&mut p.topic_alias_maximum, x, id)?,
                (0x23, Value::U16(x)) => set_once(&mut p.topic_alias, x, id)?,
                (0x24, Value::Byte(b)) => set_once(&mut p.maximum_qos, boolean(id, b)?, id)?,
                (0x25, Value::Byte(b)) => set_once(&mut p.retain_available, boolean(id, b)?, id)?,
                (0x26, Value::Pair(..)) => has_user = true,
                (0x27, Value::U32(x)) => {
                    // Maximum Packet Size 0 is a protocol error (3.1.2.11.4).
                    if x == 0 {
                        return Err(DecodeError::InvalidPropertyValue(id));
                    }
                    set_once(&mut p.maximum_packet_size, x, id)?
                }
                (0x28, Value::Byte(b)) => set_once(&mut p.wildcard_subscription_available, boolean(id, b)?, id)?,
                (0x29, Value::Byte(b)) => set_once(&mut p.subscription_identifier_available, boolean(id, b)?, id)?,
                (0x2A, Value::Byte(b)) => set_once(&mut p.shared_subscription_available, boolean(id, b)?, id)?,
                _ => return Err(DecodeError::PropertyNotAllowed(id)),
            }
        }
        if has_user {
            p.user = UserProps::Raw(block);
        }
        if has_subid {
            p.subscription_ids = SubIds::Raw(block);
        }
        Ok(p)
    }

    /// Length of the property block without its length prefix.
    pub fn body_len(&self) -> usize {
        let s = |o: Option<&str>| o.map_or(0, |s| 1 + 2 + s.len());
        let b = |o: Option<&[u8]>| o.map_or(0, |b| 1 + 2 + b.len());
        let n1 = |o: Option<u8>| o.map_or(0, |_| 2);
        let n2 = |o: Option<u16>| o.map_or(0, |_| 3);
        let n4 = |o: Option<u32>| o.map_or(0, |_| 5);
        n1(self.payload_format_indicator)
            + n4(self.message_expiry_interval)
            + s(self.content_type)
            + s(self.response_topic)
            + b(self.correlation_data)
            + self.subscription_ids.iter().map(|v| 1 + varint_len(v)).sum::<usize>()
            + n4(self.session_expiry_interval)
            + s(self.assigned_client_identifier)
            + n2(self.server_keep_alive)
            + s(self.authentication_method)
            + b(self.authentication_data)
            + n1(self.request_problem_information)
            + n4(self.will_delay_interval)
            + n1(self.request_response_information)
            + s(self.response_information)
            + s(self.server_reference)
            + s(self.reason_string)
            + n2(self.receive_maximum)
            + n2(self.topic_alias_maximum)
            + n2(self.topic_alias)
            + n1(self.maximum_qos)
            + n1(self.retain_available)
            + self.user.encoded_len()
            + n4(self.maximum_packet_size)
            + n1(self.wildcard_subscription_available)
            + n1(self.subscription_identifier_available)
            + n1(self.shared_subscription_available)
    }

    /// Length of the property block including its length prefix.
    pub fn encoded_len(&self) -> usize {
        let n = self.body_len();
        varint_len(n as u32) + n
    }

    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.body_len() == 0
    }

    /// Checks field lengths before encoding.
    pub fn check(&self) -> Result<(), EncodeError> {
        for s in [
            self.content_type,
            self.response_topic,
            self.assigned_client_identifier,
            self.authentication_method,
            self.response_information,
            self.server_reference,
            self.reason_string,
        ]
        .into_iter()
        .flatten()
        {
            check_field(s.as_bytes())?;
        }
        for b in [self.correlation_data, self.authentication_data].into_iter().flatten() {
            check_field(b)?;
        }
        for (k, v) in self.user.iter() {
            check_field(k.as_bytes())?;
            check_field(v.as_bytes())?;
        }
        Ok(())
    }

    /// Writes the block (length prefix first), properties in identifier order.
    pub fn encode(&self, w: &mut impl Writer) {
        put_varint(w, self.body_len() as u32);
        self.encode_body(w);
    }

    /// Writes the properties without the length prefix (the caller wrote [`Self::body_len`]).
    pub fn encode_body(&self, w: &mut impl Writer) {
        let byte = |w: &mut _, id, v: Option<u8>| {
            if let Some(v) = v {
                Writer::put(w, &[id, v]);
            }
        };
        let short = |w: &mut _, id, v: Option<u16>| {
            if let Some(v) = v {
                Writer::put_u8(w, id);
                put_u16(w, v);
            }
        };
        let long = |w: &mut _, id, v: Option<u32>| {
            if let Some(v) = v {
                Writer::put_u8(w, id);
                put_u32(w, v);
            }
        };
        let text = |w: &mut _, id, v: Option<&str>| {
            if let Some(v) = v {
                Writer::put_u8(w, id);
                put_bin(w, v.as_bytes());
            }
        };
        let bin = |w: &mut _, id, v: Option<&[u8]>| {
            if let Some(v) = v {
                Writer::put_u8(w, id);
                put_bin(w, v);
            }
        };
        byte(w, 0x01, self.payload_format_indicator);
        long(w, 0x02, self.message_expiry_interval);
        text(w, 0x03, self.content_type);
        text(w, 0x08, self.response_topic);
        bin(w, 0x09, self.correlation_data);
        for id in self.subscription_ids.iter() {
            w.put_u8(0x0B);
            put_varint(w, id);
        }
        long(w, 0x11, self.session_expiry_interval);
        text(w, 0x12, self.assigned_client_identifier);
        short(w, 0x13, self.server_keep_alive);
        text(w, 0x15, self.authentication_method);
        bin(w, 0x16, self.authentication_data);
        byte(w, 0x17, self.request_problem_information);
        long(w, 0x18, self.will_delay_interval);
        byte(w, 0x19, self.request_response_information);
        text(w, 0x1A, self.response_information);
        text(w, 0x1C, self.server_reference);
        text(w, 0x1F, self.reason_string);
        short(w, 0x21, self.receive_maximum);
        short(w, 0x22, self.topic_alias_maximum);
        short(w, 0x23, self.topic_alias);
        byte(w, 0x24, self.maximum_qos);
        byte(w, 0x25, self.retain_available);
        for (k, v) in self.user.iter() {
            w.put_u8(0x26);
            put_bin(w, k.as_bytes());
            put_bin(w, v.as_bytes());
        }
        long(w, 0x27, self.maximum_packet_size);
        byte(w, 0x28, self.wildcard_subscription_available);
        byte(w, 0x29, self.subscription_identifier_available);
        byte(w, 0x2A, self.shared_subscription_available);
    }
}

/// Checks MQTT string rules on a user-supplied string before it is encoded.
pub fn check_str(s: &str) -> Result<(), DecodeError> {
    check_mqtt_str(s)
}
