//! The `[limits]`, `[mqtt]`, `[sys]` and `[compat]` keys: where each lands in [`Options`], its
//! type and range, and its one-line comment for the generated default config.
//!
//! Each entry reaches its field through a function, so a renamed or retyped field fails to
//! compile; a test checks that every `Options` field has exactly one entry.

use crate::options::{Options, QueueFullPolicy, SharedPolicy};

use super::doc::{Item, Value};

/// How a key's value is checked and stored.
pub(crate) enum Field {
    Usize(fn(&mut Options) -> &mut usize),
    U64(fn(&mut Options) -> &mut u64),
    U32(fn(&mut Options) -> &mut u32),
    U16(fn(&mut Options) -> &mut u16),
    U8(fn(&mut Options) -> &mut u8),
    Bool(fn(&mut Options) -> &mut bool),
    OptU16(fn(&mut Options) -> &mut Option<u16>),
    OptString(fn(&mut Options) -> &mut Option<String>),
    QueueFull(fn(&mut Options) -> &mut QueueFullPolicy),
    Shared(fn(&mut Options) -> &mut SharedPolicy),
}

/// One config key that maps onto an `Options` field.
pub(crate) struct Key {
    /// The table it lives in: `limits`, `mqtt`, `sys` or `compat`.
    pub section: &'static str,
    /// The key inside the table.
    pub name: &'static str,
    /// The `Options` (or `Compatibilities`) field name, as `Options::validate` reports it.
    pub option: &'static str,
    /// Smallest accepted integer (integer fields only).
    pub min: i128,
    /// Type and place.
    pub field: Field,
    /// One line for the generated default config.
    pub doc: &'static str,
}

/// The tables holding `Options` keys, in the order of the generated default config.
pub(crate) const SECTIONS: [&str; 4] = ["limits", "mqtt", "sys", "compat"];

macro_rules! key {
    ($section:literal, $name:literal, $kind:ident, $min:expr, $doc:literal, $($field:ident).+) => {
        Key {
            section: $section,
            name: $name,
            option: last_ident!($($field).+),
            min: $min,
            field: Field::$kind(|o| &mut o.$($field).+),
            doc: $doc,
        }
    };
}

macro_rules! last_ident {
    ($first:ident) => { stringify!($first) };
    ($first:ident . $($rest:ident).+) => { last_ident!($($rest).+) };
}

/// Every key that maps onto `Options`.
pub(crate) static KEYS: &[Key] = &[
    key!(
        "limits",
        "max_clients",
        Usize,
        1,
        "Connections held at once; beyond it a new connection is closed at once.",
        max_clients
    ),
    key!(
        "limits",
        "max_sessions",
        Usize,
        1,
        "Sessions kept, connected or not (at least max_clients); beyond it CONNACK 0x97.",
        max_sessions
    ),
    key!(
        "limits",
        "buffer_size",
        Usize,
        1,
        "Bytes of one pooled I/O buffer, lent to a connection only while it has bytes in flight.",
        buffer_size
    ),
    key!(
        "limits",
        "write_batch",
        Usize,
        1,
        "Bytes of output encoded ahead per connection and written in one system call (buffer_size chunks).",
        write_batch
    ),
    key!(
        "limits",
        "buffer_memory",
        Usize,
        1,
        "Bytes of I/O buffers shared beyond each connection's first chunk; when used up, only connections needing more wait.",
        buffer_memory
    ),
    key!(
        "limits",
        "max_packet_size",
        U32,
        1,
        "Largest packet accepted, in bytes (advertised in CONNACK); larger gets 0x95.",
        max_packet_size
    ),
    key!(
        "limits",
        "max_inflight",
        U16,
        1,
        "QoS 1/2 messages in flight towards one client; more wait in its queue.",
        max_inflight
    ),
    key!(
        "limits",
        "max_queued_messages",
        Usize,
        0,
        "Messages waiting in one session's queue.",
        max_queued_messages
    ),
    key!(
        "limits",
        "max_queued_bytes",
        Usize,
        0,
        "Bytes waiting in one session's queue (topic, payload and properties of each message).",
        max_queued_bytes
    ),
    key!(
        "limits",
        "queue_memory",
        Usize,
        0,
        "Bytes all session queues and inflight windows hold together; beyond it a queue counts as full.",
        queue_memory
    ),
    key!(
        "limits",
        "queue_full_policy",
        QueueFull,
        0,
        "QoS 1/2 message to a full queue: \"drop_new\", \"drop_oldest\" or \"disconnect\".",
        queue_full_policy
    ),
    key!(
        "limits",
        "queue_qos0_offline",
        Bool,
        0,
        "Queue QoS 0 messages for offline persistent sessions.",
        queue_qos0_offline
    ),
    key!(
        "limits",
        "max_subscriptions_per_client",
        Usize,
        0,
        "Subscriptions one session may hold; beyond it SUBACK 0x97.",
        max_subscriptions_per_client
    ),
    key!(
        "limits",
        "max_subscription_bytes",
        Usize,
        0,
        "Bytes all subscriptions hold together (filters, trie nodes); beyond it SUBACK 0x97 (3.x 0x80).",
        max_subscription_bytes
    ),
    key!(
        "limits",
        "max_will_bytes",
        Usize,
        0,
        "Bytes all stored wills hold together; a CONNECT whose will does not fit gets 0x97 (3.x 0x03).",
        max_will_bytes
    ),
    key!(
        "limits",
        "max_id_length",
        Usize,
        23,
        "Longest client id, user name and auth method in CONNECT, in bytes; longer gets 0x85/0x86/0x8C.",
        max_id_length
    ),
    key!(
        "limits",
        "max_topic_length",
        Usize,
        1,
        "Longest topic name or filter, in bytes (at most 65535).",
        max_topic_length
    ),
    key!("limits", "max_topic_levels", Usize, 1, "Most levels in a topic name or filter.", max_topic_levels),
    key!(
        "limits",
        "max_retained_messages",
        Usize,
        0,
        "Retained messages kept; beyond it a new retained topic is delivered but not kept.",
        max_retained_messages
    ),
    key!(
        "limits",
        "max_retained_bytes",
        Usize,
        0,
        "Bytes of retained messages kept (topic, payload and properties of each).",
        max_retained_bytes
    ),
    key!(
        "limits",
        "memory_limit",
        Usize,
        0,
        "Bytes every bound (and the listeners' handshakes) may add up to in the worst case; checked at start. 0 = unchecked.",
        memory_limit
    ),
    key!(
        "limits",
        "connect_timeout_ms",
        U64,
        0,
        "Milliseconds a new connection may take to send CONNECT.",
        connect_timeout_ms
    ),
    key!(
        "limits",
        "max_connect_size",
        U32,
        64,
        "Largest CONNECT accepted, in bytes (before CONNECT completes); larger gets 0x95.",
        max_connect_size
    ),
    key!(
        "limits",
        "write_stall_timeout_ms",
        U64,
        1,
        "Milliseconds output may wait with no byte written before the connection is closed.",
        write_stall_timeout_ms
    ),
    key!(
        "limits",
        "frame_timeout_ms",
        U64,
        1,
        "Milliseconds a packet may take to arrive in full once its first byte is in.",
        frame_timeout_ms
    ),
    key!(
        "limits",
        "max_handshakes",
        Usize,
        1,
        "Connections in a TLS/WebSocket handshake, HTTP request or before CONNECT on TLS/WebSocket, per listener.",
        max_handshakes
    ),
    key!(
        "limits",
        "auth_failures_per_minute",
        U32,
        0,
        "Failed authentications per remote IP per minute; beyond it CONNACK 0x87 without hashing. 0 = unlimited.",
        auth_failures_per_minute
    ),
    key!(
        "mqtt",
        "receive_maximum",
        U16,
        1,
        "QoS 1/2 PUBLISH a client may have unacknowledged towards us (advertised in CONNACK).",
        receive_maximum
    ),
    key!(
        "mqtt",
        "receive_maximum_v3",
        U16,
        1,
        "QoS 2 PUBLISH a 3.x client (never told a receive maximum) may have awaiting PUBREL; one more closes it.",
        receive_maximum_v3
    ),
    key!("mqtt", "max_qos", U8, 0, "Highest QoS supported: 0, 1 or 2.", max_qos),
    key!("mqtt", "retain_available", Bool, 0, "Retained messages supported.", retain_available),
    key!(
        "mqtt",
        "wildcard_subscription_available",
        Bool,
        0,
        "Wildcard subscriptions (+ and #) supported.",
        wildcard_subscription_available
    ),
    key!(
        "mqtt",
        "subscription_identifier_available",
        Bool,
        0,
        "Subscription identifiers supported.",
        subscription_identifier_available
    ),
    key!(
        "mqtt",
        "shared_subscription_available",
        Bool,
        0,
        "Shared subscriptions ($share/group/filter) supported.",
        shared_subscription_available
    ),
    key!(
        "mqtt",
        "shared_policy",
        Shared,
        0,
        "Member of a shared group that gets a message: \"round_robin\" or \"first\".",
        shared_policy
    ),
    key!(
        "mqtt",
        "max_session_expiry",
        U32,
        0,
        "Largest session expiry interval granted, in seconds.",
        max_session_expiry
    ),
    key!(
        "mqtt",
        "persistent_client_expiration",
        U32,
        0,
        "Seconds an offline 3.x session (clean session 0) is kept; 0 = never (Mosquitto's default).",
        persistent_client_expiration
    ),
    key!(
        "mqtt",
        "max_message_expiry",
        U32,
        0,
        "Largest message expiry interval, in seconds; longer or absent is capped. 0 = no cap.",
        max_message_expiry
    ),
    key!(
        "mqtt",
        "topic_alias_maximum",
        U16,
        0,
        "Topic aliases a client may use towards us; 0 disables them.",
        topic_alias_maximum
    ),
    key!(
        "limits",
        "max_alias_bytes",
        Usize,
        0,
        "Bytes all topic alias tables hold together; a new inbound alias beyond it gets DISCONNECT 0x97.",
        max_alias_bytes
    ),
    key!(
        "mqtt",
        "server_keep_alive",
        OptU16,
        0,
        "When set, overrides the keep alive (seconds) every client asks for.",
        server_keep_alive
    ),
    key!(
        "mqtt",
        "max_keep_alive",
        U16,
        0,
        "Largest keep alive accepted, in seconds; larger is lowered to it. 0 = no limit.",
        max_keep_alive
    ),
    key!(
        "mqtt",
        "response_information",
        OptString,
        0,
        "Response information returned in CONNACK to MQTT 5 clients that request it.",
        response_information
    ),
    key!(
        "mqtt",
        "server_reference",
        OptString,
        0,
        "Server reference sent with 0x9C/0x9D (use another server / server moved).",
        server_reference
    ),
    key!(
        "sys",
        "interval",
        U32,
        0,
        "Seconds between $SYS publications; 0 turns them off.",
        sys_interval_secs
    ),
    key!(
        "compat",
        "obscure_not_authorized",
        Bool,
        0,
        "Answer 0x80 instead of 0x87/0x86 so a client cannot probe the ACL.",
        compat.obscure_not_authorized
    ),
    key!(
        "compat",
        "passive_client_disconnect",
        Bool,
        0,
        "On takeover, close the old connection without sending it DISCONNECT.",
        compat.passive_client_disconnect
    ),
    key!(
        "compat",
        "always_return_response_info",
        Bool,
        0,
        "Return response information even when the client did not request it.",
        compat.always_return_response_info
    ),
    key!(
        "compat",
        "restore_sys_info_on_restart",
        Bool,
        0,
        "Restore $SYS counters from storage on restart.",
        compat.restore_sys_info_on_restart
    ),
];

/// Names of the queue-full policies, as written in the config.
pub(crate) const QUEUE_FULL_POLICIES: [(&str, QueueFullPolicy); 3] = [
    ("drop_new", QueueFullPolicy::DropNew),
    ("drop_oldest", QueueFullPolicy::DropOldest),
    ("disconnect", QueueFullPolicy::Disconnect),
];

/// Names of the shared-subscription policies, as written in the config.
pub(crate) const SHARED_POLICIES: [(&str, SharedPolicy); 2] =
    [("round_robin", SharedPolicy::RoundRobin), ("first", SharedPolicy::First)];

fn queue_full_name(p: QueueFullPolicy) -> &'static str {
    // Exhaustive, so a new variant fails to compile until it has a name here and above.
    match p {
        QueueFullPolicy::DropNew => "drop_new",
        QueueFullPolicy::DropOldest => "drop_oldest",
        QueueFullPolicy::Disconnect => "disconnect",
    }
}

fn shared_name(p: SharedPolicy) -> &'static str {
    match p {
        SharedPolicy::RoundRobin => "round_robin",
        SharedPolicy::First => "first",
    }
}

/// The config key (`section.name`) of an `Options` field name, as `validate` reports it.
pub(crate) fn key_of_option(option: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.option == option)
}

/// Looks up `name` in `section`.
pub(crate) fn find(section: &str, name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.section == section && k.name == name)
}

/// The keys of `section`, in order.
pub(crate) fn names(section: &str) -> Vec<&'static str> {
    KEYS.iter().filter(|k| k.section == section).map(|k| k.name).collect()
}

/// Accepted integer range of an integer field, or `None` for other fields.
fn int_range(key: &Key) -> Option<(i128, i128)> {
    let max = match key.field {
        Field::Usize(_) => usize::MAX as i128,
        Field::U64(_) => u64::MAX as i128,
        Field::U32(_) => u32::MAX as i128,
        Field::U16(_) | Field::OptU16(_) => u16::MAX as i128,
        Field::U8(_) => u8::MAX as i128,
        _ => return None,
    };
    Some((key.min, max))
}

/// "a positive integer", "an integer from 0 to 65535", ...: what an integer key expects.
fn int_expectation(min: i128, max: i128, wide: bool) -> String {
    match (min, wide) {
        (0, true) => "a non-negative integer".to_string(),
        (1, true) => "a positive integer".to_string(),
        _ => format!("an integer from {min} to {max}"),
    }
}

/// Checks `item` against `key` and stores it in `options`. The error is the "expected ..., found
/// ..." part of the message.
pub(crate) fn apply(key: &Key, item: &Item, options: &mut Options) -> Result<(), String> {
    if let Some((min, max)) = int_range(key) {
        let wide = max > u16::MAX as i128;
        let Value::Int { value, .. } = item.value else {
            return Err(format!(
                "expected {}, found {}",
                int_expectation(min, max, wide),
                item.value.describe()
            ));
        };
        if value < min {
            return Err(format!("expected {}, found {value}", int_expectation(min, max, wide)));
        }
        if value > max {
            return Err(format!("expected an integer from {min} to {max}, found {value}"));
        }
        // In range, so the conversions below cannot fail; the fallbacks are never taken.
        match key.field {
            Field::Usize(f) => *f(options) = usize::try_from(value).unwrap_or(usize::MAX),
            Field::U64(f) => *f(options) = u64::try_from(value).unwrap_or(u64::MAX),
            Field::U32(f) => *f(options) = u32::try_from(value).unwrap_or(u32::MAX),
            Field::U16(f) => *f(options) = u16::try_from(value).unwrap_or(u16::MAX),
            Field::OptU16(f) => *f(options) = Some(u16::try_from(value).unwrap_or(u16::MAX)),
            Field::U8(f) => *f(options) = u8::try_from(value).unwrap_or(u8::MAX),
            _ => {}
        }
        return Ok(());
    }
    match (&key.field, &item.value) {
        (Field::Bool(f), Value::Bool(b)) => *f(options) = *b,
        (Field::Bool(_), other) => return Err(format!("expected true or false, found {}", other.describe())),
        (Field::OptString(f), Value::Str(s)) => *f(options) = Some(s.clone()),
        (Field::OptString(_), other) => return Err(format!("expected a string, found {}", other.describe())),
        (Field::QueueFull(f), value) => *f(options) = pick(&QUEUE_FULL_POLICIES, value)?,
        (Field::Shared(f), value) => *f(options) = pick(&SHARED_POLICIES, value)?,
        _ => return Err("expected nothing: this key has no reader (a bug)".to_string()),
    }
    Ok(())
}

/// The variant named by `value`, or the "expected one of ..." message.
pub(crate) fn pick<T: Copy>(choices: &[(&str, T)], value: &Value) -> Result<T, String> {
    if let Value::Str(s) = value {
        if let Some((_, v)) = choices.iter().find(|(name, _)| name == s) {
            return Ok(*v);
        }
    }
    Err(format!("expected {}, found {}", one_of(choices.iter().map(|(n, _)| *n)), value.describe()))
}

/// `"a"`, `"a" or "b"`, `one of "a", "b", "c"`.
pub(crate) fn one_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.map(|n| format!("{n:?}")).collect();
    match quoted.len() {
        0 => "nothing".to_string(),
        1 => quoted[0].clone(),
        2 => format!("{} or {}", quoted[0], quoted[1]),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

/// The current value of `key` in `options`, as TOML (`None` for an unset optional value).
pub(crate) fn render(key: &Key, options: &Options) -> Option<String> {
    let mut o = options.clone();
    Some(match key.field {
        Field::Usize(f) => f(&mut o).to_string(),
        Field::U64(f) => f(&mut o).to_string(),
        Field::U32(f) => f(&mut o).to_string(),
        Field::U16(f) => f(&mut o).to_string(),
        Field::U8(f) => f(&mut o).to_string(),
        Field::Bool(f) => f(&mut o).to_string(),
        Field::OptU16(f) => (*f(&mut o))?.to_string(),
        Field::OptString(f) => toml_string(f(&mut o).as_deref()?),
        Field::QueueFull(f) => toml_string(queue_full_name(*f(&mut o))),
        Field::Shared(f) => toml_string(shared_name(*f(&mut o))),
    })
}

/// An example value for a key whose default is unset.
fn example(key: &Key) -> &'static str {
    match key.field {
        Field::OptU16(_) => "60",
        Field::OptString(_) => "\"...\"",
        _ => "...",
    }
}

/// `s` as a TOML basic string.
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Marks the comment of a key that is unset by default (its `#key = value` line is an example).
pub(crate) const UNSET: &str = "Unset by default.";

/// The `[limits]`, `[mqtt]`, `[sys]` and `[compat]` tables with `options`' values, each key
/// commented out (`#key = value`, Mosquitto style) under its one-line comment, so that a file
/// built from it overrides nothing of an included profile until a line is uncommented.
pub(crate) fn render_sections(options: &Options) -> String {
    let mut out = String::new();
    for section in SECTIONS {
        out.push_str(&format!("\n[{section}]\n"));
        for key in KEYS.iter().filter(|k| k.section == section) {
            match render(key, options) {
                Some(v) => out.push_str(&format!("# {}\n#{} = {v}\n", key.doc, key.name)),
                None => out.push_str(&format!("# {} {UNSET}\n#{} = {}\n", key.doc, key.name, example(key))),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{self, Deserialize, Visitor};

    /// A deserializer that only records the field names a struct asks for.
    struct FieldNames(Vec<&'static str>);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> de::Deserializer<'de> for &mut FieldNames {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    fn fields_of<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        let mut names = FieldNames(Vec::new());
        let _ = T::deserialize(&mut names);
        names.0
    }

    #[test]
    fn every_options_field_has_exactly_one_key() {
        let mut expected: Vec<String> =
            fields_of::<Options>().into_iter().filter(|f| *f != "compat").map(String::from).collect();
        expected.extend(
            fields_of::<crate::options::Compatibilities>().into_iter().map(|f| format!("compat.{f}")),
        );
        let mut have: Vec<String> = KEYS
            .iter()
            .map(
                |k| if k.section == "compat" { format!("compat.{}", k.option) } else { k.option.to_string() },
            )
            .collect();
        expected.sort();
        have.sort();
        assert_eq!(have, expected);
    }

    #[test]
    fn policy_names_match_the_serde_names() {
        for (name, p) in QUEUE_FULL_POLICIES {
            assert_eq!(queue_full_name(p), name);
            let v: QueueFullPolicy =
                QueueFullPolicy::deserialize(de::value::StrDeserializer::<de::value::Error>::new(name))
                    .unwrap();
            assert_eq!(v, p);
        }
        for (name, p) in SHARED_POLICIES {
            assert_eq!(shared_name(p), name);
            let v: SharedPolicy =
                SharedPolicy::deserialize(de::value::StrDeserializer::<de::value::Error>::new(name)).unwrap();
            assert_eq!(v, p);
        }
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }
}
