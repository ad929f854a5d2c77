//! The config file: format, includes, errors (exact one-line messages), board profiles and the
//! default config.

use std::fs;
use std::path::{Path, PathBuf};

use edgemq::config::{self, Config, FsyncPolicy};
use edgemq::listeners::{ListenerConfig, ListenerKind};
use edgemq::options::{QueueFullPolicy, Transports};
use edgemq::Options;

const ORIGIN: &str = "/etc/edgemq/edgemq.conf";

fn parse(text: &str) -> Result<Config, config::ConfigError> {
    config::parse(text, Path::new(ORIGIN))
}

/// The one-line message of the error `text` produces.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected an error, parsed {c:?}"),
        Err(e) => e.to_string(),
    }
}

/// A fresh directory for one test, removed first if a previous run left it.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgemq-config-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

fn boards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("boards")
}

#[test]
fn an_unknown_top_level_key_is_an_error_that_suggests_the_right_one() {
    assert_eq!(
        error("log_levle = \"debug\"\n"),
        "edgemq: /etc/edgemq/edgemq.conf:1:1: key `log_levle`: unknown key (did you mean `log_level`?)"
    );
    assert_eq!(
        error("# comment\nverbose = true\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:1: key `verbose`: unknown key, expected one of `include`, \
         `log_level`, `limits`, `mqtt`, `sys`, `compat`, `auth`, `persistence`, `listener`"
    );
}

#[test]
fn an_unknown_key_inside_a_table_is_an_error_naming_the_dotted_key() {
    assert_eq!(
        error("[limits]\nmax_clients = 10\n  max_client = 10\n"),
        "edgemq: /etc/edgemq/edgemq.conf:3:3: key `limits.max_client`: unknown key (did you mean `max_clients`?)"
    );
    assert_eq!(
        error("[persistence]\nfsnyc = \"always\"\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:1: key `persistence.fsnyc`: unknown key (did you mean `fsync`?)"
    );
    assert_eq!(
        error("[auth]\nusers = []\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:1: key `auth.users`: unknown key, expected one of `allow_anonymous`, `ledger`"
    );
}

#[test]
fn an_unknown_key_inside_a_listener_is_an_error_naming_its_index() {
    let text = "[[listener]]\nbind = \"127.0.0.1:1883\"\n\n[[listener]]\ntype = \"ws\"\nbind = \"0.0.0.0:8080\"\npaht = \"/mqtt\"\n";
    assert_eq!(
        error(text),
        "edgemq: /etc/edgemq/edgemq.conf:7:1: key `listener[1].paht`: unknown key (did you mean `path`?)"
    );
}

#[test]
fn a_listener_key_that_its_type_does_not_use_is_an_error() {
    let text = "[[listener]]\ntype = \"tcp\"\nbind = \"0.0.0.0:1883\"\ncert = \"server.crt\"\n";
    assert_eq!(
        error(text),
        "edgemq: /etc/edgemq/edgemq.conf:4:1: key `listener[0].cert`: not used by a tcp listener (only by tls, wss)"
    );
}

#[test]
fn a_value_of_the_wrong_type_is_an_error_saying_what_was_expected_and_found() {
    assert_eq!(
        error("[limits]\nmax_clients = \"lots\"\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:15: key `limits.max_clients`: expected a positive integer, found string \"lots\""
    );
    assert_eq!(
        error("[mqtt]\nretain_available = \"yes\"\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:20: key `mqtt.retain_available`: expected true or false, found string \"yes\""
    );
    assert_eq!(
        error("[limits]\nqueue_full_policy = \"drop\"\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:21: key `limits.queue_full_policy`: expected one of \"drop_new\", \
         \"drop_oldest\", \"disconnect\", found string \"drop\""
    );
    assert_eq!(
        error("log_level = \"loud\"\n"),
        "edgemq: /etc/edgemq/edgemq.conf:1:13: key `log_level`: expected one of \"off\", \"error\", \"warn\", \
         \"info\", \"debug\", \"trace\", found string \"loud\""
    );
    assert_eq!(
        error("limits = 5\n"),
        "edgemq: /etc/edgemq/edgemq.conf:1:10: key `limits`: expected a table, found integer 5"
    );
}

#[test]
fn an_out_of_range_value_is_an_error_naming_the_key_and_the_range() {
    assert_eq!(
        error("[mqtt]\nmax_qos = 3\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:11: key `mqtt.max_qos`: expected 0, 1 or 2, found 3"
    );
    assert_eq!(
        error("[limits]\nmax_clients = 0\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:15: key `limits.max_clients`: expected a positive integer, found 0"
    );
    assert_eq!(
        error("[limits]\nmax_clients = 70000\nmax_sessions = 70000\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:15: key `limits.max_clients`: expected a number from 1 to 65000, found 70000"
    );
    assert_eq!(
        error("[mqtt]\nreceive_maximum = 70000\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:19: key `mqtt.receive_maximum`: expected an integer from 1 to 65535, found 70000"
    );
    assert_eq!(
        error("[limits]\nmax_queued_bytes = -1\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:20: key `limits.max_queued_bytes`: expected a non-negative integer, found -1"
    );
    assert_eq!(
        error("[persistence]\nfsync = 0\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:9: key `persistence.fsync`: expected \"always\", \"never\" or \
         milliseconds from 1 to 3600000, found 0"
    );
}

#[test]
fn a_cross_field_rule_on_an_unset_key_points_at_its_table_and_shows_the_default() {
    assert_eq!(
        error("[limits]\nmax_clients = 5000\n"),
        "edgemq: /etc/edgemq/edgemq.conf:1:2: key `limits.max_sessions`: expected at least max_clients, found the default 1024"
    );
}

#[test]
fn memory_limit_below_the_worst_case_is_an_error_giving_the_worst_case() {
    let text = "[limits]\nmemory_limit = 1048576\n";
    let worst = Options::default().worst_case_memory();
    assert_eq!(
        error(text),
        format!(
            "edgemq: /etc/edgemq/edgemq.conf:2:16: key `limits.memory_limit`: expected at least {worst} bytes for \
             these bounds (largest: queue_memory = 25165824; connection buffers: max_clients x 3 x buffer_size = 12582912; \
             buffer_memory = 8388608), found 1048576"
        )
    );
}

#[test]
fn a_toml_syntax_error_is_located() {
    assert_eq!(
        error("[limits]\nmax_clients = \n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:15: invalid TOML: string values must be quoted, expected literal string"
    );
    assert_eq!(
        error("[limits]\nmax_clients = 1\nmax_clients = 2\n"),
        "edgemq: /etc/edgemq/edgemq.conf:3:1: invalid TOML: duplicate key"
    );
}

#[test]
fn a_missing_file_is_an_error_naming_the_file_and_the_os_error() {
    let e = config::load(Path::new("/nonexistent/edgemq.conf")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "edgemq: /nonexistent/edgemq.conf: cannot read config file: {}",
            std::io::Error::from_raw_os_error(2)
        )
    );
    assert_eq!(e.exit_code(), 2);
    assert_eq!(e.line_col(), None);
    assert_eq!(e.key(), None);
}

#[test]
fn an_unreadable_certificate_is_an_error_naming_the_listener_key() {
    let dir = scratch("cert");
    write(&dir, "server.key", "not really a key");
    let conf = write(
        &dir,
        "edgemq.conf",
        "[[listener]]\nbind = \"127.0.0.1:1883\"\n\n[[listener]]\ntype = \"tls\"\nbind = \"0.0.0.0:8883\"\n\
         cert = \"missing.crt\"\nkey = \"server.key\"\n",
    );
    let e = config::load(&conf).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "edgemq: {}:7:8: key `listener[1].cert`: cannot read certificate file {}: {}",
            conf.display(),
            dir.join("missing.crt").display(),
            std::io::Error::from_raw_os_error(2)
        )
    );
    assert_eq!(e.key(), Some("listener[1].cert"));
}

#[test]
fn a_tls_listener_without_a_key_is_an_error_at_its_header() {
    let dir = scratch("nokey");
    write(&dir, "server.crt", "x");
    let conf = write(
        &dir,
        "edgemq.conf",
        "[[listener]]\ntype = \"tls\"\nbind = \"0.0.0.0:8883\"\ncert = \"server.crt\"\n",
    );
    assert_eq!(
        config::load(&conf).unwrap_err().to_string(),
        format!(
            "edgemq: {}:1:1: key `listener[0].key`: expected the path of the private key file (PEM), found nothing (missing)",
            conf.display()
        )
    );
}

#[test]
fn listeners_of_every_type_are_read_with_paths_relative_to_the_file() {
    let dir = scratch("listeners");
    write(&dir, "tls/server.crt", "x");
    write(&dir, "tls/server.key", "x");
    write(&dir, "tls/ca.crt", "x");
    let conf = write(
        &dir,
        "edgemq.conf",
        r#"
[[listener]]
type = "tcp"
name = "plain"
bind = "0.0.0.0:1883"
allow_anonymous = false

[[listener]]
type = "wss"
bind = "[::]:8884"
cert = "tls/server.crt"
key = "tls/server.key"
client_ca = "tls/ca.crt"
require_client_cert = true
cn_as_username = true
handshake_timeout_ms = 5000

[[listener]]
type = "ws"
bind = "127.0.0.1:8080"
path = "/ws"

[[listener]]
type = "unix"
bind = "/run/edgemq/edgemq.sock"
mode = "0600"

[[listener]]
type = "unix"
name = "octal"
bind = "/run/edgemq/other.sock"
mode = 0o640

[[listener]]
type = "http"
bind = "127.0.0.1:9100"
"#,
    );
    let c = config::load(&conf).unwrap();
    assert_eq!(c.source.as_deref(), Some(conf.as_path()));
    assert_eq!(c.listeners.len(), 6);
    assert_eq!(
        c.listeners[0],
        ListenerConfig { allow_anonymous: Some(false), ..ListenerConfig::tcp("plain", "0.0.0.0:1883") }
    );
    assert_eq!(c.listeners[1].name, "wss-1");
    match &c.listeners[1].kind {
        ListenerKind::Wss { path, tls } => {
            assert_eq!(path, "/mqtt");
            assert_eq!(tls.cert, dir.join("tls/server.crt"));
            assert_eq!(tls.key, dir.join("tls/server.key"));
            assert_eq!(tls.client_ca, Some(dir.join("tls/ca.crt")));
            assert!(tls.require_client_cert && tls.cn_as_username);
            assert_eq!(tls.handshake_timeout_ms, 5000);
        }
        other => panic!("expected wss, got {other:?}"),
    }
    assert_eq!(c.listeners[2].kind, ListenerKind::Ws { path: "/ws".into() });
    assert_eq!(c.listeners[3].kind, ListenerKind::Unix { mode: 0o600 });
    assert_eq!(c.listeners[3].bind, "/run/edgemq/edgemq.sock");
    assert_eq!(c.listeners[4].kind, ListenerKind::Unix { mode: 0o640 });
    assert_eq!(c.listeners[5].kind, ListenerKind::HttpStats);
}

#[test]
fn a_unix_mode_written_in_decimal_is_refused_rather_than_guessed() {
    assert_eq!(
        error("[[listener]]\ntype = \"unix\"\nbind = \"/run/e.sock\"\nmode = 660\n"),
        "edgemq: /etc/edgemq/edgemq.conf:4:8: key `listener[0].mode`: expected an octal mode like \"0660\" or 0o660, found decimal 660"
    );
    assert_eq!(
        error("[[listener]]\ntype = \"unix\"\nbind = \"/run/e.sock\"\nmode = \"0999\"\n"),
        "edgemq: /etc/edgemq/edgemq.conf:4:8: key `listener[0].mode`: expected an octal mode like \"0660\" or 0o660 \
         (at most 0777), found string \"0999\""
    );
}

#[test]
fn a_listener_bind_must_be_an_ip_and_port_and_unique() {
    assert_eq!(
        error("[[listener]]\nbind = \"localhost\"\n"),
        "edgemq: /etc/edgemq/edgemq.conf:2:8: key `listener[0].bind`: expected an IP address and port like \
         \"0.0.0.0:1883\" or \"[::1]:1883\", found \"localhost\""
    );
    assert_eq!(
        error("[[listener]]\nname = \"a\"\n"),
        "edgemq: /etc/edgemq/edgemq.conf:1:1: key `listener[0].bind`: expected an address like \"0.0.0.0:1883\", \
         found nothing (missing)"
    );
    assert_eq!(
        error("[[listener]]\nbind = \"0.0.0.0:1883\"\n[[listener]]\nbind = \"0.0.0.0:1883\"\n"),
        "edgemq: /etc/edgemq/edgemq.conf:4:8: key `listener[1].bind`: expected an address no other listener binds, \
         found \"0.0.0.0:1883\" (also listener[0])"
    );
}

#[test]
fn no_listener_in_the_file_means_one_tcp_listener_on_loopback() {
    let c = parse("log_level = \"debug\"\n").unwrap();
    assert_eq!(c.listeners, vec![ListenerConfig::tcp("default", "127.0.0.1:1883")]);
    assert_eq!(c.log_level, log::LevelFilter::Debug);
    assert_eq!(c.options, Options::default());
}

#[test]
fn every_table_maps_onto_its_fields() {
    let c = parse(
        r#"
[limits]
max_clients = 10
max_sessions = 20
queue_full_policy = "drop_oldest"
[mqtt]
max_qos = 1
server_keep_alive = 30
response_information = "resp/"
[sys]
interval = 0
[compat]
obscure_not_authorized = true
[auth]
allow_anonymous = false
ledger = "ledger.toml"
[persistence]
dir = "/var/lib/edgemq"
fsync = "always"
"#,
    )
    .unwrap();
    let o = &c.options;
    assert_eq!((o.max_clients, o.max_sessions, o.queue_full_policy), (10, 20, QueueFullPolicy::DropOldest));
    assert_eq!((o.max_qos, o.server_keep_alive), (1, Some(30)));
    assert_eq!(o.response_information.as_deref(), Some("resp/"));
    assert_eq!(o.sys_interval_secs, 0);
    assert!(o.compat.obscure_not_authorized);
    assert_eq!(c.auth.allow_anonymous, Some(false));
    assert_eq!(c.auth.ledger, Some(PathBuf::from("/etc/edgemq/ledger.toml")));
    assert_eq!(c.persistence.dir, Some(PathBuf::from("/var/lib/edgemq")));
    assert_eq!(c.persistence.fsync, FsyncPolicy::Always);
}

#[test]
fn an_included_profile_is_overridden_key_by_key() {
    let dir = scratch("include");
    write(
        &dir,
        "boards/small.conf",
        "log_level = \"warn\"\n[limits]\nmax_clients = 100\nmax_sessions = 200\n[mqtt]\nmax_qos = 1\n\
         [[listener]]\nbind = \"0.0.0.0:1883\"\n",
    );
    let conf = write(&dir, "edgemq.conf", "include = \"boards/small.conf\"\n[limits]\nmax_clients = 50\n");
    let c = config::load(&conf).unwrap();
    assert_eq!(c.options.max_clients, 50, "the including file wins");
    assert_eq!(c.options.max_sessions, 200, "the profile's other keys stay");
    assert_eq!(c.options.max_qos, 1);
    assert_eq!(c.log_level, log::LevelFilter::Warn);
    assert_eq!(c.listeners, vec![ListenerConfig::tcp("tcp-0", "0.0.0.0:1883")]);

    // The including file's [[listener]] array replaces the profile's whole.
    let conf = write(
        &dir,
        "other.conf",
        "include = \"boards/small.conf\"\n[[listener]]\nname = \"lo\"\nbind = \"127.0.0.1:1884\"\n",
    );
    assert_eq!(config::load(&conf).unwrap().listeners, vec![ListenerConfig::tcp("lo", "127.0.0.1:1884")]);
}

#[test]
fn an_error_inside_an_included_profile_names_the_profile_file() {
    let dir = scratch("include-error");
    let profile = write(&dir, "boards/bad.conf", "[limits]\nmax_clients = 100\nmax_sesions = 200\n");
    let conf = write(&dir, "edgemq.conf", "include = \"boards/bad.conf\"\n");
    assert_eq!(
        config::load(&conf).unwrap_err().to_string(),
        format!(
            "edgemq: {}:3:1: key `limits.max_sesions`: unknown key (did you mean `max_sessions`?)",
            profile.display()
        )
    );
    // A rule broken by the merge is placed where the offending value was set: here, the profile.
    write(&dir, "boards/ok.conf", "[limits]\nmax_clients = 100\nmax_sessions = 200\n");
    let conf = write(&dir, "edgemq.conf", "include = \"boards/ok.conf\"\n\n[limits]\nmax_clients = 300\n");
    assert_eq!(
        config::load(&conf).unwrap_err().to_string(),
        format!(
            "edgemq: {}:3:16: key `limits.max_sessions`: expected at least max_clients, found 200",
            dir.join("boards/ok.conf").display()
        )
    );
}

#[test]
fn a_missing_include_is_an_error_at_the_include_key() {
    let dir = scratch("include-missing");
    let conf = write(&dir, "edgemq.conf", "\ninclude = \"boards/nope.conf\"\n");
    assert_eq!(
        config::load(&conf).unwrap_err().to_string(),
        format!(
            "edgemq: {}:2:11: key `include`: cannot read included file {}: {}",
            conf.display(),
            dir.join("boards/nope.conf").display(),
            std::io::Error::from_raw_os_error(2)
        )
    );
}

#[test]
fn an_include_cycle_is_refused() {
    let dir = scratch("cycle");
    let a = write(&dir, "a.conf", "include = \"b.conf\"\n");
    let b = write(&dir, "b.conf", "include = \"a.conf\"\n");
    assert_eq!(
        config::load(&a).unwrap_err().to_string(),
        format!(
            "edgemq: {}:1:11: key `include`: include cycle: {} is already being read",
            b.display(),
            dir.join("a.conf").display()
        )
    );
    let own = write(&dir, "self.conf", "include = \"./self.conf\"\n");
    assert!(config::load(&own).unwrap_err().message().starts_with("include cycle: "));
}

#[test]
fn includes_nest_at_most_four_files_deep() {
    let dir = scratch("depth");
    write(&dir, "f4.conf", "[limits]\nmax_inflight = 4\n");
    for i in 1..4 {
        write(&dir, &format!("f{i}.conf"), &format!("include = \"f{}.conf\"\n", i + 1));
    }
    assert_eq!(config::load(&dir.join("f1.conf")).unwrap().options.max_inflight, 4);
    write(&dir, "f4.conf", "include = \"f5.conf\"\n");
    write(&dir, "f5.conf", "");
    assert_eq!(
        config::load(&dir.join("f1.conf")).unwrap_err().to_string(),
        format!(
            "edgemq: {}:1:11: key `include`: expected at most 4 files in an include chain, found a deeper one at {}",
            dir.join("f4.conf").display(),
            dir.join("f5.conf").display()
        )
    );
}

/// `text` with every `#key = value` line uncommented, except examples of keys unset by default.
fn uncomment_defaults(text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut uncommented = 0;
    let mut previous = "";
    for line in text.lines() {
        let key_line = line.starts_with('#')
            && line[1..].split(" = ").next().is_some_and(|k| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if key_line && !previous.ends_with("Unset by default.") {
            out.push_str(&line[1..]);
            uncommented += 1;
        } else {
            out.push_str(line);
        }
        out.push('\n');
        previous = line;
    }
    (out, uncommented)
}

#[test]
fn the_default_config_text_round_trips_to_the_defaults() {
    let text = config::default_config_text();
    let expected = Config { source: Some(PathBuf::from(ORIGIN)), ..Config::default() };
    assert_eq!(parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}")), expected);

    // With the defaults uncommented, the values themselves are parsed: still the defaults.
    let (active, n) = uncomment_defaults(&text);
    assert_eq!(parse(&active).unwrap_or_else(|e| panic!("{e}\n{active}")), expected);
    // 49 Options keys (3 unset by default) + log_level + fsync.
    assert_eq!(n, 49 - 3 + 2, "{active}");
    assert!(active.contains("\n[limits]\n# Connections held at once; beyond it a new connection is closed at once.\nmax_clients = 1024\n"));
    assert!(active.contains("\n#server_keep_alive = 60\n"));

    // Every key is shown under a comment line.
    for key in [
        "log_level",
        "max_clients",
        "max_qos",
        "interval",
        "obscure_not_authorized",
        "server_keep_alive",
        "ledger",
        "fsync",
    ] {
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| l.starts_with(&format!("#{key} = ")));
        let at = at.unwrap_or_else(|| panic!("{key} missing from\n{text}"));
        assert!(lines[at - 1].starts_with("# "), "{key} has no comment");
    }
}

#[test]
fn a_file_made_from_the_default_text_overrides_nothing_of_an_included_profile() {
    let dir = scratch("default-with-profile");
    let profile = boards_dir().join("openwrt-mips-64m.conf");
    let text = config::default_config_text().replace(
        "# include = \"boards/openwrt-mips-64m.conf\"",
        &format!("include = {:?}", profile.display().to_string()),
    );
    let conf = write(&dir, "edgemq.conf", &text);
    assert_eq!(config::load(&conf).unwrap().options, config::load(&profile).unwrap().options);
}

#[test]
fn the_shipped_default_config_parses() {
    let c = config::load(&boards_dir().join("edgemq.conf")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.listeners,
        vec![ListenerConfig {
            allow_anonymous: Some(true),
            ..ListenerConfig::tcp("local", "127.0.0.1:1883")
        }]
    );
    assert_eq!(c.auth.allow_anonymous, Some(false));
    assert_eq!(c.persistence.dir, Some(PathBuf::from("/var/lib/edgemq")));
}

/// Every board profile with the smallest RAM of its device class, in bytes.
const PROFILES: [(&str, usize); 4] = [
    ("rpi4.conf", 1024 << 20),
    ("rpi-zero.conf", 512 << 20),
    ("openwrt-mipsel-128m.conf", 128 << 20),
    ("openwrt-mips-64m.conf", 64 << 20),
];

/// `memory_limit` may be at most this fraction of the device's RAM (see boards/README.md).
const MAX_RAM_FRACTION: usize = 4;

#[test]
fn every_board_profile_parses_and_its_worst_case_fits_its_memory_limit() {
    for (file, ram) in PROFILES {
        let path = boards_dir().join(file);
        let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let o = &c.options;
        assert!(o.memory_limit > 0, "{file}: memory_limit must be set");
        assert!(
            o.worst_case_memory() <= o.memory_limit,
            "{file}: worst case {} > memory_limit {}",
            o.worst_case_memory(),
            o.memory_limit
        );
        assert!(
            o.memory_limit <= ram / MAX_RAM_FRACTION,
            "{file}: memory_limit {} is more than 1/{MAX_RAM_FRACTION} of {ram} bytes of RAM",
            o.memory_limit
        );
        // A config that includes the profile, as on a device, gets the same bounds.
        let dir = scratch(&format!("profile-{file}"));
        let conf = write(&dir, "edgemq.conf", &format!("include = {:?}\n", path.display().to_string()));
        assert_eq!(&config::load(&conf).unwrap().options, o);
    }
}

/// Prints the worst case of `o` term by term and returns its sum.
fn print_terms(name: &str, o: &Options, transports: &Transports) -> usize {
    let mut terms = o.memory_terms();
    terms.extend(o.transport_terms(transports));
    let total: usize = terms.iter().map(|(_, b)| b).sum();
    println!("{name}: worst case {total} bytes ({:.1} MiB) of memory_limit {} ({:.1} MiB)", mib(total), o.memory_limit, mib(o.memory_limit));
    for (term, bytes) in &terms {
        println!("  {bytes:>11}  {:>7.2} MiB  {term}", mib(*bytes));
    }
    total
}

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// A TLS and a WebSocket listener: what the defaults and every profile leave room for under
/// memory_limit (each `max_handshakes` connections in a handshake or before CONNECT).
const TLS_AND_WS: Transports = Transports { tls: 1, ws: 1, wss: 0, http: 0 };

#[test]
fn the_worst_case_of_the_defaults_and_every_profile_fits_memory_limit_term_by_term() {
    let defaults = Options::default();
    // With no listener, with a TLS and a WebSocket listener (the default's headroom), and
    // validate() agrees with the sum.
    let bare = print_terms("Options::default()", &defaults, &Transports::default());
    assert_eq!(bare, defaults.worst_case_memory());
    assert!(bare <= defaults.memory_limit, "defaults: {bare} > {}", defaults.memory_limit);
    assert!(print_terms("Options::default() + tls + ws", &defaults, &TLS_AND_WS) <= defaults.memory_limit);
    assert_eq!(defaults.check_transports(&TLS_AND_WS), Ok(()));
    for (file, _) in PROFILES {
        let o = config::load(&boards_dir().join(file)).unwrap_or_else(|e| panic!("{e}")).options;
        let total = print_terms(&format!("{file} + tls + ws"), &o, &TLS_AND_WS);
        assert!(total <= o.memory_limit, "{file}: worst case {total} > memory_limit {}", o.memory_limit);
        assert_eq!(o.check_transports(&TLS_AND_WS), Ok(()));
        // Every term that scales with a runtime budget is named after its option.
        for key in ["queue_memory", "max_subscription_bytes", "max_will_bytes", "max_alias_bytes", "max_retained_bytes", "buffer_memory"] {
            assert!(o.memory_terms().iter().any(|(t, _)| *t == key), "{file}: no term {key}");
        }
    }
}

#[test]
fn a_listener_whose_handshakes_do_not_fit_memory_limit_is_an_error_at_memory_limit() {
    let e = error(
        "[limits]\nmemory_limit = 100663296\nmax_handshakes = 200\n[[listener]]\ntype = \"ws\"\nbind = \"0.0.0.0:8080\"\n",
    );
    assert!(e.starts_with("edgemq: /etc/edgemq/edgemq.conf:2:16: key `limits.memory_limit`: expected at least "), "{e}");
    // 200 x (2 x 64 KiB + 32 KiB) before CONNECT
    let term = "WebSocket listeners: max_handshakes x (2 x max_connect_size + WS_FIXED_BYTES) = 32768000";
    assert!(e.contains(&format!("for these bounds and listeners (largest: {term}")), "{e}");
    // Without the listener the same limits are fine.
    assert!(parse("[limits]\nmemory_limit = 100663296\nmax_handshakes = 200\n").is_ok());
}

#[test]
fn every_conf_file_in_boards_is_a_tested_profile_or_the_default_config() {
    for entry in fs::read_dir(boards_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".conf") && name != "edgemq.conf" {
            assert!(PROFILES.iter().any(|(f, _)| *f == name), "boards/{name} is not in PROFILES");
        }
    }
}

#[test]
fn command_line_overrides_act_on_the_first_tcp_listener() {
    let mut c = parse(
        "[[listener]]\ntype = \"http\"\nbind = \"127.0.0.1:9100\"\n[[listener]]\nbind = \"0.0.0.0:1883\"\n",
    )
    .unwrap();
    c.override_port(2883);
    assert_eq!(c.listeners[1].bind, "0.0.0.0:2883");
    c.override_bind("127.0.0.1");
    assert_eq!(c.listeners[1].bind, "127.0.0.1:2883");
    c.override_bind("[::1]:1999");
    assert_eq!(c.listeners[1].bind, "[::1]:1999");
    assert_eq!(c.listeners[0].bind, "127.0.0.1:9100");

    let mut c = parse("[[listener]]\ntype = \"http\"\nbind = \"127.0.0.1:9100\"\n").unwrap();
    c.override_port(1884);
    assert_eq!(c.listeners[1], ListenerConfig::tcp("tcp", "127.0.0.1:1884"));
}

#[test]
fn a_config_error_is_one_line_and_exits_with_two() {
    let e = parse("[mqtt]\nresponse_information = \"\"\"\na\nb\"\"\"\nmax_qos = 9\n").unwrap_err();
    assert!(!e.to_string().contains('\n'));
    assert_eq!(e.exit_code(), 2);
    assert_eq!(e.key(), Some("mqtt.max_qos"));
    assert_eq!(e.line_col(), Some((5, 11)));
    assert_eq!(e.file(), Path::new(ORIGIN));
}
