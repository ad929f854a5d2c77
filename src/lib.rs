//! edgemq: a small, bounded, single-threaded MQTT 5.0 / 3.1.1 / 3.1 broker for edge gateways.
//!
//! Bytes flow one way: from a socket into a client's buffer, through the pure codec
//! ([`packets`]) into that client's session state ([`session`]), through the subscription trie
//! ([`topics`]) into other sessions' bounded queues, and out through their buffers to their
//! sockets. The socket-free core is [`broker`]; the event loop that owns the sockets and the
//! clock is [`server`]. Hooks ([`hooks`]) and storage sit at the edges and never own the flow.
//!
//! # Embedding
//!
//! Build a [`Server`] with [`Options`], add hooks (they run in the order added) and listeners,
//! then [`Server::serve`] on a thread of its own. The server is not `Send` (hooks need not be),
//! so build it on that thread and hand its [`Handle`] back: the handle is `Send + Clone` and
//! talks to the loop through a channel and a waker.
//!
//! ```
//! use edgemq::hooks::AllowAll;
//! use edgemq::listeners::ListenerConfig;
//! use edgemq::{Options, Server};
//! use std::sync::mpsc;
//! use std::time::Duration;
//!
//! let (tx, rx) = mpsc::channel();
//! let server_thread = std::thread::spawn(move || -> std::io::Result<()> {
//!     let mut server = Server::new(Options::default())?;
//!     server.add_hook(AllowAll); // development only: admits everyone
//!     server.add_listener(ListenerConfig::tcp("local", "127.0.0.1:0"))?;
//!     let _ = tx.send((server.handle(), server.local_addrs()));
//!     server.serve()
//! });
//! let (handle, addrs) = rx.recv_timeout(Duration::from_secs(10))?;
//! println!("listening on {}", addrs[0]);
//!
//! // Publish as the inline client (no ACL; `$SYS/...` allowed), retained, QoS 1.
//! handle.publish("gateway/status", b"online", true, 1)?;
//! let stats = handle.stats()?;
//! assert_eq!(stats.retained_messages, 1);
//!
//! // Stop: DISCONNECT 0x8B to 5.0 clients, then `serve` returns.
//! handle.stop()?;
//! server_thread.join().expect("the server thread does not panic")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Handle::inject`] publishes an encoded PUBLISH as the inline client,
//! [`Handle::inject_as`] handles a packet as if a connected client sent it (its ACL applies),
//! and [`Handle::disconnect`] closes a client. Hooks are described in [`hooks`]; the rule
//! ledger for authentication and ACLs is [`hooks::Ledger`].
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod budget;
pub mod config;
pub mod hooks;
pub mod ids;
pub mod listeners;
pub mod message;
pub mod options;
pub mod packets;
pub mod server;
pub mod session;
pub mod storage;
pub mod sys;
pub mod time;
pub mod topics;

pub use broker::Broker;
pub use options::Options;
pub use server::{Handle, Server};
