//! An application message as the broker keeps it: stored once, shared by every queue that
//! delivers it (`Rc`), with the MQTT 5 properties that travel with it.

use crate::hooks::MessageView;
use crate::packets::{Properties, Publish, QoS, SubIds, UserProps};
use crate::time::{Duration, Instant};
use std::rc::Rc;

/// Properties forwarded with a message unchanged [MQTT-3.3.2-17..20].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageProps {
    /// Payload format indicator.
    pub payload_format: Option<u8>,
    /// Content type.
    pub content_type: Option<Box<str>>,
    /// Response topic (request/response).
    pub response_topic: Option<Box<str>>,
    /// Correlation data (request/response).
    pub correlation_data: Option<Box<[u8]>>,
    /// User properties, kept as their encoded property block (only 0x26 entries).
    pub user: Box<[u8]>,
}

/// An application message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Topic name.
    pub topic: Box<str>,
    /// Payload.
    pub payload: Box<[u8]>,
    /// QoS it was published with.
    pub qos: QoS,
    /// Retain flag it was published with.
    pub retain: bool,
    /// Forwarded properties.
    pub props: MessageProps,
    /// When it expires: from its message expiry interval, or the server's maximum.
    pub expires_at: Option<Instant>,
    /// True when the publisher set a message expiry interval (only then is one forwarded).
    pub has_expiry: bool,
    /// The session that published it (for No Local), if any.
    pub origin: Option<u32>,
}

/// A shared, immutable message.
pub type MessageRef = Rc<Message>;

/// The fixed part of [`Message::cost`] (defined in the low `budget` room, which `Options` reads).
pub use crate::budget::MESSAGE_OVERHEAD;

impl Message {
    /// Builds a message from a decoded PUBLISH (topic already resolved from any alias).
    pub fn from_publish(p: &Publish<'_>, topic: &str, now: Instant, max_expiry: u32, origin: Option<u32>) -> Message {
        let pr = &p.properties;
        let expiry = match (pr.message_expiry_interval, max_expiry) {
            (Some(e), 0) => Some(e),
            (Some(e), m) => Some(e.min(m)),
            (None, 0) => None,
            (None, m) => Some(m),
        };
        Message {
            topic: topic.into(),
            payload: p.payload.into(),
            qos: p.qospid.qos(),
            retain: p.retain,
            props: Message::props_from(pr),
            expires_at: expiry.map(|e| now + Duration::from_secs(e as u64)),
            has_expiry: pr.message_expiry_interval.is_some(),
            origin,
        }
    }

    /// The forwarded properties of a PUBLISH or will, owned.
    pub fn props_from(pr: &Properties<'_>) -> MessageProps {
        let mut user = Vec::new();
        for (k, v) in pr.user.iter() {
            user.push(0x26);
            user.extend_from_slice(&(k.len() as u16).to_be_bytes());
            user.extend_from_slice(k.as_bytes());
            user.extend_from_slice(&(v.len() as u16).to_be_bytes());
            user.extend_from_slice(v.as_bytes());
        }
        MessageProps {
            payload_format: pr.payload_format_indicator,
            content_type: pr.content_type.map(Into::into),
            response_topic: pr.response_topic.map(Into::into),
            correlation_data: pr.correlation_data.map(Into::into),
            user: user.into(),
        }
    }

    /// The message as hooks see it.
    pub fn view(&self) -> MessageView<'_> {
        MessageView { topic: &self.topic, payload: &self.payload, qos: self.qos.as_u8(), retain: self.retain }
    }

    /// True once the message expiry interval has passed [MQTT-3.3.2-5].
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// Bytes this message accounts for in queue and retained budgets: everything it holds that a
    /// publisher chooses the size of (topic, payload and every forwarded property, each up to
    /// 64 KiB or more) plus [`MESSAGE_OVERHEAD`]. A message is immutable once shared, so the
    /// value is the same when it is added to a budget and when it is taken out again.
    pub fn cost(&self) -> usize {
        let p = &self.props;
        MESSAGE_OVERHEAD
            + self.topic.len()
            + self.payload.len()
            + p.content_type.as_ref().map_or(0, |s| s.len())
            + p.response_topic.as_ref().map_or(0, |s| s.len())
            + p.correlation_data.as_ref().map_or(0, |d| d.len())
            + p.user.len()
    }

    /// The properties to send with it: the remaining expiry interval [MQTT-3.3.2-6], the
    /// forwarded ones, and the subscription identifiers of the matching subscriptions.
    pub fn properties<'a>(&'a self, now: Instant, sub_ids: &'a [u32]) -> Properties<'a> {
        Properties {
            payload_format_indicator: self.props.payload_format,
            message_expiry_interval: self.expires_at.filter(|_| self.has_expiry).map(|t| {
                let left = t.saturating_since(now).millis();
                left.div_ceil(1000).max(1) as u32
            }),
            content_type: self.props.content_type.as_deref(),
            response_topic: self.props.response_topic.as_deref(),
            correlation_data: self.props.correlation_data.as_deref(),
            user: UserProps::Raw(&self.props.user),
            subscription_ids: SubIds::List(sub_ids),
            ..Properties::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(props: MessageProps) -> Message {
        Message {
            topic: "t/1".into(),
            payload: vec![0; 10].into(),
            qos: QoS::AtMostOnce,
            retain: true,
            props,
            expires_at: None,
            has_expiry: false,
            origin: None,
        }
    }

    #[test]
    fn the_cost_counts_topic_payload_and_every_forwarded_property() {
        let bare = message(MessageProps::default()).cost();
        assert_eq!(bare, MESSAGE_OVERHEAD + 3 + 10);
        let props = MessageProps {
            payload_format: Some(1),
            content_type: Some("c".repeat(100).into()),
            response_topic: Some("r".repeat(200).into()),
            correlation_data: Some(vec![7; 300].into()),
            // one user property "k" = "vv": 0x26, 2-byte length, key, 2-byte length, value
            user: vec![0x26, 0, 1, b'k', 0, 2, b'v', b'v'].into(),
        };
        assert_eq!(message(props).cost(), bare + 100 + 200 + 300 + 8);
    }
}

#[cfg(test)]
mod size_tests {
    /// The budget room's estimates, which `Options::memory_terms` uses without importing the
    /// broker, bound the real sizes.
    #[test]
    fn the_budget_estimates_bound_the_real_sizes() {
        use core::mem::size_of;
        assert!(size_of::<super::Message>() <= crate::budget::MESSAGE_SIZE);
        assert!(size_of::<crate::session::Delivery>() <= crate::budget::DELIVERY_SIZE);
        assert!(size_of::<crate::server::Command>() + size_of::<usize>() <= crate::budget::COMMAND_SLOT);
        assert_eq!(crate::hooks::throttle::MAX_ADDRESSES, crate::budget::AUTH_THROTTLE_ADDRESSES);
    }
}
