//! Stored records: what survives a restart. Plain owned data with serde derives so postcard
//! can store them.
//!
//! postcard is not self-describing: **the field order is the format**. Never reorder, retype or
//! remove a field of a record once it has been stored; add a new record type (a `V2`) and keep
//! reading the old one.
//!
//! Times are stored as intervals (seconds), not instants: the broker's clock starts at zero on
//! every run, so a restored message expiry or session expiry starts counting again at restore.

use serde::{Deserialize, Serialize};

/// The forwarded MQTT 5 properties of a message [MQTT-3.3.2-17..20].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePropsRecord {
    /// Payload format indicator.
    pub payload_format: Option<u8>,
    /// Content type.
    pub content_type: Option<String>,
    /// Response topic.
    pub response_topic: Option<String>,
    /// Correlation data.
    pub correlation_data: Option<Vec<u8>>,
    /// User properties, in order.
    pub user_properties: Vec<(String, String)>,
}

/// An application message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS it was published with (0..=2; other values make the record invalid).
    pub qos: u8,
    /// Retain flag it was published with.
    pub retain: bool,
    /// Forwarded properties.
    pub props: MessagePropsRecord,
    /// Message expiry interval in seconds, counted again from the restore.
    pub expiry_secs: Option<u32>,
}

/// A will message with its delay.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WillRecord {
    /// The message.
    pub message: MessageRecord,
    /// Will delay interval in seconds.
    pub delay_secs: u32,
}

/// A persistent session (its client is offline after a restart).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// Client identifier.
    pub client_id: String,
    /// User name it last connected with.
    pub username: Option<String>,
    /// Protocol level it last connected with (3, 4 or 5).
    pub protocol_level: u8,
    /// Session expiry interval in seconds (`u32::MAX`: never), counted again from the restore.
    pub session_expiry_secs: u32,
    /// Its will, published when the session expires (or after its delay).
    pub will: Option<WillRecord>,
}

/// A subscription of a stored client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Client identifier (a [`ClientRecord`] with it must be restored too).
    pub client_id: String,
    /// The filter as subscribed, including any `$share/{group}/` prefix.
    pub filter: String,
    /// Granted QoS.
    pub qos: u8,
    /// No Local option.
    pub no_local: bool,
    /// Retain As Published option.
    pub retain_as_published: bool,
    /// Retain Handling option (0..=2).
    pub retain_handling: u8,
    /// Subscription identifier.
    pub identifier: Option<u32>,
}

/// Where an outbound QoS 1/2 message stood.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InflightState {
    /// QoS 1 PUBLISH sent, no PUBACK yet (resent with DUP).
    #[default]
    AwaitPubAck,
    /// QoS 2 PUBLISH sent, no PUBREC yet (resent with DUP).
    AwaitPubRec,
    /// PUBREL sent, no PUBCOMP yet (PUBREL resent).
    AwaitPubComp,
}

/// An outbound QoS 1/2 message in flight to a stored client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InflightRecord {
    /// Client identifier.
    pub client_id: String,
    /// Packet identifier (1..=65535).
    pub packet_id: u16,
    /// The message.
    pub message: MessageRecord,
    /// QoS it is delivered at (1 or 2).
    pub qos: u8,
    /// RETAIN flag it is delivered with.
    pub retain: bool,
    /// Subscription identifiers it is delivered with.
    pub subscription_ids: Vec<u32>,
    /// Where the exchange stood.
    pub state: InflightState,
}

/// A retained message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainedRecord {
    /// The message (its topic is the retained topic).
    pub message: MessageRecord,
}

/// Cumulative counters, restored when `compat.restore_sys_info_on_restart` is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysInfoRecord {
    /// Connections accepted in total.
    pub connections_total: u64,
    /// Most clients connected at once.
    pub clients_maximum: u64,
    /// PUBLISH packets received.
    pub messages_received: u64,
    /// PUBLISH packets sent.
    pub messages_sent: u64,
    /// Messages dropped.
    pub messages_dropped: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Packets received.
    pub packets_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_postcard() {
        let msg = MessageRecord {
            topic: "a/b".into(),
            payload: b"x".to_vec(),
            qos: 1,
            retain: true,
            props: MessagePropsRecord { user_properties: vec![("k".into(), "v".into())], ..Default::default() },
            expiry_secs: Some(5),
        };
        let c = ClientRecord {
            client_id: "c".into(),
            username: Some("u".into()),
            protocol_level: 5,
            session_expiry_secs: 60,
            will: Some(WillRecord { message: msg.clone(), delay_secs: 3 }),
        };
        let bytes = postcard::to_allocvec(&c).unwrap();
        assert_eq!(postcard::from_bytes::<ClientRecord>(&bytes).unwrap(), c);
        let i = InflightRecord { client_id: "c".into(), packet_id: 7, message: msg, qos: 1, retain: false, subscription_ids: vec![3], state: InflightState::AwaitPubRec };
        let bytes = postcard::to_allocvec(&i).unwrap();
        assert_eq!(postcard::from_bytes::<InflightRecord>(&bytes).unwrap(), i);
    }
}
