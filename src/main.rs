//! The standalone `edgemq` binary: flags, config file, logging, signals, then `Server::serve()`.

use edgemq::config::{self, Config};
use edgemq::hooks::Ledger;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use edgemq::Server;
use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
edgemq: a small MQTT 5.0 / 3.1.1 / 3.1 broker for edge gateways

USAGE:
    edgemq [OPTIONS]
    edgemq passwd [-i ITERATIONS] [PASSWORD]   print a PBKDF2 hash for a ledger file

OPTIONS:
    -c, --config FILE         read the configuration from FILE (TOML; see --print-default-config)
        --check-config        check the configuration (with -c) and exit: 0 if valid, 2 if not
        --print-default-config
                              print a commented configuration with every key and its default
        --check-unwind        check that this build catches a panicking hook (a test server on
                              127.0.0.1, port chosen by the system): prints `unwind: ok` and exits
                              0; a build that aborts on panic dies here with SIGABRT
    -p, --port PORT           listen on PORT (overrides the first tcp listener; default 1883)
        --bind ADDR           listen on ADDR (an IP, or IP:PORT; default 127.0.0.1)
    -v, --verbose             log debug messages (twice: trace)
    -h, --help                print this help
    -V, --version             print the version

With no options edgemq listens on 127.0.0.1:1883 and admits anonymous clients there: anonymous
clients are admitted on loopback listeners and Unix sockets only, unless the configuration says
otherwise (`allow_anonymous`). Exit status 2 means a bad command line or configuration.

SIGINT/SIGTERM stop gracefully (DISCONNECT 0x8B to MQTT 5 clients). SIGHUP reloads the ledger
file, TLS certificates and the log level from the configuration file; other changes need a
restart and are logged as such.
";

#[derive(Default)]
struct Args {
    config: Option<PathBuf>,
    check: bool,
    print_default: bool,
    check_unwind: bool,
    port: Option<u16>,
    bind: Option<String>,
    verbose: u8,
}

enum Parsed {
    Run(Args),
    Exit(ExitCode),
}

fn parse_args() -> Result<Parsed, String> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(Parsed::Exit(ExitCode::SUCCESS));
            }
            "-V" | "--version" => {
                println!("edgemq {}", env!("CARGO_PKG_VERSION"));
                return Ok(Parsed::Exit(ExitCode::SUCCESS));
            }
            "-c" | "--config" => a.config = Some(it.next().ok_or("-c needs a file name")?.into()),
            "--check-config" => a.check = true,
            "--print-default-config" => a.print_default = true,
            "--check-unwind" => a.check_unwind = true,
            "-p" | "--port" => {
                let v = it.next().ok_or("-p needs a port number")?;
                a.port = Some(v.parse().map_err(|_| format!("-p: expected a port number 0-65535, found `{v}`"))?);
            }
            "--bind" => a.bind = Some(it.next().ok_or("--bind needs an address")?),
            "-v" | "--verbose" => a.verbose += 1,
            "-vv" => a.verbose += 2,
            other => return Err(format!("unknown option `{other}` (see --help)")),
        }
    }
    Ok(Parsed::Run(a))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("passwd") {
        let code = edgemq::hooks::ledger::passwd_main(&argv[2..]);
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let args = match parse_args() {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Exit(code)) => return code,
        Err(e) => {
            eprintln!("edgemq: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_unwind {
        return check_unwind::run();
    }
    if args.print_default {
        print!("{}", config::default_config_text());
        return ExitCode::SUCCESS;
    }
    let mut cfg = match &args.config {
        Some(path) => match config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(e.exit_code() as u8);
            }
        },
        None => Config::default(),
    };
    if let Some(bind) = &args.bind {
        cfg.override_bind(bind);
    }
    if let Some(port) = args.port {
        cfg.override_port(port);
    }
    if args.check {
        println!("{}: configuration is valid", args.config.as_deref().map_or("defaults".into(), |p| p.display().to_string()));
        return ExitCode::SUCCESS;
    }
    let level = match args.verbose {
        0 => cfg.log_level,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let _ = simple_logger::SimpleLogger::new().with_level(level).init();
    // Checked before the server starts: a broken ledger is a configuration error (exit 2).
    let ledger = match &cfg.auth.ledger {
        Some(path) => match Ledger::from_file(path) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("edgemq: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    match run(cfg, ledger, args.verbose) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("edgemq: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cfg: Config, ledger: Option<Ledger>, verbose: u8) -> std::io::Result<()> {
    let mut server = Server::new(cfg.options.clone())?;
    if let Some(ledger) = ledger {
        server.add_hook(ledger);
    }
    if cfg.persistence.dir.is_some() {
        log::warn!("persistence is not built yet: sessions and retained messages are kept in memory only");
    }
    for mut l in cfg.listeners.clone() {
        // A listener's own setting wins; else the [auth] default; else loopback-only.
        if l.allow_anonymous.is_none() {
            l.allow_anonymous = cfg.auth.allow_anonymous;
        }
        server.add_listener(l)?;
    }
    let handle = server.handle();
    let source = cfg.source.clone();
    let first = cfg.clone();
    let signals = Signals::new([SIGINT, SIGTERM, SIGHUP]);
    match signals {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    if sig == SIGHUP {
                        reload(&handle, source.as_deref(), &first, verbose);
                        continue;
                    }
                    log::info!("signal {sig}: stopping");
                    let _ = handle.stop();
                    return;
                }
            });
        }
        Err(e) => log::warn!("signals not available: {e}"),
    }
    log::info!("edgemq {} started", env!("CARGO_PKG_VERSION"));
    server.serve()?;
    log::info!("stopped");
    Ok(())
}

/// SIGHUP: re-reads the configuration file and applies what can change safely while clients
/// stay connected (ledger, TLS certificates, log level); logs what needs a restart.
fn reload(handle: &edgemq::Handle, source: Option<&std::path::Path>, first: &Config, verbose: u8) {
    let Some(path) = source else {
        log::info!("SIGHUP: no configuration file; reloading TLS certificates only");
        if let Err(e) = handle.reload_tls() {
            log::error!("SIGHUP: TLS reload failed, keeping the current certificates: {e}");
        }
        return;
    };
    let cfg = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            log::error!("SIGHUP: {e}; nothing reloaded");
            return;
        }
    };
    if verbose == 0 {
        log::set_max_level(cfg.log_level);
    }
    match &cfg.auth.ledger {
        Some(ledger) => match Ledger::from_file(ledger) {
            Ok(l) => {
                let _ = handle.replace_hook("ledger", l);
                log::info!("SIGHUP: ledger {} reloaded", ledger.display());
            }
            Err(e) => log::error!("SIGHUP: {e}; keeping the current ledger"),
        },
        None if first.auth.ledger.is_some() => log::warn!("SIGHUP: removing the ledger needs a restart"),
        None => {}
    }
    if let Err(e) = handle.reload_tls() {
        log::error!("SIGHUP: TLS reload failed, keeping the current certificates: {e}");
    }
    if cfg.options != first.options || cfg.listeners != first.listeners || cfg.persistence != first.persistence {
        log::warn!("SIGHUP: changes to limits, MQTT options, listeners or persistence need a restart");
    }
}

/// `edgemq --check-unwind`: proves that a panic in a hook is caught in this very binary (its std
/// and panic runtime, on this CPU), not just in the host's test builds. A std built with
/// `panic_abort` only turns every panic into an abort, and the shields around hooks and broker
/// calls would then take the whole gateway down instead of one call.
mod check_unwind {
    use edgemq::hooks::{ClientInfo, Hook, MessageView, Point, Provides, Verdict};
    use edgemq::listeners::ListenerConfig;
    use edgemq::{Options, Server};
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    /// The topic whose PUBLISH makes the test hook panic.
    pub const TOPIC: &str = "edgemq/check-unwind";
    const PANIC_MESSAGE: &str = "edgemq --check-unwind: deliberate panic in a hook";
    /// Every wait is bounded by this (generous: the check also runs under qemu-user).
    const WAIT: Duration = Duration::from_secs(10);

    struct PanicOnTopic {
        fired: Arc<AtomicBool>,
    }

    impl Hook for PanicOnTopic {
        fn id(&self) -> &str {
            "check-unwind"
        }
        fn provides(&self) -> Provides {
            Provides::of(&[Point::OnPublish])
        }
        fn on_publish(&mut self, _client: &ClientInfo<'_>, msg: &MessageView<'_>) -> Verdict {
            if msg.topic == TOPIC {
                self.fired.store(true, Ordering::SeqCst);
                panic!("{PANIC_MESSAGE}");
            }
            Verdict::Continue
        }
    }

    pub fn run() -> ExitCode {
        match check() {
            Ok(()) => {
                println!("unwind: ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("unwind: FAILED: {e}");
                ExitCode::from(1)
            }
        }
    }

    fn check() -> Result<(), String> {
        // The deliberate panic prints one line instead of the default report; other panics
        // keep the default report.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let text = p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<String>().map(String::as_str));
            if text == Some(PANIC_MESSAGE) {
                eprintln!("check-unwind: the test hook panicked on purpose (a build that cannot unwind aborts now)");
            } else {
                default_hook(info);
            }
        }));

        let fired = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let hook_fired = fired.clone();
        std::thread::Builder::new()
            .name("check-unwind-server".into())
            .spawn(move || {
                let result = (|| -> std::io::Result<()> {
                    let mut server = Server::new(Options::default())?;
                    server.add_hook(PanicOnTopic { fired: hook_fired });
                    server.add_listener(ListenerConfig::tcp("check-unwind", "127.0.0.1:0"))?;
                    let _ = ready_tx.send(Ok((server.handle(), server.local_addrs())));
                    server.serve()
                })();
                match result {
                    Ok(()) => {
                        let _ = done_tx.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        let _ = done_tx.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| format!("cannot start the server thread: {e}"))?;
        let (handle, addrs) = match ready_rx.recv_timeout(WAIT) {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Err(format!("the test server did not start: {e}")),
            Err(_) => return Err(format!("the test server did not start within {WAIT:?}")),
        };
        let addr: SocketAddr = addrs
            .first()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the test server has no TCP address: {addrs:?}"))?;

        // First client: PUBLISH QoS 1 to the topic; the hook panics. The broker treats a
        // panicking hook as "no opinion" (PUBACK) and may instead drop the connection; both are
        // fine. What matters is that the process and the loop survive.
        let mut first = connect(addr, "check-unwind-1")?;
        let mut publish = vec![0x32, (2 + TOPIC.len() + 2 + 5) as u8];
        publish.extend_from_slice(&(TOPIC.len() as u16).to_be_bytes());
        publish.extend_from_slice(TOPIC.as_bytes());
        publish.extend_from_slice(&[0x00, 0x01]);
        publish.extend_from_slice(b"panic");
        first.write_all(&publish).map_err(|e| format!("PUBLISH: {e}"))?;
        let mut puback = [0u8; 4];
        match first.read_exact(&mut puback) {
            Ok(()) if puback == [0x40, 0x02, 0x00, 0x01] => {}
            Ok(()) => return Err(format!("expected PUBACK 40 02 00 01 after the panic, got {puback:02x?}")),
            Err(e) if matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset) => {}
            Err(e) => return Err(format!("no PUBACK (nor a closed connection) after the panic: {e}")),
        }
        if !fired.load(Ordering::SeqCst) {
            return Err("the test hook was not called for the PUBLISH".into());
        }

        // Second client: the loop still accepts, connects and answers.
        let mut second = connect(addr, "check-unwind-2")?;
        second.write_all(&[0xC0, 0x00]).map_err(|e| format!("PINGREQ: {e}"))?;
        let mut pingresp = [0u8; 2];
        second.read_exact(&mut pingresp).map_err(|e| format!("no PINGRESP after the panic: {e}"))?;
        if pingresp != [0xD0, 0x00] {
            return Err(format!("expected PINGRESP d0 00, got {pingresp:02x?}"));
        }
        drop((first, second));

        handle.stop().map_err(|e| format!("cannot stop the test server: {e:?}"))?;
        match done_rx.recv_timeout(WAIT) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the test server failed: {e}")),
            Err(_) => Err(format!("the test server did not stop within {WAIT:?}")),
        }
    }

    /// Connects and sends an MQTT 3.1.1 CONNECT (clean session, no credentials); expects
    /// CONNACK accepted.
    fn connect(addr: SocketAddr, client_id: &str) -> Result<TcpStream, String> {
        let mut s = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| format!("connect to {addr}: {e}"))?;
        s.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
        let mut connect = vec![0x10, (10 + 2 + client_id.len()) as u8];
        connect.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C]);
        connect.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
        connect.extend_from_slice(client_id.as_bytes());
        s.write_all(&connect).map_err(|e| format!("{client_id}: CONNECT: {e}"))?;
        let mut connack = [0u8; 4];
        s.read_exact(&mut connack).map_err(|e| format!("{client_id}: no CONNACK: {e}"))?;
        if connack != [0x20, 0x02, 0x00, 0x00] {
            return Err(format!("{client_id}: expected CONNACK 20 02 00 00, got {connack:02x?}"));
        }
        Ok(s)
    }
}
