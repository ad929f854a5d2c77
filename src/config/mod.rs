//! The config file: TOML text → [`Config`] (binary side; `Options` itself does no I/O).
//!
//! One file, optionally including one board profile (`include = "boards/rpi4.conf"`, relative to
//! the including file; an included file may include again, up to [`MAX_INCLUDE_DEPTH`] files,
//! and cycles are refused). The included file is read first and the including file overrides it
//! key by key: tables merge, anything else (the `[[listener]]` array included) is replaced whole.
//!
//! Tables: `log_level`, `[limits]`, `[mqtt]`, `[sys]` and `[compat]` (onto [`Options`]),
//! `[auth]`, `[persistence]` and `[[listener]]`. [`default_config_text`] lists every key.
//!
//! Strictness: an unknown key, a wrong type, an out-of-range value or a key that does not apply
//! (e.g. `cert` on a `tcp` listener) is an error, so a typo never silently changes behaviour.
//! [`Options::validate`] runs after loading and its error names the config key. Every error is
//! one line: `edgemq: FILE:LINE:COL: key `DOTTED.KEY`: expected ..., found ...`.
//!
//! Relative paths in the file (`cert`, `key`, `client_ca`, `auth.ledger`, `persistence.dir`) are
//! relative to the directory of the file that sets them.

mod doc;
mod schema;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use log::LevelFilter;

use crate::listeners::{ListenerConfig, ListenerKind, TlsConfig};
use crate::options::Options;
use doc::{get, Item, Sources, Table, Value};

/// Most files in one include chain, counting the file passed to [`load`].
pub const MAX_INCLUDE_DEPTH: usize = doc::MAX_INCLUDE_DEPTH;

/// Address of the listener used when the config has no `[[listener]]`.
pub const DEFAULT_BIND: &str = "127.0.0.1:1883";

/// Default `handshake_timeout_ms` of `tls` and `wss` listeners.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// Default WebSocket `path` of `ws` and `wss` listeners.
pub const DEFAULT_WS_PATH: &str = "/mqtt";

/// Default file `mode` of a `unix` listener's socket.
pub const DEFAULT_UNIX_MODE: u32 = 0o660;

/// Largest `persistence.fsync` interval, in milliseconds (one hour).
pub const MAX_FSYNC_INTERVAL_MS: u32 = 3_600_000;

/// Everything the standalone binary reads from its config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The broker's bounds and capabilities (`[limits]`, `[mqtt]`, `[sys]`, `[compat]`).
    pub options: Options,
    /// The `[[listener]]` tables in order; one tcp listener on [`DEFAULT_BIND`] when there are none.
    pub listeners: Vec<ListenerConfig>,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[persistence]`.
    pub persistence: PersistenceConfig,
    /// `log_level = "off" | "error" | "warn" | "info" | "debug" | "trace"`; default `"info"`.
    pub log_level: LevelFilter,
    /// The file the config was read from (`None` for [`Config::default`]).
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            options: Options::default(),
            listeners: vec![ListenerConfig::tcp("default", DEFAULT_BIND)],
            auth: AuthConfig::default(),
            persistence: PersistenceConfig::default(),
            log_level: LevelFilter::Info,
            source: None,
        }
    }
}

/// `[auth]`: who may connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Default for listeners that do not set `allow_anonymous`. `None`: anonymous clients are
    /// allowed only on loopback and Unix-socket listeners.
    pub allow_anonymous: Option<bool>,
    /// The auth/ACL ledger file (TOML); `None`: no ledger.
    pub ledger: Option<PathBuf>,
}

/// `[persistence]`: where and how sessions and retained messages are stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistenceConfig {
    /// Directory of the store; `None` keeps everything in memory only.
    pub dir: Option<PathBuf>,
    /// When written records are flushed to the medium.
    pub fsync: FsyncPolicy,
}

/// When the store calls fsync. Written `fsync = "always"`, `fsync = "never"` or
/// `fsync = 1000` (milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every loop turn that wrote records: nothing acknowledged is lost on power failure,
    /// at the cost of flash wear and latency.
    Always,
    /// At most every this many milliseconds (1 to [`MAX_FSYNC_INTERVAL_MS`]): a power failure
    /// loses at most that window. The default, 1000 ms, suits flash storage.
    EveryMs(u32),
    /// Never; the OS writes back when it likes (tmpfs, or data that may be lost).
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::EveryMs(1000)
    }
}

/// A config that cannot be used. Its `Display` is one line:
/// `edgemq: FILE:LINE:COL: key `KEY`: MESSAGE` (location and key when known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    file: PathBuf,
    at: Option<(usize, usize)>,
    key: Option<String>,
    message: String,
}

impl ConfigError {
    fn new(file: PathBuf, at: Option<(usize, usize)>, key: Option<String>, message: String) -> Self {
        // One line, always: a message never carries a line break into a log.
        let message = message.replace(['\n', '\r'], " ");
        ConfigError { file, at, key, message }
    }

    /// The file at fault (the included file when the error is in it).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// 1-based line and column in [`file`](Self::file), when the error has a place.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        self.at
    }

    /// The dotted key at fault, e.g. `limits.max_clients` or `listener[1].cert`.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What was expected and what was found (or the OS error).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit code for a config error: 2, as for a usage error.
    pub fn exit_code(&self) -> i32 {
        2
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "edgemq: {}", self.file.display())?;
        if let Some((line, col)) = self.at {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads the config file at `path` (and the profile it includes), checks it and returns it.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let mut sources = Sources::default();
    let table = doc::load(&mut sources, path)?;
    build(&sources, path, &table)
}

/// Parses config `text` as if read from `origin`, which names it in errors and is the base of
/// relative paths (an `include`, certificate paths). Certificate files are checked as in [`load`].
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    let mut sources = Sources::default();
    let table = doc::parse(&mut sources, origin, text.to_string(), &mut Vec::new())?;
    build(&sources, origin, &table)
}

/// A config listing every key, commented out with its default value (`#key = value`, as in
/// mosquitto.conf) under a one-line comment. Generated from `Options::default()`, so it cannot
/// drift. Parsing it gives `Config::default()` (plus `source`), and so does parsing it with every
/// `#key = value` line uncommented, except those whose comment ends "Unset by default.".
pub fn default_config_text() -> String {
    let d = Config::default();
    let unset = schema::UNSET;
    let mut out = String::new();
    out.push_str(&format!(
        "# edgemq {} configuration: every key, commented out, with its default value.\n\
         # Unknown keys, wrong types and out-of-range values are errors.\n\
         # Relative paths are relative to the directory of this file.\n\
         \n\
         # A board profile (see boards/README.md); the keys set in this file override its keys.\n\
         # include = \"boards/openwrt-mips-64m.conf\"\n\
         \n\
         # \"off\", \"error\", \"warn\", \"info\", \"debug\" or \"trace\".\n\
         #log_level = {}\n",
        env!("CARGO_PKG_VERSION"),
        schema::toml_string(level_name(d.log_level)),
    ));
    out.push_str(&schema::render_sections(&d.options));
    out.push_str(&format!(
        "\n[auth]\n\
         # Default for listeners without allow_anonymous: anonymous only on loopback and unix. {unset}\n\
         #allow_anonymous = false\n\
         # Auth/ACL ledger file. {unset}\n\
         #ledger = \"/etc/edgemq/ledger.toml\"\n\
         \n\
         [persistence]\n\
         # Directory of the session and retained-message store; unset = memory only. {unset}\n\
         #dir = \"/var/lib/edgemq\"\n\
         # \"always\", \"never\", or milliseconds between fsyncs.\n\
         #fsync = {}\n",
        fsync_text(d.persistence.fsync)
    ));
    out.push_str(
        "\n# Listeners. type: \"tcp\", \"tls\", \"ws\", \"wss\", \"unix\" or \"http\" (stats).\n\
         # With no [[listener]] at all, one tcp listener on 127.0.0.1:1883 is used.\n\
         # allow_anonymous (all but http): unset = the [auth] default.\n\
         [[listener]]\n\
         type = \"tcp\"\n\
         name = \"default\"\n",
    );
    out.push_str(&format!("bind = {}\n", schema::toml_string(DEFAULT_BIND)));
    out.push_str(&format!(
        "\n# [[listener]]\n\
         # type = \"tls\"                  # or \"wss\", which also takes path\n\
         # name = \"tls\"\n\
         # bind = \"0.0.0.0:8883\"\n\
         # cert = \"/etc/edgemq/server.crt\"\n\
         # key = \"/etc/edgemq/server.key\"\n\
         # client_ca = \"/etc/edgemq/ca.crt\"  # ask clients for a certificate\n\
         # require_client_cert = false   # with client_ca: refuse clients without one\n\
         # cn_as_username = false        # with client_ca: certificate CN is the username\n\
         # handshake_timeout_ms = {DEFAULT_HANDSHAKE_TIMEOUT_MS}\n\
         \n\
         # [[listener]]\n\
         # type = \"ws\"\n\
         # bind = \"0.0.0.0:8080\"\n\
         # path = \"{DEFAULT_WS_PATH}\"\n\
         \n\
         # [[listener]]\n\
         # type = \"unix\"\n\
         # bind = \"/run/edgemq/edgemq.sock\"\n\
         # mode = \"0{DEFAULT_UNIX_MODE:o}\"                 # octal: a string or 0o660\n\
         \n\
         # [[listener]]\n\
         # type = \"http\"                 # JSON $SYS snapshot and /metrics\n\
         # bind = \"127.0.0.1:9100\"\n",
    ));
    out
}

impl Config {
    /// Sets the port of the first tcp listener, adding one on `127.0.0.1:port` when there is none.
    /// A bind that is not `ip:port` is replaced by `127.0.0.1:port`.
    pub fn override_port(&mut self, port: u16) {
        let listener = self.first_tcp();
        let mut addr =
            listener.bind.parse::<SocketAddr>().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], port)));
        addr.set_port(port);
        listener.bind = addr.to_string();
    }

    /// Sets the bind address of the first tcp listener, adding one when there is none. `addr` is
    /// `ip:port`, or an IP alone to keep the port. Anything else is taken as given, and the server
    /// reports it when it binds.
    pub fn override_bind(&mut self, addr: &str) {
        let listener = self.first_tcp();
        if let Ok(ip) = addr.parse::<IpAddr>() {
            let port = listener.bind.parse::<SocketAddr>().map_or(1883, |a| a.port());
            listener.bind = SocketAddr::new(ip, port).to_string();
        } else {
            listener.bind = addr.to_string();
        }
    }

    fn first_tcp(&mut self) -> &mut ListenerConfig {
        let index = match self.listeners.iter().position(|l| l.kind == ListenerKind::Tcp) {
            Some(i) => i,
            None => {
                let mut name = "tcp".to_string();
                while self.listeners.iter().any(|l| l.name == name) {
                    name.push('_');
                }
                self.listeners.push(ListenerConfig::tcp(&name, DEFAULT_BIND));
                self.listeners.len() - 1
            }
        };
        &mut self.listeners[index]
    }
}

fn level_name(level: LevelFilter) -> &'static str {
    match level {
        LevelFilter::Off => "off",
        LevelFilter::Error => "error",
        LevelFilter::Warn => "warn",
        LevelFilter::Info => "info",
        LevelFilter::Debug => "debug",
        LevelFilter::Trace => "trace",
    }
}

const LEVELS: [(&str, LevelFilter); 6] = [
    ("off", LevelFilter::Off),
    ("error", LevelFilter::Error),
    ("warn", LevelFilter::Warn),
    ("info", LevelFilter::Info),
    ("debug", LevelFilter::Debug),
    ("trace", LevelFilter::Trace),
];

fn fsync_text(p: FsyncPolicy) -> String {
    match p {
        FsyncPolicy::Always => "\"always\"".to_string(),
        FsyncPolicy::Never => "\"never\"".to_string(),
        FsyncPolicy::EveryMs(ms) => ms.to_string(),
    }
}

/// Top-level keys (besides `include`, which is consumed while reading).
const TOP_KEYS: [&str; 8] =
    ["include", "log_level", "limits", "mqtt", "sys", "compat", "auth", "persistence"];

/// Builds errors located in the sources.
struct Ctx<'a> {
    sources: &'a Sources,
    root: &'a Path,
}

impl Ctx<'_> {
    /// An error at `item`'s value.
    fn at_value(&self, item: &Item, key: &str, message: String) -> ConfigError {
        self.at(item.src, item.span.start, key, message)
    }

    /// An error at `item`'s key.
    fn at_key(&self, item: &Item, key: &str, message: String) -> ConfigError {
        self.at(item.src, item.key_span.start, key, message)
    }

    fn at(&self, src: usize, offset: usize, key: &str, message: String) -> ConfigError {
        let at = Some(self.sources.line_col(src, offset));
        ConfigError::new(self.sources.file(src).path.clone(), at, Some(key.to_string()), message)
    }

    /// An error about a key that is not in any file: placed at the start of the root file.
    fn unplaced(&self, key: &str, message: String) -> ConfigError {
        ConfigError::new(self.root.to_path_buf(), Some((1, 1)), Some(key.to_string()), message)
    }

    /// The "unknown key" error for `name` in a table whose keys are `known`.
    fn unknown(&self, item: &Item, dotted: &str, name: &str, known: &[&str]) -> ConfigError {
        let message = match closest(name, known) {
            Some(k) => format!("unknown key (did you mean `{k}`?)"),
            None => format!("unknown key, expected {}", one_of_keys(known)),
        };
        self.at_key(item, dotted, message)
    }

    /// `item` as a table, or an error naming `key`.
    fn table<'t>(&self, item: &'t Item, key: &str) -> Result<&'t Table, ConfigError> {
        match &item.value {
            Value::Table(t) => Ok(t),
            other => Err(self.at_value(item, key, format!("expected a table, found {}", other.describe()))),
        }
    }

    fn string<'t>(&self, item: &'t Item, key: &str, what: &str) -> Result<&'t str, ConfigError> {
        match &item.value {
            Value::Str(s) => Ok(s),
            other => Err(self.at_value(item, key, format!("expected {what}, found {}", other.describe()))),
        }
    }

    fn boolean(&self, item: &Item, key: &str) -> Result<bool, ConfigError> {
        match item.value {
            Value::Bool(b) => Ok(b),
            ref other => {
                Err(self.at_value(item, key, format!("expected true or false, found {}", other.describe())))
            }
        }
    }

    /// A path, relative to the directory of the file that set it.
    fn path(&self, item: &Item, key: &str) -> Result<PathBuf, ConfigError> {
        let s = self.string(item, key, "a path")?;
        if s.is_empty() {
            return Err(self.at_value(item, key, "expected a path, found an empty string".to_string()));
        }
        let base = self.sources.file(item.src).path.parent().unwrap_or(Path::new(""));
        Ok(base.join(s))
    }
}

fn one_of_keys(known: &[&str]) -> String {
    let quoted: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    format!("one of {}", quoted.join(", "))
}

/// The known key within edit distance 2 of `name` (a likely typo), if exactly one is closest.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        let d = edit_distance(name, k);
        if d <= 2 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Walks the merged tree into a `Config`.
fn build(sources: &Sources, root: &Path, table: &Table) -> Result<Config, ConfigError> {
    let cx = Ctx { sources, root };
    let mut config = Config { source: Some(root.to_path_buf()), listeners: Vec::new(), ..Config::default() };
    let mut known: Vec<&str> = TOP_KEYS.to_vec();
    known.push("listener");
    for (name, item) in table {
        match name.as_str() {
            "log_level" => {
                let level = schema::pick(&LEVELS, &item.value);
                config.log_level = level.map_err(|m| cx.at_value(item, name, m))?;
            }
            "limits" | "mqtt" | "sys" | "compat" => {
                for (key, value) in cx.table(item, name)? {
                    let dotted = format!("{name}.{key}");
                    let Some(k) = schema::find(name, key) else {
                        return Err(cx.unknown(value, &dotted, key, &schema::names(name)));
                    };
                    schema::apply(k, value, &mut config.options)
                        .map_err(|m| cx.at_value(value, &dotted, m))?;
                }
            }
            "auth" => config.auth = auth(&cx, item)?,
            "persistence" => config.persistence = persistence(&cx, item)?,
            "listener" => config.listeners = listeners(&cx, item)?,
            _ => return Err(cx.unknown(item, name, name, &known)),
        }
    }
    if config.listeners.is_empty() {
        config.listeners.push(ListenerConfig::tcp("default", DEFAULT_BIND));
    }
    if let Err(e) = config.options.validate() {
        return Err(validate_error(&cx, table, &config.options, &e));
    }
    // The listeners' handshakes count against memory_limit too.
    let transports = crate::listeners::transports(&config.listeners);
    if let Err(e) = config.options.check_transports(&transports) {
        return Err(validate_error(&cx, table, &config.options, &e));
    }
    Ok(config)
}

/// Places an `Options::validate` error at the key it names (or its table, or the file's start).
fn validate_error(
    cx: &Ctx<'_>,
    table: &Table,
    options: &Options,
    e: &crate::options::OptionError,
) -> ConfigError {
    let Some(key) = schema::key_of_option(e.key) else {
        return cx.unplaced(e.key, format!("expected {}", e.expected));
    };
    let dotted = format!("{}.{}", key.section, key.name);
    let value = schema::render(key, options).unwrap_or_else(|| "nothing".to_string());
    let section = get(table, key.section);
    let set = section.and_then(|s| match &s.value {
        Value::Table(t) => get(t, key.name),
        _ => None,
    });
    match (set, section) {
        (Some(item), _) => cx.at_value(item, &dotted, format!("expected {}, found {value}", e.expected)),
        (None, Some(section)) => {
            cx.at_key(section, &dotted, format!("expected {}, found the default {value}", e.expected))
        }
        (None, None) => cx.unplaced(&dotted, format!("expected {}, found the default {value}", e.expected)),
    }
}

fn auth(cx: &Ctx<'_>, item: &Item) -> Result<AuthConfig, ConfigError> {
    let mut auth = AuthConfig::default();
    for (key, value) in cx.table(item, "auth")? {
        let dotted = format!("auth.{key}");
        match key.as_str() {
            "allow_anonymous" => auth.allow_anonymous = Some(cx.boolean(value, &dotted)?),
            "ledger" => auth.ledger = Some(cx.path(value, &dotted)?),
            _ => return Err(cx.unknown(value, &dotted, key, &["allow_anonymous", "ledger"])),
        }
    }
    Ok(auth)
}

fn persistence(cx: &Ctx<'_>, item: &Item) -> Result<PersistenceConfig, ConfigError> {
    let mut p = PersistenceConfig::default();
    for (key, value) in cx.table(item, "persistence")? {
        let dotted = format!("persistence.{key}");
        match key.as_str() {
            "dir" => p.dir = Some(cx.path(value, &dotted)?),
            "fsync" => {
                p.fsync = match &value.value {
                    Value::Str(s) if s == "always" => FsyncPolicy::Always,
                    Value::Str(s) if s == "never" => FsyncPolicy::Never,
                    Value::Int { value: ms, .. } if (1..=i128::from(MAX_FSYNC_INTERVAL_MS)).contains(ms) => {
                        FsyncPolicy::EveryMs(u32::try_from(*ms).unwrap_or(MAX_FSYNC_INTERVAL_MS))
                    }
                    other => {
                        let found = match other {
                            Value::Int { value, .. } => value.to_string(),
                            other => other.describe(),
                        };
                        return Err(cx.at_value(
                            value,
                            &dotted,
                            format!(
                                "expected \"always\", \"never\" or milliseconds from 1 to \
                                 {MAX_FSYNC_INTERVAL_MS}, found {found}"
                            ),
                        ));
                    }
                }
            }
            _ => return Err(cx.unknown(value, &dotted, key, &["dir", "fsync"])),
        }
    }
    Ok(p)
}

/// Listener types, and the keys each accepts besides `type`, `name` and `bind`.
const LISTENER_TYPES: [(&str, &[&str]); 6] = [
    ("tcp", &["allow_anonymous"]),
    (
        "tls",
        &[
            "allow_anonymous",
            "cert",
            "key",
            "client_ca",
            "require_client_cert",
            "cn_as_username",
            "handshake_timeout_ms",
        ],
    ),
    ("ws", &["allow_anonymous", "path"]),
    (
        "wss",
        &[
            "allow_anonymous",
            "path",
            "cert",
            "key",
            "client_ca",
            "require_client_cert",
            "cn_as_username",
            "handshake_timeout_ms",
        ],
    ),
    ("unix", &["allow_anonymous", "mode"]),
    ("http", &[]),
];

const LISTENER_KEYS: [&str; 12] = [
    "type",
    "name",
    "bind",
    "allow_anonymous",
    "path",
    "cert",
    "key",
    "client_ca",
    "require_client_cert",
    "cn_as_username",
    "handshake_timeout_ms",
    "mode",
];

fn listeners(cx: &Ctx<'_>, item: &Item) -> Result<Vec<ListenerConfig>, ConfigError> {
    let Value::Array(items) = &item.value else {
        return Err(cx.at_value(
            item,
            "listener",
            format!("expected an array of tables ([[listener]]), found {}", item.value.describe()),
        ));
    };
    let mut out: Vec<ListenerConfig> = Vec::with_capacity(items.len());
    for (i, entry) in items.iter().enumerate() {
        let l = listener(cx, entry, i)?;
        let here = format!("listener[{i}]");
        if let Some(j) = out.iter().position(|o| o.name == l.name) {
            let at = get(cx.table(entry, &here)?, "name").unwrap_or(entry);
            return Err(cx.at_value(
                at,
                &format!("{here}.name"),
                format!("expected a unique name, found {:?} (also listener[{j}])", l.name),
            ));
        }
        if let Some(j) = out.iter().position(|o| o.bind == l.bind) {
            let at = get(cx.table(entry, &here)?, "bind").unwrap_or(entry);
            return Err(cx.at_value(
                at,
                &format!("{here}.bind"),
                format!(
                    "expected an address no other listener binds, found {:?} (also listener[{j}])",
                    l.bind
                ),
            ));
        }
        out.push(l);
    }
    Ok(out)
}

fn listener(cx: &Ctx<'_>, entry: &Item, i: usize) -> Result<ListenerConfig, ConfigError> {
    let here = format!("listener[{i}]");
    let t = cx.table(entry, &here)?;
    let key = |k: &str| format!("{here}.{k}");
    let kind_name = match get(t, "type") {
        Some(v) => {
            let names = LISTENER_TYPES.iter().map(|(n, _)| *n);
            match &v.value {
                Value::Str(s) if LISTENER_TYPES.iter().any(|(n, _)| n == s) => s.as_str(),
                other => {
                    let m = format!("expected {}, found {}", schema::one_of(names), other.describe());
                    return Err(cx.at_value(v, &key("type"), m));
                }
            }
        }
        None => "tcp",
    };
    let allowed = LISTENER_TYPES.iter().find(|(n, _)| *n == kind_name).map_or(&[][..], |(_, a)| *a);
    for (k, v) in t {
        if ["type", "name", "bind"].contains(&k.as_str()) || allowed.contains(&k.as_str()) {
            continue;
        }
        if LISTENER_KEYS.contains(&k.as_str()) {
            let users: Vec<&str> =
                LISTENER_TYPES.iter().filter(|(_, a)| a.contains(&k.as_str())).map(|(n, _)| *n).collect();
            return Err(cx.at_key(
                v,
                &key(k),
                format!("not used by a {kind_name} listener (only by {})", users.join(", ")),
            ));
        }
        return Err(cx.unknown(v, &key(k), k, &LISTENER_KEYS));
    }

    let Some(bind_item) = get(t, "bind") else {
        let example = if kind_name == "unix" { "a socket path" } else { "an address like \"0.0.0.0:1883\"" };
        return Err(cx.at_value(entry, &key("bind"), format!("expected {example}, found nothing (missing)")));
    };
    let bind = if kind_name == "unix" {
        cx.path(bind_item, &key("bind"))?.to_string_lossy().into_owned()
    } else {
        let s = cx.string(bind_item, &key("bind"), "an address like \"0.0.0.0:1883\"")?;
        if s.parse::<SocketAddr>().is_err() {
            return Err(cx.at_value(
                bind_item,
                &key("bind"),
                format!(
                    "expected an IP address and port like \"0.0.0.0:1883\" or \"[::1]:1883\", found {s:?}"
                ),
            ));
        }
        s.to_string()
    };
    let name = match get(t, "name") {
        Some(v) => {
            let s = cx.string(v, &key("name"), "a string")?;
            if s.is_empty() {
                return Err(cx.at_value(
                    v,
                    &key("name"),
                    "expected a non-empty string, found \"\"".to_string(),
                ));
            }
            s.to_string()
        }
        None => format!("{kind_name}-{i}"),
    };
    let allow_anonymous =
        get(t, "allow_anonymous").map(|v| cx.boolean(v, &key("allow_anonymous"))).transpose()?;
    let ws_path = |cx: &Ctx<'_>| -> Result<String, ConfigError> {
        match get(t, "path") {
            Some(v) => {
                let s = cx.string(v, &key("path"), "an HTTP path like \"/mqtt\"")?;
                if !s.starts_with('/') {
                    return Err(cx.at_value(
                        v,
                        &key("path"),
                        format!("expected an HTTP path starting with '/', found {s:?}"),
                    ));
                }
                Ok(s.to_string())
            }
            None => Ok(DEFAULT_WS_PATH.to_string()),
        }
    };
    let kind = match kind_name {
        "tcp" => ListenerKind::Tcp,
        "tls" => ListenerKind::Tls(tls(cx, entry, t, &here)?),
        "ws" => ListenerKind::Ws { path: ws_path(cx)? },
        "wss" => ListenerKind::Wss { path: ws_path(cx)?, tls: tls(cx, entry, t, &here)? },
        "unix" => ListenerKind::Unix { mode: unix_mode(cx, get(t, "mode"), &key("mode"))? },
        _ => ListenerKind::HttpStats,
    };
    Ok(ListenerConfig { name, kind, bind, allow_anonymous })
}

fn unix_mode(cx: &Ctx<'_>, item: Option<&Item>, key: &str) -> Result<u32, ConfigError> {
    let Some(item) = item else { return Ok(DEFAULT_UNIX_MODE) };
    let expected = "an octal mode like \"0660\" or 0o660";
    let mode = match &item.value {
        Value::Str(s) => {
            let digits = s.strip_prefix("0o").unwrap_or(s);
            u32::from_str_radix(digits, 8).ok().filter(|_| !digits.is_empty() && !digits.starts_with('+'))
        }
        // A decimal 660 is almost always meant as octal: refuse it rather than guess.
        Value::Int { value, radix: 8 } => u32::try_from(*value).ok(),
        Value::Int { value, .. } => {
            return Err(cx.at_value(item, key, format!("expected {expected}, found decimal {value}")))
        }
        _ => None,
    };
    match mode {
        Some(m) if m <= 0o777 => Ok(m),
        _ => Err(cx.at_value(
            item,
            key,
            format!("expected {expected} (at most 0777), found {}", item.value.describe()),
        )),
    }
}

fn tls(cx: &Ctx<'_>, entry: &Item, t: &Table, here: &str) -> Result<TlsConfig, ConfigError> {
    let key = |k: &str| format!("{here}.{k}");
    let readable = |k: &str, what: &str| -> Result<Option<PathBuf>, ConfigError> {
        let Some(v) = get(t, k) else { return Ok(None) };
        let path = cx.path(v, &key(k))?;
        if let Err(e) = std::fs::File::open(&path) {
            return Err(cx.at_value(v, &key(k), format!("cannot read {what} {}: {e}", path.display())));
        }
        Ok(Some(path))
    };
    let required = |k: &str, what: &str| -> Result<PathBuf, ConfigError> {
        readable(k, what)?.ok_or_else(|| {
            cx.at_value(
                entry,
                &key(k),
                format!("expected the path of the {what} (PEM), found nothing (missing)"),
            )
        })
    };
    let cert = required("cert", "certificate file")?;
    let private_key = required("key", "private key file")?;
    let client_ca = readable("client_ca", "client CA file")?;
    let flag = |k: &str| -> Result<bool, ConfigError> {
        let Some(v) = get(t, k) else { return Ok(false) };
        let b = cx.boolean(v, &key(k))?;
        if b && client_ca.is_none() {
            return Err(cx.at_value(
                v,
                &key(k),
                "expected client_ca to be set for this, found no client_ca".to_string(),
            ));
        }
        Ok(b)
    };
    let require_client_cert = flag("require_client_cert")?;
    let cn_as_username = flag("cn_as_username")?;
    let handshake_timeout_ms = match get(t, "handshake_timeout_ms") {
        None => DEFAULT_HANDSHAKE_TIMEOUT_MS,
        Some(v) => match v.value {
            Value::Int { value, .. } if (1..=i128::from(u32::MAX)).contains(&value) => {
                u64::try_from(value).unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT_MS)
            }
            ref other => {
                let found = match other {
                    Value::Int { value, .. } => value.to_string(),
                    other => other.describe(),
                };
                return Err(cx.at_value(
                    v,
                    &key("handshake_timeout_ms"),
                    format!("expected a positive integer, found {found}"),
                ));
            }
        },
    };
    Ok(TlsConfig {
        cert,
        key: private_key,
        client_ca,
        require_client_cert,
        cn_as_username,
        handshake_timeout_ms,
    })
}
