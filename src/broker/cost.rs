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

use crate::message::{Message, MessageRef};
use super::SubEntry;
use crate::budget::HEAP_HEADER;
use crate::session::{Subscription, WillMessage};
use crate::topics::{Retained, Trie};
use core::mem::size_of;

pub use crate::budget::{output_list, FIXED, PER_CONNECTION, PER_SESSION, POOLED_LIST, QOS2_ID, RETAINED_MATCH, SHARED_STR};

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
