//! The hook chain: the extension edge of the broker.
//!
//! A [`Hook`] has default no-op methods; it declares the points it implements with
//! [`Hook::provides`] so the broker skips it elsewhere. Hooks run inside the event loop, in the
//! order added, and must never block. A hook that panics is caught and logged; the loop goes on
//! (the panicking call counts as "no opinion").

use crate::packets::{Packet, ReasonCode, Version};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub mod allow_all;
pub use allow_all::AllowAll;

/// The hook points, as bits for [`Hook::provides`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum Point {
    OnStarted,
    OnStopped,
    OnConnectAuthenticate,
    OnAclCheck,
    OnConnect,
    OnSessionEstablished,
    OnDisconnect,
    OnPacketRead,
    OnPublish,
    OnPublished,
    OnPublishDropped,
    OnSubscribe,
    OnSubscribed,
    OnUnsubscribed,
    OnRetainMessage,
    OnWill,
    OnWillSent,
    OnClientExpired,
    OnAuthPacket,
}

/// A set of hook points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Provides(pub u64);

impl Provides {
    /// Every point.
    pub const ALL: Provides = Provides(u64::MAX);

    /// A set of the given points.
    pub fn of(points: &[Point]) -> Provides {
        Provides(points.iter().fold(0, |m, p| m | 1 << *p as u8))
    }

    /// True when `p` is in the set.
    pub fn has(self, p: Point) -> bool {
        self.0 & (1 << p as u8) != 0
    }
}

/// Who a hook call is about.
#[derive(Clone, Copy, Debug)]
pub struct ClientInfo<'a> {
    /// Client identifier (empty before CONNECT; the assigned one when the server chose it).
    pub client_id: &'a str,
    /// User name from CONNECT (or the TLS certificate's CN where configured).
    pub username: Option<&'a str>,
    /// Remote address, `ip:port` or a Unix socket path.
    pub remote: &'a str,
    /// Name of the listener the client came through.
    pub listener: &'a str,
    /// Protocol version.
    pub version: Version,
    /// True for the embedding program's inline client.
    pub inline: bool,
}

/// Whether an ACL check is for reading (subscribe, delivery) or writing (publish).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Subscribe / receive.
    Read,
    /// Publish.
    Write,
}

/// A message as hooks see it.
#[derive(Clone, Copy, Debug)]
pub struct MessageView<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Payload.
    pub payload: &'a [u8],
    /// QoS (0..=2).
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
}

/// A hook's answer to a modifying point such as [`Hook::on_publish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on unchanged.
    Continue,
    /// Go on with a changed payload (passed to the next hook).
    ReplacePayload(Vec<u8>),
    /// Refuse with a reason code (PUBACK/PUBREC in 5.0; silently dropped for QoS 0).
    Reject(ReasonCode),
}

/// One step of an MQTT 5 enhanced authentication exchange, decided by a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthStep {
    /// This hook does not handle the method; the next one is asked.
    NotMine,
    /// Send AUTH 0x18 (continue authentication) with this data and wait for the client.
    Continue(Vec<u8>),
    /// Authenticated; optional data goes to the client in CONNACK (or AUTH 0x00 on re-auth).
    Success(Option<Vec<u8>>),
    /// Refused with this reason code (CONNACK, or DISCONNECT on re-authentication).
    Fail(ReasonCode),
}

/// An extension of the broker. Every method has a no-op default.
#[allow(unused_variables)]
pub trait Hook {
    /// A name for logs.
    fn id(&self) -> &str;

    /// The points this hook implements; the broker calls only these.
    fn provides(&self) -> Provides;

    /// The server has started (listeners open).
    fn on_started(&mut self) {}
    /// The server has stopped.
    fn on_stopped(&mut self) {}
    /// May this client connect? Any hook answering `true` admits it.
    fn on_connect_authenticate(&mut self, client: &ClientInfo<'_>, password: Option<&[u8]>) -> bool {
        false
    }
    /// May this client read or write `topic`? Any hook answering `true` allows it.
    fn on_acl_check(&mut self, client: &ClientInfo<'_>, topic: &str, access: Access) -> bool {
        false
    }
    /// A CONNECT was received (before authentication).
    fn on_connect(&mut self, client: &ClientInfo<'_>, packet: &Packet<'_>) {}
    /// The client is connected and its session is in place.
    fn on_session_established(&mut self, client: &ClientInfo<'_>, session_present: bool) {}
    /// The client disconnected; `reason` is why, `expire` is true when its session ends now.
    fn on_disconnect(&mut self, client: &ClientInfo<'_>, reason: ReasonCode, expire: bool) {}
    /// A packet was decoded from the client (observe only).
    fn on_packet_read(&mut self, client: &ClientInfo<'_>, packet: &Packet<'_>) {}
    /// A PUBLISH arrived and passed ACL: change its payload or reject it.
    fn on_publish(&mut self, client: &ClientInfo<'_>, msg: &MessageView<'_>) -> Verdict {
        Verdict::Continue
    }
    /// A PUBLISH was routed to `deliveries` subscribers.
    fn on_published(&mut self, client: &ClientInfo<'_>, msg: &MessageView<'_>, deliveries: usize) {}
    /// A message for this client was dropped (queue full, too large, expired).
    fn on_publish_dropped(&mut self, client_id: &str, msg: &MessageView<'_>) {}
    /// A subscription request for `filter` (observe; ACL is separate).
    fn on_subscribe(&mut self, client: &ClientInfo<'_>, filter: &str, qos: u8) {}
    /// A subscription was granted with this reason code.
    fn on_subscribed(&mut self, client: &ClientInfo<'_>, filter: &str, granted: ReasonCode) {}
    /// A subscription was removed.
    fn on_unsubscribed(&mut self, client: &ClientInfo<'_>, filter: &str) {}
    /// A retained message was set (`payload` non-empty) or cleared.
    fn on_retain_message(&mut self, topic: &str, payload: &[u8]) {}
    /// A will is about to be published for this client.
    fn on_will(&mut self, client_id: &str, msg: &MessageView<'_>) {}
    /// A will was published.
    fn on_will_sent(&mut self, client_id: &str, msg: &MessageView<'_>) {}
    /// An offline session expired and was removed.
    fn on_client_expired(&mut self, client_id: &str) {}
    /// A round of MQTT 5 enhanced authentication (CONNECT with an Authentication Method, or
    /// AUTH). `reauth` is true for re-authentication of a connected client [MQTT-4.12.1-1].
    fn on_auth_packet(&mut self, client: &ClientInfo<'_>, method: &str, data: Option<&[u8]>, reauth: bool) -> AuthStep {
        AuthStep::NotMine
    }
}

/// The hooks, in the order added.
#[derive(Default)]
pub struct HookChain {
    hooks: Vec<Box<dyn Hook>>,
    provides: Provides,
}

impl core::fmt::Debug for HookChain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.hooks.iter().map(|h| h.id())).finish()
    }
}

/// Runs `f` and turns a panic into `None`, logging it.
fn guarded<R>(id: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            log::error!("hook `{id}` panicked; the call is ignored");
            None
        }
    }
}

impl HookChain {
    /// Appends a hook.
    pub fn add(&mut self, h: Box<dyn Hook>) {
        self.provides.0 |= h.provides().0;
        self.hooks.push(h);
    }

    /// True when some hook implements `p`.
    pub fn provides(&self, p: Point) -> bool {
        self.provides.has(p)
    }

    /// Calls `f` on every hook that provides `p`, each guarded against panics.
    pub fn each(&mut self, p: Point, mut f: impl FnMut(&mut dyn Hook)) {
        if !self.provides.has(p) {
            return;
        }
        for h in self.hooks.iter_mut().filter(|h| h.provides().has(p)) {
            let id = h.id().to_string();
            guarded(&id, || f(h.as_mut()));
        }
    }

    /// True when any hook providing `p` answers `true`.
    pub fn any(&mut self, p: Point, mut f: impl FnMut(&mut dyn Hook) -> bool) -> bool {
        if !self.provides.has(p) {
            return false;
        }
        for h in self.hooks.iter_mut().filter(|h| h.provides().has(p)) {
            let id = h.id().to_string();
            if guarded(&id, || f(h.as_mut())) == Some(true) {
                return true;
            }
        }
        false
    }

    /// Asks the hooks in order; the first that handles the method decides.
    pub fn on_auth_packet(&mut self, client: &ClientInfo<'_>, method: &str, data: Option<&[u8]>, reauth: bool) -> AuthStep {
        if !self.provides.has(Point::OnAuthPacket) {
            return AuthStep::NotMine;
        }
        for h in self.hooks.iter_mut().filter(|h| h.provides().has(Point::OnAuthPacket)) {
            let id = h.id().to_string();
            match guarded(&id, || h.on_auth_packet(client, method, data, reauth)) {
                Some(AuthStep::NotMine) => {}
                None => return AuthStep::Fail(ReasonCode::UnspecifiedError),
                Some(step) => return step,
            }
        }
        AuthStep::NotMine
    }

    /// Runs `on_publish` through the chain: each hook sees the previous one's payload.
    /// Returns the final payload if any hook replaced it, or the rejection.
    pub fn on_publish(&mut self, client: &ClientInfo<'_>, msg: &MessageView<'_>) -> Result<Option<Vec<u8>>, ReasonCode> {
        if !self.provides.has(Point::OnPublish) {
            return Ok(None);
        }
        let mut replaced: Option<Vec<u8>> = None;
        for h in self.hooks.iter_mut().filter(|h| h.provides().has(Point::OnPublish)) {
            let view = MessageView { payload: replaced.as_deref().unwrap_or(msg.payload), ..*msg };
            let id = h.id().to_string();
            match guarded(&id, || h.on_publish(client, &view)) {
                Some(Verdict::Continue) | None => {}
                Some(Verdict::ReplacePayload(p)) => replaced = Some(p),
                Some(Verdict::Reject(rc)) => return Err(rc),
            }
        }
        Ok(replaced)
    }
}
