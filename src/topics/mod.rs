//! Topics: name and filter validation, the subscription trie and the retained-message index
//! (MQTT 5.0 sections 4.7 and 4.8).
//!
//! What this room owns:
//! - [`name`]: [`validate_name`], [`validate_filter`], [`parse_shared`] (`$share/{group}/{filter}`),
//!   and [`matches()`], the single-filter reference used for ACL rules;
//! - [`trie`]: [`Trie`], subscriptions by filter and subscriber key, with shared groups
//!   ([`SharedGroup`]) and allocation-free matching ([`Trie::for_each_match`]);
//! - [`retained`]: [`Retained`], retained messages by topic name, matched by filter.
//!
//! Both tries keep their nodes in an arena (`Vec` + free list, `NodeId(u32)`), store each level
//! string once, and free nodes as soon as they hold nothing.
//!
//! What it must never do: I/O, read a clock, know about sessions, sockets or mio, or enforce
//! broker bounds other than topic length and levels. Callers validate before inserting; the
//! counts and bytes of retained messages are the broker's to bound.

mod arena;
pub mod name;
pub mod retained;
pub mod trie;

pub use name::{
    has_wildcards, matches, parse_shared, validate_filter, validate_name, SharedFilter, TopicError,
};
pub use retained::Retained;
pub use trie::{Hit, SharedGroup, Trie};
