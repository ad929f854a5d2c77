//! SUBSCRIBE and UNSUBSCRIBE: filter validation, capabilities, ACL, the trie, and retained
//! messages on subscribe.

use super::{cost, Broker, ClientId, SubEntry};
use crate::hooks::{Access, Point};
use crate::packets::{Packet, QoS, ReasonCode, SubAck, Subscribe, Unsubscribe, Properties};
use crate::session::{Delivery, SubIdList, Subscription};
use crate::time::Instant;
use crate::topics;

impl Broker {
    pub(super) fn on_subscribe(&mut self, id: ClientId, sub: &Subscribe<'_>, now: Instant) {
        let Some(c) = self.conn(id) else { return };
        let v5 = c.version.is_v5();
        let Some(key) = c.session() else { return };
        let sub_id = sub.properties.subscription_ids.iter().next();
        // (MQTT 5.0 §3.2.2.3.12) subscription identifiers when the server said it has none: 0xA1.
        if sub_id.is_some() && !self.opts.subscription_identifier_available {
            return self.protocol_error(id, ReasonCode::SubscriptionIdentifiersNotSupported, now);
        }
        let not_authorized = if self.opts.compat.obscure_not_authorized {
            ReasonCode::UnspecifiedError
        } else {
            ReasonCode::NotAuthorized
        };
        let mut codes: heapless::Vec<u8, 64> = heapless::Vec::new();
        let mut more_codes: Vec<u8> = Vec::new();
        let mut retained_out: Vec<Delivery> = Vec::new();
        for (filter, opts) in sub.filters.iter() {
            let shared = match topics::parse_shared(filter) {
                Ok(s) => s,
                Err(_) => {
                    push_code(&mut codes, &mut more_codes, ReasonCode::TopicFilterInvalid);
                    continue;
                }
            };
            // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
            if shared.is_some() && opts.no_local {
                return self.protocol_error(id, ReasonCode::ProtocolError, now);
            }
            let plain = shared.map_or(filter, |s| s.filter);
            let mut hook_qos = opts.qos;
            let rc = if shared.is_some() && !self.opts.shared_subscription_available {
                ReasonCode::SharedSubscriptionsNotSupported
            } else if topics::validate_filter(plain, self.opts.max_topic_length, self.opts.max_topic_levels).is_err()
                || filter.len() > self.opts.max_topic_length
            {
                // A shared filter's `$share/{group}/` counts too: the session keeps all of it.
                ReasonCode::TopicFilterInvalid
            } else if topics::has_wildcards(plain) && !self.opts.wildcard_subscription_available {
                ReasonCode::WildcardSubscriptionsNotSupported
            } else if let Err(rc) = self.hook_subscribe(id, filter, opts.qos).map(|q| hook_qos = q) {
                rc
            } else if !self.acl_allows(id, plain, Access::Read) {
                not_authorized
            } else {
                let Some(s) = self.sessions.get(key as usize) else { return };
                let exists = s.subs.iter().any(|x| &*x.filter == filter);
                if !exists && s.subs.len() >= self.opts.max_subscriptions_per_client {
                    ReasonCode::QuotaExceeded
                } else if !exists && !self.sub_bytes.take(cost::subscription(filter)) {
                    // `max_subscription_bytes`, shared by every session: 0x97 for this filter
                    // (0x80 in 3.x), given back by UNSUBSCRIBE or the session's end.
                    ReasonCode::QuotaExceeded
                } else {
                    let granted = QoS::from_u8(hook_qos.as_u8().min(self.opts.max_qos)).unwrap_or(QoS::AtMostOnce);
                    let mut opts = opts;
                    opts.qos = granted;
                    let entry = SubEntry { opts, id: sub_id };
                    match shared {
                        Some(sh) => {
                            self.subs.insert_shared(sh.group, sh.filter, key, entry);
                        }
                        None => {
                            self.subs.insert(filter, key, entry);
                        }
                    }
                    if let Some(s) = self.sessions.get_mut(key as usize) {
                        let record = Subscription { filter: filter.into(), opts, id: sub_id };
                        match s.subs.iter_mut().find(|x| &*x.filter == filter) {
                            Some(x) => *x = record,
                            None => s.subs.push(record),
                        }
                    }
                    // Retained messages: not for shared subscriptions; retain handling 0 sends
                    // them, 1 only for a new subscription, 2 never [MQTT-3.3.1-9..11].
                    if shared.is_none() && (opts.retain_handling == 0 || (opts.retain_handling == 1 && !exists)) {
                        self.retained.for_each_match(filter, |_, m| {
                            retained_out.push(Delivery {
                                msg: m.clone(),
                                qos: m.qos.min(granted),
                                retain: true,
                                sub_ids: sub_id.map_or(SubIdList::None, SubIdList::One),
                            });
                        });
                    }
                    match granted {
                        QoS::AtMostOnce => ReasonCode::Success,
                        QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                        QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
                    }
                }
            };
            if self.hooks.provides(Point::OnSubscribed) {
                let (info, hooks) = self.client_info_and_hooks(id);
                if let Some(info) = info {
                    hooks.each(Point::OnSubscribed, |h| h.on_subscribed(&info, filter, rc));
                }
            }
            push_code(&mut codes, &mut more_codes, rc);
        }
        let _ = v5;
        let all: &[u8] = if more_codes.is_empty() { &codes } else { &more_codes };
        self.send(id, &Packet::SubAck(SubAck { pid: sub.pid, properties: Properties::default(), codes: all }));
        // Retained messages follow the SUBACK, through the session queue (its bounds apply).
        for d in retained_out {
            if !d.msg.expired(now) {
                self.deliver(key, d, now);
            }
        }
    }

    pub(super) fn on_unsubscribe(&mut self, id: ClientId, u: &Unsubscribe<'_>, _now: Instant) {
        let Some(key) = self.conn(id).and_then(|c| c.session()) else { return };
        let mut codes: heapless::Vec<u8, 64> = heapless::Vec::new();
        let mut more_codes: Vec<u8> = Vec::new();
        for filter in u.filters.iter() {
            self.with_client_hooks(id, Point::OnUnsubscribe, |h, info| h.on_unsubscribe(info, filter));
            let Some(s) = self.sessions.get_mut(key as usize) else { return };
            let rc = match s.subs.iter().position(|x| &*x.filter == filter) {
                Some(i) => {
                    s.subs.remove(i);
                    self.unsubscribe_filter(key, filter);
                    self.sub_bytes.give(cost::subscription(filter));
                    if self.hooks.provides(Point::OnUnsubscribed) {
                        let (info, hooks) = self.client_info_and_hooks(id);
                        if let Some(info) = info {
                            hooks.each(Point::OnUnsubscribed, |h| h.on_unsubscribed(&info, filter));
                        }
                    }
                    ReasonCode::Success
                }
                None => ReasonCode::NoSubscriptionExisted,
            };
            push_code(&mut codes, &mut more_codes, rc);
        }
        let all: &[u8] = if more_codes.is_empty() { &codes } else { &more_codes };
        self.send(id, &Packet::UnsubAck(SubAck { pid: u.pid, properties: Properties::default(), codes: all }));
    }

    /// Removes one subscription of a session from the trie.
    pub(crate) fn unsubscribe_filter(&mut self, key: u32, filter: &str) {
        match topics::parse_shared(filter) {
            Ok(Some(sh)) => {
                self.subs.remove_shared(sh.group, sh.filter, key);
            }
            _ => {
                self.subs.remove(filter, key);
            }
        }
    }

    /// The `on_subscribe` chain for one filter: the QoS to grant, or a refusal.
    fn hook_subscribe(&mut self, id: ClientId, filter: &str, qos: QoS) -> Result<QoS, ReasonCode> {
        if !self.hooks.provides(Point::OnSubscribe) {
            return Ok(qos);
        }
        let (info, hooks) = self.client_info_and_hooks(id);
        match info {
            Some(info) => hooks.on_subscribe(&info, filter, qos),
            None => Err(ReasonCode::UnspecifiedError),
        }
    }

    /// The ACL decision for a connection: allowed when no hook checks ACLs, else when any
    /// hook allows.
    pub(crate) fn acl_allows(&mut self, id: ClientId, topic: &str, access: Access) -> bool {
        if !self.hooks.provides(Point::OnAclCheck) {
            return true;
        }
        let (info, hooks) = self.client_info_and_hooks(id);
        match info {
            Some(info) => hooks.any(Point::OnAclCheck, |h| h.on_acl_check(&info, topic, access)),
            None => false,
        }
    }
}

/// Appends a reason code: in a fixed buffer for the common case, spilling to a Vec beyond it.
fn push_code(codes: &mut heapless::Vec<u8, 64>, more: &mut Vec<u8>, rc: ReasonCode) {
    if more.is_empty() {
        if codes.push(rc.as_u8()).is_ok() {
            return;
        }
        more.extend_from_slice(codes);
    }
    more.push(rc.as_u8());
}
