//! The handle other threads use to talk to a running server: a bounded command channel plus a
//! `mio::Waker`, so the loop wakes without locks on its per-message path.

use crate::packets::{QoS, ReasonCode};
use crate::sys::Stats;
use mio::Waker;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// A hook on its way to the loop thread.
pub struct SendHook(pub Box<dyn crate::hooks::Hook + Send>);

impl core::fmt::Debug for SendHook {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SendHook({})", self.0.id())
    }
}

/// A request to the loop.
#[derive(Debug)]
pub enum Command {
    /// Publish as the inline client.
    Publish {
        /// Topic name (any, `$SYS` included).
        topic: String,
        /// Payload.
        payload: Vec<u8>,
        /// Retain flag.
        retain: bool,
        /// QoS.
        qos: QoS,
    },
    /// Inject one encoded packet: as the inline client (`client_id: None`; PUBLISH only, MQTT
    /// 5.0 encoding, no ACL, `$SYS` allowed) or on behalf of a connected client (its ACL and
    /// protocol version apply). A packet that cannot be injected is logged and dropped.
    Inject {
        /// `None`: the inline client; `Some(id)`: that connected client.
        client_id: Option<String>,
        /// Exactly one encoded packet.
        bytes: Vec<u8>,
    },
    /// Disconnect a connected client (DISCONNECT with `reason` to a 5.0 client; its will is
    /// published).
    Disconnect {
        /// The client identifier.
        client_id: String,
        /// The reason code, e.g. 0x98 administrative action.
        reason: ReasonCode,
    },
    /// Replace the hook with this id (or append it): how a ledger is reloaded on SIGHUP.
    ReplaceHook(String, SendHook),
    /// Reply with a stats snapshot.
    Stats(mpsc::Sender<Stats>),
    /// Reload the TLS certificates of every TLS listener from their files and reply.
    ReloadTls(mpsc::Sender<std::io::Result<()>>),
    /// Stop gracefully.
    Stop,
}

/// Commands the channel holds before the loop takes them. The loop takes every waiting command
/// each time it wakes, so the bound is reached only when senders outpace it (or it is not
/// running): a full channel is an error, [`HandleError::Full`], never a block or growth. The
/// bytes the waiting commands carry are bounded too ([`crate::Options::command_memory`]).
pub use crate::budget::COMMAND_CAPACITY;

impl Command {
    /// Bytes this command carries that its sender chose the size of: topic and payload, the
    /// injected packet, the client identifier.
    pub fn payload_bytes(&self) -> usize {
        match self {
            Command::Publish { topic, payload, .. } => topic.len() + payload.len(),
            Command::Inject { client_id, bytes } => client_id.as_ref().map_or(0, |c| c.len()) + bytes.len(),
            Command::Disconnect { client_id, .. } => client_id.len(),
            Command::ReplaceHook(id, _) => id.len(),
            Command::Stats(_) | Command::ReloadTls(_) | Command::Stop => 0,
        }
    }
}

/// The byte bound of the waiting commands, shared by every clone of the [`Handle`] and the
/// loop's [`Commands`].
#[derive(Debug)]
struct Bytes {
    used: AtomicUsize,
    /// Most bytes waiting at once ([`crate::Options::command_memory`]).
    limit: usize,
    /// Most bytes one command may carry (`max_packet_size`).
    one: usize,
}

/// `Send + Clone`: usable from any thread while the server runs.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: mpsc::SyncSender<Command>,
    waker: Arc<Waker>,
    bytes: Arc<Bytes>,
}

/// The loop's end of the command channel: what [`Commands::try_recv`] takes gives its bytes
/// back to the bound.
#[derive(Debug)]
pub(crate) struct Commands {
    rx: mpsc::Receiver<Command>,
    bytes: Arc<Bytes>,
}

impl Commands {
    /// The next waiting command, if any.
    pub(crate) fn try_recv(&self) -> Result<Command, mpsc::TryRecvError> {
        let cmd = self.rx.try_recv()?;
        self.bytes.used.fetch_sub(cmd.payload_bytes(), Ordering::AcqRel);
        Ok(cmd)
    }
}

/// A command channel of [`COMMAND_CAPACITY`] commands and `limit` bytes, no command over `one`
/// bytes, and the handle that sends on it.
pub(crate) fn channel(waker: Arc<Waker>, limit: usize, one: usize) -> (Handle, Commands) {
    let (tx, rx) = mpsc::sync_channel(COMMAND_CAPACITY);
    let bytes = Arc::new(Bytes { used: AtomicUsize::new(0), limit, one });
    (Handle { tx, waker, bytes: bytes.clone() }, Commands { rx, bytes })
}

/// Why a command did not reach the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleError {
    /// The server has stopped.
    Stopped,
    /// The command channel holds `capacity` ([`COMMAND_CAPACITY`]) commands the loop has not
    /// taken yet, or so many bytes that this command's would pass its byte bound
    /// ([`crate::Options::command_memory`]): the command was not sent; try again later.
    Full {
        /// The channel's bound.
        capacity: usize,
    },
    /// The command carries more than `limit` bytes (`max_packet_size`: topic and payload, or
    /// the injected packet): it was not sent, and never will be.
    TooLarge {
        /// Most bytes one command may carry.
        limit: usize,
    },
}

impl core::fmt::Display for HandleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HandleError::Stopped => f.write_str("the server has stopped"),
            HandleError::Full { capacity } => {
                write!(f, "the server's command channel is full (at most {capacity} commands, and their bytes, waiting for the loop); not sent")
            }
            HandleError::TooLarge { limit } => write!(f, "the command carries more than {limit} bytes (max_packet_size); not sent"),
        }
    }
}

impl std::error::Error for HandleError {}

impl From<HandleError> for std::io::Error {
    /// `Full` is `WouldBlock` (try again), `Stopped` is `NotConnected`, `TooLarge` is
    /// `InvalidInput`.
    fn from(e: HandleError) -> std::io::Error {
        let kind = match e {
            HandleError::Stopped => std::io::ErrorKind::NotConnected,
            HandleError::Full { .. } => std::io::ErrorKind::WouldBlock,
            HandleError::TooLarge { .. } => std::io::ErrorKind::InvalidInput,
        };
        std::io::Error::new(kind, e)
    }
}

impl Handle {
    /// Sends a command and wakes the loop; never blocks. Fails with [`HandleError::Full`] when
    /// [`COMMAND_CAPACITY`] commands are waiting already or the bytes they carry would pass
    /// [`crate::Options::command_memory`], with [`HandleError::TooLarge`] when the command alone
    /// carries more than `max_packet_size` bytes.
    pub fn send(&self, cmd: Command) -> Result<(), HandleError> {
        let n = cmd.payload_bytes();
        let b = &self.bytes;
        if n > b.one {
            return Err(HandleError::TooLarge { limit: b.one });
        }
        let full = HandleError::Full { capacity: COMMAND_CAPACITY };
        b.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| u.checked_add(n).filter(|t| *t <= b.limit)).map_err(|_| full)?;
        self.tx.try_send(cmd).map_err(|e| {
            b.used.fetch_sub(n, Ordering::AcqRel);
            match e {
                mpsc::TrySendError::Full(_) => full,
                mpsc::TrySendError::Disconnected(_) => HandleError::Stopped,
            }
        })?;
        self.waker.wake().map_err(|_| HandleError::Stopped)
    }

    /// Publishes a message as the inline client (no ACL; may write `$SYS`).
    pub fn publish(&self, topic: &str, payload: &[u8], retain: bool, qos: u8) -> Result<(), HandleError> {
        let qos = QoS::from_u8(qos.min(2)).unwrap_or(QoS::AtMostOnce);
        self.send(Command::Publish { topic: topic.into(), payload: payload.into(), retain, qos })
    }

    /// Injects one encoded packet as the inline client: PUBLISH only, encoded as MQTT 5.0. It
    /// bypasses ACL and topic limits and may write `$SYS/...`.
    pub fn inject(&self, packet: Vec<u8>) -> Result<(), HandleError> {
        self.send(Command::Inject { client_id: None, bytes: packet })
    }

    /// Injects one encoded packet (in the client's protocol version) on behalf of the
    /// connected client `client_id`, handled as if read from its socket: its ACL applies and
    /// answers go to it. Dropped (and logged) when no such client is connected.
    pub fn inject_as(&self, client_id: &str, packet: Vec<u8>) -> Result<(), HandleError> {
        self.send(Command::Inject { client_id: Some(client_id.into()), bytes: packet })
    }

    /// Disconnects a connected client with `reason` (sent in DISCONNECT to 5.0 clients).
    pub fn disconnect(&self, client_id: &str, reason: ReasonCode) -> Result<(), HandleError> {
        self.send(Command::Disconnect { client_id: client_id.into(), reason })
    }

    /// Replaces the hook whose id is `id` with `hook` (appending it when there is none), e.g. a
    /// reloaded [`crate::hooks::Ledger`]. Takes effect for the next packet the loop handles.
    pub fn replace_hook(&self, id: &str, hook: impl crate::hooks::Hook + Send + 'static) -> Result<(), HandleError> {
        self.send(Command::ReplaceHook(id.to_string(), SendHook(Box::new(hook))))
    }

    /// A snapshot of the counters (waits for the loop to answer).
    pub fn stats(&self) -> Result<Stats, HandleError> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Stats(tx))?;
        rx.recv().map_err(|_| HandleError::Stopped)
    }

    /// Reloads TLS certificates and keys from their files (what SIGHUP does): new connections
    /// use them, connected clients keep theirs. Waits for the loop to answer. A full command
    /// channel is `WouldBlock`, a stopped server `NotConnected`.
    pub fn reload_tls(&self) -> std::io::Result<()> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::ReloadTls(tx))?;
        rx.recv().map_err(|_| HandleError::Stopped)?
    }

    /// Stops the server: DISCONNECT 0x8B to 5.0 clients, then `serve` returns.
    pub fn stop(&self) -> Result<(), HandleError> {
        self.send(Command::Stop)
    }
}
