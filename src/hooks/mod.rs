//! The hook chain: the extension edge of the broker.
//!
//! A [`Hook`] has default no-op methods; it declares the points it implements with
//! [`Hook::provides`] so the broker skips it elsewhere (a bit test, no call). Hooks run inside
//! the event loop, in the order added, and must never block. A hook that panics is caught and
//! logged; the loop goes on and the panicking call counts as "no opinion" (nothing admitted,
//! nothing changed, nothing rejected).
//!
//! Kinds of points:
//! - **observers** (`on_started`, `on_packet_sent`, `on_published`, ...): every hook is called;
//! - **deciders** (`on_connect_authenticate`, `on_acl_check`): any hook answering `true` allows;
//! - **modifiers** (`on_publish`, `on_subscribe`, `on_will`, `on_select_subscribers`): each hook
//!   sees the previous hook's result; a rejection stops the chain;
//! - **rejecters** (`on_connect`, `on_packet_read`): the first `Err` stops the chain and closes
//!   the connection with that reason code. The packet itself is borrowed from the input buffer
//!   and cannot be replaced;
//! - **loaders** (`stored_*`): called once at start; every hook's records are restored.
//!
//! Where each point fires is documented on its method.

use crate::packets::{Packet, PacketId, QoS, ReasonCode, Version};
use crate::storage::{ClientRecord, InflightRecord, RetainedRecord, SubscriptionRecord, SysInfoRecord};
use crate::sys::Stats;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub mod allow_all;
pub mod debug;
pub mod ledger;
pub mod throttle;
mod verified;
pub use allow_all::AllowAll;
pub use debug::Debug;
pub use ledger::Ledger;

/// The hook points, as bits for [`Hook::provides`]. Named after Mochi MQTT's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Point {
    /// [`Hook::on_started`].
    OnStarted,
    /// [`Hook::on_stopped`].
    OnStopped,
    /// [`Hook::on_connect_authenticate`].
    OnConnectAuthenticate,
    /// [`Hook::on_acl_check`].
    OnAclCheck,
    /// [`Hook::on_connect`].
    OnConnect,
    /// [`Hook::on_session_established`].
    OnSessionEstablished,
    /// [`Hook::on_disconnect`].
    OnDisconnect,
    /// [`Hook::on_packet_read`].
    OnPacketRead,
    /// [`Hook::on_publish`].
    OnPublish,
    /// [`Hook::on_published`].
    OnPublished,
    /// [`Hook::on_publish_dropped`].
    OnPublishDropped,
    /// [`Hook::on_subscribe`].
    OnSubscribe,
    /// [`Hook::on_subscribed`].
    OnSubscribed,
    /// [`Hook::on_unsubscribed`].
    OnUnsubscribed,
    /// [`Hook::on_retain_message`].
    OnRetainMessage,
    /// [`Hook::on_will`].
    OnWill,
    /// [`Hook::on_will_sent`].
    OnWillSent,
    /// [`Hook::on_client_expired`].
    OnClientExpired,
    /// [`Hook::on_auth_packet`].
    OnAuthPacket,
    /// [`Hook::on_sys_info_tick`].
    OnSysInfoTick,
    /// [`Hook::on_packet_encode`].
    OnPacketEncode,
    /// [`Hook::on_packet_sent`].
    OnPacketSent,
    /// [`Hook::on_packet_processed`].
    OnPacketProcessed,
    /// [`Hook::on_select_subscribers`].
    OnSelectSubscribers,
    /// [`Hook::on_unsubscribe`].
    OnUnsubscribe,
    /// [`Hook::on_qos_publish`].
    OnQosPublish,
    /// [`Hook::on_qos_complete`].
    OnQosComplete,
    /// [`Hook::on_qos_dropped`].
    OnQosDropped,
    /// [`Hook::on_packet_id_exhausted`].
    OnPacketIdExhausted,
    /// [`Hook::on_retained_expired`].
    OnRetainedExpired,
    /// [`Hook::stored_clients`].
    StoredClients,
    /// [`Hook::stored_subscriptions`].
    StoredSubscriptions,
    /// [`Hook::stored_inflight_messages`].
    StoredInflightMessages,
    /// [`Hook::stored_retained_messages`].
    StoredRetainedMessages,
    /// [`Hook::stored_sys_info`].
    StoredSysInfo,
}

/// A set of hook points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Provides(pub u64);

impl Provides {
    /// Every point.
    pub const ALL: Provides = Provides(u64::MAX);
    /// No point.
    pub const NONE: Provides = Provides(0);

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
    /// Client identifier (empty before CONNECT; the assigned one when the server chose it;
    /// `"inline"` for the embedding program's inline client).
    pub client_id: &'a str,
    /// User name from CONNECT (or the TLS certificate's CN where configured).
    pub username: Option<&'a str>,
    /// Remote address, `ip:port` or a Unix socket path (empty for the inline client).
    pub remote: &'a str,
    /// Name of the listener the client came through (empty for the inline client).
    pub listener: &'a str,
    /// Protocol version.
    pub version: Version,
    /// True for the embedding program's inline client.
    pub inline: bool,
}

impl ClientInfo<'static> {
    /// The embedding program's inline client ([`crate::Broker::publish`],
    /// [`crate::Broker::inject`]).
    pub const INLINE: ClientInfo<'static> =
        ClientInfo { client_id: "inline", username: None, remote: "", listener: "", version: Version::V5, inline: true };
}

/// Whether an ACL check is for reading (subscribe, delivery) or writing (publish).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Subscribe / receive. The topic is the subscription's filter (without `$share/group/`).
    Read,
    /// Publish. The topic is the topic name.
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

/// A message owned by a hook (a replacement will).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedMessage {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
}

impl OwnedMessage {
    /// A view of it.
    pub fn view(&self) -> MessageView<'_> {
        MessageView { topic: &self.topic, payload: &self.payload, qos: self.qos.as_u8(), retain: self.retain }
    }
}

/// A hook's answer to [`Hook::on_publish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on unchanged.
    Continue,
    /// Go on with a changed payload (passed to the next hook).
    ReplacePayload(Vec<u8>),
    /// Refuse with a reason code (PUBACK/PUBREC in 5.0; silently dropped for QoS 0).
    Reject(ReasonCode),
}

/// A hook's answer to [`Hook::on_will`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WillVerdict {
    /// Go on with the will as the hook saw it.
    Continue,
    /// Publish this instead (passed to the next hook).
    Replace(OwnedMessage),
    /// Do not publish a will.
    Suppress,
}

/// One subscriber a message is about to be delivered to, for [`Hook::on_select_subscribers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selected<'a> {
    /// The subscriber's client identifier.
    pub client_id: &'a str,
    /// QoS of the delivery. A hook may lower it; raising it has no effect.
    pub qos: QoS,
    /// Set to `false` to leave this subscriber out.
    pub deliver: bool,
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

/// An extension of the broker. Every method has a no-op default; the broker calls only the
/// points in [`Hook::provides`].
#[allow(unused_variables)]
pub trait Hook {
    /// A name for logs.
    fn id(&self) -> &str;

    /// The points this hook implements; the broker calls only these.
    fn provides(&self) -> Provides;

    // ---- lifecycle ----------------------------------------------------------------------

    /// The broker started: fires once from [`crate::Broker::start`], after the stored records
    /// were restored and before the first client is accepted.
    fn on_started(&mut self) {}
    /// The broker is stopping: fires from [`crate::Broker::shutdown`] after every connection
    /// was told to close.
    fn on_stopped(&mut self) {}
    /// The `$SYS` interval passed: fires with the counters just before they are published.
    fn on_sys_info_tick(&mut self, stats: &Stats) {}

    // ---- connections --------------------------------------------------------------------

    /// A CONNECT was received (after the client identifier is known, before authentication).
    /// `Err(rc)` refuses the connection with CONNACK `rc`.
    fn on_connect(&mut self, client: &ClientInfo<'_>, packet: &Packet<'_>) -> Result<(), ReasonCode> {
        Ok(())
    }
    /// May this client connect? Any hook answering `true` admits it.
    fn on_connect_authenticate(&mut self, client: &ClientInfo<'_>, password: Option<&[u8]>) -> bool {
        false
    }
    /// May this client read (subscribe to) or write (publish to) `topic`? Any hook answering
    /// `true` allows it; when no hook provides this point everything is allowed. Fires on
    /// SUBSCRIBE per filter (after `on_subscribe`) and on PUBLISH before `on_publish`; never
    /// for the inline client.
    fn on_acl_check(&mut self, client: &ClientInfo<'_>, topic: &str, access: Access) -> bool {
        false
    }
    /// A round of MQTT 5 enhanced authentication (CONNECT with an Authentication Method, or
    /// AUTH). `reauth` is true for re-authentication of a connected client [MQTT-4.12.1-1].
    /// The first hook that does not answer [`AuthStep::NotMine`] decides.
    fn on_auth_packet(&mut self, client: &ClientInfo<'_>, method: &str, data: Option<&[u8]>, reauth: bool) -> AuthStep {
        AuthStep::NotMine
    }
    /// The client is connected (CONNACK queued) and its session is in place.
    fn on_session_established(&mut self, client: &ClientInfo<'_>, session_present: bool) {}
    /// The client's connection ended; `reason` is why, `expire` is true when its session ends
    /// now (fires only for clients that had a session).
    fn on_disconnect(&mut self, client: &ClientInfo<'_>, reason: ReasonCode, expire: bool) {}
    /// An offline session expired and was removed (its will, if any, was published first).
    fn on_client_expired(&mut self, client_id: &str) {}

    // ---- packets ------------------------------------------------------------------------

    /// A packet was decoded from the client, before the broker acts on it. `Err(rc)` closes
    /// the connection with `rc` (DISCONNECT to a connected 5.0 client, CONNACK before that).
    /// Observe-or-reject only: the packet borrows the input buffer and cannot be replaced.
    fn on_packet_read(&mut self, client: &ClientInfo<'_>, packet: &Packet<'_>) -> Result<(), ReasonCode> {
        Ok(())
    }
    /// The broker finished acting on a packet from the client (fires even when acting on it
    /// closed the connection).
    fn on_packet_processed(&mut self, client: &ClientInfo<'_>, packet: &Packet<'_>) {}
    /// A packet is about to be encoded for the client (observe only).
    fn on_packet_encode(&mut self, client: &ClientInfo<'_>, packet: &Packet<'_>) {}
    /// A packet of `len` bytes was encoded into the client's output (the server writes it to
    /// the socket next; the core never sees the socket).
    fn on_packet_sent(&mut self, client: &ClientInfo<'_>, packet: &Packet<'_>, len: usize) {}

    // ---- subscriptions ------------------------------------------------------------------

    /// A subscription request for `filter` (as sent, `$share/...` included), after filter
    /// validation and before the ACL check. Return the QoS to grant (at most the requested
    /// one; the next hook sees it) or `Err(rc)` to refuse this filter with `rc` in SUBACK.
    fn on_subscribe(&mut self, client: &ClientInfo<'_>, filter: &str, qos: QoS) -> Result<QoS, ReasonCode> {
        Ok(qos)
    }
    /// A subscription request was answered with `granted` (a granted QoS or a failure code).
    fn on_subscribed(&mut self, client: &ClientInfo<'_>, filter: &str, granted: ReasonCode) {}
    /// An unsubscribe request for `filter`, before it is looked up.
    fn on_unsubscribe(&mut self, client: &ClientInfo<'_>, filter: &str) {}
    /// A subscription was removed by UNSUBSCRIBE.
    fn on_unsubscribed(&mut self, client: &ClientInfo<'_>, filter: &str) {}

    // ---- messages -----------------------------------------------------------------------

    /// A PUBLISH arrived and passed ACL (or came from the inline client): change its payload
    /// or reject it.
    fn on_publish(&mut self, client: &ClientInfo<'_>, msg: &MessageView<'_>) -> Verdict {
        Verdict::Continue
    }
    /// The subscribers a message matched (one entry per session, one member per shared
    /// group). Clear `deliver` to leave one out or lower its `qos`; the next hook sees the
    /// changes.
    fn on_select_subscribers(&mut self, msg: &MessageView<'_>, subscribers: &mut [Selected<'_>]) {}
    /// A PUBLISH was routed to `deliveries` subscribers.
    fn on_published(&mut self, client: &ClientInfo<'_>, msg: &MessageView<'_>, deliveries: usize) {}
    /// A message for this client was dropped: its queue was full, it expired before delivery,
    /// or it is larger than the client's maximum packet size.
    fn on_publish_dropped(&mut self, client_id: &str, msg: &MessageView<'_>) {}
    /// A retained message was set (`payload` non-empty) or cleared.
    fn on_retain_message(&mut self, topic: &str, payload: &[u8]) {}
    /// An expired retained message was removed (swept on the `$SYS` interval).
    fn on_retained_expired(&mut self, topic: &str) {}
    /// A QoS 1/2 PUBLISH was written to the client with packet identifier `pid` (`resend`:
    /// a resend with DUP after a reconnect).
    fn on_qos_publish(&mut self, client: &ClientInfo<'_>, msg: &MessageView<'_>, pid: PacketId, resend: bool) {}
    /// An outbound QoS 1/2 exchange completed (PUBACK, or PUBCOMP).
    fn on_qos_complete(&mut self, client: &ClientInfo<'_>, msg: &MessageView<'_>, pid: PacketId) {}
    /// An outbound QoS 1/2 message in flight was given up: the client answered PUBREC with a
    /// failure `reason`, or its session ended with the message unacknowledged.
    fn on_qos_dropped(&mut self, client_id: &str, msg: &MessageView<'_>, pid: PacketId, reason: ReasonCode) {}
    /// No packet identifier was free for a QoS 1/2 delivery; it stays queued.
    fn on_packet_id_exhausted(&mut self, client: &ClientInfo<'_>, msg: &MessageView<'_>) {}
    /// A will is about to be published for this client: change it or suppress it.
    fn on_will(&mut self, client_id: &str, will: &MessageView<'_>) -> WillVerdict {
        WillVerdict::Continue
    }
    /// A will was published.
    fn on_will_sent(&mut self, client_id: &str, msg: &MessageView<'_>) {}

    // ---- storage loaders (called once, at start) ----------------------------------------

    /// Persistent sessions to restore (offline until their clients reconnect).
    fn stored_clients(&mut self) -> Vec<ClientRecord> {
        Vec::new()
    }
    /// Subscriptions of the restored sessions.
    fn stored_subscriptions(&mut self) -> Vec<SubscriptionRecord> {
        Vec::new()
    }
    /// Outbound QoS 1/2 messages in flight to the restored sessions (resent on reconnect).
    fn stored_inflight_messages(&mut self) -> Vec<InflightRecord> {
        Vec::new()
    }
    /// Retained messages.
    fn stored_retained_messages(&mut self) -> Vec<RetainedRecord> {
        Vec::new()
    }
    /// Cumulative counters (restored when `compat.restore_sys_info_on_restart` is set).
    fn stored_sys_info(&mut self) -> Option<SysInfoRecord> {
        None
    }
}

struct Entry {
    hook: Box<dyn Hook>,
    provides: Provides,
}

/// The hooks, in the order added, and the failed-authentication throttle that guards the
/// deciders of [`Hook::on_connect_authenticate`] (kept when a hook is replaced: reloading a
/// ledger does not forgive an address).
#[derive(Default)]
pub struct HookChain {
    hooks: Vec<Entry>,
    provides: Provides,
    pub(crate) throttle: throttle::AuthThrottle,
}

impl core::fmt::Debug for HookChain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.hooks.iter().map(|e| e.hook.id())).finish()
    }
}

/// Runs `f` on `hook` and turns a panic into `None`, logging it with the hook's id.
fn guarded<R>(hook: &mut dyn Hook, f: impl FnOnce(&mut dyn Hook) -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(|| f(&mut *hook))) {
        Ok(r) => Some(r),
        Err(_) => {
            log::error!("hook `{}` panicked; the call is ignored", hook.id());
            None
        }
    }
}

impl HookChain {
    /// Appends a hook. Its [`Hook::provides`] is read once, here.
    pub fn add(&mut self, h: Box<dyn Hook>) {
        let provides = h.provides();
        self.provides.0 |= provides.0;
        self.hooks.push(Entry { hook: h, provides });
    }

    /// Replaces the hook whose [`Hook::id`] is `id` (in place, keeping its order); appends
    /// `h` when there is none. Returns true when a hook was replaced.
    pub fn replace(&mut self, id: &str, h: Box<dyn Hook>) -> bool {
        let provides = h.provides();
        let found = self.hooks.iter().position(|e| e.hook.id() == id);
        match found {
            Some(i) => self.hooks[i] = Entry { hook: h, provides },
            None => self.hooks.push(Entry { hook: h, provides }),
        }
        self.provides = Provides(self.hooks.iter().fold(0, |m, e| m | e.provides.0));
        found.is_some()
    }

    /// Number of hooks.
    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    /// True when there is no hook.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// True when some hook implements `p`.
    pub fn provides(&self, p: Point) -> bool {
        self.provides.has(p)
    }

    fn providing(&mut self, p: Point) -> impl Iterator<Item = &mut dyn Hook> {
        let any = self.provides.has(p);
        self.hooks.iter_mut().filter(move |e| any && e.provides.has(p)).map(|e| e.hook.as_mut() as &mut dyn Hook)
    }

    /// Calls `f` on every hook that provides `p`, each guarded against panics.
    pub fn each(&mut self, p: Point, mut f: impl FnMut(&mut dyn Hook)) {
        for h in self.providing(p) {
            guarded(h, &mut f);
        }
    }

    /// True when any hook providing `p` answers `true`.
    pub fn any(&mut self, p: Point, mut f: impl FnMut(&mut dyn Hook) -> bool) -> bool {
        self.providing(p).any(|h| guarded(h, &mut f) == Some(true))
    }

    /// The first `Err` of the hooks providing `p`, in order; `Ok` when none objects.
    pub fn first_err(&mut self, p: Point, mut f: impl FnMut(&mut dyn Hook) -> Result<(), ReasonCode>) -> Result<(), ReasonCode> {
        for h in self.providing(p) {
            if let Some(Err(rc)) = guarded(h, &mut f) {
                return Err(rc);
            }
        }
        Ok(())
    }

    /// Asks the hooks in order; the first that handles the method decides. A panicking hook
    /// fails the exchange with 0x80.
    pub fn on_auth_packet(&mut self, client: &ClientInfo<'_>, method: &str, data: Option<&[u8]>, reauth: bool) -> AuthStep {
        for h in self.providing(Point::OnAuthPacket) {
            match guarded(h, |h| h.on_auth_packet(client, method, data, reauth)) {
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
        let mut replaced: Option<Vec<u8>> = None;
        for h in self.providing(Point::OnPublish) {
            let view = MessageView { payload: replaced.as_deref().unwrap_or(msg.payload), ..*msg };
            match guarded(h, |h| h.on_publish(client, &view)) {
                Some(Verdict::Continue) | None => {}
                Some(Verdict::ReplacePayload(p)) => replaced = Some(p),
                Some(Verdict::Reject(rc)) => return Err(rc),
            }
        }
        Ok(replaced)
    }

    /// Runs `on_subscribe` through the chain: each hook sees the QoS the previous one granted;
    /// a hook cannot raise it. Returns the QoS to grant or the refusal.
    pub fn on_subscribe(&mut self, client: &ClientInfo<'_>, filter: &str, qos: QoS) -> Result<QoS, ReasonCode> {
        let mut granted = qos;
        for h in self.providing(Point::OnSubscribe) {
            match guarded(h, |h| h.on_subscribe(client, filter, granted)) {
                Some(Ok(q)) => granted = granted.min(q),
                Some(Err(rc)) => return Err(rc),
                None => {}
            }
        }
        Ok(granted)
    }

    /// Runs `on_will` through the chain: each hook sees the previous one's will. Returns
    /// [`WillVerdict::Continue`] when no hook changed it, the final replacement, or
    /// [`WillVerdict::Suppress`].
    pub fn on_will(&mut self, client_id: &str, will: &MessageView<'_>) -> WillVerdict {
        let mut replaced: Option<OwnedMessage> = None;
        for h in self.providing(Point::OnWill) {
            let view = replaced.as_ref().map_or(*will, OwnedMessage::view);
            match guarded(h, |h| h.on_will(client_id, &view)) {
                Some(WillVerdict::Continue) | None => {}
                Some(WillVerdict::Replace(m)) => replaced = Some(m),
                Some(WillVerdict::Suppress) => return WillVerdict::Suppress,
            }
        }
        replaced.map_or(WillVerdict::Continue, WillVerdict::Replace)
    }

    /// Every hook's records from a `stored_*` loader, in hook order.
    pub fn stored<T>(&mut self, p: Point, mut f: impl FnMut(&mut dyn Hook) -> Vec<T>) -> Vec<T> {
        let mut out = Vec::new();
        for h in self.providing(p) {
            if let Some(mut v) = guarded(h, &mut f) {
                out.append(&mut v);
            }
        }
        out
    }
}
