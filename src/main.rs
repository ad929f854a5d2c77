//! The standalone `edgemq` binary: flags, logging, signals, then `Server::serve()`.

use edgemq::listeners::ListenerConfig;
use edgemq::{Options, Server};
use std::process::ExitCode;

const HELP: &str = "\
edgemq: a small MQTT 5.0 / 3.1.1 / 3.1 broker for edge gateways

USAGE:
    edgemq [OPTIONS]

OPTIONS:
    -p, --port PORT     listen on PORT (default 1883)
        --bind ADDR     listen on ADDR, e.g. 0.0.0.0 or 127.0.0.1 (default 127.0.0.1)
    -v, --verbose       log debug messages (twice: trace)
    -h, --help          print this help
    -V, --version       print the version

With no options edgemq listens on 127.0.0.1:1883 and admits anonymous clients there only:
anonymous clients are admitted on loopback listeners and refused on any other address.
";

struct Args {
    port: u16,
    bind: String,
    verbose: u8,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut a = Args { port: 1883, bind: "127.0.0.1".into(), verbose: 0 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("edgemq {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "-p" | "--port" => {
                let v = it.next().ok_or("-p needs a port number")?;
                a.port = v.parse().map_err(|_| format!("-p: expected a port number 0-65535, found `{v}`"))?;
            }
            "--bind" => a.bind = it.next().ok_or("--bind needs an address")?,
            "-v" | "--verbose" => a.verbose += 1,
            "-vv" => a.verbose += 2,
            other => return Err(format!("unknown option `{other}` (see --help)")),
        }
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgemq: {e}");
            return ExitCode::from(2);
        }
    };
    let level = match args.verbose {
        0 => log::LevelFilter::Info,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let _ = simple_logger::SimpleLogger::new().with_level(level).init();

    let mut server = match Server::new(Options::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edgemq: {e}");
            return ExitCode::from(2);
        }
    };
    let bind = if args.bind.contains(':') && !args.bind.starts_with('[') {
        format!("[{}]:{}", args.bind, args.port)
    } else {
        format!("{}:{}", args.bind, args.port)
    };
    if let Err(e) = server.add_listener(ListenerConfig::tcp("default", &bind)) {
        eprintln!("edgemq: {e}");
        return ExitCode::from(1);
    }
    let handle = server.handle();
    match signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    log::info!("signal {sig}: stopping");
                    let _ = handle.stop();
                }
            });
        }
        Err(e) => log::warn!("signals not available: {e}"),
    }
    log::info!("edgemq {} started", env!("CARGO_PKG_VERSION"));
    match server.serve() {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(1)
        }
    }
}
