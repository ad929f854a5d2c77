//! Restoring stored state at start from the hooks' `stored_*` loaders: sessions (offline),
//! their subscriptions and inflight messages, retained messages and counters. This is the seam
//! for crash-safe persistence; the broker only reads plain records here and never touches files.
//!
//! Invalid records (bad QoS, bad topic, unknown client, duplicates, over a bound) are skipped
//! and counted, never a reason not to start. Restoring fires no hooks (a storage hook must not
//! see its own records written back).

use crate::message::{Message, MessageProps};
use super::{cost, Broker, SubEntry};
use crate::hooks::Point;
use crate::packets::{PacketId, QoS, SubOptions};
use crate::session::{Delivery, Inflight, OutState, SubIdList, Subscription, WillMessage};
use crate::storage::{InflightState, MessageRecord};
use crate::time::{Duration, Instant};
use crate::topics;
use std::rc::Rc;

/// What [`Broker::start`] restored from the storage hooks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Sessions.
    pub clients: usize,
    /// Subscriptions.
    pub subscriptions: usize,
    /// Inflight messages.
    pub inflight: usize,
    /// Retained messages.
    pub retained: usize,
    /// Whether counters were restored.
    pub sys_info: bool,
    /// Records skipped as invalid, duplicate or over a bound.
    pub skipped: usize,
}

impl Broker {
    /// Asks the storage hooks for their records and restores them.
    pub(crate) fn restore(&mut self, now: Instant) -> Restored {
        let mut r = Restored::default();
        for c in self.hooks.stored(Point::StoredClients, |h| h.stored_clients()) {
            if c.client_id.is_empty()
                || c.client_id.len() > self.opts.max_id_length
                || self.by_client_id.get(&c.client_id, &self.sessions).is_some()
                || self.sessions.len() >= self.opts.max_sessions
            {
                r.skipped += 1;
                continue;
            }
            // A 3.x session stored as never expiring follows `persistent_client_expiration`.
            let stored = match (c.session_expiry_secs, c.protocol_level) {
                (u32::MAX, 3 | 4) => self.opts.v3_session_expiry(),
                (secs, _) => secs,
            };
            let expiry = stored.min(self.opts.max_session_expiry);
            if expiry == 0 {
                r.skipped += 1;
                continue;
            }
            let will = c.will.and_then(|w| Some((self.message_from(&w.message, now)?, w.delay_secs)));
            // A will over `max_will_bytes` is not restored (the session is).
            let will = will.filter(|(msg, _)| {
                let fits = self.will_bytes.fits(msg.cost());
                r.skipped += usize::from(!fits);
                fits
            });
            let key = self.new_session(&c.client_id);
            let Some(s) = self.sessions.get_mut(key as usize) else { continue };
            s.expiry_secs = expiry;
            if let Some((msg, delay_secs)) = will {
                // The client lost its connection in the restart: its will follows its delay
                // (or the session's end), as when a connection drops [MQTT-3.1.3-9].
                let at = now + Duration::from_secs(delay_secs.min(expiry) as u64);
                s.set_will(Some(WillMessage { msg: Rc::new(msg), delay_secs }), &mut self.will_bytes);
                s.extra_mut().will_at = Some(at);
                self.arm_session_timer(key, at);
            }
            if expiry != u32::MAX {
                let at = now + Duration::from_secs(expiry as u64);
                if let Some(s) = self.sessions.get_mut(key as usize) {
                    s.extra_mut().expires_at = Some(at);
                }
                // (the earlier of will and expiry is armed; the other when it fires)
                self.arm_session_timer(key, at);
            }
            r.clients += 1;
        }

        for sub in self.hooks.stored(Point::StoredSubscriptions, |h| h.stored_subscriptions()) {
            let Some(key) = self.by_client_id.get(&sub.client_id, &self.sessions) else {
                r.skipped += 1;
                continue;
            };
            let Some(qos) = QoS::from_u8(sub.qos.min(self.opts.max_qos)) else {
                r.skipped += 1;
                continue;
            };
            let shared = match topics::parse_shared(&sub.filter) {
                Ok(s) => s,
                Err(_) => {
                    r.skipped += 1;
                    continue;
                }
            };
            let plain = shared.map_or(sub.filter.as_str(), |s| s.filter);
            let Some(s) = self.sessions.get(key as usize) else {
                r.skipped += 1;
                continue;
            };
            if topics::validate_filter(plain, self.opts.max_topic_length, self.opts.max_topic_levels).is_err()
                || sub.filter.len() > self.opts.max_topic_length
                || sub.retain_handling > 2
                || s.subs.iter().any(|x| *x.filter == *sub.filter)
                || s.subs.len() >= self.opts.max_subscriptions_per_client
                || !self.sub_bytes.take(cost::subscription(&sub.filter))
            {
                r.skipped += 1;
                continue;
            }
            let opts = SubOptions {
                qos,
                no_local: sub.no_local,
                retain_as_published: sub.retain_as_published,
                retain_handling: sub.retain_handling,
            };
            let entry = SubEntry { opts, id: sub.identifier };
            match shared {
                Some(sh) => {
                    self.subs.insert_shared(sh.group, sh.filter, key, entry);
                }
                None => {
                    self.subs.insert(&sub.filter, key, entry);
                }
            }
            let filter: Box<str> = sub.filter.into();
            if let Some(s) = self.sessions.get_mut(key as usize) {
                s.subs.push(Subscription { filter, opts, id: sub.identifier });
            }
            r.subscriptions += 1;
        }

        for i in self.hooks.stored(Point::StoredInflightMessages, |h| h.stored_inflight_messages()) {
            let key = self.by_client_id.get(&i.client_id, &self.sessions);
            let pid = PacketId::new(i.packet_id);
            let qos = QoS::from_u8(i.qos).filter(|q| *q != QoS::AtMostOnce);
            let msg = self.message_from(&i.message, now);
            let (Some(key), Some(pid), Some(qos), Some(msg)) = (key, pid, qos, msg) else {
                r.skipped += 1;
                continue;
            };
            let Some(s) = self.sessions.get_mut(key as usize) else {
                r.skipped += 1;
                continue;
            };
            if s.flow().is_some_and(|f| f.inflight.iter().any(|x| x.pid == pid) || f.inflight.len() >= self.opts.max_inflight as usize) {
                r.skipped += 1;
                continue;
            }
            let state = match (i.state, qos) {
                (InflightState::AwaitPubAck, _) | (_, QoS::AtLeastOnce) => OutState::AwaitPubAck,
                (InflightState::AwaitPubRec, _) => OutState::AwaitPubRec,
                (InflightState::AwaitPubComp, _) => OutState::AwaitPubComp,
            };
            let sub_ids = match i.subscription_ids.as_slice() {
                [] => SubIdList::None,
                [one] => SubIdList::One(*one),
                many => SubIdList::Many(many.into()),
            };
            let d = Delivery { msg: Rc::new(msg), qos, retain: i.retain, sub_ids };
            if !self.queued.fits(d.cost()) {
                r.skipped += 1;
                continue;
            }
            s.push_restored(Inflight { pid, d, state, sent: false }, &mut self.queued);
            r.inflight += 1;
        }

        for rec in self.hooks.stored(Point::StoredRetainedMessages, |h| h.stored_retained_messages()) {
            let Some(msg) = self.message_from(&rec.message, now).filter(|m| !m.payload.is_empty()) else {
                r.skipped += 1;
                continue;
            };
            let cost = cost::retained(&msg);
            let old = self.retained.get(&msg.topic).map_or(0, |m| cost::retained(m));
            if (old == 0 && self.retained.len() >= self.opts.max_retained_messages)
                || self.retained_bytes - old + cost > self.opts.max_retained_bytes
            {
                r.skipped += 1;
                continue;
            }
            self.retained_bytes = self.retained_bytes - old + cost;
            let topic = msg.topic.clone();
            self.retained.set(&topic, Rc::new(msg));
            r.retained += 1;
        }

        let sys = self.hooks.stored(Point::StoredSysInfo, |h| h.stored_sys_info().into_iter().collect());
        if let (Some(sys), true) = (sys.into_iter().last(), self.opts.compat.restore_sys_info_on_restart) {
            let st = &mut self.stats;
            st.connections_total = sys.connections_total;
            st.clients_maximum = sys.clients_maximum;
            st.messages_received = sys.messages_received;
            st.messages_sent = sys.messages_sent;
            st.messages_dropped = sys.messages_dropped;
            st.bytes_received = sys.bytes_received;
            st.bytes_sent = sys.bytes_sent;
            st.packets_received = sys.packets_received;
            st.packets_sent = sys.packets_sent;
            r.sys_info = true;
        }
        r
    }

    /// A message from a stored record; `None` when the record is invalid.
    fn message_from(&self, m: &MessageRecord, now: Instant) -> Option<Message> {
        let qos = QoS::from_u8(m.qos)?;
        topics::validate_name(&m.topic, self.opts.max_topic_length, self.opts.max_topic_levels).ok()?;
        let mut user = Vec::new();
        for (k, v) in &m.props.user_properties {
            user.push(0x26);
            user.extend_from_slice(&u16::try_from(k.len()).ok()?.to_be_bytes());
            user.extend_from_slice(k.as_bytes());
            user.extend_from_slice(&u16::try_from(v.len()).ok()?.to_be_bytes());
            user.extend_from_slice(v.as_bytes());
        }
        let p = &m.props;
        Some(Message {
            topic: m.topic.as_str().into(),
            payload: m.payload.as_slice().into(),
            qos,
            retain: m.retain,
            props: MessageProps {
                payload_format: p.payload_format,
                content_type: p.content_type.as_deref().map(Into::into),
                response_topic: p.response_topic.as_deref().map(Into::into),
                correlation_data: p.correlation_data.as_deref().map(Into::into),
                user: user.into(),
            },
            expires_at: m.expiry_secs.map(|e| now + Duration::from_secs(e as u64)),
            has_expiry: m.expiry_secs.is_some(),
            origin: None,
        })
    }
}
