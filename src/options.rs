//! Every bound and capability of the broker, each with a default sized for a small router.
//!
//! `Options` is plain data: the config file (`config.rs`, binary side) and embedding programs fill
//! it in; [`Options::validate`] checks the cross-field rules before the server starts. Every bound
//! says what happens when it is hit.

use serde::{Deserialize, Serialize};

/// What to do with a QoS 1/2 message for a session whose queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueFullPolicy {
    /// Drop the new message and count it (`$SYS/broker/messages/dropped`).
    DropNew,
    /// Drop the oldest queued message to make room for the new one, and count it.
    DropOldest,
    /// Disconnect the slow client (0x97 quota exceeded in MQTT 5).
    Disconnect,
}

/// How a shared-subscription group picks the member that receives a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharedPolicy {
    /// Each member in turn.
    RoundRobin,
    /// The first member (in subscription order) that is connected.
    First,
}

/// Behaviour switches for compatibility with older or unusual clients (Mochi's "compatibilities").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Compatibilities {
    /// Answer 0x80 "unspecified error" instead of 0x87 / 0x86 so a client cannot probe the ACL.
    pub obscure_not_authorized: bool,
    /// On takeover, close the old connection without sending it a DISCONNECT.
    pub passive_client_disconnect: bool,
    /// Return the response information even when the client did not request it.
    pub always_return_response_info: bool,
    /// Restore `$SYS` counters from storage on restart.
    pub restore_sys_info_on_restart: bool,
}


/// The broker's options. `Options::default()` is sized for a Raspberry Pi class gateway: the
/// worst case of its bounds ([`Options::memory_terms`]) is about 75 MiB, under its
/// `memory_limit` of 96 MiB, which leaves room for a TLS and a WebSocket listener's handshakes
/// ([`Options::transport_terms`]). The profiles in `boards/` size the bounds for smaller routers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Connections held at once. At the bound a new connection is accepted and closed at once
    /// (MQTT 5 clients get CONNACK 0x97 quota exceeded when their CONNECT was already readable).
    pub max_clients: usize,
    /// Sessions kept in total, connected or not. At the bound a CONNECT that would create a new
    /// session gets CONNACK 0x97 (5.0) / 0x03 server unavailable (3.x).
    pub max_sessions: usize,
    /// Milliseconds a new connection may take to send its CONNECT before it is closed.
    pub connect_timeout_ms: u64,
    /// Failed authentications one remote address may have in a minute (counted from its first
    /// failure). Beyond it, every CONNECT from that address is refused with CONNACK 0x87 not
    /// authorized (0x05 in 3.x; 0x80 with `compat.obscure_not_authorized`) before any auth hook
    /// runs, so it costs no password hashing, until that minute is over. The address is the IP
    /// without the port (an IPv4-mapped IPv6 address counts as its IPv4 address); at most 1024
    /// addresses are tracked, the oldest dropped first. 0 means unlimited.
    pub auth_failures_per_minute: u32,
    /// Size in bytes of one pooled I/O buffer. A connection borrows one for receiving only while it
    /// holds a partial frame, and one for sending only while it has output to flush.
    pub buffer_size: usize,
    /// Output encoded ahead for one connection, in bytes: while a socket takes it, up to this much
    /// (in pooled `buffer_size` chunks, the last one up to a packet larger) goes out in one
    /// vectored write, one system call per connection per loop turn instead of one per chunk.
    /// Taken as a whole number of chunks, at least 1 and at most 64.
    pub write_batch: usize,
    /// Bytes of I/O buffers shared by all connections beyond the first `buffer_size` chunk each
    /// connection may always use for input and for output. Output encoded ahead past a
    /// connection's first chunk, and a partial frame larger than `buffer_size` (reserved whole
    /// when its fixed header arrives), take room from it. When it is used up, deliveries wait in
    /// their session queues and a connection whose next frame needs room is not read until room
    /// frees; every other connection is served as before (back-pressure is per connection).
    pub buffer_memory: usize,
    /// Largest CONNECT accepted, in bytes: a connection that has not completed CONNECT holds at
    /// most one partial CONNECT of this size (0x95 packet too large beyond it, from the fixed
    /// header alone; `max_packet_size` when that is smaller). Far below `max_packet_size`, so peers that never finish their CONNECT
    /// cannot pin large buffers until the connect timeout.
    pub max_connect_size: u32,
    /// Milliseconds a connection's output may wait without a byte written before the
    /// connection is closed (a client that never reads, e.g. while flooding PINGREQ).
    pub write_stall_timeout_ms: u64,
    /// Milliseconds a packet may take to arrive in full once its first byte is in: a partial
    /// frame older than this closes the connection (keep alive 0 does not mean forever).
    pub frame_timeout_ms: u64,
    /// Connections one listener may hold in a transport handshake (TLS, WebSocket upgrade) or
    /// on an HTTP stats request at once, and, on TLS and WebSocket listeners, from their
    /// handshake until their CONNECT has arrived (rustls and tungstenite hold that state outside
    /// the buffer budget); beyond it new connections to that listener are closed at once. Each
    /// listener has its own count. Across the broker, it also bounds the MQTT 5 enhanced
    /// authentications in progress before CONNACK (each holds its CONNECT): one more gets
    /// CONNACK 0x97 quota exceeded.
    pub max_handshakes: usize,
    /// Largest packet accepted from a client, in bytes (advertised in CONNACK). A larger packet is
    /// refused from its fixed header alone: 0x95 packet too large.
    pub max_packet_size: u32,
    /// Receive maximum advertised to clients: QoS 1/2 PUBLISH packets a client may have
    /// unacknowledged towards us. One more gets DISCONNECT 0x93 [MQTT-3.3.4-7]. 3.x clients are not
    /// told it and are held to `receive_maximum_v3` instead.
    pub receive_maximum: u16,
    /// QoS 2 PUBLISH packets a 3.x client may have awaiting PUBREL (3.x has no receive maximum to
    /// announce, so this is larger than `receive_maximum`: clients pipeline more than 64). One
    /// more closes the connection (3.x has no DISCONNECT from the server), counted in
    /// `receive_maximum_exceeded`. Bounds the identifiers a 3.x session keeps (2 bytes each).
    pub receive_maximum_v3: u16,
    /// QoS 1/2 messages in flight towards one client, capped further by the client's own receive
    /// maximum [MQTT-3.3.4-9]. Messages beyond it wait in the session queue.
    pub max_inflight: u16,
    /// Messages waiting in one session's queue (connected and waiting for the window, or offline).
    pub max_queued_messages: usize,
    /// Bytes waiting in one session's queue: each message's topic, payload and properties plus a
    /// fixed overhead (`Message::cost`), and the identifiers of the
    /// subscriptions it matched when there are several ([`crate::session::Delivery::cost`]).
    pub max_queued_bytes: usize,
    /// Bytes of messages all sessions hold together, in their queues and inflight windows, each
    /// delivery counted as for `max_queued_bytes` (a message queued for N sessions counts N
    /// times). A delivery that does not fit finds its queue full (see `queue_full_policy`); a
    /// message to a connected client with an open window is then not sent either, since it
    /// would be held until acknowledged. The one bound on what sessions hold: `max_queued_bytes`
    /// lets an empty queue take one message of any size, and the window is counted in messages.
    pub queue_memory: usize,
    /// What happens to a QoS 1/2 message that finds its queue full (QoS 0 is always dropped).
    pub queue_full_policy: QueueFullPolicy,
    /// Queue QoS 0 messages for offline persistent sessions (Mosquitto's `queue_qos0_messages`).
    pub queue_qos0_offline: bool,
    /// Subscriptions one session may hold; beyond it SUBACK carries 0x97 quota exceeded.
    pub max_subscriptions_per_client: usize,
    /// Bytes of subscriptions all sessions hold together: each filter's copy in its session and
    /// its levels in the subscription trie, nodes included
    /// (`broker::cost::subscription`). A new subscription that does not fit gets SUBACK
    /// 0x97 quota exceeded (0x80 in 3.x) for that filter; unsubscribing and ending a session give
    /// the bytes back.
    pub max_subscription_bytes: usize,
    /// Bytes of will messages all sessions hold together (topic, payload and properties, as
    /// for `max_queued_bytes`). A CONNECT whose will does not fit gets CONNACK 0x97 quota
    /// exceeded (0x03 server unavailable in 3.x); a will gives its bytes back when it is sent,
    /// discarded or replaced, or its session ends.
    pub max_will_bytes: usize,
    /// Longest client identifier, user name and authentication method a CONNECT may carry, in
    /// bytes (each is kept while the connection or session lives). Longer gets CONNACK 0x85
    /// client identifier not valid, 0x86 bad user name or password, or 0x8C bad authentication
    /// method (3.x: 0x02 and 0x04) [MQTT-3.1.3-8]. 5.0 and 3.1.1 servers must accept client
    /// identifiers of 23 bytes [MQTT-3.1.3-5], so at least 23.
    pub max_id_length: usize,
    /// Longest topic name or filter in bytes (the spec's limit is 65535). A shared
    /// subscription's whole filter, `$share/{group}/` included, is held to it too.
    pub max_topic_length: usize,
    /// Most levels in a topic name or filter.
    pub max_topic_levels: usize,
    /// Retained messages kept. A new retained topic beyond it is not retained (the message is still
    /// delivered) and counted as dropped.
    pub max_retained_messages: usize,
    /// Bytes of retained messages kept, each counted as for `max_queued_bytes` plus its topic's
    /// nodes in the retained index (`broker::cost::retained`); beyond it as for
    /// `max_retained_messages`.
    pub max_retained_bytes: usize,
    /// Largest session expiry interval granted, in seconds (CONNACK carries the override).
    pub max_session_expiry: u32,
    /// Seconds an offline MQTT 3.x session (clean session 0) is kept before it expires like a
    /// 5.0 session would (its subscriptions, queue and will go; capped by `max_session_expiry`).
    /// 0 means never. Mosquitto's option of the same name and meaning defaults to never (3.1.1
    /// lets the server discard a session, but gives no interval); ours is 7 days, because
    /// sessions of clients that never come back would otherwise fill `max_sessions` for good,
    /// and then every new client is refused.
    pub persistent_client_expiration: u32,
    /// Largest message expiry interval, in seconds; longer (or absent) is capped to it.
    /// 0 means no cap.
    pub max_message_expiry: u32,
    /// Topic aliases a client may use towards us (advertised in CONNACK); 0 disables them.
    pub topic_alias_maximum: u16,
    /// Bytes of topic alias tables all connections hold together, inbound (the client's
    /// aliases, up to `topic_alias_maximum` each) and outbound (ours, up to the client's
    /// maximum), each topic with a fixed overhead (`broker::cost`). An inbound alias
    /// that does not fit gets DISCONNECT 0x97 quota exceeded; outbound aliases take at most
    /// half of it (past that a topic is sent in full, without an alias), so ours never crowd
    /// out the clients'. A closed connection gives its tables back.
    pub max_alias_bytes: usize,
    /// Highest QoS the server supports (0, 1 or 2).
    pub max_qos: u8,
    /// Retained messages supported.
    pub retain_available: bool,
    /// Wildcard subscriptions supported.
    pub wildcard_subscription_available: bool,
    /// Subscription identifiers supported.
    pub subscription_identifier_available: bool,
    /// Shared subscriptions supported.
    pub shared_subscription_available: bool,
    /// How a shared group picks the member that receives a message.
    pub shared_policy: SharedPolicy,
    /// When set, overrides the keep alive a client asks for (CONNACK Server Keep Alive).
    pub server_keep_alive: Option<u16>,
    /// Largest keep alive accepted; larger requests are lowered to it via Server Keep Alive.
    /// 0 means no limit.
    pub max_keep_alive: u16,
    /// Response information returned in CONNACK to MQTT 5 clients that request it.
    pub response_information: Option<String>,
    /// Server reference sent with 0x9C / 0x9D (use another server / server moved).
    pub server_reference: Option<String>,
    /// Seconds between `$SYS` publications; 0 turns them off.
    pub sys_interval_secs: u32,
    /// Hard cap on the memory the bounds above may add up to, in bytes: `validate` refuses
    /// options whose worst case ([`Options::memory_terms`]) exceeds it, and a server refuses a
    /// listener whose handshakes would take the total past it ([`Options::transport_terms`]).
    /// 0 means unchecked.
    pub memory_limit: usize,
    /// Compatibility switches.
    pub compat: Compatibilities,
}

/// Most output chunks a connection encodes ahead (`write_batch` is taken as whole chunks).
pub const MAX_WRITE_CHUNKS: usize = 64;

impl Options {
    /// Output chunks a connection may encode ahead: `write_batch / buffer_size`, from 1 to
    /// [`MAX_WRITE_CHUNKS`].
    pub fn write_chunks(&self) -> usize {
        (self.write_batch / self.buffer_size.max(1)).clamp(1, MAX_WRITE_CHUNKS)
    }

    /// The session expiry interval of a 3.x session with clean session 0, in seconds
    /// (`u32::MAX`: never), from `persistent_client_expiration`.
    pub fn v3_session_expiry(&self) -> u32 {
        match self.persistent_client_expiration {
            0 => u32::MAX,
            secs => secs,
        }
    }

    /// Buffers (and output chunk lists) the pools keep: half of `buffer_memory` in buffers.
    pub fn pool_capacity(&self) -> usize {
        self.buffer_memory / 2 / self.buffer_size.max(1)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_clients: 1024,
            max_sessions: 1024,
            connect_timeout_ms: 10_000,
            auth_failures_per_minute: 10,
            buffer_size: 4096,
            write_batch: 64 * 1024,
            buffer_memory: 8 * 1024 * 1024,
            max_connect_size: 64 * 1024,
            write_stall_timeout_ms: 30_000,
            frame_timeout_ms: 60_000,
            // Each TLS handshake may hold 160 KiB in rustls (TLS_CONNECTION_BYTES): 64 per
            // listener would be 10 MiB per TLS listener, 32 leave room for a TLS and a WebSocket
            // listener under the default memory_limit.
            max_handshakes: 32,
            max_packet_size: 256 * 1024,
            receive_maximum: 64,
            receive_maximum_v3: 1024,
            max_inflight: 64,
            max_queued_messages: 256,
            max_queued_bytes: 64 * 1024,
            // Was max_sessions x max_queued_bytes = 64 MiB of worst case, and the inflight
            // windows were not counted at all. 24 MiB, shared: 384 sessions may fill their whole
            // 64 KiB queue at once, and the defaults keep room for a TLS and a WebSocket
            // listener under memory_limit.
            queue_memory: 24 * 1024 * 1024,
            queue_full_policy: QueueFullPolicy::DropNew,
            queue_qos0_offline: false,
            max_subscriptions_per_client: 256,
            // About 6,000 subscriptions of three levels each (~1.3 KiB each, nodes included,
            // none shared); 1024 x 256 x a 1 KiB filter would be 256 MiB and more.
            max_subscription_bytes: 8 * 1024 * 1024,
            // About 10,000 wills of a 50-byte topic and payload, or 32 of the largest CONNECT.
            max_will_bytes: 2 * 1024 * 1024,
            max_id_length: 256,
            max_topic_length: 1024,
            max_topic_levels: 32,
            max_retained_messages: 10_000,
            max_retained_bytes: 8 * 1024 * 1024,
            max_session_expiry: u32::MAX,
            persistent_client_expiration: 7 * 24 * 3600,
            max_message_expiry: 0,
            topic_alias_maximum: 64,
            // 1024 connections x (64 + 64) aliases x 1 KiB topics would be 128 MiB.
            max_alias_bytes: 1024 * 1024,
            max_qos: 2,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifier_available: true,
            shared_subscription_available: true,
            shared_policy: SharedPolicy::RoundRobin,
            server_keep_alive: None,
            max_keep_alive: 0,
            response_information: None,
            server_reference: None,
            sys_interval_secs: 10,
            memory_limit: 96 * 1024 * 1024,
            compat: Compatibilities::default(),
        }
    }
}

/// An option value that breaks a rule; names the option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError {
    /// The option (config key) at fault.
    pub key: &'static str,
    /// What was expected.
    pub expected: String,
}

impl core::fmt::Display for OptionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "option `{}`: expected {}", self.key, self.expected)
    }
}

impl std::error::Error for OptionError {}

/// Listeners by the state their connections hold before CONNECT outside the buffer budget,
/// for [`Options::transport_terms`] (plain TCP and Unix listeners hold none: a partial CONNECT
/// is in a connection's buffers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transports {
    /// `tls` listeners.
    pub tls: usize,
    /// `ws` listeners.
    pub ws: usize,
    /// `wss` listeners.
    pub wss: usize,
    /// `http` stats listeners.
    pub http: usize,
}

/// What rustls may hold for one TLS connection from accept until its CONNECT has arrived:
/// during the handshake a handshake message of up to 64 KiB in its record buffer plus its
/// parsed form (a ClientHello, or a client certificate chain, which is kept) up to as much
/// again, our certificate flight and ~8 KiB of state; after it 16 KiB of decrypted input plus
/// one record, an 18 KiB record buffer and 16 KiB of records for the socket (the buffer limit
/// [`crate::listeners::tls`] sets), the client certificate chain and the state. Rounded up.
pub const TLS_CONNECTION_BYTES: usize = 160 * 1024;

/// What tungstenite holds for one WebSocket connection before CONNECT besides its one message
/// and one frame of `max_connect_size` each: two 4 KiB read chunks, a 16 KiB frame for the
/// socket and a pong. Rounded up.
pub const WS_FIXED_BYTES: usize = 32 * 1024;

/// What one HTTP stats request holds: its head (8 KiB at most, [`crate::listeners::http`]),
/// a read chunk and the JSON or Prometheus answer. Rounded up.
pub const HTTP_REQUEST_BYTES: usize = 32 * 1024;

impl Options {
    /// The worst case of every bound, term by term: what clients can make the broker hold when
    /// every bound is reached at once. Each term names the options that set it. Listeners add
    /// [`Options::transport_terms`]. Not included: the binary, stacks, allocator overhead and
    /// fragmentation (about 2 MB on a small router), hooks' own state (a ledger's rules), and
    /// what rustls and tungstenite hold for TLS and WebSocket connections once their CONNECT
    /// has arrived (see README.md, "Default bounds").
    pub fn memory_terms(&self) -> Vec<(&'static str, usize)> {
        use crate::budget as cost;
        use crate::message::MESSAGE_OVERHEAD;
        use crate::budget::HEAP_HEADER;
        let m = |a: usize, b: usize| a.saturating_mul(b);
        let (c, s) = (self.max_clients, self.max_sessions);
        let qos2 = self.receive_maximum.max(self.receive_maximum_v3) as usize;
        vec![
            ("buffer_memory", self.buffer_memory),
            ("connection buffers: max_clients x 3 x buffer_size", m(c, m(3, self.buffer_size))),
            ("connection state: max_clients x PER_CONNECTION", m(c, cost::PER_CONNECTION)),
            ("output chunk lists: max_clients x (write_batch / buffer_size + 1) slots", m(c, cost::output_list(self.write_chunks()))),
            ("user names and auth methods: max_clients x 3 x max_id_length", m(c, m(3, self.max_id_length.saturating_add(HEAP_HEADER)))),
            ("enhanced auth CONNECTs: max_handshakes x max_connect_size", m(self.max_handshakes, self.max_connect_size as usize)),
            ("session state: max_sessions x PER_SESSION", m(s, cost::PER_SESSION)),
            ("client identifiers: max_sessions x max_id_length", m(s, self.max_id_length.saturating_add(cost::SHARED_STR))),
            ("inbound QoS 2 ids: max_sessions x max(receive_maximum, receive_maximum_v3)", m(s, m(qos2, cost::QOS2_ID))),
            ("queue_memory", self.queue_memory),
            ("max_subscription_bytes", self.max_subscription_bytes),
            ("max_will_bytes", self.max_will_bytes),
            ("max_retained_bytes", self.max_retained_bytes),
            ("max_alias_bytes", self.max_alias_bytes),
            ("handle commands: COMMAND_CAPACITY slots + command_memory", cost::command_slots().saturating_add(self.command_memory())),
            ("retained matches of one SUBSCRIBE: max_retained_messages", m(self.max_retained_messages, cost::RETAINED_MATCH)),
            ("message being routed: max_packet_size", (self.max_packet_size as usize).saturating_add(MESSAGE_OVERHEAD)),
            ("fixed: read scratch, auth throttle, pooled chunk lists", cost::FIXED.saturating_add(m(self.pool_capacity(), cost::POOLED_LIST))),
        ]
    }

    /// The sum of [`Options::memory_terms`]: what `memory_limit` is checked against.
    pub fn worst_case_memory(&self) -> usize {
        self.memory_terms().iter().fold(0usize, |a, (_, b)| a.saturating_add(*b))
    }

    /// The terms listeners add to [`Options::memory_terms`]: per listener, `max_handshakes`
    /// connections in a handshake or waiting for their CONNECT, each holding what its transport
    /// library holds ([`TLS_CONNECTION_BYTES`], a WebSocket message and frame of up to
    /// `max_connect_size` plus [`WS_FIXED_BYTES`], [`HTTP_REQUEST_BYTES`]). Terms that are zero
    /// are left out.
    pub fn transport_terms(&self, t: &Transports) -> Vec<(&'static str, usize)> {
        let m = |a: usize, b: usize| a.saturating_mul(b);
        let h = self.max_handshakes;
        let ws = m(2, self.max_connect_size as usize).saturating_add(WS_FIXED_BYTES);
        let terms = [
            ("TLS listeners: max_handshakes x TLS_CONNECTION_BYTES", m(t.tls, m(h, TLS_CONNECTION_BYTES))),
            ("WebSocket listeners: max_handshakes x (2 x max_connect_size + WS_FIXED_BYTES)", m(t.ws, m(h, ws))),
            ("WebSocket over TLS listeners: max_handshakes x (both)", m(t.wss, m(h, ws.saturating_add(TLS_CONNECTION_BYTES)))),
            ("HTTP stats listeners: max_handshakes x HTTP_REQUEST_BYTES", m(t.http, m(h, HTTP_REQUEST_BYTES))),
        ];
        terms.into_iter().filter(|(_, b)| *b > 0).collect()
    }

    /// Checks that the worst case with these listeners' [`Options::transport_terms`] stays
    /// within `memory_limit` (0: unchecked). The error names `memory_limit` and the largest terms.
    pub fn check_transports(&self, t: &Transports) -> Result<(), OptionError> {
        let mut terms = self.memory_terms();
        terms.extend(self.transport_terms(t));
        over_limit(self.memory_limit, terms, "these bounds and listeners")
    }

    /// Bytes the [`crate::Handle`] command channel may hold in topics, payloads, packets and
    /// client identifiers together, besides its [`crate::budget::COMMAND_CAPACITY`] slots: four
    /// packets of `max_packet_size`. One command may carry at most `max_packet_size`.
    pub fn command_memory(&self) -> usize {
        (self.max_packet_size as usize).saturating_mul(4)
    }

    /// Checks the cross-field rules. The error names the option to change.
    pub fn validate(&self) -> Result<(), OptionError> {
        let err = |key, expected: &str| Err(OptionError { key, expected: expected.to_string() });
        if self.max_clients == 0 || self.max_clients > 65_000 {
            return err("max_clients", "a number from 1 to 65000");
        }
        if self.max_sessions < self.max_clients {
            return err("max_sessions", "at least max_clients");
        }
        if self.buffer_size < 64 {
            return err("buffer_size", "at least 64 bytes");
        }
        if self.max_packet_size < 64 || self.max_packet_size > 268_435_460 {
            return err("max_packet_size", "a number from 64 to 268435460");
        }
        if (self.buffer_memory as u64) < 2 * self.buffer_size as u64 + self.max_packet_size as u64 {
            return err("buffer_memory", "at least 2 * buffer_size + max_packet_size");
        }
        if self.max_connect_size < 64 {
            return err("max_connect_size", "at least 64 bytes");
        }
        if self.write_stall_timeout_ms == 0 {
            return err("write_stall_timeout_ms", "at least 1 millisecond");
        }
        if self.frame_timeout_ms == 0 {
            return err("frame_timeout_ms", "at least 1 millisecond");
        }
        if self.max_handshakes == 0 {
            return err("max_handshakes", "at least 1");
        }
        if self.receive_maximum == 0 {
            return err("receive_maximum", "a number from 1 to 65535");
        }
        if self.receive_maximum_v3 == 0 {
            return err("receive_maximum_v3", "a number from 1 to 65535");
        }
        if self.max_inflight == 0 {
            return err("max_inflight", "a number from 1 to 65535");
        }
        if self.max_qos > 2 {
            return err("max_qos", "0, 1 or 2");
        }
        if self.max_topic_length == 0 || self.max_topic_length > 65_535 {
            return err("max_topic_length", "a number from 1 to 65535");
        }
        if self.max_topic_levels == 0 {
            return err("max_topic_levels", "at least 1");
        }
        if self.queue_memory < self.max_packet_size as usize {
            return err("queue_memory", "at least max_packet_size (a message of the largest size must fit)");
        }
        if self.max_id_length < 23 || self.max_id_length > 65_535 {
            return err("max_id_length", "a number from 23 to 65535 ([MQTT-3.1.3-5]: 23-byte client identifiers are allowed)");
        }
        over_limit(self.memory_limit, self.memory_terms(), "these bounds")?;
        Ok(())
    }
}

/// The `memory_limit` error when `terms` add up to more than `limit` (0: unchecked), naming the
/// three largest terms.
fn over_limit(limit: usize, mut terms: Vec<(&'static str, usize)>, what: &str) -> Result<(), OptionError> {
    let total = terms.iter().fold(0usize, |a, (_, b)| a.saturating_add(*b));
    if limit == 0 || total <= limit {
        return Ok(());
    }
    terms.sort_by_key(|t| core::cmp::Reverse(t.1));
    let largest: Vec<String> = terms.iter().take(3).map(|(name, bytes)| format!("{name} = {bytes}")).collect();
    Err(OptionError {
        key: "memory_limit",
        expected: format!("at least {total} bytes for {what} (largest: {})", largest.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Options::default().validate(), Ok(()));
    }

    #[test]
    fn memory_limit_names_the_option() {
        let o = Options { memory_limit: 1024, ..Options::default() };
        assert!(Options::default().worst_case_memory() <= Options::default().memory_limit);
        assert_eq!(o.validate().unwrap_err().key, "memory_limit");
    }

    #[test]
    fn zero_receive_maximum_is_refused() {
        let o = Options { receive_maximum: 0, ..Options::default() };
        assert_eq!(o.validate().unwrap_err().key, "receive_maximum");
    }
}
