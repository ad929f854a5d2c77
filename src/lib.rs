//! edgemq: a small, bounded, single-threaded MQTT 5.0 / 3.1.1 / 3.1 broker for edge gateways.
//!
//! Bytes flow one way: from a socket into a client's buffer, through the pure codec
//! ([`packets`]) into that client's session state ([`session`]), through the subscription trie
//! ([`topics`]) into other sessions' bounded queues, and out through their buffers to their
//! sockets. The socket-free core is [`broker`]; the event loop that owns the sockets and the
//! clock is [`server`]. Hooks ([`hooks`]) and storage sit at the edges and never own the flow.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod config;
pub mod hooks;
pub mod listeners;
pub mod options;
pub mod packets;
pub mod server;
pub mod session;
pub mod sys;
pub mod time;
pub mod topics;

pub use broker::Broker;
pub use options::Options;
pub use server::{Handle, Server};
