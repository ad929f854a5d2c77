//! The benchmark scenarios. Each builds connections on an [`Engine`], runs it to a stop condition
//! under one hard deadline (`--timeout` for the whole scenario), and returns a [`Report`]: the
//! measurements plus the reasons the run failed, if any.
//!
//! Topics live under `lg/<generator pid>/` so runs against a long-lived broker do not see each
//! other's messages.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::engine::{Engine, Publisher, Subscriber, Topic};
use crate::stats::Totals;
use crate::sys;

pub use crate::params::{Params, Report, Scenario};

pub fn run(p: &Params) -> Report {
    let broker = p.broker_pid.map(|pid| pid.to_string());
    let cpu = |pid: &Option<String>| pid.as_deref().and_then(sys::cpu_seconds);
    let (gen0, broker0, wall0) = (sys::cpu_seconds("self"), cpu(&broker), Instant::now());
    let mut r = Report::default();
    let result = match p.scenario {
        Scenario::Connections => connections(p, &mut r),
        Scenario::Retained => retained(p, &mut r),
        Scenario::Soak => crate::soak::run(p, &mut r),
        _ => pubsub(p, &mut r),
    };
    if let Err(e) = result {
        r.failures.push(e);
    }
    let wall = wall0.elapsed().as_secs_f64();
    r.secs("wall_s", wall);
    if let (Some(a), Some(b)) = (gen0, sys::cpu_seconds("self")) {
        r.secs("gen_cpu_s", b - a);
        // One mio thread: near 100% of a core means the generator, not the broker, set the pace.
        if (b - a) / wall > 0.9 {
            eprintln!("warning: the generator used {:.0}% of a core; it may be the bottleneck", 100.0 * (b - a) / wall);
        }
    }
    if let Some(pid) = &broker {
        if let (Some(a), Some(b)) = (broker0, cpu(&broker)) {
            r.secs("broker_cpu_s", b - a);
        }
        r.set("broker_rss_kib", sys::status_kib(pid, "VmRSS").map_or("n/a".into(), |v| v.to_string()));
        r.set("broker_hwm_kib", sys::status_kib(pid, "VmHWM").map_or("n/a".into(), |v| v.to_string()));
    }
    r
}

fn client_id(i: usize) -> String {
    format!("lg{}c{i}", std::process::id() % 100_000)
}

fn prefix() -> String {
    format!("lg/{}", std::process::id())
}

/// Runs `engine` until `want` connections are ready; errors name the phase.
fn await_ready(e: &mut Engine, want: usize, deadline: Instant, phase: &str) -> Result<(), String> {
    if e.run_until(deadline, |e| e.shared.ready >= want || e.shared.errors > 0) && e.shared.errors == 0 {
        return Ok(());
    }
    Err(format!("{phase}: {} of {want} connections ready", e.shared.ready))
}

fn split(total: u32, parts: u32, i: u32) -> u32 {
    total / parts + u32::from(i < total % parts)
}

/// fanin, fanout, pairs and latency: subscribers first, then publishers, then publish and account.
fn pubsub(p: &Params, r: &mut Report) -> Result<(), String> {
    let deadline = Instant::now() + p.timeout;
    let pre = prefix();
    let m = p.messages;
    // (subscriber id, filter), (publisher id, topic, count), (subscriber, publisher) routes.
    let mut subs: Vec<(u32, String)> = Vec::new();
    let mut pubs: Vec<(u32, String, u32)> = Vec::new();
    let mut routes: Vec<(u32, u32)> = Vec::new();
    let mut same_conn = false;
    match p.scenario {
        Scenario::FanIn => {
            subs.push((0, format!("{pre}/fanin/+")));
            for i in 0..p.fanin_publishers {
                pubs.push((i, format!("{pre}/fanin/{i}"), split(m, p.fanin_publishers, i)));
                routes.push((0, i));
            }
        }
        Scenario::FanOut | Scenario::Latency => {
            let n = if p.scenario == Scenario::FanOut { p.fanout_subscribers } else { 1 };
            pubs.push((0, format!("{pre}/{}", p.scenario.name()), m));
            for i in 0..n {
                subs.push((i, format!("{pre}/{}", p.scenario.name())));
                routes.push((i, 0));
            }
        }
        Scenario::Pairs | Scenario::PairsSplit => {
            same_conn = p.scenario == Scenario::Pairs;
            for i in 0..p.clients {
                subs.push((i, format!("{pre}/pairs/{i}")));
                pubs.push((i, format!("{pre}/pairs/{i}"), split(m, p.clients, i)));
                routes.push((i, i));
            }
        }
        Scenario::Connections | Scenario::Retained | Scenario::Soak => unreachable!("not a pub/sub scenario"),
    }
    r.set("publishers", pubs.len());
    r.set("subscribers", subs.len());

    let mut e = Engine::new(p.settings).map_err(|e| format!("poll: {e}"))?;
    let connect = |e: std::io::Error| format!("connect to {}: {e}", p.settings.addr);
    let make_pub = |(id, topic, n): &(u32, String, u32)| {
        let mut publ = Publisher::new(*id, Topic::Fixed(topic.clone()), *n);
        publ.rate = (p.scenario == Scenario::Latency).then_some(p.rate);
        publ
    };
    let mut sub_conn = Vec::new();
    for (i, (_, filter)) in subs.iter().enumerate() {
        let publ = same_conn.then(|| make_pub(&pubs[i]));
        sub_conn.push(e.add(client_id(i), publ, Some(Subscriber::new(filter.clone()))).map_err(connect)?);
    }
    await_ready(&mut e, subs.len(), deadline, "subscribers")?;
    let mut pub_conn: Vec<usize> = if same_conn { sub_conn.clone() } else { Vec::new() };
    if !same_conn {
        for (i, pl) in pubs.iter().enumerate() {
            pub_conn.push(e.add(client_id(subs.len() + i), Some(make_pub(pl)), None).map_err(connect)?);
        }
    }
    let all = e.conns.len();
    await_ready(&mut e, all, deadline, "publishers")?;

    let t0 = e.go();
    let satisfied = |e: &Engine| {
        routes.iter().all(|&(s, pb)| {
            let (sub, publ) = (&e.conns[sub_conn[s as usize]], &e.conns[pub_conn[pb as usize]]);
            let (Some(sub), Some(publ)) = (&sub.subscriber, &publ.publisher) else { return true };
            sub.tracker.unique_from(publ.id) >= u64::from(publ.completed)
        })
    };
    let pubs_finished = |e: &Engine| pub_conn.iter().filter_map(|&i| e.conns[i].publisher.as_ref()).map(|p| p.finished_at).collect::<Option<Vec<_>>>();
    let finished = e.run_until(deadline, |e| {
        if e.shared.errors > 0 {
            return true;
        }
        let Some(done_at) = pubs_finished(e) else { return false };
        let last = done_at.into_iter().chain(e.shared.last_delivery).max().unwrap_or(t0);
        satisfied(e) || last.elapsed() > p.drain
    });
    let pub_end = pubs_finished(&e).and_then(|v| v.into_iter().max());
    let end = pub_end.into_iter().chain(e.shared.last_delivery).max().unwrap_or_else(Instant::now);
    let elapsed = end.duration_since(t0).as_secs_f64();
    e.shutdown();
    if !finished {
        r.failures.push(format!("hard timeout of {:?} reached before all messages were published and delivered", p.timeout));
    }

    let published: u64 = pub_conn.iter().filter_map(|&i| e.conns[i].publisher.as_ref()).map(|p| u64::from(p.completed)).sum();
    let mut totals = Totals::default();
    for (s, &ci) in sub_conn.iter().enumerate() {
        let Some(sub) = &e.conns[ci].subscriber else { continue };
        let routed: Vec<(u32, u64)> = routes
            .iter()
            .filter(|(rs, _)| *rs as usize == s)
            .filter_map(|&(_, pb)| e.conns[pub_conn[pb as usize]].publisher.as_ref())
            .map(|p| (p.id, u64::from(p.completed)))
            .collect();
        totals.add(&sub.tracker, &routed);
    }
    r.set("published", published);
    r.set("delivered", e.shared.delivered);
    r.set("expected", totals.expected);
    r.secs("elapsed_s", elapsed);
    r.rate("msgs_per_s", published as f64, elapsed);
    r.rate("deliveries_per_s", e.shared.delivered as f64, elapsed);
    if let Some(end) = pub_end.filter(|_| p.scenario == Scenario::Latency) {
        r.rate("achieved_rate", published as f64, end.duration_since(t0).as_secs_f64());
    }
    account(p, r, &e, totals);
    Ok(())
}

/// Loss, duplicate and reorder counts, latency quantiles and the pass/fail rules.
fn account(p: &Params, r: &mut Report, e: &Engine, t: Totals) {
    let qos = p.settings.qos;
    r.set("loss", t.loss);
    r.set("dups", t.dups);
    r.set("reorders", t.reorders);
    r.set("strays", t.strays);
    // A retained message's "latency" is its age, not a delivery time: leave it out.
    if p.scenario != Scenario::Retained {
        let h = &e.shared.latency;
        for (key, q) in [("p50_us", 0.5), ("p99_us", 0.99), ("p999_us", 0.999)] {
            r.set(key, format!("{:.0}", h.quantile(q) as f64 / 1e3));
        }
        r.set("max_us", format!("{:.0}", h.max as f64 / 1e3));
    }
    r.set("errors", e.shared.errors);
    r.failures.extend(e.shared.first_errors.iter().cloned());
    if qos >= 1 && t.loss > 0 {
        r.failures.push(format!("{} of {} messages lost at QoS {qos}", t.loss, t.expected));
    }
    if qos == 2 && t.dups > 0 {
        r.failures.push(format!("{} duplicates at QoS 2 (exactly once)", t.dups));
    }
    if t.strays > 0 {
        r.failures.push(format!("{} messages reached a subscriber whose filter does not match", t.strays));
    }
}

/// Opens `clients` idle connections, measures the connect rate and the broker's RSS per connection.
fn connections(p: &Params, r: &mut Report) -> Result<(), String> {
    let deadline = Instant::now() + p.timeout;
    let n = p.clients as usize;
    let limit = sys::raise_nofile(n as u64 + 256)?;
    r.set("nofile", limit);
    let rss = || p.broker_pid.and_then(|pid| sys::status_kib(&pid.to_string(), "VmRSS"));
    let rss_before = rss();
    let mut e = Engine::new(p.settings).map_err(|e| format!("poll: {e}"))?;
    const CONCURRENT: usize = 200;
    let t0 = Instant::now();
    while e.conns.len() < n && e.shared.errors == 0 {
        let pending = e.conns.len() - e.shared.ready;
        for _ in pending..CONCURRENT.min(pending + n - e.conns.len()) {
            e.add(client_id(e.conns.len()), None, None).map_err(|err| format!("connect #{}: {err}", e.conns.len()))?;
        }
        let added = e.conns.len();
        if !e.run_until(deadline, |e| added - e.shared.ready < CONCURRENT / 2 || e.shared.errors > 0) {
            break;
        }
    }
    let all = e.run_until(deadline, |e| e.shared.ready >= n || e.shared.errors > 0);
    let connect_s = t0.elapsed().as_secs_f64();
    let connected = e.shared.ready;
    r.set("clients", n);
    r.set("connected", connected);
    r.secs("connect_s", connect_s);
    r.rate("connect_per_s", connected as f64, connect_s);
    // Let the broker settle (and keep the loop serving) before sampling its memory.
    e.run_until(Instant::now() + Duration::from_secs(1), |e| e.shared.errors > 0);
    if let (Some(before), Some(after)) = (rss_before, rss()) {
        r.set("rss_before_kib", before);
        r.set("rss_after_kib", after);
        r.set("rss_per_conn_b", format!("{:.0}", (after.saturating_sub(before) * 1024) as f64 / connected.max(1) as f64));
    }
    e.shutdown();
    r.set("errors", e.shared.errors);
    r.failures.extend(e.shared.first_errors.iter().cloned());
    if !all || connected < n {
        r.failures.push(format!("only {connected} of {n} clients connected before the deadline"));
    }
    Ok(())
}

/// Publishes `messages` retained messages on distinct topics, then times their delivery to a new
/// `PREFIX/ret/#` subscriber.
fn retained(p: &Params, r: &mut Report) -> Result<(), String> {
    let deadline = Instant::now() + p.timeout;
    let root = format!("{}/ret", prefix());
    let n = p.messages;
    let mut e = Engine::new(p.settings).map_err(|e| format!("poll: {e}"))?;
    let mut publ = Publisher::new(0, Topic::Tree(root.clone()), n);
    publ.retain = true;
    let pc = e.add(client_id(0), Some(publ), None).map_err(|err| format!("connect: {err}"))?;
    await_ready(&mut e, 1, deadline, "publisher")?;
    let t0 = e.go();
    let published = e.run_until(deadline, |e| e.shared.errors > 0 || e.conns[pc].publisher.as_ref().is_some_and(|p| p.is_done()));
    // A PINGRESP comes after the broker has read every PUBLISH before it (QoS 0 has no acks).
    e.ping(pc);
    let ponged = published && e.run_until(deadline, |e| e.shared.errors > 0 || e.conns[pc].pongs > 0);
    let publish_s = t0.elapsed().as_secs_f64();
    r.set("published", n);
    r.secs("publish_s", publish_s);
    r.rate("msgs_per_s", f64::from(n), publish_s);
    if !ponged || e.shared.errors > 0 {
        r.failures.extend(e.shared.first_errors.iter().cloned());
        return Err("retained messages were not all published before the deadline".into());
    }

    let t1 = Instant::now();
    let sc = e.add(client_id(1), None, Some(Subscriber::new(format!("{root}/#")))).map_err(|err| format!("connect: {err}"))?;
    let unique = |e: &Engine| e.conns[sc].subscriber.as_ref().map_or(0, |s| s.tracker.unique_from(0));
    let finished = e.run_until(deadline, |e| {
        let idle_since = e.shared.last_delivery.unwrap_or(t1);
        e.shared.errors > 0 || unique(e) >= u64::from(n) || idle_since.elapsed() > p.drain.max(Duration::from_secs(5))
    });
    let retained_s = e.shared.last_delivery.unwrap_or_else(Instant::now).duration_since(t1).as_secs_f64();
    e.shutdown();
    let sub = e.conns[sc].subscriber.as_ref().ok_or("subscriber vanished")?;
    let mut totals = Totals::default();
    totals.add(&sub.tracker, &[(0, u64::from(n))]);
    totals.reorders = 0; // retained messages come in topic-tree order, not publish order
    r.set("delivered", e.shared.delivered);
    r.secs("retained_s", retained_s);
    r.secs("elapsed_s", retained_s);
    r.rate("deliveries_per_s", e.shared.delivered as f64, retained_s);
    if sub.retained_flags != sub.delivered {
        r.failures.push(format!("{} of {} deliveries lacked the RETAIN flag [MQTT-3.3.1-8]", sub.delivered - sub.retained_flags, sub.delivered));
    }
    if !finished {
        r.failures.push("hard timeout reached before all retained messages were delivered".into());
    }
    account(p, r, &e, totals);
    // Retained delivery may legitimately drop QoS 0 messages only; `account` already fails QoS >= 1.
    Ok(())
}

/// The broker's address: always loopback.
pub fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
