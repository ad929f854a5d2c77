//! Decode and encode errors. Each decode error names the normative statement it enforces, and
//! [`DecodeError::reason_code`] is the one place that maps them to reason codes.

use super::reason::ReasonCode;
use core::fmt;

/// A malformed or illegal packet. "Need more bytes" is never an error (`Ok(None)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// [MQTT-1.5.5-1] the remaining length (or a property varint) uses more than 4 bytes, or is
    /// not in its shortest form where the spec requires it.
    BadVarInt,
    /// The packet is larger than the maximum packet size (0x95); detected from the fixed header.
    PacketTooLarge {
        /// Total size of the packet in bytes.
        size: u64,
    },
    /// [MQTT-2.1.3-1] packet type 0 (reserved).
    ReservedPacketType,
    /// [MQTT-2.1.3-1] the fixed header flags are not the ones the packet type requires.
    BadHeaderFlags,
    /// The packet ends before its fields do, or has bytes after its last field.
    BadLength,
    /// [MQTT-1.5.4-1] a string is not well-formed UTF-8 (surrogates included).
    InvalidUtf8,
    /// [MQTT-1.5.4-2] a string contains U+0000.
    NullCharacter,
    /// [MQTT-3.3.1-4] QoS 3 in a PUBLISH, a will, or a subscription option.
    InvalidQoS,
    /// [MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH.
    DupOnQoS0,
    /// [MQTT-2.2.1-3] packet identifier 0 where one is required.
    ZeroPacketId,
    /// [MQTT-3.3.2-2] a PUBLISH topic name contains `+` or `#`.
    TopicWildcard,
    /// [MQTT-2.2.2-1] a property identifier that is unknown or not allowed in this packet.
    PropertyNotAllowed(u8),
    /// [MQTT-2.2.2-1] a property that may appear once appears twice.
    DuplicateProperty(u8),
    /// A property with a value outside its range (e.g. Receive Maximum 0, a boolean byte of 2).
    InvalidPropertyValue(u8),
    /// An unassigned reason code, or one not allowed in this packet.
    InvalidReasonCode(u8),
    /// [MQTT-3.1.2-1] the protocol name is not `MQTT` (or `MQIsdp` for level 3).
    BadProtocolName,
    /// [MQTT-3.1.2-2] a protocol level the server does not support.
    UnsupportedProtocolVersion(u8),
    /// [MQTT-3.1.2-3] the CONNECT reserved flag is set.
    ConnectReservedFlag,
    /// [MQTT-3.1.2-11] / [MQTT-3.1.2-13] will QoS or will retain set without the will flag.
    WillFlags,
    /// [MQTT-3.1.2-22] (3.1.1) a password without a user name.
    PasswordWithoutUsername,
    /// [MQTT-3.8.3-3] / [MQTT-3.10.3-2] SUBSCRIBE or UNSUBSCRIBE without a topic filter.
    NoTopicFilters,
    /// [MQTT-3.8.3-5] reserved bits of the subscription options are set (or retain handling 3).
    BadSubscriptionOptions,
    /// [MQTT-4.7.3-1] a topic filter or name that is empty where the spec requires a non-empty
    /// string (5.0 3.3.2.1: an empty PUBLISH topic without a Topic Alias is a Protocol Error).
    EmptyTopic,
    /// (5.0, 3.8.3.1) Maximum QoS 3 or Retain Handling 3 in the subscription options: a
    /// Protocol Error (the reserved bits are [`DecodeError::BadSubscriptionOptions`]).
    SubscriptionOptionValue,
}

impl DecodeError {
    /// The reason code the spec requires for this error: 0x81 malformed, 0x82 protocol error,
    /// 0x95 packet too large, 0x84 unsupported protocol version, 0x90 topic name invalid.
    pub fn reason_code(self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            UnsupportedProtocolVersion(_) | BadProtocolName => ReasonCode::UnsupportedProtocolVersion,
            DuplicateProperty(_) | InvalidPropertyValue(_) | ZeroPacketId | NoTopicFilters
            | EmptyTopic | SubscriptionOptionValue => ReasonCode::ProtocolError,
            TopicWildcard => ReasonCode::TopicNameInvalid,
            BadVarInt | ReservedPacketType | BadHeaderFlags | BadLength | InvalidUtf8
            | NullCharacter | InvalidQoS | DupOnQoS0 | PropertyNotAllowed(_)
            | InvalidReasonCode(_) | ConnectReservedFlag | WillFlags | PasswordWithoutUsername
            | BadSubscriptionOptions => ReasonCode::MalformedPacket,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeError::*;
        match self {
            BadVarInt => f.write_str("[MQTT-1.5.5-1] variable byte integer longer than 4 bytes"),
            PacketTooLarge { size } => write!(f, "packet of {size} bytes exceeds the maximum packet size"),
            ReservedPacketType => f.write_str("[MQTT-2.1.3-1] reserved packet type 0"),
            BadHeaderFlags => f.write_str("[MQTT-2.1.3-1] invalid fixed header flags"),
            BadLength => f.write_str("packet length does not match its contents"),
            InvalidUtf8 => f.write_str("[MQTT-1.5.4-1] string is not well-formed UTF-8"),
            NullCharacter => f.write_str("[MQTT-1.5.4-2] string contains U+0000"),
            InvalidQoS => f.write_str("[MQTT-3.3.1-4] QoS 3 is reserved"),
            DupOnQoS0 => f.write_str("[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH"),
            ZeroPacketId => f.write_str("[MQTT-2.2.1-3] packet identifier 0"),
            TopicWildcard => f.write_str("[MQTT-3.3.2-2] PUBLISH topic name contains a wildcard"),
            PropertyNotAllowed(id) => write!(f, "[MQTT-2.2.2-1] property 0x{id:02x} not allowed here"),
            DuplicateProperty(id) => write!(f, "property 0x{id:02x} included more than once"),
            InvalidPropertyValue(id) => write!(f, "property 0x{id:02x} has an invalid value"),
            InvalidReasonCode(c) => write!(f, "reason code 0x{c:02x} not valid in this packet"),
            BadProtocolName => f.write_str("[MQTT-3.1.2-1] bad protocol name"),
            UnsupportedProtocolVersion(v) => write!(f, "[MQTT-3.1.2-2] unsupported protocol level {v}"),
            ConnectReservedFlag => f.write_str("[MQTT-3.1.2-3] CONNECT reserved flag set"),
            WillFlags => f.write_str("[MQTT-3.1.2-11] will QoS/retain set without will flag"),
            PasswordWithoutUsername => f.write_str("[MQTT-3.1.2-22] password without user name"),
            NoTopicFilters => f.write_str("[MQTT-3.8.3-3] no topic filter in SUBSCRIBE/UNSUBSCRIBE"),
            BadSubscriptionOptions => f.write_str("[MQTT-3.8.3-5] reserved subscription option bits set"),
            SubscriptionOptionValue => f.write_str("Maximum QoS 3 or Retain Handling 3 in subscription options"),
            EmptyTopic => f.write_str("[MQTT-4.7.3-1] empty topic"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A packet that cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The packet would exceed the largest remaining length (268,435,455 bytes).
    TooLarge,
    /// A string or binary field is longer than 65,535 bytes.
    FieldTooLong,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge => f.write_str("packet exceeds the maximum remaining length"),
            EncodeError::FieldTooLong => f.write_str("field longer than 65535 bytes"),
        }
    }
}

impl std::error::Error for EncodeError {}
