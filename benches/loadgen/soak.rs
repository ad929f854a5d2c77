//! The `soak` scenario: many clients for a long time (`--duration`, 600 s by default), mixing QoS
//! 0/1/2 with reconnects, take-overs, slow subscribers and attackers, checked while it runs.
//!
//! The mix for `--clients N` (500 by default, [`Mix::of`]):
//! - **subscribers** (the rest, ~80%): persistent sessions (clean start 0; MQTT 5 with a session
//!   expiry of 3600 s), subscribed at QoS 2 to their group's topics `lg/PID/soak/g/G/+`. Every
//!   15-45 s each one leaves: with DISCONNECT (40%), by a **take-over** (20%: a second connection
//!   with the same client id while the first is open; the broker must close the first), or by
//!   fading (40%: it stops reading for 0.3-1.5 s, as behind a dead network, then closes its
//!   socket, leaving the broker unacknowledged messages to resend). Offline for 0.2-3 s, it
//!   reconnects with clean start 0, expects "session present" and subscribes again. QoS 1/2
//!   messages published meanwhile must arrive after the reconnect.
//! - **slow subscribers** (5%): the same sessions, but half read at most 5 KB/s and half stop
//!   reading for 2-5 s every 10-20 s. They stay connected.
//! - **publishers** (12%, a multiple of 3): one per QoS level per group, `--rate` messages/s
//!   each (5), at most 20 in flight. Every 30-90 s each completes its in-flight messages,
//!   disconnects and comes back 0.2-2 s later (clean start 1).
//! - **a probe**: every second a PINGREQ and a QoS 1 PUBLISH to a topic it subscribes to; both
//!   must come back within 2 s, every time, for the whole run.
//! - **attackers**, reopened 1 s after the broker closes them: one client that floods PINGREQ
//!   (`--flood-rate` per second, 500,000) with a 4 KiB receive buffer and never reads; clients
//!   that send a partial frame after CONNECT (a fixed header announcing a large packet, a few
//!   bytes, then nothing); a few that send a partial CONNECT and stall. Every other flood or
//!   partial-frame attack announces a 10 s keep-alive, the others none, so that only the broker's
//!   own timeouts (write stall, partial frame) can end them. The broker may close them (that is
//!   its defence): the soak counts it and does not fail on it.
//!
//! Versions alternate: even-numbered clients speak MQTT 5, odd ones 3.1.1. The intervals between
//! lifecycle events are scaled down for runs shorter than 10 minutes ([`pace`]: 4x faster at
//! 60 s), so a CI run still takes every client through every event. Choices are reproducible
//! (`--seed`).
//!
//! **Pass** (checked here): no loss at QoS 1/2 and no duplicate at QoS 2 for every subscriber,
//! slow ones included; no probe check late; broker RSS in the last window (a minute, or 10% of a
//! shorter run) at most 5% above the first window after warm-up ([`rss_windows`]); the broker's
//! open files (`/proc/PID/fd`) back to their count before the run once every soak client has
//! gone; no well-behaved client refused, disconnected or answered wrongly by the broker. Loss at
//! QoS 0 (not queued for offline sessions, by default), QoS 1 duplicates and reorders are
//! reported only.
//!
//! **Every wait has a deadline**: connect + subscribe 10 s, a taken-over connection closed by the
//! broker within 10 s, a leaving publisher's in-flight messages 10 s, the final drain 30 s, the fd
//! count 10 s; a probe check unanswered for `--stall-abort` seconds (60) ends the run early as a
//! stall, so a broker that stops serving makes the soak fail, never hang.
//!
//! **Sizing**: a subscriber hears 3 x `--rate` messages/s (2/3 of them at QoS >= 1). Offline for
//! at most 3 s (plus a fade of 1.5 s) or paused for at most 5 s, at the default rate its backlog
//! stays below 100 messages of ~100 bytes: within the broker's default session bounds (256
//! messages, 64 KiB). [`Mix::backlog`] is printed with the results.
//!
//! Receiver model (MQTT's, per session, across connections): a QoS 2 PUBLISH whose packet id is
//! still waiting for its PUBREL is a resend and is not delivered again; anything else is a
//! delivery. A subscriber that leaves stops processing its old connection at once (bytes that
//! still arrive there are read and dropped), so a message is either handled before it left or
//! resent by the broker afterwards: a duplicate at QoS 2 is the broker's.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::codec::{self, Ack, Packet, Version};
use crate::params::{Params, Report};
use crate::stats::{Arrival, Flow, Histogram, Stamp, Tracker, HEADER_LEN};
use crate::sys;

/// A probe check (PINGREQ and QoS 1 round trip) must complete within this.
const PROBE_LIMIT: Duration = Duration::from_secs(2);
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A well-behaved connection must be ready (CONNACK, and SUBACK for subscribers) within this.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// The broker must close a taken-over connection within this.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(10);
/// A leaving publisher's in-flight messages must complete within this.
const LEAVE_LIMIT: Duration = Duration::from_secs(10);
/// After our DISCONNECT, how long to wait for the broker to close before dropping the socket.
const LINGER: Duration = Duration::from_secs(2);
/// The final drain: publishers' in-flight messages complete, every subscriber catches up.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// After the last client closed, how long the broker's fd count may take to come back.
const FD_LIMIT: Duration = Duration::from_secs(10);
const SESSION_EXPIRY_S: u32 = 3600;
const KEEP_ALIVE_S: u16 = 30;
/// Attackers' keep-alive (every other flood or partial-frame attack announces none): a stalled
/// one is the broker's to close after 1.5 x.
const ATTACK_KEEP_ALIVE_S: u16 = 10;
const PUB_WINDOW: usize = 20;
/// Stop encoding while this much waits to be written (per connection).
const TX_HIGH_WATER: usize = 64 * 1024;
/// Slow readers: bytes per second, and the most they may save up.
const TRICKLE_BPS: f64 = 5_000.0;
const TRICKLE_BURST: f64 = 1_024.0;
/// The flooder's socket receive buffer: small, so its unread PINGRESPs pile up at the broker.
const FLOOD_RCVBUF: usize = 4096;
/// Publisher id in the probe's stamps (publishers are numbered from 0).
const PROBE_ID: u32 = u32::MAX;
/// Sub-bits of a connection token that hold the slot; the rest is a generation.
const SLOT_BITS: u32 = 20;

/// How many clients of each kind a run of `clients` has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub subscribers: usize,
    pub slow: usize,
    pub publishers: usize,
    pub flood: usize,
    pub partial_frame: usize,
    pub partial_connect: usize,
    pub probe: usize,
}

impl Mix {
    pub fn of(clients: usize) -> Result<Mix, String> {
        if clients < 40 {
            return Err(format!("--clients {clients}: the soak needs at least 40"));
        }
        let publishers = (clients * 12 / 100 / 3 * 3).max(3);
        let slow = (clients / 20).max(2);
        let partial_frame = (clients / 60).max(1);
        let partial_connect = (clients / 125).max(1);
        let (flood, probe) = (1, 1);
        let subscribers = clients - publishers - slow - partial_frame - partial_connect - flood - probe;
        Ok(Mix { subscribers, slow, publishers, flood, partial_frame, partial_connect, probe })
    }

    /// Groups: one publisher per QoS level in each.
    pub fn groups(&self) -> usize {
        self.publishers / 3
    }

    /// Messages a subscriber may have waiting at the broker at most: everything over a 1.5 s
    /// fade plus QoS 1/2 over 3 s offline, or everything over a 5 s pause (those mostly sit in
    /// socket buffers).
    pub fn backlog(rate: f64) -> u64 {
        (3.0 * rate * 1.5 + 2.0 * rate * 3.0).max(3.0 * rate * 5.0).ceil() as u64
    }
}

/// What a logical client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Probe,
    Subscriber,
    Slow(Slowness),
    Publisher,
    Flood,
    PartialFrame,
    PartialConnect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slowness {
    /// Reads at most [`TRICKLE_BPS`].
    Trickle,
    /// Stops reading for 2-5 s every 10-20 s.
    Pauses,
}

impl Role {
    fn is_attacker(self) -> bool {
        matches!(self, Role::Flood | Role::PartialFrame | Role::PartialConnect)
    }
    fn is_subscriber(self) -> bool {
        matches!(self, Role::Subscriber | Role::Slow(_))
    }
    fn attack_index(self) -> usize {
        match self {
            Role::Flood => 0,
            Role::PartialFrame => 1,
            _ => 2,
        }
    }
}

/// Result keys of the three attacks, by [`Role::attack_index`].
const ATTACKS: [&str; 3] = ["attack_flood", "attack_partial_frame", "attack_partial_connect"];

/// The receiving side of a session's QoS 2 flows: packet ids whose PUBLISH was delivered and whose
/// PUBREL has not come yet. Kept per client across its connections, as the session is.
#[derive(Debug, Default)]
pub struct Inbound {
    awaiting_rel: HashSet<u16>,
}

impl Inbound {
    /// A QoS 2 PUBLISH with `pid` arrived: true if it is a delivery, false if it is a resend of
    /// one delivered before (still awaiting PUBREL). Either way the answer is PUBREC.
    pub fn on_qos2(&mut self, pid: u16) -> bool {
        self.awaiting_rel.insert(pid)
    }

    /// PUBREL for `pid`: the flow is over (the answer is PUBCOMP whether or not it was known).
    pub fn on_pubrel(&mut self, pid: u16) {
        self.awaiting_rel.remove(&pid);
    }
}

struct Publishing {
    id: u32,
    qos: u8,
    topic: String,
    /// The next sequence number.
    sent: u32,
    /// Packet id -> (sequence number, PUBREC seen).
    inflight: HashMap<u16, (u32, bool)>,
    next_pid: u16,
    /// Sequence numbers whose flow completed (PUBACK or PUBCOMP; written, at QoS 0).
    completed: Flow,
    window: usize,
    next_send: Instant,
}

impl Publishing {
    fn alloc_pid(&mut self) -> u16 {
        loop {
            self.next_pid = self.next_pid.wrapping_add(1).max(1);
            if !self.inflight.contains_key(&self.next_pid) {
                return self.next_pid;
            }
        }
    }
}

/// A client's lifecycle, driven by `next_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No connection; (re)connect at `next_at`.
    Offline,
    /// Connected or connecting; the next event (leave, take-over, pause) at `next_at`.
    Online,
    /// A publisher waiting for its in-flight messages before it disconnects (deadline `next_at`).
    Leaving,
}

struct Client {
    id: String,
    role: Role,
    version: Version,
    group: usize,
    phase: Phase,
    next_at: Instant,
    conn: Option<usize>,
    /// Connections that reached CONNACK (a later one must find its session).
    sessions: u32,
    tracker: Tracker,
    inbound: Inbound,
    /// When this subscriber last went offline, in ns since the start (for offline deliveries).
    offline_from_ns: Option<u64>,
    back_at_ns: u64,
    publishing: Option<Publishing>,
    /// Slow readers: the pause in force, the next one.
    paused_until: Option<Instant>,
    /// Attackers: variant counter.
    attacks: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    Connecting,
    AwaitConnAck,
    AwaitSubAck,
    Ready,
    /// An attacker doing its thing (flooding, or stalled after a partial frame or CONNECT).
    Attacking,
    /// Left or taken over: input is read and dropped until the broker closes (or `deadline`).
    Draining,
}

struct Conn {
    stream: TcpStream,
    owner: usize,
    gen: u32,
    version: Version,
    state: ConnState,
    opened: Instant,
    /// Draining: when to give up waiting for the broker's close; `takeover` if the broker must close it.
    deadline: Option<Instant>,
    takeover: bool,
    rx: Vec<u8>,
    tx: Vec<u8>,
    tx_pos: usize,
    last_tx: Instant,
    /// Input may be waiting that was not read (paused or over the trickle allowance).
    unread: bool,
    allowance: f64,
    refilled: Instant,
}

/// The probe's state: one check at a time.
struct Probe {
    owner: usize,
    next_check: Instant,
    /// The check in progress: when it started, its sequence number, what came back.
    started: Option<Instant>,
    seq: u32,
    sent: bool,
    pong: bool,
    echoed: bool,
    late_counted: bool,
    checks: u64,
    late: u64,
    first_late: Option<f64>,
    ping_rtt: Histogram,
    pub_rtt: Histogram,
    longest_wait: Duration,
    /// Time spent with a check older than [`PROBE_LIMIT`] (finished checks).
    stalled: Duration,
    next_pid: u16,
}

#[derive(Default)]
struct Counters {
    connects: u64,
    leaves_graceful: u64,
    leaves_abrupt: u64,
    takeovers: u64,
    takeovers_closed: u64,
    publisher_cycles: u64,
    pauses: u64,
    published: [u64; 3],
    delivered: [u64; 3],
    qos2_resends_absorbed: u64,
    /// First deliveries that came with the DUP flag: the broker resent what a connection left
    /// unacknowledged.
    dup_flag_deliveries: u64,
    offline_deliveries: u64,
    attack_opened: [u64; 3],
    attack_closed: [u64; 3],
    attack_lifetime_max: [Duration; 3],
    attack_lifetime_sum: [Duration; 3],
    flood_pings: u64,
    errors: u64,
    first_errors: Vec<String>,
}

struct Soak<'p> {
    p: &'p Params,
    addr: SocketAddr,
    /// Topic prefix `lg/PID/soak`.
    prefix: String,
    poll: Poll,
    events: Events,
    scratch: Vec<u8>,
    conns: Vec<Option<Conn>>,
    gens: Vec<u32>,
    free: Vec<usize>,
    clients: Vec<Client>,
    probe: Probe,
    payload: Vec<u8>,
    rng: Rng,
    t0: Instant,
    /// Publishers encode while this holds (not during the final drain).
    publishing: bool,
    /// The final drain and teardown: no more lifecycle events.
    ending: bool,
    flood_budget: f64,
    flood_refilled: Instant,
    c: Counters,
    stall_abort: Option<String>,
}

/// xorshift64*: reproducible choices (`--seed`).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi` milliseconds.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

/// How much faster the lifecycle runs than in a 10-minute soak: 1 for 600 s and more, down to
/// 0.25 for 150 s and less, so a short run (CI: 60 s) still takes every client through every
/// event (leave, take-over, pause, publisher cycle) during its warm-up.
pub fn pace(duration: Duration) -> f64 {
    (duration.as_secs_f64() / 600.0).clamp(0.25, 1.0)
}

/// Mean RSS of the first window after warm-up and of the last window, for a run of `run_s`
/// seconds sampled as `(seconds since start, KiB)`: `(first, last, window, warm-up)`. The window
/// is a minute, or a tenth of a run shorter than ten minutes. Warm-up lasts until every client
/// has been through its first lifecycle events (90 s x [`pace`]; the slowest, a publisher's
/// cycle, comes after 30-90 s), at least one window and at most half the run: before that the
/// broker is still allocating per-session state it keeps (offline queues, boxed session parts),
/// which is growth but not a leak. `None` if either window has no sample.
pub fn rss_windows(samples: &[(f64, u64)], run_s: f64, pace: f64) -> Option<(f64, f64, f64, f64)> {
    let w = (run_s / 10.0).min(60.0);
    let warm = (90.0 * pace).max(w).min(run_s / 2.0);
    let mean = |lo: f64, hi: f64| {
        let v: Vec<u64> = samples.iter().filter(|(t, _)| *t >= lo && *t < hi).map(|&(_, k)| k).collect();
        (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / v.len() as f64)
    };
    Some((mean(warm, warm + w)?, mean(run_s - w, run_s + 1.0)?, w, warm))
}

pub fn run(p: &Params, r: &mut Report) -> Result<(), String> {
    let mix = Mix::of(p.clients as usize)?;
    let broker = p.broker_pid.map(|pid| pid.to_string());
    sys::raise_nofile(p.clients as u64 * 2 + 256)?;
    let fd_start = broker.as_deref().and_then(sys::fd_count);
    let mut s = Soak::new(p, mix)?;
    r.set("clients", p.clients);
    r.set("subscribers", mix.subscribers);
    r.set("slow", mix.slow);
    r.set("publishers", mix.publishers);
    r.set("attackers", format!("{}/{}/{}", mix.flood, mix.partial_frame, mix.partial_connect));
    r.set("duration_s", p.duration.as_secs());
    r.set("rate", p.rate);
    r.set("backlog_max", Mix::backlog(p.rate));

    // Setup: every subscriber subscribed (and the probe) before anything is published.
    s.start_all(|role| role.is_subscriber() || role == Role::Probe);
    let ready = |s: &Soak| s.clients.iter().filter(|c| c.role.is_subscriber() || c.role == Role::Probe).all(|c| s.is_ready(c));
    let setup_deadline = Instant::now() + Duration::from_secs(30);
    if !s.run_until(setup_deadline, |s| ready(s) || s.c.errors > 0) || s.c.errors > 0 {
        s.teardown();
        r.failures.extend(s.c.first_errors.iter().cloned());
        let n = s.clients.iter().filter(|c| (c.role.is_subscriber() || c.role == Role::Probe) && s.is_ready(c)).count();
        return Err(format!("setup: {n} of {} subscribers ready within 30 s", mix.subscribers + mix.slow + 1));
    }
    s.start_all(|role| role == Role::Publisher || role.is_attacker());
    s.publishing = true;
    let t_run = Instant::now();
    let end = t_run + p.duration;

    // The run: lifecycle events, probe checks, RSS samples; a progress line every 10 s.
    let mut rss: Vec<(f64, u64)> = Vec::new();
    let mut next_sample = t_run;
    let mut next_report = t_run + Duration::from_secs(10);
    let rss_now = || broker.as_deref().and_then(|b| sys::status_kib(b, "VmRSS"));
    while Instant::now() < end && s.stall_abort.is_none() {
        s.run_until(next_sample.min(end), |s| s.stall_abort.is_some());
        let now = Instant::now();
        if now >= next_sample {
            next_sample += Duration::from_secs(1);
            if let Some(kib) = rss_now() {
                rss.push((now.duration_since(t_run).as_secs_f64(), kib));
            }
        }
        if now >= next_report {
            next_report += Duration::from_secs(10);
            eprintln!("{}", s.progress(now.duration_since(t_run), rss.last().map(|x| x.1), broker.as_deref().and_then(sys::fd_count)));
        }
    }
    let run_s = t_run.elapsed().as_secs_f64();

    // The drain: publishers stop, everyone comes back and catches up.
    let drained = s.drain();
    let acc = s.account();
    s.teardown();

    // The broker's files: back to where they were once every client is gone.
    let fd_end = broker.as_deref().and_then(|b| {
        let deadline = Instant::now() + FD_LIMIT;
        loop {
            let n = sys::fd_count(b);
            if n == fd_start || Instant::now() >= deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });

    if let Some(why) = &s.stall_abort {
        r.failures.push(why.clone());
    }
    s.report(r, &acc, run_s);
    let windows = rss_windows(&rss, run_s, pace(p.duration));
    if let Some((first, last, w, warm)) = windows {
        r.set("rss_window_s", format!("{w:.0}"));
        r.set("rss_warmup_s", format!("{warm:.0}"));
        r.set("rss_first_kib", format!("{first:.0}"));
        r.set("rss_last_kib", format!("{last:.0}"));
        r.set("rss_growth_pct", format!("{:.1}", 100.0 * (last / first - 1.0)));
        if last > first * 1.05 {
            r.failures.push(format!("broker RSS grew {:.1}%: {first:.0} KiB in the first {w:.0} s window after {warm:.0} s of warm-up, {last:.0} KiB in the last (limit 5%)", 100.0 * (last / first - 1.0)));
        }
    } else if broker.is_some() {
        r.failures.push(format!("too few RSS samples ({}) to compare the first and last windows", rss.len()));
    }
    let show = |v: Option<usize>| v.map_or("n/a".to_string(), |n| n.to_string());
    r.set("fd_start", show(fd_start));
    r.set("fd_end", show(fd_end));
    if broker.is_some() && fd_end != fd_start {
        r.failures.push(format!("broker open files: {} before the run, {} after every soak client left", show(fd_start), show(fd_end)));
    }
    if broker.is_none() {
        eprintln!("warning: no --broker-pid: RSS and open-file checks skipped");
    }
    if !drained {
        r.failures.push(format!("final drain: publishers' in-flight messages or subscribers' backlogs not done within {} s", DRAIN_LIMIT.as_secs()));
    }
    s.report_errors(r);
    Ok(())
}

/// Loss, duplicate and reorder counts over every (subscriber, publisher) route.
#[derive(Default)]
struct Accounts {
    expected: [u64; 3],
    loss: [u64; 3],
    dups: [u64; 3],
    loss_slow: u64,
    reorders: u64,
    strays: u64,
}

impl<'p> Soak<'p> {
    fn new(p: &'p Params, mix: Mix) -> Result<Soak<'p>, String> {
        let now = Instant::now();
        let tag = std::process::id() % 100_000;
        let prefix = format!("lg/{}/soak", std::process::id());
        let mut clients = Vec::new();
        let mut add = |role: Role, group: usize, name: String| {
            let version = if clients.len() % 2 == 0 { Version::V5 } else { Version::V4 };
            clients.push(Client {
                id: format!("sk{tag}-{name}"),
                role,
                version,
                group,
                phase: Phase::Offline,
                next_at: now + Duration::from_secs(3600), // started by `start_all`
                conn: None,
                sessions: 0,
                tracker: Tracker::default(),
                inbound: Inbound::default(),
                offline_from_ns: None,
                back_at_ns: 0,
                publishing: None,
                paused_until: None,
                attacks: 0,
            });
        };
        let groups = mix.groups();
        add(Role::Probe, 0, "probe".into());
        for i in 0..mix.subscribers {
            add(Role::Subscriber, i % groups, format!("s{i}"));
        }
        for i in 0..mix.slow {
            let kind = if i % 2 == 0 { Slowness::Trickle } else { Slowness::Pauses };
            add(Role::Slow(kind), (mix.subscribers + i) % groups, format!("w{i}"));
        }
        for i in 0..mix.publishers {
            add(Role::Publisher, i / 3, format!("p{i}"));
        }
        for (n, role, name) in [(mix.flood, Role::Flood, "f"), (mix.partial_frame, Role::PartialFrame, "h"), (mix.partial_connect, Role::PartialConnect, "c")] {
            for i in 0..n {
                add(role, 0, format!("{name}{i}"));
            }
        }
        // Publisher k: group k / 3, QoS k % 3, stamp id k.
        for (k, c) in clients.iter_mut().filter(|c| c.role == Role::Publisher).enumerate() {
            let (id, qos) = (k as u32, (k % 3) as u8);
            let topic = format!("{prefix}/g/{}/{k}", c.group);
            let (inflight, completed) = (HashMap::new(), Flow::default());
            c.publishing = Some(Publishing { id, qos, topic, sent: 0, inflight, next_pid: 0, completed, window: PUB_WINDOW, next_send: now });
        }
        let probe = Probe {
            owner: 0,
            next_check: now,
            started: None,
            seq: 0,
            sent: false,
            pong: false,
            echoed: false,
            late_counted: false,
            checks: 0,
            late: 0,
            first_late: None,
            ping_rtt: Histogram::default(),
            pub_rtt: Histogram::default(),
            longest_wait: Duration::ZERO,
            stalled: Duration::ZERO,
            next_pid: 0,
        };
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        Ok(Soak {
            p,
            addr: p.settings.addr,
            prefix,
            poll,
            events: Events::with_capacity(1024),
            scratch: vec![0; 64 * 1024],
            conns: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            clients,
            probe,
            payload: vec![0x5A; p.settings.payload.max(HEADER_LEN)],
            rng: Rng::new(p.seed),
            t0: now,
            publishing: false,
            ending: false,
            flood_budget: 0.0,
            flood_refilled: now,
            c: Counters::default(),
            stall_abort: None,
        })
    }

    fn filter(&self, client: &Client) -> String {
        match client.role {
            Role::Probe => format!("{}/probe", self.prefix),
            _ => format!("{}/g/{}/+", self.prefix, client.group),
        }
    }

    /// A time between lifecycle events: `lo..=hi` ms, scaled down for short runs ([`pace`]).
    fn period(&mut self, lo: u64, hi: u64) -> Duration {
        self.rng.ms(lo, hi).mul_f64(pace(self.p.duration))
    }

    fn secs(&self, at: Instant) -> f64 {
        at.duration_since(self.t0).as_secs_f64()
    }

    fn error(&mut self, who: usize, what: impl std::fmt::Display) {
        self.c.errors += 1;
        if self.c.first_errors.len() < 10 {
            let t = self.secs(Instant::now());
            self.c.first_errors.push(format!("t={t:.1}s {}: {what}", self.clients[who].id));
        }
    }

    fn is_ready(&self, c: &Client) -> bool {
        c.conn.and_then(|k| self.conns[k].as_ref()).is_some_and(|k| k.state == ConnState::Ready)
    }

    fn start_all(&mut self, which: impl Fn(Role) -> bool) {
        let now = Instant::now();
        for i in 0..self.clients.len() {
            if which(self.clients[i].role) {
                self.clients[i].next_at = now;
                self.connect(i, now);
            }
        }
    }


    // ---------------------------------------------------------------------------------------
    // The loop

    /// Runs turns until `done` holds (true) or `deadline` passes (false).
    fn run_until(&mut self, deadline: Instant, mut done: impl FnMut(&Soak) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.turn((deadline - now).min(Duration::from_millis(5)));
        }
    }

    /// One turn: serve ready sockets, then timed work (lifecycle, probe, publishers, attackers).
    fn turn(&mut self, timeout: Duration) {
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                self.c.errors += 1;
                self.c.first_errors.push(format!("poll: {e}"));
                self.stall_abort.get_or_insert_with(|| format!("generator poll failed: {e}"));
                return;
            }
        }
        let ready: Vec<(usize, bool, bool, bool)> = self
            .events
            .iter()
            .map(|e| (e.token().0, e.is_readable() || e.is_read_closed(), e.is_writable(), e.is_error() || e.is_write_closed() || e.is_read_closed()))
            .collect();
        let now = Instant::now();
        // `broken`: the peer closed or the connection failed (the flooder learns of it this way).
        for (token, readable, writable, broken) in ready {
            let (key, gen) = (token & ((1 << SLOT_BITS) - 1), (token >> SLOT_BITS) as u32);
            if self.conns.get(key).and_then(Option::as_ref).is_none_or(|c| c.gen != gen) {
                continue;
            }
            self.on_event(key, readable, writable, broken, now);
        }
        self.timed(Instant::now());
    }

    fn on_event(&mut self, key: usize, readable: bool, writable: bool, broken: bool, now: Instant) {
        let Some(c) = slot(&mut self.conns, key) else { return };
        if c.state == ConnState::Connecting {
            if !writable && !broken {
                return;
            }
            match c.stream.peer_addr() {
                Ok(_) => {
                    let owner = c.owner;
                    c.state = match self.clients[owner].role {
                        Role::Flood | Role::PartialConnect => ConnState::Attacking,
                        _ => ConnState::AwaitConnAck,
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected && !broken => return,
                Err(_) => {
                    let e = c.stream.take_error().ok().flatten().map_or("connect failed".to_string(), |e| e.to_string());
                    return self.closed(key, format!("connect: {e}"), now);
                }
            }
        }
        let owner = self.conns[key].as_ref().map_or(0, |c| c.owner);
        // The flooder never reads: it learns of the broker's close from the event alone.
        if self.clients[owner].role == Role::Flood {
            if broken {
                return self.closed(key, "closed".into(), now);
            }
        } else if readable || broken {
            self.read(key, now);
        }
        self.flush(key, now);
    }

    /// Timed work, every turn.
    fn timed(&mut self, now: Instant) {
        for i in 0..self.clients.len() {
            self.lifecycle(i, now);
        }
        self.probe_tick(now);
        if self.publishing {
            for i in 0..self.clients.len() {
                if self.clients[i].role == Role::Publisher {
                    self.pump(i, now);
                }
            }
            self.flood(now);
        }
        // Input left unread by a pause or the trickle allowance, and drain deadlines.
        for key in 0..self.conns.len() {
            let Some(c) = self.conns[key].as_ref() else { continue };
            if c.state == ConnState::Draining && c.deadline.is_some_and(|d| now >= d) {
                let (owner, takeover) = (c.owner, c.takeover);
                if takeover {
                    self.error(owner, format!("take-over: the broker did not close the old connection within {} s", TAKEOVER_LIMIT.as_secs()));
                }
                self.drop_conn(key);
                continue;
            }
            if c.unread && self.read_limit(key, now) != Some(0) {
                self.read(key, now);
                self.flush(key, now);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Lifecycles

    fn lifecycle(&mut self, i: usize, now: Instant) {
        let cl = &self.clients[i];
        // A well-behaved connection that is not ready in time is given up and retried.
        if let Some(key) = cl.conn {
            if let Some(c) = self.conns[key].as_ref() {
                let pending = matches!(c.state, ConnState::Connecting | ConnState::AwaitConnAck | ConnState::AwaitSubAck);
                if pending && !cl.role.is_attacker() && now.duration_since(c.opened) > CONNECT_LIMIT {
                    let state = c.state;
                    self.error(i, format!("connection not ready after {} s (state {state:?})", CONNECT_LIMIT.as_secs()));
                    self.drop_conn(key);
                    self.went_offline(i, now, Duration::from_secs(1));
                    return;
                }
            }
        }
        let cl = &self.clients[i];
        if self.ending {
            // Bring everyone back for the drain; no more leaving, pausing or attacking.
            if cl.phase == Phase::Leaving && cl.publishing.as_ref().is_some_and(|p| p.inflight.is_empty()) {
                self.clients[i].phase = Phase::Online;
            } else if cl.phase == Phase::Offline && cl.role != Role::Publisher && !cl.role.is_attacker() && now >= cl.next_at {
                self.connect(i, now);
            }
            return;
        }
        if now < cl.next_at {
            return;
        }
        match (cl.phase, cl.role) {
            (Phase::Offline, _) => self.connect(i, now),
            (Phase::Online, Role::Subscriber) => {
                if self.clients[i].paused_until.is_some() {
                    // The end of a fade: the socket goes with what it did not read.
                    self.leave(i, false, now);
                    let offline = self.rng.ms(200, 3000);
                    self.went_offline(i, now, offline);
                    return;
                }
                if !self.is_ready(&self.clients[i]) {
                    self.clients[i].next_at = now + Duration::from_secs(1);
                    return;
                }
                let pick = self.rng.next() % 100;
                if pick < 20 {
                    self.takeover(i, now);
                } else if pick < 60 {
                    self.leave(i, true, now);
                    let offline = self.rng.ms(200, 3000);
                    self.went_offline(i, now, offline);
                } else {
                    // Fade, then close: stop reading for a while (as a dead network would), so
                    // the broker has unacknowledged messages to resend after the reconnect.
                    let fade = self.rng.ms(300, 1500);
                    self.clients[i].paused_until = Some(now + fade);
                    self.clients[i].next_at = now + fade;
                }
            }
            (Phase::Online, Role::Slow(Slowness::Pauses)) => {
                if self.clients[i].paused_until.is_some_and(|t| now >= t) {
                    self.clients[i].paused_until = None;
                    self.clients[i].next_at = now + self.period(10_000, 20_000);
                } else {
                    let pause = self.rng.ms(2_000, 5_000);
                    self.clients[i].paused_until = Some(now + pause);
                    self.clients[i].next_at = now + pause;
                    self.c.pauses += 1;
                }
            }
            (Phase::Online, Role::Publisher) => {
                self.clients[i].phase = Phase::Leaving;
                self.clients[i].next_at = now + LEAVE_LIMIT;
            }
            (Phase::Leaving, _) => {
                // Deadline passed with messages still in flight.
                let n = self.clients[i].publishing.as_ref().map_or(0, |p| p.inflight.len());
                self.error(i, format!("{n} in-flight messages not acknowledged within {} s", LEAVE_LIMIT.as_secs()));
                self.leave(i, false, now);
                self.went_offline(i, now, Duration::from_secs(1));
            }
            _ => self.clients[i].next_at = now + Duration::from_secs(3600),
        }
    }

    /// A leaving publisher whose messages are all acknowledged disconnects (checked in `pump`).
    fn went_offline(&mut self, i: usize, now: Instant, offline: Duration) {
        let since = now.duration_since(self.t0).as_nanos() as u64;
        let cl = &mut self.clients[i];
        cl.phase = Phase::Offline;
        cl.next_at = now + offline;
        cl.conn = None;
        cl.paused_until = None;
        if cl.role.is_subscriber() {
            cl.offline_from_ns.get_or_insert(since);
        }
        if let Some(p) = &mut cl.publishing {
            p.inflight.clear(); // abandoned (only after an error): not counted as completed
        }
    }

    /// Opens a connection for client `i` (a take-over when it already has one).
    fn connect(&mut self, i: usize, now: Instant) {
        let cl = &self.clients[i];
        let (role, version) = (cl.role, cl.version);
        let stream = if role == Role::Flood { small_window_stream(self.addr) } else { TcpStream::connect(self.addr) };
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                if !role.is_attacker() {
                    self.error(i, format!("connect: {e}"));
                }
                self.went_offline(i, now, Duration::from_secs(1));
                return;
            }
        };
        let key = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.gens.push(0);
            self.conns.len() - 1
        });
        self.gens[key] = self.gens[key].wrapping_add(1);
        let gen = self.gens[key];
        let token = Token(((gen as usize) << SLOT_BITS) | key);
        if let Err(e) = self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE) {
            self.free.push(key);
            self.error(i, format!("register: {e}"));
            self.went_offline(i, now, Duration::from_secs(1));
            return;
        }
        let _ = stream.set_nodelay(true);
        let mut tx = Vec::new();
        let id = &self.clients[i].id;
        match role {
            Role::Subscriber | Role::Slow(_) => codec::connect_session(&mut tx, version, id, KEEP_ALIVE_S, false, Some(SESSION_EXPIRY_S)),
            Role::Probe | Role::Publisher => codec::connect_session(&mut tx, version, id, KEEP_ALIVE_S, true, None),
            Role::Flood | Role::PartialFrame => {
                // Every other attack announces no keep-alive: only the broker's own timeouts
                // (write stall, partial frame) can end it.
                let keep_alive = if (i + self.clients[i].attacks as usize) % 2 == 0 { ATTACK_KEEP_ALIVE_S } else { 0 };
                codec::connect_session(&mut tx, version, id, keep_alive, true, None);
            }
            Role::PartialConnect => {
                codec::connect_session(&mut tx, version, id, ATTACK_KEEP_ALIVE_S, true, None);
                tx.truncate(7); // fixed header, "MQTT" half written: then nothing
            }
        }
        self.conns[key] = Some(Conn {
            stream,
            owner: i,
            gen,
            version,
            state: ConnState::Connecting,
            opened: now,
            deadline: None,
            takeover: false,
            rx: Vec::new(),
            tx,
            tx_pos: 0,
            last_tx: now,
            unread: false,
            allowance: TRICKLE_BURST,
            refilled: now,
        });
        // The next lifecycle event.
        let next = match role {
            Role::Subscriber => self.period(15_000, 45_000),
            Role::Slow(Slowness::Pauses) => self.period(10_000, 20_000),
            Role::Publisher => self.period(30_000, 90_000),
            _ => Duration::from_secs(3600),
        };
        let cl = &mut self.clients[i];
        cl.conn = Some(key);
        cl.phase = Phase::Online;
        cl.next_at = now + next;
        if role.is_attacker() {
            self.c.attack_opened[role.attack_index()] += 1;
            cl.attacks += 1;
        }
    }

    /// Leaves: DISCONNECT and wait for the broker's close (`graceful`), or just close the socket.
    fn leave(&mut self, i: usize, graceful: bool, now: Instant) {
        let Some(key) = self.clients[i].conn.take() else { return };
        if graceful {
            self.c.leaves_graceful += 1;
            if let Some(c) = slot(&mut self.conns, key) {
                codec::disconnect(&mut c.tx);
            }
            self.flush(key, now);
            if let Some(c) = slot(&mut self.conns, key) {
                let _ = c.stream.shutdown(Shutdown::Write);
                c.state = ConnState::Draining;
                c.deadline = Some(now + LINGER);
            }
        } else {
            self.c.leaves_abrupt += 1;
            self.drop_conn(key);
        }
    }

    /// A second connection with the same client id; the old one must be closed by the broker.
    fn takeover(&mut self, i: usize, now: Instant) {
        let Some(old) = self.clients[i].conn else { return };
        if let Some(c) = slot(&mut self.conns, old) {
            c.state = ConnState::Draining;
            c.takeover = true;
            c.deadline = Some(now + TAKEOVER_LIMIT);
        }
        self.c.takeovers += 1;
        let since = now.duration_since(self.t0).as_nanos() as u64;
        self.clients[i].offline_from_ns.get_or_insert(since);
        self.connect(i, now);
    }

    fn drop_conn(&mut self, key: usize) {
        if let Some(mut c) = self.conns.get_mut(key).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            if self.clients[c.owner].conn == Some(key) {
                self.clients[c.owner].conn = None;
            }
            self.free.push(key);
        }
    }

    /// The socket ended or failed. Expected for attackers and draining connections; an error for
    /// anyone else (who comes back a second later).
    fn closed(&mut self, key: usize, why: String, now: Instant) {
        let Some(c) = self.conns[key].as_ref() else { return };
        let (owner, state, takeover, opened) = (c.owner, c.state, c.takeover, c.opened);
        self.drop_conn(key);
        let role = self.clients[owner].role;
        if state == ConnState::Draining {
            self.c.takeovers_closed += u64::from(takeover);
            return;
        }
        if role.is_attacker() {
            let k = role.attack_index();
            let life = now.duration_since(opened);
            self.c.attack_closed[k] += 1;
            self.c.attack_lifetime_sum[k] += life;
            self.c.attack_lifetime_max[k] = self.c.attack_lifetime_max[k].max(life);
            self.went_offline(owner, now, Duration::from_secs(1));
            if self.ending {
                self.clients[owner].next_at = now + Duration::from_secs(3600);
            }
            return;
        }
        self.error(owner, format!("{why} (state {state:?})"));
        self.went_offline(owner, now, Duration::from_secs(1));
    }

    // ---------------------------------------------------------------------------------------
    // Bytes

    /// Bytes this connection may read now: `None` = no limit, `Some(0)` = paused.
    fn read_limit(&mut self, key: usize, now: Instant) -> Option<usize> {
        let ending = self.ending;
        let c = self.conns[key].as_mut()?;
        let cl = &self.clients[c.owner];
        if c.state == ConnState::Draining || ending {
            return None;
        }
        match cl.role {
            Role::Flood => Some(0),
            _ if cl.paused_until.is_some_and(|t| now < t) => Some(0),
            Role::Slow(Slowness::Trickle) if c.state == ConnState::Ready => {
                let dt = now.duration_since(c.refilled).as_secs_f64();
                c.refilled = now;
                c.allowance = (c.allowance + dt * TRICKLE_BPS).min(TRICKLE_BURST);
                Some(c.allowance as usize)
            }
            _ => None,
        }
    }

    fn read(&mut self, key: usize, now: Instant) {
        let mut scratch = std::mem::take(&mut self.scratch);
        self.read_with(key, &mut scratch, now);
        self.scratch = scratch;
    }

    fn read_with(&mut self, key: usize, scratch: &mut [u8], now: Instant) {
        loop {
            let limit = self.read_limit(key, now);
            let Some(c) = slot(&mut self.conns, key) else { return };
            if matches!(c.state, ConnState::Connecting) {
                return;
            }
            if limit == Some(0) {
                c.unread = true;
                return;
            }
            let want = limit.map_or(scratch.len(), |l| l.min(scratch.len()));
            let n = match c.stream.read(&mut scratch[..want]) {
                Ok(0) => return self.closed(key, "the broker closed the connection".into(), now),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.unread = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.closed(key, format!("read: {e}"), now),
            };
            if limit.is_some() {
                c.allowance -= n as f64;
                c.unread = true; // perhaps more: read again when the allowance allows
            }
            if matches!(c.state, ConnState::Draining | ConnState::Attacking) {
                continue; // dropped unread: not ours any more, or an attacker's
            }
            let mut rx = std::mem::take(&mut c.rx);
            let result = if rx.is_empty() {
                self.frames(key, &scratch[..n], now).map(|used| rx.extend_from_slice(&scratch[used..n]))
            } else {
                rx.extend_from_slice(&scratch[..n]);
                self.frames(key, &rx, now).map(|used| drop(rx.drain(..used)))
            };
            match slot(&mut self.conns, key) {
                Some(c) => c.rx = rx,
                None => return,
            }
            if let Err(why) = result {
                let owner = self.conns[key].as_ref().map_or(0, |c| c.owner);
                self.error(owner, why);
                self.drop_conn(key);
                self.went_offline(owner, now, Duration::from_secs(1));
                return;
            }
        }
    }

    /// Handles every whole frame at the front of `buf`; returns the bytes used.
    fn frames(&mut self, key: usize, buf: &[u8], now: Instant) -> Result<usize, String> {
        let mut used = 0;
        loop {
            let Some(c) = self.conns[key].as_ref() else { return Ok(buf.len()) };
            if !matches!(c.state, ConnState::AwaitConnAck | ConnState::AwaitSubAck | ConnState::Ready) {
                return Ok(buf.len());
            }
            match codec::decode(&buf[used..], c.version).map_err(|e| format!("malformed packet from the broker: {e}"))? {
                Some((packet, n)) => {
                    used += n;
                    self.on_packet(key, packet, now)?;
                }
                None => return Ok(used),
            }
        }
    }

    fn on_packet(&mut self, key: usize, packet: Packet<'_>, now: Instant) -> Result<(), String> {
        let Some(c) = self.conns[key].as_mut() else { return Ok(()) };
        let owner = c.owner;
        let cl = &mut self.clients[owner];
        match (c.state, packet) {
            (ConnState::AwaitConnAck, Packet::ConnAck { session_present, code, receive_max }) => {
                if code != 0 {
                    return Err(format!("CONNACK refused with code {code:#04x}"));
                }
                if cl.role.is_subscriber() && cl.sessions > 0 && !session_present {
                    return Err(format!("session lost: CONNACK without session present on reconnect #{}", cl.sessions));
                }
                cl.sessions += 1;
                cl.back_at_ns = now.duration_since(self.t0).as_nanos() as u64;
                self.c.connects += 1;
                match cl.role {
                    Role::Subscriber | Role::Slow(_) | Role::Probe => {
                        let qos = if cl.role == Role::Probe { 1 } else { 2 };
                        let filter = self.filter(&self.clients[owner]);
                        let Some(c) = self.conns[key].as_mut() else { return Ok(()) };
                        codec::subscribe(&mut c.tx, c.version, 1, &filter, qos);
                        c.state = ConnState::AwaitSubAck;
                    }
                    Role::Publisher => {
                        if let Some(p) = &mut cl.publishing {
                            p.window = PUB_WINDOW.min(receive_max.map_or(usize::MAX, usize::from)).max(1);
                            p.next_send = p.next_send.max(now);
                        }
                        c.state = ConnState::Ready;
                    }
                    Role::PartialFrame => {
                        partial_frame(&mut c.tx, cl.attacks);
                        c.state = ConnState::Attacking;
                    }
                    Role::Flood | Role::PartialConnect => c.state = ConnState::Attacking,
                }
            }
            (ConnState::AwaitSubAck, Packet::SubAck { pid: 1, codes }) => {
                let want = if cl.role == Role::Probe { 1 } else { 2 };
                if codes.first() != Some(&want) {
                    return Err(format!("SUBACK {codes:02x?}, wanted QoS {want}"));
                }
                c.state = ConnState::Ready;
                if cl.role == Role::Probe {
                    self.probe.sent = false; // (re)send the check in progress on this connection
                }
            }
            // A resumed session's messages may come before the SUBACK of the new SUBSCRIBE.
            (ConnState::AwaitSubAck | ConnState::Ready, Packet::Publish(p)) => {
                let stamp = Stamp::read(p.payload).ok_or_else(|| format!("PUBLISH of {} bytes without a soak header", p.payload.len()))?;
                match p.qos {
                    1 => codec::ack(&mut c.tx, Ack::PubAck, p.pid),
                    2 => codec::ack(&mut c.tx, Ack::PubRec, p.pid),
                    _ => {}
                }
                if cl.role == Role::Probe {
                    if stamp.publisher == PROBE_ID && stamp.seq == self.probe.seq && self.probe.started.is_some() && !self.probe.echoed {
                        self.probe.echoed = true;
                        let started = self.probe.started.unwrap_or(now);
                        self.probe.pub_rtt.record(now.duration_since(started).as_nanos() as u64);
                        self.probe_done(now);
                    }
                    return Ok(());
                }
                if !cl.role.is_subscriber() {
                    return Err("PUBLISH to a client that never subscribed".into());
                }
                if p.qos == 2 && !cl.inbound.on_qos2(p.pid) {
                    self.c.qos2_resends_absorbed += 1;
                    return Ok(());
                }
                let want_qos = (stamp.publisher % 3) as u8;
                if p.qos != want_qos {
                    return Err(format!("message of publisher {} delivered at QoS {}, published at QoS {want_qos}", stamp.publisher, p.qos));
                }
                if cl.tracker.record(stamp) != Arrival::Duplicate {
                    self.c.delivered[usize::from(p.qos)] += 1;
                    self.c.dup_flag_deliveries += u64::from(p.dup);
                }
                // Published while this subscriber was away, delivered after it came back.
                if let Some(from) = cl.offline_from_ns {
                    if stamp.sent_ns >= from && stamp.sent_ns < cl.back_at_ns {
                        self.c.offline_deliveries += 1;
                    } else if stamp.sent_ns >= cl.back_at_ns {
                        cl.offline_from_ns = None;
                    }
                }
            }
            (ConnState::AwaitSubAck | ConnState::Ready, Packet::Ack { kind: Ack::PubRel, pid, .. }) => {
                cl.inbound.on_pubrel(pid);
                codec::ack(&mut c.tx, Ack::PubComp, pid);
            }
            (ConnState::Ready, Packet::Ack { kind, pid, reason }) => {
                if reason >= 0x80 {
                    return Err(format!("{kind:?} for packet {pid} with failure reason {reason:#04x}"));
                }
                if cl.role == Role::Probe {
                    return if kind == Ack::PubAck { Ok(()) } else { Err(format!("unexpected {kind:?} to the probe")) };
                }
                let Some(p) = &mut cl.publishing else { return Err(format!("{kind:?} to a client that never published")) };
                match (kind, p.inflight.get(&pid).copied(), p.qos) {
                    (Ack::PubAck, Some((seq, false)), 1) | (Ack::PubComp, Some((seq, true)), 2) => {
                        p.inflight.remove(&pid);
                        p.completed.record(seq);
                        self.c.published[usize::from(p.qos)] += 1;
                    }
                    (Ack::PubRec, Some((seq, false)), 2) => {
                        p.inflight.insert(pid, (seq, true));
                        codec::ack(&mut c.tx, Ack::PubRel, pid);
                    }
                    (kind, state, _) => return Err(format!("unexpected {kind:?} for packet {pid} (in flight: {state:?})")),
                }
            }
            (_, Packet::PingResp) => {
                if cl.role == Role::Probe && self.probe.started.is_some() && !self.probe.pong {
                    self.probe.pong = true;
                    let started = self.probe.started.unwrap_or(now);
                    self.probe.ping_rtt.record(now.duration_since(started).as_nanos() as u64);
                    self.probe_done(now);
                }
            }
            (_, Packet::Disconnect { reason }) => return Err(format!("the broker sent DISCONNECT with reason {reason:#04x}")),
            (state, packet) => return Err(format!("unexpected {packet:?} in state {state:?}")),
        }
        Ok(())
    }

    /// Writes queued bytes until the socket would block.
    fn flush(&mut self, key: usize, now: Instant) {
        let Some(c) = slot(&mut self.conns, key) else { return };
        if c.state == ConnState::Connecting {
            return;
        }
        while c.tx_pos < c.tx.len() {
            match c.stream.write(&c.tx[c.tx_pos..]) {
                Ok(0) => return self.closed(key, "the socket took 0 bytes".into(), now),
                Ok(n) => {
                    c.tx_pos += n;
                    c.last_tx = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if c.state == ConnState::Draining {
                        return self.drop_conn(key);
                    }
                    return self.closed(key, format!("write: {e}"), now);
                }
            }
        }
        if c.tx_pos == c.tx.len() {
            c.tx.clear();
            c.tx_pos = 0;
        } else if c.tx_pos > TX_HIGH_WATER {
            c.tx.drain(..c.tx_pos);
            c.tx_pos = 0;
        }
    }

    // ---------------------------------------------------------------------------------------
    // Publishers, attackers, probe

    fn pump(&mut self, i: usize, now: Instant) {
        let Some(key) = self.clients[i].conn else { return };
        let Some(c) = self.conns[key].as_mut() else { return };
        let cl = &mut self.clients[i];
        let Some(p) = &mut cl.publishing else { return };
        if c.state != ConnState::Ready {
            return;
        }
        if cl.phase == Phase::Leaving {
            if p.inflight.is_empty() {
                self.c.publisher_cycles += 1;
                self.leave(i, true, now);
                let offline = self.rng.ms(200, 2000);
                self.went_offline(i, now, offline);
                self.clients[i].next_at = now + offline;
            }
            return;
        }
        let interval = Duration::from_secs_f64(1.0 / self.p.rate);
        if p.next_send + Duration::from_secs(1) < now {
            p.next_send = now; // no catch-up burst after time offline
        }
        while p.next_send <= now && c.tx.len() - c.tx_pos < TX_HIGH_WATER && (p.qos == 0 || p.inflight.len() < p.window) {
            let seq = p.sent;
            Stamp { publisher: p.id, seq, sent_ns: now.duration_since(self.t0).as_nanos() as u64 }.write(&mut self.payload);
            let pid = if p.qos > 0 { p.alloc_pid() } else { 0 };
            codec::publish(&mut c.tx, c.version, p.qos, false, pid, p.topic.as_bytes(), &self.payload);
            if p.qos > 0 {
                p.inflight.insert(pid, (seq, false));
            } else {
                p.completed.record(seq);
                self.c.published[0] += 1;
            }
            p.sent += 1;
            p.next_send += interval;
        }
        self.flush(key, now);
    }

    /// The flooder: PINGREQs at `--flood-rate` (token bucket), never reading.
    fn flood(&mut self, now: Instant) {
        let dt = now.duration_since(self.flood_refilled).as_secs_f64();
        self.flood_refilled = now;
        self.flood_budget = (self.flood_budget + dt * self.p.flood_rate).min(32_768.0);
        let keys: Vec<usize> = self.clients.iter().filter(|c| c.role == Role::Flood).filter_map(|c| c.conn).collect();
        for key in keys {
            let Some(c) = slot(&mut self.conns, key) else { continue };
            if c.state != ConnState::Attacking {
                continue;
            }
            let room = TX_HIGH_WATER.saturating_sub(c.tx.len() - c.tx_pos) / 2;
            let n = (self.flood_budget as usize).min(room);
            for _ in 0..n {
                codec::pingreq(&mut c.tx);
            }
            self.flood_budget -= n as f64;
            self.c.flood_pings += n as u64;
            self.flush(key, now);
        }
    }

    fn probe_tick(&mut self, now: Instant) {
        let owner = self.probe.owner;
        // Keep-alive for every well-behaved connection that has been quiet (not the probe: it
        // pings every second and matches each PINGRESP to its check).
        if now >= self.probe.next_check {
            for key in 0..self.conns.len() {
                let Some(c) = self.conns[key].as_mut() else { continue };
                let quiet = now.duration_since(c.last_tx) >= Duration::from_secs(u64::from(KEEP_ALIVE_S / 2));
                if quiet && c.state == ConnState::Ready && c.owner != owner {
                    codec::pingreq(&mut c.tx);
                    self.flush(key, now);
                }
            }
        }
        let p = &mut self.probe;
        if now >= p.next_check && p.started.is_none() {
            p.next_check = now + PROBE_EVERY;
            p.started = Some(now);
            p.seq += 1;
            (p.sent, p.pong, p.echoed, p.late_counted) = (false, false, false, false);
            p.checks += 1;
        }
        let Some(started) = p.started else { return };
        let waited = now.duration_since(started);
        p.longest_wait = p.longest_wait.max(waited);
        if waited > PROBE_LIMIT && !p.late_counted {
            p.late_counted = true;
            p.late += 1;
            let t = started.duration_since(self.t0).as_secs_f64();
            p.first_late.get_or_insert(t);
            eprintln!("soak: probe check #{} (t={t:.1}s) unanswered after {} s: ping {}, QoS 1 echo {}", p.seq, PROBE_LIMIT.as_secs(), if p.pong { "back" } else { "missing" }, if p.echoed { "back" } else { "missing" });
        }
        if waited > self.p.stall_abort && self.stall_abort.is_none() {
            let t = started.duration_since(self.t0).as_secs_f64();
            self.stall_abort = Some(format!("broker stalled: the probe check sent at t={t:.1}s was unanswered for {} s (PINGRESP {}, QoS 1 echo {}); run ended early", self.p.stall_abort.as_secs(), if p.pong { "came" } else { "missing" }, if p.echoed { "came" } else { "missing" }));
        }
        if p.sent {
            return;
        }
        let Some(key) = self.clients[owner].conn else { return };
        let Some(c) = self.conns[key].as_mut() else { return };
        if c.state != ConnState::Ready {
            return;
        }
        p.sent = true;
        if !p.pong {
            codec::pingreq(&mut c.tx);
        }
        if !p.echoed {
            Stamp { publisher: PROBE_ID, seq: p.seq, sent_ns: now.duration_since(self.t0).as_nanos() as u64 }.write(&mut self.payload);
            p.next_pid = p.next_pid.wrapping_add(1).max(1);
            let topic = format!("{}/probe", self.prefix);
            codec::publish(&mut c.tx, c.version, 1, false, p.next_pid, topic.as_bytes(), &self.payload);
        }
        self.flush(key, now);
    }

    fn probe_done(&mut self, now: Instant) {
        let p = &mut self.probe;
        if p.pong && p.echoed {
            if let Some(started) = p.started.take() {
                let waited = now.duration_since(started);
                p.longest_wait = p.longest_wait.max(waited);
                p.stalled += waited.saturating_sub(PROBE_LIMIT);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // The end

    /// Publishers stop; attackers close; everyone else comes back (offline ones reconnect, pauses
    /// end) and catches up. True once every publisher's flows completed, every subscriber is
    /// connected and no QoS 1/2 message is missing; false after [`DRAIN_LIMIT`] (then `account`
    /// shows what is missing).
    fn drain(&mut self) -> bool {
        self.publishing = false;
        self.ending = true;
        let now = Instant::now();
        let keys: Vec<usize> = self.clients.iter().filter(|c| c.role.is_attacker()).filter_map(|c| c.conn).collect();
        for key in keys {
            self.drop_conn(key);
        }
        for cl in &mut self.clients {
            cl.paused_until = None;
            if cl.role.is_attacker() {
                cl.phase = Phase::Offline;
                cl.next_at = now + Duration::from_secs(3600);
            }
        }
        let deadline = now + DRAIN_LIMIT;
        let mut last_check = Instant::now() - Duration::from_secs(1);
        let mut complete = false;
        self.run_until(deadline, |s| {
            if last_check.elapsed() < Duration::from_millis(500) {
                return false;
            }
            last_check = Instant::now();
            let flows_done = s.clients.iter().filter_map(|c| c.publishing.as_ref()).all(|p| p.inflight.is_empty());
            let all_back = s.clients.iter().filter(|c| c.role.is_subscriber()).all(|c| s.is_ready(c));
            let acc = s.account();
            complete = flows_done && all_back && acc.loss[1] == 0 && acc.loss[2] == 0;
            complete
        });
        complete
    }

    fn account(&self) -> Accounts {
        let mut a = Accounts::default();
        let pubs: Vec<&Publishing> = self.clients.iter().filter_map(|c| c.publishing.as_ref()).collect();
        for cl in self.clients.iter().filter(|c| c.role.is_subscriber()) {
            for p in pubs.iter().filter(|p| (p.id / 3) as usize == cl.group) {
                let q = usize::from(p.qos);
                let empty = Flow::default();
                let got = cl.tracker.flows.get(&p.id).unwrap_or(&empty);
                let missing = p.completed.missing_from(got);
                a.expected[q] += p.completed.unique;
                a.loss[q] += missing;
                a.dups[q] += got.dups;
                a.reorders += got.reorders;
                if q > 0 && matches!(cl.role, Role::Slow(_)) {
                    a.loss_slow += missing;
                }
            }
            for (id, f) in &cl.tracker.flows {
                if (*id / 3) as usize != cl.group {
                    a.strays += f.unique;
                }
            }
        }
        a
    }

    /// DISCONNECT everyone (MQTT 5 persistent sessions end theirs), wait for the broker's closes
    /// (at most [`LINGER`]), then drop every socket.
    fn teardown(&mut self) {
        self.ending = true;
        let now = Instant::now();
        for i in 0..self.clients.len() {
            let cl = &mut self.clients[i];
            cl.phase = Phase::Offline;
            cl.next_at = now + Duration::from_secs(3600);
            let Some(key) = cl.conn.take() else { continue };
            let (role, ready) = (cl.role, self.conns[key].as_ref().is_some_and(|c| c.state == ConnState::Ready));
            if !ready || role.is_attacker() {
                self.drop_conn(key);
                continue;
            }
            if let Some(c) = slot(&mut self.conns, key) {
                if role.is_subscriber() && c.version == Version::V5 {
                    codec::disconnect_ending_session(&mut c.tx);
                } else {
                    codec::disconnect(&mut c.tx);
                }
            }
            self.flush(key, now);
            if let Some(c) = slot(&mut self.conns, key) {
                let _ = c.stream.shutdown(Shutdown::Write);
                c.state = ConnState::Draining;
                c.deadline = Some(now + LINGER);
            }
        }
        self.run_until(now + LINGER + Duration::from_millis(100), |s| s.conns.iter().all(Option::is_none));
        for key in 0..self.conns.len() {
            self.drop_conn(key);
        }
    }

    fn progress(&self, t: Duration, rss: Option<u64>, fds: Option<usize>) -> String {
        let open = self.conns.iter().flatten().count();
        let d = self.c.delivered;
        format!(
            "soak t={}s conns={open} published={}/{}/{} delivered={}/{}/{} probe_late={} probe_max_ms={} takeovers={} attacks_closed={}/{}/{} rss_kib={} fds={} errors={}",
            t.as_secs(),
            self.c.published[0],
            self.c.published[1],
            self.c.published[2],
            d[0],
            d[1],
            d[2],
            self.probe.late,
            self.probe.longest_wait.as_millis(),
            self.c.takeovers,
            self.c.attack_closed[0],
            self.c.attack_closed[1],
            self.c.attack_closed[2],
            rss.map_or("n/a".into(), |v| v.to_string()),
            fds.map_or("n/a".into(), |v| v.to_string()),
            self.c.errors
        )
    }

    fn report(&self, r: &mut Report, a: &Accounts, run_s: f64) {
        let c = &self.c;
        r.set("run_s", format!("{run_s:.1}"));
        for (q, key) in ["published_q0", "published_q1", "published_q2"].iter().enumerate() {
            r.set(key, c.published[q]);
        }
        for (q, key) in ["delivered_q0", "delivered_q1", "delivered_q2"].iter().enumerate() {
            r.set(key, c.delivered[q]);
        }
        for (q, key) in ["expected_q0", "expected_q1", "expected_q2"].iter().enumerate() {
            r.set(key, a.expected[q]);
        }
        r.set("loss_q0", a.loss[0]);
        r.set("loss_q1", a.loss[1]);
        r.set("loss_q2", a.loss[2]);
        r.set("loss_slow", a.loss_slow);
        r.set("dups_q1", a.dups[1]);
        r.set("dups_q2", a.dups[2]);
        r.set("reorders", a.reorders);
        r.set("strays", a.strays);
        r.set("offline_deliveries", c.offline_deliveries);
        r.set("redeliveries", c.dup_flag_deliveries);
        r.set("qos2_resends", c.qos2_resends_absorbed);
        r.set("connects", c.connects);
        r.set("leaves", format!("{}/{}", c.leaves_graceful, c.leaves_abrupt));
        r.set("takeovers", c.takeovers);
        r.set("takeovers_closed", c.takeovers_closed);
        r.set("publisher_cycles", c.publisher_cycles);
        r.set("pauses", c.pauses);
        let ms = |ns: u64| format!("{:.1}", ns as f64 / 1e6);
        let p = &self.probe;
        r.set("probe_checks", p.checks);
        r.set("probe_late", p.late);
        r.set("probe_ping_p99_ms", ms(p.ping_rtt.quantile(0.99)));
        r.set("probe_ping_max_ms", ms(p.ping_rtt.max));
        r.set("probe_pub_p99_ms", ms(p.pub_rtt.quantile(0.99)));
        r.set("probe_pub_max_ms", ms(p.pub_rtt.max));
        r.set("probe_longest_wait_ms", p.longest_wait.as_millis());
        let unfinished = p.started.map_or(Duration::ZERO, |t| t.elapsed().saturating_sub(PROBE_LIMIT));
        r.set("probe_stalled_s", format!("{:.1}", (p.stalled + unfinished).as_secs_f64()));
        r.set("flood_pings", c.flood_pings);
        for (k, key) in ATTACKS.iter().enumerate() {
            let closed = c.attack_closed[k];
            let mean = if closed > 0 { c.attack_lifetime_sum[k].as_secs_f64() / closed as f64 } else { 0.0 };
            let max = c.attack_lifetime_max[k].as_secs_f64();
            r.set(key, format!("opened:{}/closed_by_broker:{closed}/mean_life_s:{mean:.1}/max_life_s:{max:.1}", c.attack_opened[k]));
        }
        r.set("errors", c.errors);

        if a.loss[1] + a.loss[2] > 0 {
            r.failures.push(format!("{} of {} QoS 1 and {} of {} QoS 2 messages lost by persistent subscribers ({} of them slow readers)", a.loss[1], a.expected[1], a.loss[2], a.expected[2], a.loss_slow));
        }
        if a.dups[2] > 0 {
            r.failures.push(format!("{} duplicates at QoS 2 (exactly once)", a.dups[2]));
        }
        if a.strays > 0 {
            r.failures.push(format!("{} messages reached a subscriber whose filter does not match", a.strays));
        }
        if p.late > 0 {
            r.failures.push(format!(
                "stall: {} of {} probe checks took more than {} s (first at t={:.1}s, longest wait {:.1} s)",
                p.late,
                p.checks,
                PROBE_LIMIT.as_secs(),
                p.first_late.unwrap_or(0.0),
                p.longest_wait.as_secs_f64()
            ));
        }
    }

    /// Errors of well-behaved clients, last among the failures (they are often consequences).
    fn report_errors(&self, r: &mut Report) {
        if self.c.errors > 0 {
            r.failures.push(format!("{} errors of well-behaved clients (refused, disconnected or answered wrongly by the broker); the first:", self.c.errors));
            r.failures.extend(self.c.first_errors.iter().map(|e| format!("  {e}")));
        }
    }
}

/// The connection in slot `key`, if open (a free function, so the other fields stay borrowable).
fn slot(conns: &mut [Option<Conn>], key: usize) -> Option<&mut Conn> {
    conns.get_mut(key).and_then(Option::as_mut)
}

/// A client socket with a small receive buffer (set before connecting, so the window is small
/// from the start), connecting without blocking.
fn small_window_stream(addr: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_recv_buffer_size(FLOOD_RCVBUF)?;
    s.set_nonblocking(true)?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(s.into()))
}

/// The start of a frame that never ends, by variant: a PUBLISH announcing 200,000 bytes (within
/// the default maximum packet size, more than a buffer), a SUBSCRIBE announcing 3,000 (fits a
/// buffer), a PUBLISH announcing 2 MB (over the maximum: a broker may refuse it from the header).
pub fn partial_frame(out: &mut Vec<u8>, variant: u32) {
    let (first, announced) = match variant % 3 {
        0 => (0x32, 200_000),
        1 => (0x82, 3_000),
        _ => (0x30, 2_000_000),
    };
    out.push(first);
    codec::put_varint(out, announced);
    out.extend_from_slice(&[0x00, 0x05, b's', b'o', b'a', b'k', b'/', 0x00, 0x01]);
}

pub(crate) mod tests {
    use super::*;

    crate::unit_tests! {
        fn the_default_mix_is_500_clients_with_three_publishers_per_group() {
            let m = Mix::of(500).unwrap();
            let total = m.subscribers + m.slow + m.publishers + m.flood + m.partial_frame + m.partial_connect + m.probe;
            assert_eq!(total, 500);
            assert_eq!((m.publishers, m.slow, m.partial_frame, m.partial_connect, m.flood, m.probe), (60, 25, 8, 4, 1, 1));
            assert_eq!(m.groups(), 20);
            assert!(Mix::of(39).is_err());
            let small = Mix::of(40).unwrap();
            assert!(small.subscribers > 0 && small.publishers % 3 == 0);
        }

        fn the_default_backlog_stays_well_inside_the_default_queue_bound() {
            assert!(Mix::backlog(5.0) <= 100, "{}", Mix::backlog(5.0));
        }

        fn a_qos2_resend_before_pubrel_is_not_delivered_again() {
            let mut s = Inbound::default();
            assert!(s.on_qos2(7), "first arrival is a delivery");
            assert!(!s.on_qos2(7), "resend (DUP) before PUBREL is absorbed");
            s.on_pubrel(7);
            assert!(s.on_qos2(7), "after PUBREL the packet id is free: a new message");
            s.on_pubrel(9); // unknown: harmless
        }

        fn rss_windows_compare_the_window_after_warm_up_with_the_last() {
            // 600 s run: window 60 s, warm-up 90 s, first window 90..150, last 540..600.
            let samples: Vec<(f64, u64)> = (0..600).map(|t| (t as f64, if t < 90 { 1000 } else if t >= 540 { 1100 } else { 2000 })).collect();
            let (first, last, w, warm) = rss_windows(&samples, 600.0, pace(Duration::from_secs(600))).unwrap();
            assert_eq!((first, last, w, warm), (2000.0, 1100.0, 60.0, 90.0));
            // 60 s run: window 6 s, warm-up 22.5 s (lifecycle four times faster).
            let samples: Vec<(f64, u64)> = (0..60).map(|t| (t as f64, 100 + t)).collect();
            let (first, last, w, warm) = rss_windows(&samples, 60.0, pace(Duration::from_secs(60))).unwrap();
            assert_eq!((w, warm), (6.0, 22.5));
            assert_eq!(first, 125.5); // mean of 123..=128
            assert_eq!(last, 156.5); // mean of 154..=159
            assert_eq!(rss_windows(&[], 60.0, 1.0), None);
        }

        fn the_lifecycle_runs_faster_in_short_soaks_only() {
            assert_eq!(pace(Duration::from_secs(600)), 1.0);
            assert_eq!(pace(Duration::from_secs(3600)), 1.0);
            assert_eq!(pace(Duration::from_secs(300)), 0.5);
            assert_eq!(pace(Duration::from_secs(60)), 0.25);
        }

        fn partial_frames_announce_more_than_they_send() {
            for variant in 0..3 {
                let mut out = Vec::new();
                partial_frame(&mut out, variant);
                // The broker side sees a header for a frame much longer than what follows.
                let decoded = crate::codec::decode(&out, Version::V4);
                assert!(matches!(decoded, Ok(None) | Err(_)), "variant {variant}: {decoded:?}");
                assert!(out.len() < 16);
            }
        }

        fn the_rng_is_reproducible_and_stays_in_range() {
            let (mut a, mut b) = (Rng::new(1), Rng::new(1));
            for _ in 0..1000 {
                let (x, y) = (a.ms(200, 3000), b.ms(200, 3000));
                assert_eq!(x, y);
                assert!(x >= Duration::from_millis(200) && x <= Duration::from_millis(3000));
            }
        }
    }
}
