//! The codec: bytes to a borrowed [`Packet`] and back, for MQTT 3.1, 3.1.1 and 5.0.
//!
//! Pure functions over byte slices: no I/O, no clock, no sessions, no allocation. Decoding is
//! `decode(buf, version, max_packet_size) -> Result<Option<(Packet, used)>, DecodeError>` where
//! `Ok(None)` means "need more bytes" and an error means the bytes are malformed (see
//! [`DecodeError::reason_code`] for the reason code each error requires). Encoding sizes first
//! ([`Packet::encoded_len`]) and then writes into a caller's [`Writer`].

mod codec;
pub mod error;
pub mod primitives;
pub mod properties;
pub mod reason;

pub use codec::{connect_level, decode, decode_header, FrameHeader};
pub use error::{DecodeError, EncodeError};
pub use primitives::Writer;
pub use properties::{PropContext, Properties, SubIds, UserProps};
pub use reason::{ReasonCode, ReasonContext};

use core::num::NonZeroU16;

/// The protocol level, detected from CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// MQTT 3.1 (protocol name `MQIsdp`, level 3).
    V3_1,
    /// MQTT 3.1.1 (level 4).
    V3_1_1,
    /// MQTT 5.0 (level 5).
    V5,
}

impl Version {
    /// The protocol level byte.
    pub const fn level(self) -> u8 {
        match self {
            Version::V3_1 => 3,
            Version::V3_1_1 => 4,
            Version::V5 => 5,
        }
    }

    /// The protocol name sent in CONNECT.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Version::V3_1 => "MQIsdp",
            _ => "MQTT",
        }
    }

    /// True for MQTT 5.0.
    pub const fn is_v5(self) -> bool {
        matches!(self, Version::V5)
    }
}

/// Quality of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// At most once.
    #[default]
    AtMostOnce = 0,
    /// At least once.
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// From the two QoS bits; 3 is `None` [MQTT-3.3.1-4].
    pub const fn from_u8(b: u8) -> Option<QoS> {
        match b {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// As a number.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A packet identifier: never zero [MQTT-2.2.1-3].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(pub NonZeroU16);

impl PacketId {
    /// `None` for zero.
    pub const fn new(v: u16) -> Option<PacketId> {
        match NonZeroU16::new(v) {
            Some(n) => Some(PacketId(n)),
            None => None,
        }
    }

    /// The identifier as a number.
    pub const fn get(self) -> u16 {
        self.0.get()
    }
}

/// QoS together with the packet identifier it requires, so QoS 0 with an id cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QosPid {
    /// QoS 0: no packet identifier.
    AtMostOnce,
    /// QoS 1 with its packet identifier.
    AtLeastOnce(PacketId),
    /// QoS 2 with its packet identifier.
    ExactlyOnce(PacketId),
}

impl QosPid {
    /// The QoS.
    pub const fn qos(self) -> QoS {
        match self {
            QosPid::AtMostOnce => QoS::AtMostOnce,
            QosPid::AtLeastOnce(_) => QoS::AtLeastOnce,
            QosPid::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier, if any.
    pub const fn pid(self) -> Option<PacketId> {
        match self {
            QosPid::AtMostOnce => None,
            QosPid::AtLeastOnce(p) | QosPid::ExactlyOnce(p) => Some(p),
        }
    }

    /// Builds from a QoS and an identifier (ignored for QoS 0).
    pub const fn from_parts(qos: QoS, pid: PacketId) -> QosPid {
        match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(pid),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(pid),
        }
    }
}

/// Subscription options (MQTT 5.0 3.8.3.1; only `qos` exists in 3.x).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SubOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// Do not send the subscriber's own messages back to it.
    pub no_local: bool,
    /// Keep the RETAIN flag as published when forwarding.
    pub retain_as_published: bool,
    /// 0 send retained on subscribe, 1 only for a new subscription, 2 never.
    pub retain_handling: u8,
}

impl SubOptions {
    /// The options byte.
    pub const fn to_byte(self) -> u8 {
        self.qos as u8
            | (self.no_local as u8) << 2
            | (self.retain_as_published as u8) << 3
            | (self.retain_handling & 3) << 4
    }
}

/// A will message carried in CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Will<'a> {
    /// Will topic.
    pub topic: &'a str,
    /// Will payload.
    pub payload: &'a [u8],
    /// Will QoS.
    pub qos: QoS,
    /// Will retain.
    pub retain: bool,
    /// Will properties (5.0).
    pub properties: Properties<'a>,
}

/// CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Protocol level, from the packet itself.
    pub version: Version,
    /// Clean start (5.0) / clean session (3.x).
    pub clean_start: bool,
    /// Keep alive in seconds.
    pub keep_alive: u16,
    /// Client identifier (may be empty).
    pub client_id: &'a str,
    /// The will, if any.
    pub will: Option<Will<'a>>,
    /// User name.
    pub username: Option<&'a str>,
    /// Password.
    pub password: Option<&'a [u8]>,
    /// Properties (5.0).
    pub properties: Properties<'a>,
}

/// CONNACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnAck<'a> {
    /// Session present.
    pub session_present: bool,
    /// Reason (mapped to a 3.x return code for older clients).
    pub reason: ReasonCode,
    /// Properties (5.0).
    pub properties: Properties<'a>,
}

/// PUBLISH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    /// Redelivery flag.
    pub dup: bool,
    /// QoS and packet identifier.
    pub qospid: QosPid,
    /// Retain flag.
    pub retain: bool,
    /// Topic name (empty when a 5.0 topic alias stands for it).
    pub topic: &'a str,
    /// Properties (5.0).
    pub properties: Properties<'a>,
    /// Application payload.
    pub payload: &'a [u8],
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack<'a> {
    /// Packet identifier.
    pub pid: PacketId,
    /// Reason (5.0; `Success` for 3.x).
    pub reason: ReasonCode,
    /// Properties (5.0).
    pub properties: Properties<'a>,
}

impl Ack<'_> {
    /// A successful ack without properties.
    pub fn ok(pid: PacketId) -> Ack<'static> {
        Ack { pid, reason: ReasonCode::Success, properties: Properties::default() }
    }
}

/// The topic filters of a SUBSCRIBE: a view of the payload, or a list the caller owns.
#[derive(Clone, Copy, Debug)]
pub enum SubscribeFilters<'a> {
    /// A validated payload.
    Raw(&'a [u8], Version),
    /// Filters with options.
    List(&'a [(&'a str, SubOptions)]),
}

impl<'a> SubscribeFilters<'a> {
    /// The filters with their options, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, SubOptions)> + 'a {
        let (raw, v, list): (&'a [u8], Version, &'a [(&'a str, SubOptions)]) = match *self {
            SubscribeFilters::Raw(r, v) => (r, v, &[]),
            SubscribeFilters::List(l) => (&[], Version::V5, l),
        };
        let mut r = primitives::Reader::new(raw);
        list.iter().copied().chain(core::iter::from_fn(move || {
            if r.is_empty() {
                return None;
            }
            let f = r.str().ok()?;
            let b = r.u8().ok()?;
            codec::sub_options(b, v).ok().map(|o| (f, o))
        }))
    }
}

impl PartialEq for SubscribeFilters<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.iter().eq(o.iter())
    }
}
impl Eq for SubscribeFilters<'_> {}

/// The topic filters of an UNSUBSCRIBE: a view of the payload, or a list the caller owns.
#[derive(Clone, Copy, Debug)]
pub enum TopicList<'a> {
    /// A validated payload.
    Raw(&'a [u8]),
    /// Filters.
    List(&'a [&'a str]),
}

impl<'a> TopicList<'a> {
    /// The filters, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (raw, list): (&'a [u8], &'a [&'a str]) = match *self {
            TopicList::Raw(r) => (r, &[]),
            TopicList::List(l) => (&[], l),
        };
        let mut r = primitives::Reader::new(raw);
        list.iter().copied().chain(core::iter::from_fn(move || {
            if r.is_empty() {
                None
            } else {
                r.str().ok()
            }
        }))
    }
}

impl PartialEq for TopicList<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.iter().eq(o.iter())
    }
}
impl Eq for TopicList<'_> {}

/// SUBSCRIBE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// Packet identifier.
    pub pid: PacketId,
    /// Properties (5.0: subscription identifier, user properties).
    pub properties: Properties<'a>,
    /// The filters (at least one).
    pub filters: SubscribeFilters<'a>,
}

/// SUBACK or UNSUBACK: one reason code per filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubAck<'a> {
    /// Packet identifier.
    pub pid: PacketId,
    /// Properties (5.0).
    pub properties: Properties<'a>,
    /// Reason codes as bytes (validated on decode). 3.x SUBACK bytes are 0, 1, 2 or 0x80.
    pub codes: &'a [u8],
}

/// UNSUBSCRIBE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// Packet identifier.
    pub pid: PacketId,
    /// Properties (5.0).
    pub properties: Properties<'a>,
    /// The filters (at least one).
    pub filters: TopicList<'a>,
}

/// DISCONNECT or AUTH: a reason and properties (5.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disconnect<'a> {
    /// Reason.
    pub reason: ReasonCode,
    /// Properties.
    pub properties: Properties<'a>,
}

/// One MQTT control packet, borrowing from the bytes it was decoded from.
///
/// CONNECT is much larger than the rest (two property blocks). It is not boxed: a decoded packet
/// lives briefly on the stack, and boxing would put an allocation on every decode of the
/// rarest packet for no gain on the hot ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, clippy::large_enum_variant)]
pub enum Packet<'a> {
    Connect(Connect<'a>),
    ConnAck(ConnAck<'a>),
    Publish(Publish<'a>),
    PubAck(Ack<'a>),
    PubRec(Ack<'a>),
    PubRel(Ack<'a>),
    PubComp(Ack<'a>),
    Subscribe(Subscribe<'a>),
    SubAck(SubAck<'a>),
    Unsubscribe(Unsubscribe<'a>),
    UnsubAck(SubAck<'a>),
    PingReq,
    PingResp,
    Disconnect(Disconnect<'a>),
    Auth(Disconnect<'a>),
}

impl Packet<'_> {
    /// The packet type number (1..=15).
    pub fn type_id(&self) -> u8 {
        match self {
            Packet::Connect(_) => 1,
            Packet::ConnAck(_) => 2,
            Packet::Publish(_) => 3,
            Packet::PubAck(_) => 4,
            Packet::PubRec(_) => 5,
            Packet::PubRel(_) => 6,
            Packet::PubComp(_) => 7,
            Packet::Subscribe(_) => 8,
            Packet::SubAck(_) => 9,
            Packet::Unsubscribe(_) => 10,
            Packet::UnsubAck(_) => 11,
            Packet::PingReq => 12,
            Packet::PingResp => 13,
            Packet::Disconnect(_) => 14,
            Packet::Auth(_) => 15,
        }
    }

    /// The packet type's name, for logs.
    pub fn name(&self) -> &'static str {
        const NAMES: [&str; 16] = [
            "RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
            "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT",
            "AUTH",
        ];
        NAMES[self.type_id() as usize & 15]
    }
}

#[cfg(test)]
mod tests;
