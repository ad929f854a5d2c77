//! A connection slot: protocol state of one network connection, its buffers and negotiated
//! limits. The session (which outlives it) is referenced by key.

use crate::hooks::ClientInfo;
use crate::packets::Version;
use crate::time::Instant;
use std::collections::HashMap;
use std::rc::Rc;

pub use crate::ids::ClientId;

/// Facts about the peer, given by the listener that accepted it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// Remote address (`ip:port`) or socket path.
    pub remote: String,
    /// Listener name (shared by every connection of the listener: no allocation per client).
    pub listener: Rc<str>,
    /// Anonymous clients (no user name) admitted on this listener without an auth hook.
    pub allow_anonymous: bool,
    /// User name taken from a verified TLS client certificate, if configured.
    pub cert_username: Option<String>,
}

/// A remote address, kept inline when it is short (every IPv4 `ip:port` is), so most
/// connections need no allocation for it; longer ones (IPv6, socket paths) on the heap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Remote {
    Inline(heapless::String<22, u8>),
    Heap(Box<str>),
}

impl Remote {
    pub(crate) fn new(s: String) -> Remote {
        match heapless::String::try_from(s.as_str()) {
            Ok(inline) => Remote::Inline(inline),
            Err(_) => Remote::Heap(s.into_boxed_str()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Remote::Inline(s) => s,
            Remote::Heap(s) => s,
        }
    }
}

/// [`Conn`]'s marker for "no session" (session keys are slab indices, far below it).
const NO_SESSION: u32 = u32::MAX;

/// Where a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Accepted; waiting for CONNECT.
    AwaitConnect,
    /// Enhanced authentication in progress (AUTH exchange before CONNACK).
    Authenticating,
    /// CONNACK sent.
    Connected,
    /// Being closed: no more input is processed; output is flushed, then the socket closed.
    Closing,
}

/// One connection slot. Every connected client holds one, so it is kept small: state that
/// only some connections use (topic aliases, enhanced authentication, a certificate user name)
/// lives in [`ConnExtra`], boxed on first use.
#[derive(Debug)]
pub struct Conn {
    pub(crate) id: ClientId,
    pub(crate) state: ConnState,
    pub(crate) version: Version,
    /// Whether reason strings and user properties may be sent (Request Problem Information).
    pub(crate) problem_info: bool,
    /// Queued for a flush by the server.
    pub(crate) flagged: bool,
    /// Anonymous clients admitted on the listener without an auth hook.
    pub(crate) allow_anonymous: bool,
    /// The session key, [`NO_SESSION`] before CONNECT and after detaching (a plain `u32`: an
    /// `Option<u32>` would cost this struct 8 bytes).
    session: u32,
    /// Client identifier from CONNECT (or assigned); empty before CONNECT. Shares the session's
    /// allocation once connected; kept after the session detaches, for hooks.
    pub(crate) client_id: Rc<str>,
    pub(crate) username: Option<Box<str>>,
    /// Remote address or socket path.
    pub(crate) remote: Remote,
    /// Listener name.
    pub(crate) listener: Rc<str>,
    /// Partial inbound frame (borrowed from the pool only while non-empty).
    pub(crate) rx: Vec<u8>,
    /// Encoded output not yet written to the socket: pooled chunks, written with one vectored
    /// write. Only the last chunk is appended to; a new one starts once it holds `buffer_size`.
    pub(crate) tx: Vec<Vec<u8>>,
    /// Keep alive in milliseconds (0: none; at most 65,535,000).
    pub(crate) keep_alive_ms: u32,
    /// Largest packet the client accepts [MQTT-5.0:3.1.2-24].
    pub(crate) max_packet_out: u32,
    /// When ([`Instant::low32`]) input was last seen: within 24 days of now whenever it is read
    /// (keep alive is at most 65,535 s).
    pub(crate) last_rx: u32,
    /// The deadline of this connection's one pending timer entry (connect timeout, then keep
    /// alive); entries for other times are stale and ignored when they fire.
    pub(crate) timer_at: Instant,
    /// When ([`Instant::low32`]) the partial frame in `rx` began; meaningful while `rx` is not
    /// empty (`frame_timeout_ms`).
    pub(crate) rx_since: u32,
    /// When ([`Instant::low32`]) output last made progress: when `tx` went from empty to not, or bytes of it were
    /// written; meaningful while `tx` is not empty (`write_stall_timeout_ms`).
    pub(crate) tx_since: u32,
    /// The client's receive maximum: QoS 1/2 PUBLISH in flight towards it.
    pub(crate) receive_max_out: u16,
    /// Topic aliases the client accepts from us.
    pub(crate) alias_max_out: u16,
    /// The CONNECT asked for a session expiry of 0 (DISCONNECT may not raise it).
    pub(crate) connect_expiry_zero: bool,
    /// Buffer bytes (rx + tx capacity) counted in the broker's buffer total (a connection's
    /// buffers stay far below 4 GiB: one frame of at most max_packet_size plus write_batch).
    pub(crate) accounted: u32,
    pub(crate) extra: Option<Box<ConnExtra>>,
}

/// The parts of a connection that most connections never use.
#[derive(Debug, Default)]
pub(crate) struct ConnExtra {
    /// User name taken from a verified TLS client certificate.
    pub(crate) cert_username: Option<Box<str>>,
    /// Inbound topic aliases (index = alias - 1).
    pub(crate) aliases_in: Vec<Option<Box<str>>>,
    /// Outbound topic aliases we assigned.
    pub(crate) aliases_out: HashMap<Box<str>, u16>,
    /// Bytes of both alias tables counted in the broker's `max_alias_bytes` budget, given back
    /// when the connection is released.
    pub(crate) alias_bytes: usize,
    /// Authentication method of an enhanced authentication in progress or done.
    pub(crate) auth_method: Option<Box<str>>,
    /// The CONNECT being authenticated (raw bytes, decoded again when the exchange succeeds).
    pub(crate) pending_connect: Option<Box<[u8]>>,
    /// A re-authentication is in progress.
    pub(crate) reauth: bool,
}

impl Conn {
    /// Who this connection is, for hooks.
    pub(crate) fn info(&self) -> ClientInfo<'_> {
        ClientInfo {
            client_id: &self.client_id,
            username: self.username.as_deref(),
            remote: self.remote.as_str(),
            listener: &self.listener,
            version: self.version,
            inline: false,
        }
    }

    pub(crate) fn new(id: ClientId, peer: PeerInfo, now: Instant, connect_deadline: Instant) -> Conn {
        let extra = peer.cert_username.map(|u| Box::new(ConnExtra { cert_username: Some(u.into()), ..ConnExtra::default() }));
        Conn {
            id,
            state: ConnState::AwaitConnect,
            version: Version::V3_1_1,
            problem_info: true,
            flagged: false,
            allow_anonymous: peer.allow_anonymous,
            session: NO_SESSION,
            client_id: Rc::from(""),
            username: None,
            remote: Remote::new(peer.remote),
            listener: peer.listener,
            rx: Vec::new(),
            tx: Vec::new(),
            keep_alive_ms: 0,
            max_packet_out: u32::MAX,
            last_rx: now.low32(),
            timer_at: connect_deadline,
            rx_since: 0,
            tx_since: 0,
            receive_max_out: u16::MAX,
            alias_max_out: 0,
            connect_expiry_zero: true,
            accounted: 0,
            extra,
        }
    }

    /// Bytes of buffer capacity held (receive buffer and output chunks).
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.rx.capacity() + self.tx.iter().map(Vec::capacity).sum::<usize>()
    }

    /// True when `write_chunks` chunks of output are queued and the last is full, or a chunk
    /// beyond them was started (chunks are cut early when a packet would not fit).
    pub(crate) fn tx_full(&self, o: &crate::options::Options) -> bool {
        let chunks = o.write_chunks();
        self.tx.len() > chunks || (self.tx.len() == chunks && self.tx.last().is_some_and(|b| b.len() >= o.buffer_size))
    }

    /// True while this connection's input is not read because of its output: more than the
    /// delivery bound (`write_chunks`) plus one chunk of acknowledgements waits, or more than one
    /// chunk waits while the shared buffer budget is used up. Its client must read first
    /// (or the write-stall timeout closes it): acknowledgements and PINGRESP count too.
    pub(crate) fn output_blocks_input(&self, o: &crate::options::Options, budget_exhausted: bool) -> bool {
        self.tx.len() > o.write_chunks() + 1 || (budget_exhausted && self.tx.len() > 1)
    }

    /// Largest frame this connection may send now: a CONNECT (or AUTH before CONNACK) is held
    /// to `max_connect_size`, later packets to `max_packet_size`.
    pub(crate) fn frame_limit(&self, o: &crate::options::Options) -> u32 {
        match self.state {
            ConnState::AwaitConnect | ConnState::Authenticating => o.max_connect_size.min(o.max_packet_size),
            _ => o.max_packet_size,
        }
    }

    /// QoS 1/2 messages that may be in flight to this client: ours and its receive maximum.
    pub(crate) fn window(&self, o: &crate::options::Options) -> usize {
        (o.max_inflight as usize).min(self.receive_max_out as usize)
    }

    /// The session this connection is attached to.
    pub(crate) fn session(&self) -> Option<u32> {
        (self.session != NO_SESSION).then_some(self.session)
    }

    /// Attaches (`Some`) or detaches (`None`) the session; returns the previous one.
    pub(crate) fn set_session(&mut self, key: Option<u32>) -> Option<u32> {
        let old = self.session();
        self.session = key.unwrap_or(NO_SESSION);
        old
    }

    /// The rarely used state, allocated on first use.
    pub(crate) fn extra_mut(&mut self) -> &mut ConnExtra {
        self.extra.get_or_insert_with(Default::default)
    }

    /// The user name from the client certificate, if the listener takes it.
    pub(crate) fn cert_username(&self) -> Option<&str> {
        self.extra.as_ref()?.cert_username.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::Remote;

    #[test]
    fn short_remote_addresses_stay_inline_and_long_ones_go_to_the_heap() {
        let v4 = Remote::new("255.255.255.255:65535".to_string());
        assert!(matches!(v4, Remote::Inline(_)));
        assert_eq!(v4.as_str(), "255.255.255.255:65535");
        let edge = Remote::new("x".repeat(22));
        assert!(matches!(edge, Remote::Inline(_)));
        let v6 = Remote::new("[2001:db8::1:2:3:4]:65535".to_string());
        assert!(matches!(v6, Remote::Heap(_)));
        assert_eq!(v6.as_str(), "[2001:db8::1:2:3:4]:65535");
        assert_eq!(Remote::new(String::new()).as_str(), "");
        assert!(core::mem::size_of::<Remote>() <= 24);
    }
}
#[cfg(test)]
#[test]
fn zz_size() { eprintln!("CONN SIZE {}", core::mem::size_of::<Conn>()); eprintln!("SLAB ENTRY {}", core::mem::size_of::<slab::Slab<Conn>>()); }
