//! Listeners: thin adapters that accept connections and hand the loop a transport.
//!
//! This room knows nothing of MQTT. It is, with `server/`, the only user of `mio` and `std::net`.
//! A listener is described by plain data ([`ListenerConfig`]), which the config file and embedding
//! programs both produce.

use std::path::PathBuf;

/// TLS settings of a `tls` or `wss` listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file with the server certificate chain.
    pub cert: PathBuf,
    /// PEM file with the server private key.
    pub key: PathBuf,
    /// PEM file with the CA that client certificates must chain to; `None` asks for no client
    /// certificate.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse clients that present no certificate.
    pub require_client_cert: bool,
    /// With `client_ca`: use the client certificate's common name as the MQTT username.
    pub cn_as_username: bool,
    /// Milliseconds a TLS handshake may take before the connection is closed.
    pub handshake_timeout_ms: u64,
}

/// What a listener speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    /// MQTT over plain TCP.
    Tcp,
    /// MQTT over TLS over TCP.
    Tls(TlsConfig),
    /// MQTT over WebSocket on `path` (subprotocol `mqtt`).
    Ws {
        /// The HTTP path of the upgrade request, e.g. `/mqtt`.
        path: String,
    },
    /// MQTT over WebSocket over TLS.
    Wss {
        /// The HTTP path of the upgrade request.
        path: String,
        /// TLS settings.
        tls: TlsConfig,
    },
    /// MQTT over a Unix domain socket; `bind` is the socket path.
    Unix {
        /// File mode of the socket, e.g. 0o660.
        mode: u32,
    },
    /// The read-only HTTP stats responder (JSON and Prometheus text).
    HttpStats,
}

/// One listener: a name, what it speaks, where it binds, and who may connect anonymously.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Unique name, shown in logs and passed to hooks.
    pub name: String,
    /// What the listener speaks.
    pub kind: ListenerKind,
    /// `host:port` for network listeners, a path for Unix sockets.
    pub bind: String,
    /// Anonymous clients (no username) allowed on this listener. `None` = the default: allowed
    /// only when the bind address is loopback (or a Unix socket).
    pub allow_anonymous: Option<bool>,
}

impl TlsConfig {
    /// Server certificate chain and key from PEM files; no client certificates; a 10 s
    /// handshake timeout.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsConfig {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            require_client_cert: false,
            cn_as_username: false,
            handshake_timeout_ms: 10_000,
        }
    }

    /// Verifies client certificates against the CA in this PEM file; `required` refuses
    /// clients without one.
    pub fn with_client_ca(mut self, ca: impl Into<PathBuf>, required: bool) -> Self {
        self.client_ca = Some(ca.into());
        self.require_client_cert = required;
        self
    }

    /// Uses the verified client certificate's common name as the MQTT username.
    pub fn with_cn_as_username(mut self, on: bool) -> Self {
        self.cn_as_username = on;
        self
    }

    /// Sets the handshake timeout in milliseconds.
    pub fn with_handshake_timeout_ms(mut self, ms: u64) -> Self {
        self.handshake_timeout_ms = ms;
        self
    }
}

/// The WebSocket path used when none is given.
pub const DEFAULT_WS_PATH: &str = "/mqtt";

impl ListenerConfig {
    fn with(name: &str, kind: ListenerKind, bind: &str) -> Self {
        ListenerConfig { name: name.into(), kind, bind: bind.into(), allow_anonymous: None }
    }

    /// A plain TCP listener.
    pub fn tcp(name: &str, bind: &str) -> Self {
        Self::with(name, ListenerKind::Tcp, bind)
    }

    /// MQTT over TLS.
    pub fn tls(name: &str, bind: &str, tls: TlsConfig) -> Self {
        Self::with(name, ListenerKind::Tls(tls), bind)
    }

    /// MQTT over WebSocket on `path` (e.g. [`DEFAULT_WS_PATH`]).
    pub fn ws(name: &str, bind: &str, path: &str) -> Self {
        Self::with(name, ListenerKind::Ws { path: path.into() }, bind)
    }

    /// MQTT over WebSocket over TLS on `path`.
    pub fn wss(name: &str, bind: &str, path: &str, tls: TlsConfig) -> Self {
        Self::with(name, ListenerKind::Wss { path: path.into(), tls }, bind)
    }

    /// MQTT over a Unix domain socket at `path` with file mode `mode` (e.g. 0o660).
    pub fn unix(name: &str, path: &str, mode: u32) -> Self {
        Self::with(name, ListenerKind::Unix { mode }, path)
    }

    /// The read-only HTTP stats responder (`/`, `/stats` JSON; `/metrics` Prometheus text).
    pub fn http(name: &str, bind: &str) -> Self {
        Self::with(name, ListenerKind::HttpStats, bind)
    }

    /// The TLS settings, for `tls` and `wss` listeners.
    pub fn tls_config(&self) -> Option<&TlsConfig> {
        match &self.kind {
            ListenerKind::Tls(t) | ListenerKind::Wss { tls: t, .. } => Some(t),
            _ => None,
        }
    }

    /// Milliseconds a connection may spend in its transport handshake (TLS, WebSocket upgrade,
    /// HTTP request) before it is closed: the TLS setting where there is one, else `default_ms`.
    pub fn handshake_timeout_ms(&self, default_ms: u64) -> u64 {
        self.tls_config().map_or(default_ms, |t| t.handshake_timeout_ms)
    }
}

pub mod http;
pub mod pending;
mod ticket;
pub mod stream;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "ws")]
pub mod ws;
pub use pending::{Pending, Setup, Start, Step, Ticket, Tickets};
pub use stream::{Acceptor, Stream};

fn unsupported(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Unsupported, format!("built without the `{what}` feature"))
}

/// Listen backlog of TCP listeners (the kernel caps it at net.core.somaxconn).
const LISTEN_BACKLOG: i32 = 1024;

/// Binds the listener's socket. Errors name the listener and the address.
pub fn bind(cfg: &ListenerConfig) -> std::io::Result<Acceptor> {
    let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("listener `{}` on {}: {e}", cfg.name, cfg.bind));
    match &cfg.kind {
        ListenerKind::Unix { mode } => {
            let _ = std::fs::remove_file(&cfg.bind);
            let l = mio::net::UnixListener::bind(&cfg.bind).map_err(named)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cfg.bind, std::fs::Permissions::from_mode(*mode)).map_err(named)?;
            Ok(Acceptor::Unix(l))
        }
        _ => {
            let addr: std::net::SocketAddr = cfg
                .bind
                .parse()
                .map_err(|_| named(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an ip:port address")))?;
            let l = mio::net::TcpListener::bind(addr).map_err(named)?;
            // mio listens with a backlog of 128; a burst of handshakes beyond it overflows the
            // accept queue and those clients retry after 1 s (connections v5 2000 took 1.1 s
            // instead of 0.15 s in half the runs). Listening again raises it (capped by somaxconn).
            let _ = socket2::SockRef::from(&l).listen(LISTEN_BACKLOG);
            Ok(Acceptor::Tcp(l))
        }
    }
}

/// What the transports take from the broker's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `max_packet_size`: bounds WebSocket messages once CONNECT has arrived.
    pub max_packet: usize,
    /// `max_connect_size`: bounds WebSocket messages before.
    pub max_connect: usize,
    /// `max_handshakes`: connections per listener from accept until CONNECT (TLS, WebSocket)
    /// or the end of their request (HTTP stats).
    pub max_handshakes: usize,
}

impl Limits {
    /// The limits of these options.
    pub fn of(o: &crate::options::Options) -> Limits {
        let max_packet = o.max_packet_size as usize;
        Limits { max_packet, max_connect: (o.max_connect_size as usize).min(max_packet), max_handshakes: o.max_handshakes }
    }
}

/// The listeners by transport, for [`crate::Options::transport_terms`].
pub fn transports<'a>(cfgs: impl IntoIterator<Item = &'a ListenerConfig>) -> crate::options::Transports {
    let mut t = crate::options::Transports::default();
    for c in cfgs {
        match c.kind {
            ListenerKind::Tcp | ListenerKind::Unix { .. } => {}
            ListenerKind::Tls(_) => t.tls += 1,
            ListenerKind::Ws { .. } => t.ws += 1,
            ListenerKind::Wss { .. } => t.wss += 1,
            ListenerKind::HttpStats => t.http += 1,
        }
    }
    t
}

/// What runs on the listener's sockets, with its TLS configuration loaded from the files and
/// its own count of connections before CONNECT. Errors name the listener and the file.
pub fn setup(cfg: &ListenerConfig, limits: &Limits) -> std::io::Result<Setup> {
    let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("listener `{}`: {e}", cfg.name));
    #[cfg_attr(not(any(feature = "tls", feature = "ws", feature = "http-stats")), allow(unused_variables))]
    let tickets = || Tickets::new(limits.max_handshakes);
    match &cfg.kind {
        ListenerKind::Tcp | ListenerKind::Unix { .. } => Ok(Setup::Plain),
        #[cfg(feature = "tls")]
        ListenerKind::Tls(t) => Ok(Setup::Tls(tls::server_config(t).map_err(named)?, tickets())),
        #[cfg(feature = "ws")]
        ListenerKind::Ws { path } => {
            Ok(Setup::Ws { path: ws_path(path), config: ws::configs(limits.max_packet, limits.max_connect), tickets: tickets() })
        }
        #[cfg(all(feature = "ws", feature = "tls"))]
        ListenerKind::Wss { path, tls } => Ok(Setup::Wss {
            path: ws_path(path),
            config: ws::configs(limits.max_packet, limits.max_connect),
            tls: tls::server_config(tls).map_err(named)?,
            tickets: tickets(),
        }),
        #[cfg(feature = "http-stats")]
        ListenerKind::HttpStats => Ok(Setup::Http(tickets())),
        #[allow(unreachable_patterns)]
        ListenerKind::Tls(_) => Err(named(unsupported("tls"))),
        #[allow(unreachable_patterns)]
        ListenerKind::Ws { .. } | ListenerKind::Wss { .. } => Err(named(unsupported("ws"))),
        #[allow(unreachable_patterns)]
        ListenerKind::HttpStats => Err(named(unsupported("http-stats"))),
    }
}

#[cfg(feature = "ws")]
fn ws_path(path: &str) -> String {
    if path.is_empty() {
        DEFAULT_WS_PATH.to_string()
    } else {
        path.to_string()
    }
}

/// Whether anonymous clients are admitted on this listener: the explicit setting, else only on
/// loopback addresses and Unix sockets.
pub fn allows_anonymous(cfg: &ListenerConfig) -> bool {
    cfg.allow_anonymous.unwrap_or_else(|| match cfg.kind {
        ListenerKind::Unix { .. } => true,
        _ => cfg.bind.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback()),
    })
}

/// Reloads the TLS configuration of a `tls` or `wss` listener from its files into `setup`
/// (new connections use it; established ones keep theirs). A no-op for other listeners. On
/// error the old configuration stays.
pub fn reload_tls(cfg: &ListenerConfig, setup: &mut Setup) -> std::io::Result<()> {
    let Some(t) = cfg.tls_config() else { return Ok(()) };
    reload_tls_files(cfg, t, setup)
}

#[cfg(feature = "tls")]
fn reload_tls_files(cfg: &ListenerConfig, t: &TlsConfig, setup: &mut Setup) -> std::io::Result<()> {
    let config = tls::server_config(t)
        .map_err(|e| std::io::Error::new(e.kind(), format!("listener `{}`: {e}", cfg.name)))?;
    setup.set_tls(config);
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn reload_tls_files(_: &ListenerConfig, _: &TlsConfig, _: &mut Setup) -> std::io::Result<()> {
    Ok(())
}
