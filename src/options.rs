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
/// worst case of its bounds is about 81 MiB, under its `memory_limit` of 96 MiB. The profiles in
/// `boards/` size the bounds for smaller routers.
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
    /// on an HTTP stats request at once; beyond it new connections to that listener are closed
    /// at once. Each listener has its own count.
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
    /// fixed overhead ([`crate::broker::message::Message::cost`]).
    pub max_queued_bytes: usize,
    /// What happens to a QoS 1/2 message that finds its queue full (QoS 0 is always dropped).
    pub queue_full_policy: QueueFullPolicy,
    /// Queue QoS 0 messages for offline persistent sessions (Mosquitto's `queue_qos0_messages`).
    pub queue_qos0_offline: bool,
    /// Subscriptions one session may hold; beyond it SUBACK carries 0x97 quota exceeded.
    pub max_subscriptions_per_client: usize,
    /// Longest topic name or filter in bytes (the spec's limit is 65535).
    pub max_topic_length: usize,
    /// Most levels in a topic name or filter.
    pub max_topic_levels: usize,
    /// Retained messages kept. A new retained topic beyond it is not retained (the message is still
    /// delivered) and counted as dropped.
    pub max_retained_messages: usize,
    /// Bytes of retained messages kept, counted as for `max_queued_bytes`; beyond it as for
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
    /// Hard cap on the memory the bounds above may add up to, in bytes; `validate` refuses options
    /// whose worst case exceeds it. 0 means unchecked.
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
            max_handshakes: 64,
            max_packet_size: 256 * 1024,
            receive_maximum: 64,
            receive_maximum_v3: 1024,
            max_inflight: 64,
            max_queued_messages: 256,
            max_queued_bytes: 64 * 1024,
            queue_full_policy: QueueFullPolicy::DropNew,
            queue_qos0_offline: false,
            max_subscriptions_per_client: 256,
            max_topic_length: 1024,
            max_topic_levels: 32,
            max_retained_messages: 10_000,
            max_retained_bytes: 8 * 1024 * 1024,
            max_session_expiry: u32::MAX,
            persistent_client_expiration: 7 * 24 * 3600,
            max_message_expiry: 0,
            topic_alias_maximum: 64,
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

impl Options {
    /// Worst-case bytes the bounds add up to: the shared buffer budget, each connection's own
    /// chunks (one for input, one for output, and the acknowledgements of one input chunk), every
    /// session's queue at its byte bound, the retained store, and a per-connection and
    /// per-session overhead.
    pub fn worst_case_memory(&self) -> usize {
        const PER_CONNECTION: usize = 512;
        const PER_SESSION: usize = 512;
        self.buffer_memory
            .saturating_add(self.max_clients.saturating_mul(PER_CONNECTION.saturating_add(self.buffer_size.saturating_mul(3))))
            .saturating_add(self.max_sessions.saturating_mul(PER_SESSION))
            .saturating_add(self.max_sessions.saturating_mul(self.max_queued_bytes))
            .saturating_add(self.max_retained_bytes)
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
        if self.memory_limit != 0 && self.worst_case_memory() > self.memory_limit {
            return Err(OptionError {
                key: "memory_limit",
                expected: format!(
                    "at least {} bytes for these bounds (or lower max_sessions, max_queued_bytes, \
                     buffer_memory or max_retained_bytes)",
                    self.worst_case_memory()
                ),
            });
        }
        Ok(())
    }
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
