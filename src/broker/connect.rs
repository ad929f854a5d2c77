//! CONNECT, enhanced authentication, session take-over and resumption, client DISCONNECT.

use super::conn::ConnState;
use crate::message::Message;
use super::{cost, Broker, ClientId};
use crate::hooks::{AuthStep, ClientInfo, Point};
use crate::packets::{ConnAck, Connect, Disconnect, Packet, Properties, QoS, ReasonCode, Version};
use crate::session::{Session, WillMessage};
use crate::time::Instant;
use std::rc::Rc;

impl Broker {
    pub(super) fn on_connect(&mut self, id: ClientId, c: &Connect<'_>, now: Instant) {
        let v = c.version;
        if let Some(conn) = self.conn_mut(id) {
            conn.version = v;
        }
        let assigned = match self.client_id_for(c, now) {
            Ok(a) => a,
            Err(rc) => return self.refuse(id, rc, now),
        };
        // A will the server cannot honour is refused, not downgraded (5.0): a will QoS above the
        // server's Maximum QoS gets 0x9B [MQTT-3.2.2-12], a retained will without Retain
        // Available 0x9A [MQTT-3.2.2-13].
        if let (Some(w), true) = (c.will, v.is_v5()) {
            if w.qos.as_u8() > self.opts.max_qos {
                return self.refuse(id, ReasonCode::QoSNotSupported, now);
            }
            if w.retain && !self.opts.retain_available {
                return self.refuse(id, ReasonCode::RetainNotSupported, now);
            }
        }
        // What the connection and its session keep of the CONNECT is bounded by max_id_length:
        // a longer client identifier is refused with 0x85 [MQTT-3.1.3-8] (0x02 in 3.x), a
        // longer user name with 0x86 (0x04), a longer authentication method with 0x8C (0x05).
        let max_id = self.opts.max_id_length;
        if c.client_id.len() > max_id {
            return self.refuse(id, ReasonCode::ClientIdentifierNotValid, now);
        }
        let cert_too_long = self.conn(id).and_then(|k| k.cert_username()).is_some_and(|u| u.len() > max_id);
        if cert_too_long || c.username.is_some_and(|u| u.len() > max_id) {
            return self.refuse(id, ReasonCode::BadUserNameOrPassword, now);
        }
        if c.properties.authentication_method.is_some_and(|m| m.len() > max_id) {
            return self.refuse(id, ReasonCode::BadAuthenticationMethod, now);
        }
        let client_id: &str = assigned.as_deref().unwrap_or(c.client_id);
        let (remote, listener, allow_anon, cert_user) = match self.conn_mut(id) {
            Some(k) => {
                k.client_id = client_id.into();
                (k.remote.clone(), k.listener.clone(), k.allow_anonymous, k.cert_username().map(String::from))
            }
            None => return,
        };
        let username = cert_user.as_deref().or(c.username);
        let info = ClientInfo { client_id, username, remote: remote.as_str(), listener: &listener, version: v, inline: false };
        let pkt = Packet::Connect(*c);
        if let Err(rc) = self.hooks.first_err(Point::OnConnect, |h| h.on_connect(&info, &pkt)) {
            return self.refuse(id, rc, now);
        }
        // An address over `auth_failures_per_minute` is refused before any auth hook runs (no
        // password hashing on the loop): 0x87, which is 0x05 in 3.x.
        if self.hooks.throttle.blocked(remote.as_str(), self.opts.auth_failures_per_minute, now) {
            let obscure = self.opts.compat.obscure_not_authorized;
            return self.refuse(id, if obscure { ReasonCode::UnspecifiedError } else { ReasonCode::NotAuthorized }, now);
        }

        // Enhanced authentication (5.0, section 4.12): a hook runs the exchange; without one
        // the method is refused with 0x8C.
        if let Some(method) = c.properties.authentication_method {
            match self.hooks.on_auth_packet(&info, method, c.properties.authentication_data, false) {
                AuthStep::NotMine => return self.refuse(id, ReasonCode::BadAuthenticationMethod, now),
                AuthStep::Fail(rc) => return self.refuse_credentials(id, rc, now),
                AuthStep::Continue(data) => {
                    // The CONNECT is kept until the exchange ends: at most max_handshakes of
                    // them across the broker, one more gets 0x97.
                    if self.authenticating >= self.opts.max_handshakes {
                        return self.refuse(id, ReasonCode::QuotaExceeded, now);
                    }
                    let mut raw = Vec::new();
                    if pkt.encode(v, &mut raw).is_err() {
                        return self.refuse(id, ReasonCode::UnspecifiedError, now);
                    }
                    if let Some(k) = self.conn_mut(id) {
                        k.state = ConnState::Authenticating;
                        let e = k.extra_mut();
                        e.auth_method = Some(method.into());
                        e.pending_connect = Some(raw.into());
                        self.authenticating += 1;
                    }
                    return self.send_auth(id, ReasonCode::ContinueAuthentication, method, Some(&data));
                }
                AuthStep::Success(data) => return self.finish_connect(id, c, assigned, Some(data), now),
            }
        }

        // Authentication: any hook that admits the client, or the listener's anonymous rule.
        let by_hook = self.hooks.any(Point::OnConnectAuthenticate, |h| h.on_connect_authenticate(&info, c.password));
        let anonymous_ok = allow_anon && (username.is_none() || !self.hooks.provides(Point::OnConnectAuthenticate));
        if !(by_hook || anonymous_ok) {
            let rc = if self.opts.compat.obscure_not_authorized {
                ReasonCode::UnspecifiedError
            } else if c.username.is_some() || c.password.is_some() {
                ReasonCode::BadUserNameOrPassword
            } else {
                ReasonCode::NotAuthorized
            };
            return self.refuse_credentials(id, rc, now);
        }
        self.finish_connect(id, c, assigned, None, now)
    }

    /// [`Broker::refuse`] for failed authentication, counted against the remote address.
    fn refuse_credentials(&mut self, id: ClientId, rc: ReasonCode, now: Instant) {
        if let Some(k) = self.conns.get(id.slot as usize).filter(|k| k.id == id) {
            self.hooks.throttle.failed(k.remote.as_str(), self.opts.auth_failures_per_minute, now);
        }
        self.refuse(id, rc, now);
    }

    /// CONNACK with a failure reason, then close.
    fn refuse(&mut self, id: ClientId, rc: ReasonCode, now: Instant) {
        let ack = ConnAck { session_present: false, reason: rc, properties: Properties::default() };
        self.send(id, &Packet::ConnAck(ack));
        self.close_now(id, rc, now);
    }

    fn send_auth(&mut self, id: ClientId, reason: ReasonCode, method: &str, data: Option<&[u8]>) {
        let properties = Properties { authentication_method: Some(method), authentication_data: data, ..Properties::default() };
        self.send(id, &Packet::Auth(Disconnect { reason, properties }));
    }

    /// The client identifier rules: `Ok(Some(id))` when the server assigns one.
    fn client_id_for(&mut self, c: &Connect<'_>, now: Instant) -> Result<Option<String>, ReasonCode> {
        if !c.client_id.is_empty() {
            return Ok(None);
        }
        // [MQTT-3.1.3-8] (3.1.1) an empty id with clean session 0 is refused with 0x02;
        // 3.1 requires 1 to 23 characters.
        if c.version == Version::V3_1 || (c.version == Version::V3_1_1 && !c.clean_start) {
            return Err(ReasonCode::ClientIdentifierNotValid);
        }
        // [MQTT-3.1.3-6] the server assigns a unique identifier.
        loop {
            self.assigned += 1;
            let cand = format!("edgemq-{:x}-{}", self.assigned, now.millis() % 1000);
            if self.by_client_id.get(&cand, &self.sessions).is_none() {
                return Ok(Some(cand));
            }
        }
    }

    /// Admits an authenticated client: take-over, session, will, keep alive, CONNACK, resends.
    fn finish_connect(&mut self, id: ClientId, c: &Connect<'_>, assigned: Option<String>, auth: Option<Option<Vec<u8>>>, now: Instant) {
        let v = c.version;
        let client_id: &str = assigned.as_deref().unwrap_or(c.client_id);
        let (remote, listener, cert_user) = match self.conn(id) {
            Some(k) => (k.remote.clone(), k.listener.clone(), k.cert_username().map(String::from)),
            None => return,
        };
        let username = cert_user.as_deref().or(c.username);
        if let (Some(reference), true) = (self.opts.server_reference.clone(), v.is_v5()) {
            // Redirect configured: 0x9C use another server, with the reference.
            let properties = Properties { server_reference: Some(&reference), ..Properties::default() };
            let ack = ConnAck { session_present: false, reason: ReasonCode::UseAnotherServer, properties };
            self.send(id, &Packet::ConnAck(ack));
            return self.close_now(id, ReasonCode::UseAnotherServer, now);
        }

        // The will is held until it is sent or discarded: within `max_will_bytes`, counting the
        // session's old will as gone (a reconnect replaces it [MQTT-3.1.3-9]). 0x97, 0x03 in 3.x.
        let max_qos = self.opts.max_qos;
        let will = c.will.map(|w| {
            let msg = Message {
                topic: w.topic.into(),
                payload: w.payload.into(),
                qos: QoS::from_u8(w.qos.as_u8().min(max_qos)).unwrap_or(QoS::AtMostOnce),
                retain: w.retain && self.opts.retain_available,
                props: Message::props_from(&w.properties),
                expires_at: w.properties.message_expiry_interval.map(|e| now + crate::time::Duration::from_secs(e as u64)),
                has_expiry: w.properties.message_expiry_interval.is_some(),
                origin: None,
            };
            (msg, w.properties.will_delay_interval.unwrap_or(0))
        });
        if let Some((msg, _)) = &will {
            let existing = self.by_client_id.get(client_id, &self.sessions);
            let old = existing.and_then(|k| self.sessions.get(k as usize)?.will().map(cost::will)).unwrap_or(0);
            if !self.will_bytes.fits_replacing(old, msg.cost()) {
                return self.refuse(id, ReasonCode::QuotaExceeded, now);
            }
        }

        // Take-over: a connected client with the same id is disconnected [MQTT-3.1.4-3].
        let existing = self.by_client_id.get(client_id, &self.sessions);
        if let Some(key) = existing {
            let old = self.sessions.get(key as usize).and_then(|s| s.conn);
            if let Some(old) = old {
                if self.opts.compat.passive_client_disconnect {
                    self.close_now(old, ReasonCode::SessionTakenOver, now);
                } else {
                    self.protocol_error(old, ReasonCode::SessionTakenOver, now);
                }
            }
        }
        // The take-over may have ended the old session (expiry 0).
        let existing = self.by_client_id.get(client_id, &self.sessions);
        if existing.is_none() && self.sessions.len() >= self.opts.max_sessions {
            return self.refuse(id, ReasonCode::QuotaExceeded, now);
        }

        // Session: clean start discards [MQTT-3.1.2-4], otherwise resume [MQTT-3.1.2-5].
        let (key, session_present) = match existing {
            Some(key) if c.clean_start => {
                self.remove_session(key, now);
                (self.new_session(client_id), false)
            }
            Some(key) => (key, true),
            None => (self.new_session(client_id), false),
        };

        let p = &c.properties;
        let requested_expiry = if v.is_v5() {
            p.session_expiry_interval.unwrap_or(0)
        } else if c.clean_start {
            0
        } else {
            // 3.x clean session 0: the session outlives the connection [MQTT-3.1.1:3.1.2-4], for
            // `persistent_client_expiration` (0: for ever).
            self.opts.v3_session_expiry()
        };
        let expiry = requested_expiry.min(self.opts.max_session_expiry);
        let will = will.map(|(msg, delay_secs)| WillMessage { msg: Rc::new(Message { origin: Some(key), ..msg }), delay_secs });
        if let Some(s) = self.sessions.get_mut(key as usize) {
            s.conn = Some(id);
            s.expiry_secs = expiry;
            if will.is_some() || s.will_at().is_some() || s.expires_at().is_some() || s.will().is_some() {
                let e = s.extra_mut();
                e.expires_at = None;
                // [MQTT-3.1.3-9] a reconnect before the will delay passes cancels the old will.
                e.will_at = None;
                s.set_will(will, &mut self.will_bytes);
            }
        }

        // Keep alive: the server's override, capped by the maximum.
        let mut keep_alive = self.opts.server_keep_alive.unwrap_or(c.keep_alive);
        if self.opts.max_keep_alive > 0 && (keep_alive == 0 || keep_alive > self.opts.max_keep_alive) {
            keep_alive = self.opts.max_keep_alive;
        }
        let response_info = if v.is_v5()
            && (p.request_response_information == Some(1) || self.opts.compat.always_return_response_info)
        {
            self.opts.response_information.clone()
        } else {
            None
        };
        let topic_alias_max = self.opts.topic_alias_maximum;
        let shared_id = self.sessions.get(key as usize).map(|s| s.client_id.clone());
        if let Some(k) = self.conn_mut(id) {
            k.state = ConnState::Connected;
            k.set_session(Some(key));
            if let Some(shared) = shared_id {
                k.client_id = shared;
            }
            k.username = username.map(Into::into);
            k.keep_alive_ms = keep_alive as u32 * 1000;
            k.connect_expiry_zero = requested_expiry == 0;
            if v.is_v5() {
                k.max_packet_out = p.maximum_packet_size.unwrap_or(u32::MAX);
                k.receive_max_out = p.receive_maximum.unwrap_or(u16::MAX);
                // Our own maximum bounds the alias map we keep for the client, too.
                k.alias_max_out = p.topic_alias_maximum.unwrap_or(0).min(topic_alias_max);
                k.problem_info = p.request_problem_information != Some(0);
            }
            if let Some(e) = k.extra.as_mut() {
                e.aliases_in = Vec::new();
                // (taken already when the exchange succeeded; kept for the accounting)
                debug_assert!(e.pending_connect.is_none());
                e.auth_method = None;
            }
            if let Some(m) = p.authentication_method {
                k.extra_mut().auth_method = Some(m.into());
            }
        }
        self.stats.clients_connected += 1;
        self.stats.clients_maximum = self.stats.clients_maximum.max(self.stats.clients_connected);

        // CONNACK: what the server supports and its limits (3.2.2.3).
        let o = &self.opts;
        let props = if v.is_v5() {
            Properties {
                session_expiry_interval: (expiry != requested_expiry).then_some(expiry),
                receive_maximum: Some(o.receive_maximum),
                maximum_qos: (o.max_qos < 2).then_some(o.max_qos),
                retain_available: (!o.retain_available).then_some(0),
                maximum_packet_size: Some(o.max_packet_size),
                assigned_client_identifier: assigned.as_deref(),
                topic_alias_maximum: (o.topic_alias_maximum > 0).then_some(o.topic_alias_maximum),
                wildcard_subscription_available: (!o.wildcard_subscription_available).then_some(0),
                subscription_identifier_available: (!o.subscription_identifier_available).then_some(0),
                shared_subscription_available: (!o.shared_subscription_available).then_some(0),
                server_keep_alive: (keep_alive != c.keep_alive).then_some(keep_alive),
                response_information: response_info.as_deref(),
                authentication_method: auth.as_ref().and(c.properties.authentication_method),
                authentication_data: auth.as_ref().and_then(|d| d.as_deref()),
                ..Properties::default()
            }
        } else {
            Properties::default()
        };
        let ack = ConnAck { session_present, reason: ReasonCode::Success, properties: props };
        if !self.send(id, &Packet::ConnAck(ack)) {
            // Larger than the client's Maximum Packet Size [MQTT-5.0:3.1.2-24]: the properties are
            // optional, the CONNACK is not.
            let bare = ConnAck { session_present, reason: ReasonCode::Success, properties: Properties::default() };
            self.send(id, &Packet::ConnAck(bare));
        }
        self.arm_keep_alive(id, now);

        let info = ClientInfo { client_id, username, remote: remote.as_str(), listener: &listener, version: v, inline: false };
        self.hooks.each(Point::OnSessionEstablished, |h| h.on_session_established(&info, session_present));

        // [MQTT-4.4.0-1] resend unacknowledged PUBLISH (with DUP) and PUBREL, then the queue.
        if let Some(s) = self.sessions.get_mut(key as usize) {
            s.mark_unsent();
        }
        self.pump(id, now);
    }

    pub(super) fn new_session(&mut self, client_id: &str) -> u32 {
        let key = self.sessions.insert(Session::new(client_id.into())) as u32;
        self.by_client_id.insert(key, &self.sessions);
        key
    }

    /// AUTH: continues an enhanced authentication before CONNACK, or re-authenticates a
    /// connected client (5.0 section 4.12).
    pub(super) fn on_auth(&mut self, id: ClientId, a: &Disconnect<'_>, now: Instant) {
        let Some(k) = self.conn(id) else { return };
        let state = k.state;
        let reauth = k.extra.as_ref().is_some_and(|e| e.reauth);
        // [MQTT-4.12.0-5] the method must stay the one the exchange started with.
        let method = match (a.properties.authentication_method, k.extra.as_ref().and_then(|e| e.auth_method.as_deref())) {
            (Some(m), Some(cur)) if m == cur => m.to_string(),
            _ => return self.protocol_error(id, ReasonCode::ProtocolError, now),
        };
        let expected_ok = match state {
            ConnState::Authenticating => a.reason == ReasonCode::ContinueAuthentication,
            _ => a.reason == ReasonCode::ReAuthenticate || (reauth && a.reason == ReasonCode::ContinueAuthentication),
        };
        if !expected_ok {
            return self.protocol_error(id, ReasonCode::ProtocolError, now);
        }
        let (info, hooks) = self.client_info_and_hooks(id);
        let Some(info) = info else { return };
        let step = hooks.on_auth_packet(&info, &method, a.properties.authentication_data, state == ConnState::Connected);
        match (state, step) {
            (_, AuthStep::Continue(data)) => {
                if let Some(k) = self.conn_mut(id) {
                    k.extra_mut().reauth = state == ConnState::Connected;
                }
                self.send_auth(id, ReasonCode::ContinueAuthentication, &method, Some(&data));
            }
            (ConnState::Authenticating, AuthStep::Success(data)) => {
                let Some(raw) = self.conn_mut(id).and_then(|k| k.extra.as_mut()?.pending_connect.take()) else { return };
                self.authenticating = self.authenticating.saturating_sub(1);
                let Ok(Some((Packet::Connect(c), _))) = crate::packets::decode(&raw, Version::V5, u32::MAX) else {
                    return self.refuse(id, ReasonCode::UnspecifiedError, now);
                };
                let assigned = match self.client_id_for(&c, now) {
                    Ok(x) => x,
                    Err(rc) => return self.refuse(id, rc, now),
                };
                self.finish_connect(id, &c, assigned, Some(data), now);
            }
            (ConnState::Authenticating, AuthStep::Fail(rc)) => self.refuse_credentials(id, rc, now),
            (ConnState::Authenticating, AuthStep::NotMine) => self.refuse(id, ReasonCode::BadAuthenticationMethod, now),
            (_, AuthStep::Success(data)) => {
                if let Some(e) = self.conn_mut(id).and_then(|k| k.extra.as_mut()) {
                    e.reauth = false;
                }
                self.send_auth(id, ReasonCode::Success, &method, data.as_deref());
            }
            (_, AuthStep::Fail(rc)) => self.protocol_error(id, rc, now),
            (_, AuthStep::NotMine) => self.protocol_error(id, ReasonCode::BadAuthenticationMethod, now),
        }
    }

    pub(super) fn on_client_disconnect(&mut self, id: ClientId, d: &Disconnect<'_>, now: Instant) {
        let Some(c) = self.conn(id) else { return };
        let key = c.session();
        if let (Some(new), Some(key)) = (d.properties.session_expiry_interval, key) {
            // [MQTT-3.14.2-2] a session expiry of 0 at CONNECT cannot be raised at DISCONNECT.
            if c.connect_expiry_zero && new != 0 {
                return self.protocol_error(id, ReasonCode::ProtocolError, now);
            }
            if let Some(s) = self.sessions.get_mut(key as usize) {
                s.expiry_secs = new.min(self.opts.max_session_expiry);
            }
        }
        // [MQTT-3.14.4-3] a normal DISCONNECT discards the will; 0x04 keeps it.
        let with_will = d.reason == ReasonCode::DisconnectWithWill;
        self.detach(id, with_will, d.reason, now);
    }
}
