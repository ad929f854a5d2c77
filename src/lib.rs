//! edgemq: a small, bounded, single-threaded MQTT 5.0 / 3.1.1 / 3.1 broker for edge gateways.
//!
//! Bytes flow one way: from a socket into a client's buffer, through the pure codec
//! ([`packets`]) into that client's session state, through the subscription trie ([`topics`]) into
//! other sessions' bounded queues, and out through their buffers to their sockets. Hooks and
//! storage sit at the edges and never own the flow.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod listeners;
pub mod options;
pub mod time;

pub use options::Options;
pub mod packets;
pub mod broker;
pub mod hooks;
pub mod session;
pub mod storage;
pub mod sys;
pub mod topics;
pub mod server;

pub use broker::Broker;
pub use server::{Handle, Server};
