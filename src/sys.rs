//! `$SYS` counters and their topic names. Pure: the broker counts, publishes them on an
//! interval, and the HTTP stats listener reads the same snapshot.

/// Counters the broker keeps. Plain `u64`s owned by the loop thread (no atomics, so nothing
/// here needs 64-bit atomics on 32-bit MIPS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Milliseconds since start.
    pub uptime_ms: u64,
    /// Connections accepted in total.
    pub connections_total: u64,
    /// Clients connected now (CONNACK sent).
    pub clients_connected: u64,
    /// Offline sessions kept (persistent clients not connected).
    pub clients_disconnected: u64,
    /// Most clients connected at once.
    pub clients_maximum: u64,
    /// Subscriptions held.
    pub subscriptions: u64,
    /// Retained messages held.
    pub retained_messages: u64,
    /// Outbound QoS 1/2 messages in flight.
    pub inflight: u64,
    /// PUBLISH packets received.
    pub messages_received: u64,
    /// PUBLISH packets sent.
    pub messages_sent: u64,
    /// Messages dropped (queue full, too large for the client, expired).
    pub messages_dropped: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Packets received.
    pub packets_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Bytes held by connection buffers now.
    pub buffer_bytes: u64,
}

impl Stats {
    /// `$SYS` topic/value pairs, with the names Mosquitto and Mochi use where they exist.
    pub fn topics(&self, version: &str) -> Vec<(&'static str, String)> {
        vec![
            ("$SYS/broker/version", format!("edgemq {version}")),
            ("$SYS/broker/uptime", format!("{} seconds", self.uptime_ms / 1000)),
            ("$SYS/broker/clients/connected", self.clients_connected.to_string()),
            ("$SYS/broker/clients/disconnected", self.clients_disconnected.to_string()),
            ("$SYS/broker/clients/maximum", self.clients_maximum.to_string()),
            ("$SYS/broker/clients/total", (self.clients_connected + self.clients_disconnected).to_string()),
            ("$SYS/broker/connections/total", self.connections_total.to_string()),
            ("$SYS/broker/subscriptions/count", self.subscriptions.to_string()),
            ("$SYS/broker/retained messages/count", self.retained_messages.to_string()),
            ("$SYS/broker/messages/inflight", self.inflight.to_string()),
            ("$SYS/broker/messages/received", self.messages_received.to_string()),
            ("$SYS/broker/messages/sent", self.messages_sent.to_string()),
            ("$SYS/broker/messages/dropped", self.messages_dropped.to_string()),
            ("$SYS/broker/bytes/received", self.bytes_received.to_string()),
            ("$SYS/broker/bytes/sent", self.bytes_sent.to_string()),
            ("$SYS/broker/packets/received", self.packets_received.to_string()),
            ("$SYS/broker/packets/sent", self.packets_sent.to_string()),
            ("$SYS/broker/heap/current", self.buffer_bytes.to_string()),
        ]
    }
}
