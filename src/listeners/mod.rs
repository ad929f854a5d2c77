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

impl ListenerConfig {
    /// A plain TCP listener.
    pub fn tcp(name: &str, bind: &str) -> Self {
        ListenerConfig { name: name.into(), kind: ListenerKind::Tcp, bind: bind.into(), allow_anonymous: None }
    }
}

pub mod stream;
pub use stream::{Acceptor, Stream};

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
        ListenerKind::Tcp => {
            let addr: std::net::SocketAddr = cfg
                .bind
                .parse()
                .map_err(|_| named(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an ip:port address")))?;
            Ok(Acceptor::Tcp(mio::net::TcpListener::bind(addr).map_err(named)?))
        }
        _ => Err(named(std::io::Error::new(std::io::ErrorKind::Unsupported, "listener type not built yet"))),
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
