//! What the things a client can make the broker hold cost, in heap bytes: the amounts the byte
//! budgets take and give back ([`crate::budget::Budget`]), and the per-connection and
//! per-session constants of [`crate::Options::memory_terms`].
//!
//! Each cost is an upper bound of the allocations involved, so that a budget's total bounds the
//! heap it stands for: collections grown by doubling count twice their slots, and every
//! allocation whose size a client chooses counts [`HEAP_HEADER`] beyond its bytes. Shared
//! things (a trie node two filters share, a message queued for several sessions) count once
//! per holder, which over-counts and never under-counts. A cost depends only on the thing
//! itself, so it is the same when it is taken and when it is given back.

use super::message::{Message, MessageRef};
use super::SubEntry;
use crate::budget::HEAP_HEADER;
use crate::session::{Delivery, Subscription, WillMessage};
use crate::topics::{Retained, Trie};
use core::mem::size_of;

/// What one connection costs besides its buffers, user name and topic aliases: its slot in the
/// connection table (192 bytes, twice for growth), its boxed rarely used state (136 bytes),
/// the server's stream slot and scratch lists, its timer entries and a remote address too long
/// to be kept inline (IPv6). Measured sizes on 64-bit targets, rounded up.
pub const PER_CONNECTION: usize = 832;

/// What one session costs besides its client identifier, subscriptions, queue, will and
/// inbound QoS 2 identifiers: its slot in the session table (80 bytes, twice for growth), its
/// client-id index slots, its boxed queue and window headers and rarely used state, its timer
/// entries and its entry in the routing scratch. Measured sizes on 64-bit targets, rounded up.
pub const PER_SESSION: usize = 576;

/// What an `Rc<str>` shared by a connection, its session and the client-id index costs beyond
/// its bytes: the allocation and the two reference counts.
pub const SHARED_STR: usize = HEAP_HEADER + 2 * size_of::<usize>();

/// One inbound QoS 2 packet identifier awaiting PUBREL: 2 bytes in a sorted `Vec`, twice for
/// growth.
pub const QOS2_ID: usize = 2 * size_of::<crate::packets::PacketId>();

/// One retained message matched by a SUBSCRIBE, held until the SUBACK is out: a delivery slot
/// in a `Vec`, twice for growth.
pub const RETAINED_MATCH: usize = 2 * size_of::<Delivery>();

/// What does not grow with any bound: the server's 64 KiB read scratch, the failed-auth throttle
/// table ([`crate::hooks::throttle::MAX_ADDRESSES`] addresses at about 64 bytes each in a hash
/// map) and the timer heap's slack. Rounded up.
pub const FIXED: usize = 64 * 1024 + crate::hooks::throttle::MAX_ADDRESSES * 64 + 64 * 1024;

/// One chunk list kept in the pool of output chunk lists ([`crate::Options::pool_capacity`] of
/// them, of at most 8 slots each).
pub const POOLED_LIST: usize = 8 * size_of::<Vec<u8>>() + HEAP_HEADER;

/// The output chunk list of one connection: `write_chunks` chunks plus the one started past
/// them, in a `Vec` grown by doubling.
pub const fn output_list(write_chunks: usize) -> usize {
    (write_chunks + 1).next_power_of_two() * size_of::<Vec<u8>>()
}

/// The [`crate::Handle`] channel's [`crate::server::COMMAND_CAPACITY`] slots: a command and
/// its slot stamp each, plus two allocations a command may own (a topic and a payload).
pub const fn command_slots() -> usize {
    crate::server::COMMAND_CAPACITY * (size_of::<crate::server::Command>() + size_of::<usize>() + 2 * HEAP_HEADER)
}

/// One subscription, counted against `max_subscription_bytes`: its record in the session (a
/// `Vec` slot, twice for growth, and the filter's allocation), the filter's levels in the trie
/// (at most one node per level, with the level's bytes), its entry in its node, and for a shared
/// subscription its group (the name is part of the filter). `filter` is the filter as
/// subscribed, `$share/{group}/` included.
pub fn subscription(filter: &str) -> usize {
    type SubTrie = Trie<u32, SubEntry>;
    let (plain, group) = match crate::topics::parse_shared(filter) {
        Ok(Some(sh)) => (sh.filter, SubTrie::GROUP_BYTES),
        _ => (filter, 0),
    };
    let levels = plain.split('/').count();
    2 * size_of::<Subscription>() + HEAP_HEADER + 2 * filter.len() + levels * SubTrie::NODE_BYTES + SubTrie::ENTRY_BYTES + group
}

/// One retained message, counted against `max_retained_bytes`: the message itself
/// ([`Message::cost`]) and its topic's nodes in the retained index (at most one per level, with
/// the level's bytes).
pub fn retained(msg: &Message) -> usize {
    let levels = msg.topic.split('/').count();
    msg.cost() + msg.topic.len() + levels * Retained::<MessageRef>::NODE_BYTES
}

/// One will, counted against `max_will_bytes`: the message ([`Message::cost`]; the will's
/// own record is part of the session's boxed state).
pub fn will(w: &WillMessage) -> usize {
    w.cost()
}

/// One slot of a connection's inbound topic alias table (index = alias - 1), counted against
/// `max_alias_bytes` when the table grows to it: an `Option<Box<str>>`, twice for growth.
pub const ALIAS_SLOT: usize = 2 * size_of::<Option<Box<str>>>();

/// One inbound topic alias's topic, counted against `max_alias_bytes` besides its slot.
pub fn alias_in(topic: &str) -> usize {
    topic.len() + HEAP_HEADER
}

/// One outbound topic alias, counted against `max_alias_bytes`: the topic's allocation and its
/// entry in a hash map kept at most 7/8 full and grown by doubling (a 24-byte key and value
/// with a control byte: under 64 bytes).
pub fn alias_out(topic: &str) -> usize {
    topic.len() + HEAP_HEADER + 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_costs_its_filter_twice_and_a_node_per_level() {
        let one = subscription("a");
        let three = subscription("a/b/c");
        assert_eq!(three - one, 2 * 4 + 2 * Trie::<u32, SubEntry>::NODE_BYTES);
        // A shared subscription pays for its prefix bytes and its group, not for more nodes.
        let shared = subscription("$share/g/a/b/c");
        assert_eq!(shared - three, 2 * "$share/g/".len() + Trie::<u32, SubEntry>::GROUP_BYTES);
    }

    #[test]
    fn the_per_connection_and_per_session_constants_cover_the_measured_structures() {
        // Slots twice for growth; the boxed extras once each.
        let conn = 2 * (size_of::<super::super::conn::Conn>() + 8) + size_of::<super::super::conn::ConnExtra>() + HEAP_HEADER;
        assert!(conn + 224 <= PER_CONNECTION, "{conn}");
        let session = 2 * (size_of::<crate::session::Session>() + 8)
            + size_of::<crate::session::Flow>()
            + size_of::<crate::session::SessionExtra>()
            + 2 * HEAP_HEADER;
        assert!(session + 128 <= PER_SESSION, "{session}");
    }
}
