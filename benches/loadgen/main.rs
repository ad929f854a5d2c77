//! `loadgen`: a load generator that measures any MQTT broker listening on 127.0.0.1:PORT, and checks
//! it while measuring.
//!
//! ```text
//! cargo bench --bench loadgen -- --port 1883 --scenario fanin --qos 1 --payload 64 --version 5 \
//!     --messages 200000 --timeout 60 [--broker-pid PID]
//! ```
//!
//! One thread, one `mio` loop, our own small client codec. Every payload starts with
//! (publisher id, sequence number, send time); subscribers count loss, duplicates and reorders per
//! (publisher, subscriber) and record latency. A run that loses a message at QoS >= 1 (or duplicates
//! one at QoS 2, or times out) prints FAIL and exits 1. Output: human-readable lines, then one
//! `RESULT key=value ...` line for scripts (see `benches/README.md`).
//!
//! Rooms: [`codec`] (bytes), [`stats`] (accounting, histogram), [`engine`] (sockets and client state
//! machine), [`scenarios`] (what to run and how to judge it), [`sys`] (`/proc`, rlimit).
//!
//! With no arguments (as `cargo test --bench loadgen` runs it: a `harness = false` target gets no
//! libtest), or with `--self-test`, it runs its unit tests instead.

use std::process::ExitCode;
use std::time::Duration;

/// Declares a module's unit tests as plain functions plus a `TESTS` table for the self-test runner
/// (`harness = false` means `#[test]` functions would never run).
macro_rules! unit_tests {
    ($(fn $name:ident() $body:block)*) => {
        $(fn $name() $body)*
        /// This module's tests, by name.
        pub(crate) const TESTS: &[(&str, fn())] = &[$((stringify!($name), $name as fn())),*];
    };
}
pub(crate) use unit_tests;

mod codec;
mod engine;
mod scenarios;
mod params;
mod soak;
mod stats;
mod sys;

use codec::Version;
use engine::Settings;
use scenarios::{Params, Scenario};

const USAGE: &str = "usage: loadgen --scenario fanin|fanout|pairs|pairs-split|latency|connections|retained|soak [--port 1883] \
[--qos 0|1|2] [--payload BYTES>=16] [--version 4|5] [--messages N] [--timeout SECS] [--broker-pid PID] \
[--window N] [--publishers N (fanin)] [--subscribers N (fanout)] [--clients N (pairs, connections, soak)] \
[--rate MSG/S (latency; per publisher in soak)] [--drain SECS] \
[--duration SECS (soak)] [--flood-rate PINGS/S (soak)] [--stall-abort SECS (soak)] [--seed N (soak)] | --self-test";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.is_empty() || args.iter().any(|a| a == "--self-test") {
        return self_test();
    }
    let params = match parse(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("loadgen: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let report = scenarios::run(&params);
    let s = &params.settings;
    let status = if report.failures.is_empty() { "PASS" } else { "FAIL" };
    let soak = params.scenario == Scenario::Soak;
    if soak {
        println!("loadgen soak against {} (MQTT 5.0 and 3.1.1, QoS 0/1/2, {} B payload)", s.addr, s.payload);
    } else {
        println!("loadgen {} against {} (MQTT {}, QoS {}, {} B payload)", params.scenario.name(), s.addr, if s.version == Version::V5 { "5.0" } else { "3.1.1" }, s.qos, s.payload);
    }
    for (k, v) in &report.fields {
        println!("  {k:<18} {v}");
    }
    for f in &report.failures {
        println!("  failure: {f}");
    }
    println!("{status}");
    let head = if soak {
        format!("scenario=soak port={} payload={} seed={}", s.addr.port(), s.payload, params.seed)
    } else {
        format!("scenario={} port={} version={} qos={} payload={} messages={}", params.scenario.name(), s.addr.port(), if s.version == Version::V5 { 5 } else { 4 }, s.qos, s.payload, params.messages)
    };
    let fields: Vec<String> = report.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("RESULT {head} {} status={status}", fields.join(" "));
    if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn parse(args: &[String]) -> Result<Params, String> {
    let mut p = Params {
        scenario: Scenario::FanIn,
        settings: Settings { addr: scenarios::localhost(1883), version: Version::V5, qos: 1, payload: 64, window: 100 },
        messages: 0,
        timeout: Duration::from_secs(60),
        drain: Duration::from_secs(2),
        broker_pid: None,
        fanin_publishers: 10,
        fanout_subscribers: 100,
        clients: 0,
        rate: 10_000.0,
        duration: Duration::from_secs(600),
        flood_rate: 500_000.0,
        stall_abort: Duration::from_secs(60),
        seed: 1,
    };
    let mut rate_given = false;
    let mut scenario = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |max: u64| -> Result<u64, String> {
            value.parse::<u64>().ok().filter(|&v| v <= max).ok_or_else(|| format!("{flag} {value}: expected a number up to {max}"))
        };
        match flag.as_str() {
            "--scenario" => scenario = Some(Scenario::ALL.iter().find(|(n, _)| n == value).ok_or_else(|| format!("unknown scenario {value}"))?.1),
            "--port" => p.settings.addr = scenarios::localhost(u16::try_from(num(65_535)?).map_err(|e| e.to_string())?),
            "--qos" => p.settings.qos = num(2)? as u8,
            "--payload" => p.settings.payload = num(1 << 20)?.max(stats::HEADER_LEN as u64) as usize,
            "--version" => p.settings.version = match value.as_str() {
                "4" | "3.1.1" => Version::V4,
                "5" | "5.0" => Version::V5,
                _ => return Err(format!("--version {value}: expected 4 or 5")),
            },
            "--messages" => p.messages = num(u64::from(u32::MAX))? as u32,
            "--timeout" => p.timeout = Duration::from_secs(num(86_400)?.max(1)),
            "--drain" => p.drain = Duration::from_secs(num(3_600)?),
            "--broker-pid" => p.broker_pid = Some(num(u64::from(u32::MAX))? as u32),
            "--window" => p.settings.window = num(65_535)?.max(1) as usize,
            "--publishers" => p.fanin_publishers = num(100_000)?.max(1) as u32,
            "--subscribers" => p.fanout_subscribers = num(100_000)?.max(1) as u32,
            "--clients" => p.clients = num(100_000)?.max(1) as u32,
            "--rate" => {
                p.rate = num(10_000_000)?.max(1) as f64;
                rate_given = true;
            }
            "--duration" => p.duration = Duration::from_secs(num(86_400)?.max(10)),
            "--flood-rate" => p.flood_rate = num(100_000_000)? as f64,
            "--stall-abort" => p.stall_abort = Duration::from_secs(num(86_400)?.max(3)),
            "--seed" => p.seed = num(u64::MAX)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    p.scenario = scenario.ok_or("--scenario is required")?;
    if p.clients == 0 {
        p.clients = match p.scenario {
            Scenario::Connections => 10_000,
            Scenario::Soak => 500,
            _ => 100,
        };
    }
    if p.scenario == Scenario::Soak && !rate_given {
        p.rate = 5.0;
    }
    if p.messages == 0 {
        p.messages = match p.scenario {
            Scenario::Retained => 100_000,
            Scenario::Latency => (p.rate * 5.0) as u32,
            _ => 20_000,
        };
    }
    Ok(p)
}

/// Runs every module's `TESTS`, catching panics; prints a closing `N passed, M failed` line.
/// A module's name and its named tests.
type Suite = (&'static str, &'static [(&'static str, fn())]);

fn self_test() -> ExitCode {
    let suites: [Suite; 4] = [("codec", codec::tests::TESTS), ("stats", stats::tests::TESTS), ("sys", sys::tests::TESTS), ("soak", soak::tests::TESTS)];
    let (mut passed, mut failed) = (0, 0);
    for (module, tests) in suites {
        for (name, test) in tests {
            let ok = std::panic::catch_unwind(test).is_ok();
            println!("test {module}::{name} ... {}", if ok { "ok" } else { "FAILED" });
            if ok { passed += 1 } else { failed += 1 }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
