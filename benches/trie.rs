//! Subscription trie and retained index benchmarks, plain std (run: `cargo bench --bench trie`).
//!
//! Filters are drawn from a `site{s}/dev{d}/{metric}` space (12 metrics, so leaf fan-out straddles
//! the Vec/HashMap switch) with a wildcard mix: 70 % exact, 10 % `s/+/m`, 10 % `s/d/#`,
//! 5 % `+/d/m`, 5 % `s/#`. Topics are drawn from the same space.

use std::hint::black_box;
use std::time::Instant;

use edgemq::topics::{Hit, Retained, Trie};

const METRICS: [&str; 12] =
    ["temp", "hum", "press", "co2", "lux", "volt", "amp", "rssi", "snr", "batt", "state", "fw"];

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as usize % n
    }
}

struct Space {
    sites: usize,
    devs: usize,
}

impl Space {
    fn topic(&self, r: &mut Rng) -> String {
        format!("site{}/dev{}/{}", r.below(self.sites), r.below(self.devs), METRICS[r.below(METRICS.len())])
    }

    fn filter(&self, r: &mut Rng) -> String {
        let (s, d, m) = (r.below(self.sites), r.below(self.devs), METRICS[r.below(METRICS.len())]);
        match r.below(100) {
            0..=69 => format!("site{s}/dev{d}/{m}"),
            70..=79 => format!("site{s}/+/{m}"),
            80..=89 => format!("site{s}/dev{d}/#"),
            90..=94 => format!("+/dev{d}/{m}"),
            _ => format!("site{s}/#"),
        }
    }
}

fn report(what: &str, n: usize, secs: f64, extra: &str) {
    let ns = secs * 1e9 / n as f64;
    println!("{what:<44} {ns:>9.1} ns/op {:>12.0} ops/s  {extra}", n as f64 / secs);
}

/// On-CPU time of this thread in seconds (Linux `/proc/thread-self/schedstat`), so that numbers
/// taken on a loaded, shared machine are not inflated by waiting for a core. `None` elsewhere.
fn cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<u64>().ok()? as f64 / 1e9)
}

/// Runs `round` `ROUNDS` times and keeps the fastest (on-CPU time where the OS tells it, wall
/// time otherwise).
fn best_of(mut round: impl FnMut()) -> f64 {
    const ROUNDS: usize = 7;
    (0..ROUNDS)
        .map(|_| {
            let (t0, c0) = (Instant::now(), cpu_secs());
            round();
            match (c0, cpu_secs()) {
                (Some(a), Some(b)) => b - a,
                _ => t0.elapsed().as_secs_f64(),
            }
        })
        .fold(f64::INFINITY, f64::min)
}

fn bench_match(filters: usize, space: &Space) {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15 ^ filters as u64);
    let mut trie: Trie<u32, u8> = Trie::new();
    let mut list = Vec::with_capacity(filters);
    let t0 = Instant::now();
    for k in 0..filters {
        let f = space.filter(&mut r);
        trie.insert(&f, k as u32, 1);
        list.push(f);
    }
    report(&format!("insert {filters} filters"), filters, t0.elapsed().as_secs_f64(), "");
    println!("  nodes: {}", trie.node_count());

    let topics: Vec<String> = (0..4096).map(|_| space.topic(&mut r)).collect();
    let iters = 200_000;
    // Warm the stack.
    trie.for_each_match(&topics[0], |_| {});
    let mut hits = 0usize;
    let secs = best_of(|| {
        hits = 0;
        for i in 0..iters {
            trie.for_each_match(black_box(&topics[i & 4095]), |h| {
                if let Hit::Sub(k, v) = h {
                    hits += black_box(k as usize + *v as usize) & 1 | 1;
                }
            });
        }
    });
    let per = hits as f64 / iters as f64;
    report(
        &format!("match, {filters} filters"),
        iters,
        secs,
        &format!("({per:.1} hits/match, {:.1} ns/hit)", secs * 1e9 / hits as f64),
    );

    // Churn: unsubscribe one filter, subscribe another (half fresh, half already present), with
    // the trie at full size. Filters are generated before timing.
    let ops = 50_000;
    let fresh: Vec<(usize, String)> = (0..ops)
        .map(|i| {
            let k = r.below(filters);
            (k, if i % 2 == 0 { space.filter(&mut r) } else { list[r.below(filters)].clone() })
        })
        .collect();
    let mut cur: Vec<&str> = list.iter().map(String::as_str).collect();
    let secs = best_of(|| {
        for (k, f) in &fresh {
            trie.remove(cur[*k], *k as u32);
            trie.insert(f, *k as u32, 1);
            cur[*k] = f;
        }
    });
    report(&format!("churn (remove+insert), {filters} filters"), ops, secs, "");
    println!("  nodes: {}, entries: {}", trie.node_count(), trie.len());
}

fn bench_retained(topics: usize, space: &Space) {
    let mut r = Rng(7);
    let mut ret: Retained<u32> = Retained::new();
    for i in 0..topics {
        ret.set(&space.topic(&mut r), i as u32);
    }
    let filters: Vec<String> = (0..1024).map(|_| space.filter(&mut r)).collect();
    let iters = 20_000;
    let mut hits = 0usize;
    let secs = best_of(|| {
        hits = 0;
        for i in 0..iters {
            ret.for_each_match(black_box(&filters[i & 1023]), |t, v| hits += (t.len() + *v as usize) & 1 | 1);
        }
    });
    report(
        &format!("retained match, {} topics", ret.len()),
        iters,
        secs,
        &format!("({:.1} hits/filter)", hits as f64 / iters as f64),
    );
}

fn main() {
    bench_match(10_000, &Space { sites: 20, devs: 50 });
    bench_match(100_000, &Space { sites: 100, devs: 100 });
    bench_retained(100_000, &Space { sites: 100, devs: 100 });
}
