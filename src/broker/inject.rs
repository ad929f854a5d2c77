//! The embedding program's side doors: publishing as the inline client, injecting a packet as
//! the inline client or on behalf of a connected client, and disconnecting a client by id.

use crate::message::Message;
use super::{Broker, ClientId};
use crate::hooks::{ClientInfo, Point};
use crate::packets::{self, DecodeError, Packet, ReasonCode, Version};
use crate::time::Instant;
use crate::topics;
use std::rc::Rc;

/// Why an injected packet was not acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// The bytes are not one valid packet.
    Malformed(DecodeError),
    /// The bytes hold a partial packet, or more than one.
    NotOnePacket,
    /// The inline client injects PUBLISH only (it has no session to receive anything).
    Unsupported(&'static str),
    /// A PUBLISH without a usable topic (empty, or with wildcards).
    BadTopic,
    /// No client with that identifier is connected.
    NoSuchClient,
    /// A hook refused the message with this reason code.
    Rejected(ReasonCode),
}

impl core::fmt::Display for InjectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InjectError::Malformed(e) => write!(f, "malformed packet: {e}"),
            InjectError::NotOnePacket => f.write_str("the bytes are not exactly one packet"),
            InjectError::Unsupported(name) => write!(f, "the inline client cannot inject {name}"),
            InjectError::BadTopic => f.write_str("the topic is empty or has wildcards"),
            InjectError::NoSuchClient => f.write_str("no such client is connected"),
            InjectError::Rejected(rc) => write!(f, "a hook rejected it with {rc:?}"),
        }
    }
}

impl std::error::Error for InjectError {}

/// Decodes exactly one packet from `bytes`.
fn decode_one(bytes: &[u8], v: Version) -> Result<Packet<'_>, InjectError> {
    match packets::decode(bytes, v, u32::MAX) {
        Ok(Some((p, n))) if n == bytes.len() => Ok(p),
        Ok(_) => Err(InjectError::NotOnePacket),
        Err(e) => Err(InjectError::Malformed(e)),
    }
}

impl Broker {
    /// Publishes as the inline client: `on_publish` (may change or reject it), retained store,
    /// routing, `on_published`. No ACL and no `$`-topic rule.
    pub(crate) fn publish_inline(&mut self, mut msg: Message, now: Instant) -> Result<usize, ReasonCode> {
        if let Some(p) = self.hooks.on_publish(&ClientInfo::INLINE, &msg.view())? {
            msg.payload = p.into();
        }
        let msg = Rc::new(msg);
        if msg.retain {
            self.store_retained(&msg);
        }
        let n = self.route(&msg, now);
        self.hooks.each(Point::OnPublished, |h| h.on_published(&ClientInfo::INLINE, &msg.view(), n));
        Ok(n)
    }

    /// Injects one encoded packet (MQTT 5.0 encoding) as the inline client. Only PUBLISH is
    /// accepted: it bypasses ACL and topic limits and may write `$SYS/...`; the hooks see it
    /// with [`ClientInfo::INLINE`]. Returns the number of deliveries.
    pub fn inject(&mut self, bytes: &[u8], now: Instant) -> Result<usize, InjectError> {
        let p = match decode_one(bytes, Version::V5)? {
            Packet::Publish(p) => p,
            other => return Err(InjectError::Unsupported(other.name())),
        };
        if topics::validate_name(p.topic, usize::MAX, usize::MAX).is_err() {
            return Err(InjectError::BadTopic);
        }
        let msg = Message::from_publish(&p, p.topic, now, self.opts.max_message_expiry, None);
        self.publish_inline(msg, now).map_err(InjectError::Rejected)
    }

    /// Injects one encoded packet on behalf of the connected client `client_id`, encoded for
    /// that client's protocol version. It is handled exactly like a packet read from the
    /// client's socket: its ACL, hooks and limits apply, and any answer (PUBACK, SUBACK, ...)
    /// goes to that client, so inject QoS 0 or packet identifiers the client does not use.
    pub fn inject_as(&mut self, client_id: &str, bytes: &[u8], now: Instant) -> Result<(), InjectError> {
        let id = self.connection_of(client_id).ok_or(InjectError::NoSuchClient)?;
        let v = self.version_of(id);
        let pkt = decode_one(bytes, v)?;
        self.stats.packets_received += 1;
        self.handle(id, pkt, now);
        Ok(())
    }

    /// The open connection of a connected client.
    pub fn connection_of(&self, client_id: &str) -> Option<ClientId> {
        let key = self.by_client_id.get(client_id, &self.sessions)?;
        let id = self.sessions.get(key as usize)?.conn?;
        self.conn(id).filter(|c| c.session() == Some(key) && c.state == super::ConnState::Connected).map(|c| c.id)
    }

    /// Disconnects a connected client: DISCONNECT with `reason` to a 5.0 client, then close
    /// (its will is published). False when no such client is connected.
    pub fn disconnect_client(&mut self, client_id: &str, reason: ReasonCode, now: Instant) -> bool {
        match self.connection_of(client_id) {
            Some(id) => {
                self.protocol_error(id, reason, now);
                true
            }
            None => false,
        }
    }
}
