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
