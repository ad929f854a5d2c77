//! Messages: inbound PUBLISH and its acknowledgements, routing through the trie into session
//! queues, and the pump that moves queued messages into the inflight window and the output.

use super::conn::ConnState;
use crate::message::{Message, MessageRef};
use super::{cost, Broker, ClientId, OutRoom};
use crate::hooks::{Access, MessageView, Point, Selected};
use crate::options::QueueFullPolicy;
use crate::packets::{Ack, Packet, PacketId, Properties, Publish, QoS, QosPid, ReasonCode};
use crate::session::{Delivery, Inflight, OutState, QueueFull, SubIdList};
use crate::time::Instant;
use crate::topics::{self, Hit};
use std::rc::Rc;

impl Broker {
    pub(super) fn on_publish(&mut self, id: ClientId, p: &Publish<'_>, now: Instant) {
        self.stats.messages_received += 1;
        let Some(c) = self.conn_mut(id) else { return };
        let v5 = c.version.is_v5();
        let qos = p.qospid.qos();

        // Topic alias (5.0): within our maximum [MQTT-3.3.2-8]; an unknown alias with an empty
        // topic is a protocol error.
        let mut topic_buf: Option<Box<str>> = None;
        if let Some(alias) = p.properties.topic_alias {
            let max = self.opts.topic_alias_maximum;
            if alias == 0 || alias > max {
                return self.protocol_error(id, ReasonCode::TopicAliasInvalid, now);
            }
            let Some(c) = self.conns.get_mut(id.slot as usize).filter(|c| c.id == id) else { return };
            let idx = alias as usize - 1;
            if p.topic.is_empty() {
                match c.extra.as_ref().and_then(|e| e.aliases_in.get(idx)).and_then(|t| t.as_deref()) {
                    Some(t) => topic_buf = Some(t.into()),
                    None => return self.protocol_error(id, ReasonCode::ProtocolError, now),
                }
            } else {
                // The table and its topics come out of `max_alias_bytes`: one that does not fit
                // is refused with 0x97 rather than forgotten (an alias the client set and we
                // forgot would make its next PUBLISH a protocol error).
                let e = c.extra_mut();
                let slots = (idx + 1).saturating_sub(e.aliases_in.len()) * cost::ALIAS_SLOT;
                let old = e.aliases_in.get(idx).and_then(|t| t.as_deref()).map_or(0, cost::alias_in);
                if !self.alias_bytes.swap(old, slots + cost::alias_in(p.topic)) {
                    return self.protocol_error(id, ReasonCode::QuotaExceeded, now);
                }
                e.alias_bytes = e.alias_bytes - old + slots + cost::alias_in(p.topic);
                let aliases = &mut e.aliases_in;
                if aliases.len() <= idx {
                    aliases.resize(idx + 1, None);
                }
                aliases[idx] = Some(p.topic.into());
            }
        }
        let topic: &str = topic_buf.as_deref().unwrap_or(p.topic);

        // Capabilities the server announced [MQTT-3.2.2-11], [MQTT-3.2.2-14].
        if qos.as_u8() > self.opts.max_qos {
            return self.protocol_error(id, ReasonCode::QoSNotSupported, now);
        }
        if p.retain && !self.opts.retain_available {
            return self.protocol_error(id, ReasonCode::RetainNotSupported, now);
        }
        if topics::validate_name(topic, self.opts.max_topic_length, self.opts.max_topic_levels).is_err() {
            return self.protocol_error(id, ReasonCode::TopicNameInvalid, now);
        }

        // Inbound QoS 2 already received (a resend before PUBREL): acknowledge, do not route
        // again [MQTT-4.3.3-10].
        let key = match self.conn(id).and_then(|c| c.session()) {
            Some(k) => k,
            None => return,
        };
        if let QosPid::ExactlyOnce(pid) = p.qospid {
            let pending = self.sessions.get(key as usize).and_then(|s| s.extra()).map(|e| &e.inbound_qos2);
            if pending.is_some_and(|set| set.contains(pid)) {
                self.send(id, &Packet::PubRec(Ack::ok(pid)));
                return;
            }
            // [MQTT-3.3.4-7] more unacknowledged QoS 2 than our receive maximum: DISCONNECT 0x93.
            // A 3.x client was never told a receive maximum (3.1.1 has none): it is held to the
            // larger `receive_maximum_v3` instead, so the set stays bounded, and closed without
            // a DISCONNECT (3.x has none from the server).
            let max = if v5 { self.opts.receive_maximum } else { self.opts.receive_maximum_v3 };
            if pending.is_some_and(|set| set.len() >= max as usize) {
                self.stats.receive_maximum_exceeded += 1;
                return self.protocol_error(id, ReasonCode::ReceiveMaximumExceeded, now);
            }
        }

        let rc = self.admit_publish(id, key, p, topic, v5, now);
        let rc = match rc {
            Ok(msg) => {
                let n = self.route(&msg, now);
                self.notify_published(id, &msg, n);
                if n == 0 {
                    ReasonCode::NoMatchingSubscribers
                } else {
                    ReasonCode::Success
                }
            }
            Err(rc) => rc,
        };
        let rc = if v5 { rc } else { ReasonCode::Success };
        match p.qospid {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(pid) => {
                self.send(id, &Packet::PubAck(Ack { pid, reason: rc, properties: Properties::default() }));
            }
            QosPid::ExactlyOnce(pid) => {
                if !rc.is_error() {
                    if let Some(s) = self.sessions.get_mut(key as usize) {
                        s.extra_mut().inbound_qos2.insert(pid);
                    }
                }
                self.send(id, &Packet::PubRec(Ack { pid, reason: rc, properties: Properties::default() }));
            }
        }
    }

    /// ACL, `$`-topic rule, payload format check and the OnPublish hooks; stores retained.
    fn admit_publish(&mut self, id: ClientId, key: u32, p: &Publish<'_>, topic: &str, v5: bool, now: Instant) -> Result<MessageRef, ReasonCode> {
        let not_authorized = if self.opts.compat.obscure_not_authorized {
            ReasonCode::UnspecifiedError
        } else {
            ReasonCode::NotAuthorized
        };
        // Clients may not write the server's `$` topics (only the inline client may).
        if topic.starts_with('$') {
            return Err(not_authorized);
        }
        // (MQTT 5.0 §3.3.2.3.2) we validate the payload format indicator: 1 means UTF-8.
        if v5 && p.properties.payload_format_indicator == Some(1) && core::str::from_utf8(p.payload).is_err() {
            return Err(ReasonCode::PayloadFormatInvalid);
        }
        let (info, hooks) = self.client_info_and_hooks(id);
        let Some(info) = info else { return Err(ReasonCode::UnspecifiedError) };
        if hooks.provides(Point::OnAclCheck) && !hooks.any(Point::OnAclCheck, |h| h.on_acl_check(&info, topic, Access::Write)) {
            return Err(not_authorized);
        }
        let view = MessageView { topic, payload: p.payload, qos: p.qospid.qos().as_u8(), retain: p.retain };
        let replaced = hooks.on_publish(&info, &view)?;
        let mut msg = Message::from_publish(p, topic, now, self.opts.max_message_expiry, Some(key));
        if let Some(payload) = replaced {
            msg.payload = payload.into();
        }
        let msg = Rc::new(msg);
        if msg.retain {
            self.store_retained(&msg);
        }
        Ok(msg)
    }

    fn notify_published(&mut self, id: ClientId, msg: &Message, n: usize) {
        if !self.hooks.provides(Point::OnPublished) {
            return;
        }
        let (info, hooks) = self.client_info_and_hooks(id);
        if let Some(info) = info {
            let view = MessageView { topic: &msg.topic, payload: &msg.payload, qos: msg.qos.as_u8(), retain: msg.retain };
            hooks.each(Point::OnPublished, |h| h.on_published(&info, &view, n));
        }
    }

    /// Sets or clears the retained message of the message's topic [MQTT-3.3.1-5..7], within
    /// the retained bounds.
    pub(crate) fn store_retained(&mut self, msg: &MessageRef) {
        if msg.payload.is_empty() {
            if let Some(old) = self.retained.remove(&msg.topic) {
                self.retained_bytes -= cost::retained(&old).min(self.retained_bytes);
            }
        } else {
            let cost = cost::retained(msg);
            let old_cost = self.retained.get(&msg.topic).map_or(0, |m| cost::retained(m));
            let new_topic = old_cost == 0;
            if (new_topic && self.retained.len() >= self.opts.max_retained_messages)
                || self.retained_bytes - old_cost + cost > self.opts.max_retained_bytes
            {
                self.stats.messages_dropped += 1;
                return;
            }
            self.retained_bytes = self.retained_bytes - old_cost + cost;
            self.retained.set(&msg.topic, msg.clone());
        }
        let (topic, payload) = (&msg.topic, &msg.payload);
        self.hooks.each(Point::OnRetainMessage, |h| h.on_retain_message(topic, payload));
    }

    /// Fans a message out to every matching subscription: one delivery per session (at the
    /// highest granted QoS of its matching subscriptions, with all their identifiers
    /// [MQTT-3.3.4-3]), plus one member of each matching shared group. Returns deliveries.
    pub(crate) fn route(&mut self, msg: &MessageRef, now: Instant) -> usize {
        self.epoch = self.epoch.wrapping_add(1);
        let epoch = self.epoch;
        let mut targets = core::mem::take(&mut self.route_scratch);
        targets.clear();
        let sessions = &mut self.sessions;
        let round_robin = self.opts.shared_policy == crate::options::SharedPolicy::RoundRobin;
        self.subs.for_each_match(&msg.topic, |hit| match hit {
            Hit::Sub(key, e) => {
                // [MQTT-3.8.3-3] No Local: not to the publishing session.
                if e.opts.no_local && msg.origin == Some(key) {
                    return;
                }
                let Some(s) = sessions.get_mut(key as usize) else { return };
                let qos = msg.qos.min(e.opts.qos);
                let retain = e.opts.retain_as_published && msg.retain;
                if s.route_mark.0 == epoch {
                    let t: &mut (u32, Delivery) = &mut targets[s.route_mark.1 as usize];
                    t.1.qos = t.1.qos.max(qos);
                    t.1.retain |= retain;
                    if let Some(sid) = e.id {
                        t.1.sub_ids.push(sid);
                    }
                } else {
                    s.route_mark = (epoch, targets.len() as u32);
                    let sub_ids = e.id.map_or(SubIdList::None, SubIdList::One);
                    targets.push((key, Delivery { msg: msg.clone(), qos, retain, sub_ids }));
                }
            }
            Hit::Shared(group) => {
                // One member per group: the next connected one in turn (or the first connected
                // one), else the next one at all (its session queues the message).
                let n = group.members().len();
                let online = |k: u32| sessions.get(k as usize).is_some_and(|s| s.conn.is_some());
                let (mut first, mut chosen) = (None, None);
                for step in 0..n {
                    let i = if round_robin {
                        let Some(i) = group.next_round_robin() else { break };
                        i
                    } else {
                        step
                    };
                    first.get_or_insert(i);
                    if online(group.members()[i].0) {
                        chosen = Some(i);
                        break;
                    }
                }
                let Some(i) = chosen.or(first) else { return };
                let Some(&(key, e)) = group.members().get(i) else { return };
                let qos = msg.qos.min(e.opts.qos);
                let sub_ids = e.id.map_or(SubIdList::None, SubIdList::One);
                targets.push((key, Delivery { msg: msg.clone(), qos, retain: false, sub_ids }));
            }
        });
        if self.hooks.provides(Point::OnSelectSubscribers) && !targets.is_empty() {
            let sessions = &self.sessions;
            let mut sel: Vec<Selected<'_>> = targets
                .iter()
                .map(|(k, d)| Selected { client_id: sessions.get(*k as usize).map_or("", |s| &s.client_id), qos: d.qos, deliver: true })
                .collect();
            let view = msg.view();
            self.hooks.each(Point::OnSelectSubscribers, |h| h.on_select_subscribers(&view, &mut sel));
            let mut i = 0;
            targets.retain_mut(|(_, d)| {
                let s = sel.get(i).copied();
                i += 1;
                match s {
                    Some(s) if s.deliver => {
                        d.qos = d.qos.min(s.qos);
                        true
                    }
                    Some(_) => false,
                    None => true,
                }
            });
        }
        let n = targets.len();
        for (key, d) in targets.drain(..) {
            self.deliver(key, d, now);
        }
        self.route_scratch = targets;
        n
    }

    /// Queues a delivery for a session and pumps it when the client is connected.
    pub(crate) fn deliver(&mut self, key: u32, d: Delivery, now: Instant) {
        let conn = self.sessions.get(key as usize).and_then(|s| s.conn);
        if conn.is_none() && d.qos == QoS::AtMostOnce && !self.opts.queue_qos0_offline {
            return;
        }
        // Fast path: a connected client with nothing queued or to resend, room in its window
        // and in its output gets the message encoded at once, without a trip through the queue.
        if let Some(id) = conn {
            if self.can_send_now(id, key, &d) {
                self.send_delivery(id, key, d, now);
                return;
            }
            // A connected client's output is full and its queue an eighth of the way to its
            // bound: the server should write before it reads on, or the queue overflows while
            // the loop reads ahead.
            let o = &self.opts;
            let filling = |f: &crate::session::Flow| f.queue.len() * 8 >= o.max_queued_messages || f.queued_bytes * 8 >= o.max_queued_bytes;
            if self.sessions.get(key as usize).and_then(|s| s.flow()).is_some_and(filling) {
                self.backlog = true;
            }
        }
        let Some(s) = self.sessions.get_mut(key as usize) else { return };
        let o = &self.opts;
        let msg = self.hooks.provides(Point::OnPublishDropped).then(|| d.msg.clone());
        match o.queue_full_policy {
            QueueFullPolicy::Disconnect if d.qos != QoS::AtMostOnce => {
                if s.enqueue(d, o.max_queued_messages, o.max_queued_bytes, false, &mut self.queued).is_err() {
                    self.stats.messages_dropped += 1;
                    if let Some(m) = msg {
                        self.notify_dropped(key, &m);
                    }
                    if let Some(id) = conn {
                        self.protocol_error(id, ReasonCode::QuotaExceeded, now);
                    }
                    return;
                }
            }
            policy => match s.enqueue(d, o.max_queued_messages, o.max_queued_bytes, policy == QueueFullPolicy::DropOldest, &mut self.queued) {
                Ok(()) => {}
                Err(QueueFull::DroppedNew) => {
                    self.stats.messages_dropped += 1;
                    if let Some(m) = msg {
                        self.notify_dropped(key, &m);
                    }
                }
                Err(QueueFull::DroppedOldest(old)) => {
                    self.stats.messages_dropped += old.len() as u64;
                    for m in old {
                        self.notify_dropped(key, &m);
                    }
                }
            },
        }
        if let Some(id) = conn {
            self.pump(id, now);
        }
    }

    /// Moves work into the output while it has room: inflight messages not yet (re)sent, then
    /// queued messages while the inflight window allows [MQTT-3.3.4-9].
    pub(crate) fn pump(&mut self, id: ClientId, now: Instant) {
        let Some(c) = self.conn(id) else { return };
        if c.state != ConnState::Connected {
            return;
        }
        let Some(key) = c.session() else { return };
        let window = c.window(&self.opts);

        // Resends after a reconnect: PUBLISH with DUP, or PUBREL.
        loop {
            let Some(s) = self.sessions.get_mut(key as usize) else { return };
            let Some(i) = s.next_unsent() else { break };
            let size = s.flow().and_then(|f| f.inflight.get(i)).map_or(0, |e| e.d.msg.cost());
            if !self.room_or_wait(id, size) {
                return;
            }
            let Some(s) = self.sessions.get_mut(key as usize) else { return };
            let f = s.flow_mut();
            // [MQTT-3.3.4-9] the new connection's Receive Maximum holds for resends too: no
            // more unacknowledged PUBLISH out than it allows (the rest go as others complete).
            if f.inflight[i].state != OutState::AwaitPubComp && f.inflight.iter().filter(|e| e.sent && e.state != OutState::AwaitPubComp).count() >= window {
                break;
            }
            f.inflight[i].sent = true;
            let entry = f.inflight[i].clone();
            match entry.state {
                OutState::AwaitPubComp => {
                    self.send(id, &Packet::PubRel(Ack::ok(entry.pid)));
                }
                _ => {
                    if self.send_publish(id, &entry.d, Some(entry.pid), true, now) {
                        self.with_client_hooks(id, Point::OnQosPublish, |h, info| h.on_qos_publish(info, &entry.d.msg.view(), entry.pid, true));
                    } else if let Some(s) = self.sessions.get_mut(key as usize) {
                        // [MQTT-3.1.2-25] too large for the new connection's Maximum Packet Size:
                        // dropped (counted in send_publish) and treated as completed, so it does
                        // not hold the window for ever.
                        let _ = s.take_inflight(entry.pid, &mut self.queued);
                    }
                }
            }
        }

        loop {
            let Some(s) = self.sessions.get(key as usize) else { return };
            let Some(f) = s.flow() else { return };
            let Some(front) = f.queue.front() else { return };
            if front.qos != QoS::AtMostOnce && f.inflight.len() >= window {
                return;
            }
            if !self.room_or_wait(id, front.msg.cost()) {
                return;
            }
            let Some(s) = self.sessions.get_mut(key as usize) else { return };
            let Some(d) = s.pop(&mut self.queued) else { return };
            if !self.send_delivery(id, key, d, now) {
                return;
            }
        }
    }

    /// Whether the output of `id` has room for a delivery of about `size` bytes; when it can
    /// only get it from `buffer_memory` later, the connection is listed to be pumped then.
    fn room_or_wait(&mut self, id: ClientId, size: usize) -> bool {
        let Some(c) = self.conn(id) else { return false };
        match self.out_room(c, size) {
            OutRoom::Yes => true,
            OutRoom::Later => false,
            OutRoom::WaitBudget => {
                self.wait_for_budget(id);
                false
            }
        }
    }

    /// Whether a new delivery for session `key` may skip the queue: connected, nothing queued
    /// or waiting to be resent (order is kept), room in the inflight window and in the output.
    fn can_send_now(&mut self, id: ClientId, key: u32, d: &Delivery) -> bool {
        let qos = d.qos;
        let Some(c) = self.conns.get(id.slot as usize).filter(|c| c.id == id) else { return false };
        let window = c.window(&self.opts);
        if c.state != ConnState::Connected || self.out_room(c, d.msg.cost()) != OutRoom::Yes {
            return false;
        }
        // A QoS 1/2 message is held until acknowledged: only with room in `queue_memory`.
        if qos != QoS::AtMostOnce && !self.queued.fits(d.cost()) {
            return false;
        }
        let Some(s) = self.sessions.get_mut(key as usize) else { return false };
        s.flow().is_none_or(|f| f.queue.is_empty() && (qos == QoS::AtMostOnce || f.inflight.len() < window)) && s.next_unsent().is_none()
    }

    /// Sends one delivery taken from the queue (or routed straight to a client with nothing
    /// queued): dropped when expired, a packet identifier for QoS 1/2. False when every
    /// identifier is in use: the delivery went back to the head of the queue.
    fn send_delivery(&mut self, id: ClientId, key: u32, d: Delivery, now: Instant) -> bool {
        // [MQTT-3.3.2-5] expired messages are never delivered.
        if d.msg.expired(now) {
            self.stats.messages_dropped += 1;
            self.notify_dropped(key, &d.msg);
            return true;
        }
        if d.qos == QoS::AtMostOnce {
            self.send_publish(id, &d, None, false, now);
            return true;
        }
        // The session is gone (a hook ended it): nothing to deliver to.
        let Some(s) = self.sessions.get_mut(key as usize) else { return true };
        let Some(pid) = s.alloc_pid() else {
            // Every identifier is in use: the delivery goes back to the head of the queue.
            let msg = d.msg.clone();
            s.requeue_front(d, &mut self.queued);
            self.with_client_hooks(id, Point::OnPacketIdExhausted, |h, info| h.on_packet_id_exhausted(info, &msg.view()));
            return false;
        };
        let state = if d.qos == QoS::AtLeastOnce { OutState::AwaitPubAck } else { OutState::AwaitPubRec };
        if self.send_publish(id, &d, Some(pid), false, now) {
            self.with_client_hooks(id, Point::OnQosPublish, |h, info| h.on_qos_publish(info, &d.msg.view(), pid, false));
            if let Some(s) = self.sessions.get_mut(key as usize) {
                s.push_inflight(Inflight { pid, d, state, sent: true }, &mut self.queued);
            }
        }
        true
    }

    /// Encodes one PUBLISH for this connection (topic alias, properties per version). Returns
    /// false when it was dropped (larger than the client's maximum packet size).
    fn send_publish(&mut self, id: ClientId, d: &Delivery, pid: Option<PacketId>, dup: bool, now: Instant) -> bool {
        let Some(c) = self.conns.get_mut(id.slot as usize).filter(|c| c.id == id) else { return false };
        let mut alias = None;
        let mut topic: &str = &d.msg.topic;
        if c.alias_max_out > 0 {
            let max = c.alias_max_out as usize;
            let out = &mut c.extra_mut().aliases_out;
            if let Some(&a) = out.get(topic) {
                alias = Some(a);
                topic = "";
            } else if out.len() < max && self.alias_bytes.used() + cost::alias_out(topic) <= self.alias_bytes.limit() / 2 {
                // Within the first half of `max_alias_bytes` (the rest stays for the clients'
                // own aliases, which cannot be refused but by DISCONNECT); past it the topic
                // goes in full.
                self.alias_bytes.force(cost::alias_out(topic));
                let a = out.len() as u16 + 1;
                out.insert(topic.into(), a);
                alias = Some(a);
                c.extra_mut().alias_bytes += cost::alias_out(topic);
            }
        }
        let mut properties = d.msg.properties(now, d.sub_ids.as_slice());
        properties.topic_alias = alias;
        let qospid = match (d.qos, pid) {
            (QoS::AtLeastOnce, Some(p)) => QosPid::AtLeastOnce(p),
            (QoS::ExactlyOnce, Some(p)) => QosPid::ExactlyOnce(p),
            _ => QosPid::AtMostOnce,
        };
        let pkt = Packet::Publish(Publish { dup: dup && pid.is_some(), qospid, retain: d.retain, topic, properties, payload: &d.msg.payload });
        let ok = self.send(id, &pkt);
        if ok {
            self.stats.messages_sent += 1;
        } else {
            // Too large for this client [MQTT-3.1.2-25]: dropped and counted.
            self.stats.messages_dropped += 1;
            if let Some(c) = self.conns.get_mut(id.slot as usize) {
                if let (Some(_), false, Some(e)) = (alias, topic.is_empty(), c.extra.as_mut()) {
                    if e.aliases_out.remove(&*d.msg.topic).is_some() {
                        e.alias_bytes -= cost::alias_out(&d.msg.topic);
                        self.alias_bytes.give(cost::alias_out(&d.msg.topic));
                    }
                }
                if let Some(key) = c.session() {
                    self.notify_dropped(key, &d.msg);
                }
            }
        }
        ok
    }

    /// `on_publish_dropped` for a message meant for session `key`.
    fn notify_dropped(&mut self, key: u32, msg: &Message) {
        if !self.hooks.provides(Point::OnPublishDropped) {
            return;
        }
        let Some(s) = self.sessions.get(key as usize) else { return };
        let view = msg.view();
        self.hooks.each(Point::OnPublishDropped, |h| h.on_publish_dropped(&s.client_id, &view));
    }

    /// `on_qos_complete` for an outbound exchange that just ended.
    fn notify_complete(&mut self, id: ClientId, done: Option<Inflight>) {
        if let Some(i) = done {
            self.with_client_hooks(id, Point::OnQosComplete, |h, info| h.on_qos_complete(info, &i.d.msg.view(), i.pid));
        }
    }

    fn session_of(&self, id: ClientId) -> Option<u32> {
        self.conn(id).and_then(|c| c.session())
    }

    pub(super) fn on_puback(&mut self, id: ClientId, pid: PacketId, now: Instant) {
        let Some(key) = self.session_of(id) else { return };
        let Some(s) = self.sessions.get_mut(key as usize) else { return };
        let done = if s.inflight_mut(pid).is_some_and(|i| i.state == OutState::AwaitPubAck) { s.take_inflight(pid, &mut self.queued) } else { None };
        self.notify_complete(id, done);
        self.pump(id, now);
    }

    pub(super) fn on_pubrec(&mut self, id: ClientId, a: &Ack<'_>, now: Instant) {
        let Some(key) = self.session_of(id) else { return };
        let Some(s) = self.sessions.get_mut(key as usize) else { return };
        match s.inflight_mut(a.pid) {
            Some(i) if i.state == OutState::AwaitPubRec || i.state == OutState::AwaitPubComp => {
                if a.reason.is_error() {
                    // (MQTT 5.0 §4.3.3) a PUBREC with a reason code of 0x80 or more ends the exchange.
                    if let Some(gone) = s.take_inflight(a.pid, &mut self.queued) {
                        if let (true, Some(s)) = (self.hooks.provides(Point::OnQosDropped), self.sessions.get(key as usize)) {
                            let view = gone.d.msg.view();
                            self.hooks.each(Point::OnQosDropped, |h| h.on_qos_dropped(&s.client_id, &view, gone.pid, a.reason));
                        }
                    }
                    self.pump(id, now);
                    return;
                }
                i.state = OutState::AwaitPubComp;
                self.send(id, &Packet::PubRel(Ack::ok(a.pid)));
            }
            _ => {
                let v5 = self.conn(id).is_some_and(|c| c.version.is_v5());
                let reason = if v5 { ReasonCode::PacketIdentifierNotFound } else { ReasonCode::Success };
                self.send(id, &Packet::PubRel(Ack { pid: a.pid, reason, properties: Properties::default() }));
            }
        }
    }

    pub(super) fn on_pubcomp(&mut self, id: ClientId, pid: PacketId, now: Instant) {
        let Some(key) = self.session_of(id) else { return };
        let Some(s) = self.sessions.get_mut(key as usize) else { return };
        let done = if s.inflight_mut(pid).is_some_and(|i| i.state == OutState::AwaitPubComp) { s.take_inflight(pid, &mut self.queued) } else { None };
        self.notify_complete(id, done);
        self.pump(id, now);
    }

    pub(super) fn on_pubrel(&mut self, id: ClientId, pid: PacketId, _now: Instant) {
        let Some(key) = self.session_of(id) else { return };
        let Some(s) = self.sessions.get_mut(key as usize) else { return };
        let found = s.extra_mut_if_any().is_some_and(|e| e.inbound_qos2.remove(pid));
        let v5 = self.conn(id).is_some_and(|c| c.version.is_v5());
        let reason = if found || !v5 { ReasonCode::Success } else { ReasonCode::PacketIdentifierNotFound };
        self.send(id, &Packet::PubComp(Ack { pid, reason, properties: Properties::default() }));
    }
}
