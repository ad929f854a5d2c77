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
    /// Resident memory of the process in bytes, as the server last read it (0 where unknown).
    pub memory_rss: u64,
    /// Connections closed for more QoS 2 PUBLISH awaiting PUBREL than the receive maximum
    /// (`receive_maximum` for 5.0, DISCONNECT 0x93; `receive_maximum_v3` for 3.x).
    pub receive_maximum_exceeded: u64,
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
            ("$SYS/broker/heap/current", self.memory_rss.to_string()),
            ("$SYS/broker/buffers/current", self.buffer_bytes.to_string()),
            ("$SYS/broker/clients/receive maximum exceeded", self.receive_maximum_exceeded.to_string()),
        ]
    }
}

/// Whether a metric only goes up (Prometheus `counter`) or goes up and down (`gauge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic since start.
    Counter,
    /// A current value.
    Gauge,
}

/// One exported value: its name (JSON key; Prometheus name is `edgemq_` + name, with
/// `_total` on counters), help text, kind and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    /// Key, e.g. `clients_connected`.
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The value.
    pub value: u64,
}

impl Stats {
    /// Every value, in a fixed order: the single table behind [`Stats::to_json`] and
    /// [`Stats::to_prometheus`], so the two never disagree.
    pub fn metrics(&self) -> [Metric; 18] {
        use MetricKind::{Counter, Gauge};
        let m = |name, help, kind, value| Metric { name, help, kind, value };
        [
            m("uptime_seconds", "Seconds since the broker started.", Gauge, self.uptime_ms / 1000),
            m("connections", "Network connections accepted since start.", Counter, self.connections_total),
            m("clients_connected", "Clients connected now (CONNACK sent).", Gauge, self.clients_connected),
            m("clients_disconnected", "Persistent sessions kept for clients not connected.", Gauge, self.clients_disconnected),
            m("clients_maximum", "Most clients connected at once since start.", Gauge, self.clients_maximum),
            m("subscriptions", "Subscriptions held.", Gauge, self.subscriptions),
            m("retained_messages", "Retained messages held.", Gauge, self.retained_messages),
            m("inflight_messages", "Outbound QoS 1 and 2 messages awaiting acknowledgement.", Gauge, self.inflight),
            m("messages_received", "PUBLISH packets received.", Counter, self.messages_received),
            m("messages_sent", "PUBLISH packets sent.", Counter, self.messages_sent),
            m("messages_dropped", "Messages dropped (queue full, too large for the client, expired).", Counter, self.messages_dropped),
            m("bytes_received", "Bytes received from clients.", Counter, self.bytes_received),
            m("bytes_sent", "Bytes sent to clients.", Counter, self.bytes_sent),
            m("packets_received", "MQTT packets received.", Counter, self.packets_received),
            m("packets_sent", "MQTT packets sent.", Counter, self.packets_sent),
            m("buffer_bytes", "Bytes held by connection buffers now.", Gauge, self.buffer_bytes),
            m("memory_rss_bytes", "Resident memory of the broker process.", Gauge, self.memory_rss),
            m(
                "receive_maximum_exceeded",
                "Connections closed for more QoS 2 PUBLISH awaiting PUBREL than the receive maximum.",
                Counter,
                self.receive_maximum_exceeded,
            ),
        ]
    }

    /// A JSON object of every value (`{"uptime_seconds":12,...}`), rendered by hand.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(512);
        out.push('{');
        for (i, m) in self.metrics().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Names are fixed ASCII identifiers: nothing to escape.
            out.push_str(&format!("\"{}\":{}", m.name, m.value));
        }
        out.push_str("}\n");
        out
    }

    /// The Prometheus text exposition format (version 0.0.4): `# HELP`, `# TYPE` and one
    /// sample per metric, named `edgemq_<name>` (counters end in `_total`).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(2048);
        for m in self.metrics() {
            let (name, kind) = match m.kind {
                MetricKind::Counter => (format!("edgemq_{}_total", m.name), "counter"),
                MetricKind::Gauge => (format!("edgemq_{}", m.name), "gauge"),
            };
            out.push_str(&format!("# HELP {name} {}\n# TYPE {name} {kind}\n{name} {}\n", m.help, m.value));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stats {
        Stats { uptime_ms: 12_345, clients_connected: 3, bytes_sent: 99, ..Stats::default() }
    }

    #[test]
    fn json_has_every_key_once_with_its_value() {
        let json = sample().to_json();
        assert!(json.starts_with("{\"uptime_seconds\":12,"), "{json}");
        assert!(json.contains("\"clients_connected\":3,"));
        assert!(json.trim_end().ends_with("\"receive_maximum_exceeded\":0}"));
        for m in sample().metrics() {
            assert_eq!(json.matches(&format!("\"{}\":", m.name)).count(), 1, "{}", m.name);
        }
    }

    #[test]
    fn prometheus_lines_are_help_type_sample() {
        let text = sample().to_prometheus();
        assert!(text.contains("# TYPE edgemq_clients_connected gauge\nedgemq_clients_connected 3\n"));
        assert!(text.contains("# TYPE edgemq_bytes_sent_total counter\nedgemq_bytes_sent_total 99\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.split_once(' ').unwrap();
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{name}");
            value.parse::<u64>().unwrap();
        }
    }
}
