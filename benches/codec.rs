//! Decode and encode of PUBLISH (QoS 1, MQTT 5.0 with one user property, and 3.1.1) at 16 B,
//! 1 KiB and 64 KiB payloads, reported as packets/s and bytes/s of frame.
//!
//! A plain std harness (no criterion: it keeps the build small on 2-core gateways and CI):
//! each case runs for a fixed wall-clock budget after a warm-up, and the best of five rounds is
//! reported. `cargo bench --bench codec [-- SECONDS_PER_ROUND]`.

use edgemq::packets::{decode, Packet, PacketId, Properties, Publish, QosPid, UserProps, Version};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn measure(round: Duration, mut f: impl FnMut()) -> f64 {
    // warm-up
    let t = Instant::now();
    while t.elapsed() < round / 4 {
        f();
    }
    let mut best = 0.0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < round {
            for _ in 0..64 {
                f();
            }
            n += 64;
        }
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    best
}

fn human(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} GB/s", bps / 1e9)
    } else {
        format!("{:.1} MB/s", bps / 1e6)
    }
}

fn main() {
    let secs: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(0.2);
    let round = Duration::from_secs_f64(secs);
    let user = [("source", "sensor-7")];
    println!("{:<28} {:>8} {:>14} {:>12}", "case", "frame", "packets/s", "bytes/s");
    for v in [Version::V3_1_1, Version::V5] {
        for size in [16usize, 1024, 64 * 1024] {
            let payload = vec![0x5au8; size];
            let properties = if v.is_v5() {
                Properties { user: UserProps::List(&user), message_expiry_interval: Some(60), ..Properties::default() }
            } else {
                Properties::default()
            };
            let p = Packet::Publish(Publish {
                dup: false,
                qospid: QosPid::AtLeastOnce(PacketId::new(42).unwrap()),
                retain: false,
                topic: "site/1/line/4/temperature",
                properties,
                payload: &payload,
            });
            let mut frame = Vec::with_capacity(p.encoded_len(v));
            p.encode(v, &mut frame).unwrap();
            let n = frame.len() as f64;
            let tag = if v.is_v5() { "5.0" } else { "3.1.1" };

            let dec = measure(round, || {
                let r = decode(black_box(&frame), v, u32::MAX);
                black_box(&r);
            });
            println!("{:<28} {:>8} {:>14.0} {:>12}", format!("decode {tag} PUBLISH {size} B"), frame.len(), dec, human(dec * n));

            let mut out = Vec::with_capacity(frame.len());
            let enc = measure(round, || {
                out.clear();
                let len = black_box(&p).encoded_len(v);
                out.reserve(len);
                black_box(p.encode(v, &mut out).ok());
            });
            println!("{:<28} {:>8} {:>14.0} {:>12}", format!("encode {tag} PUBLISH {size} B"), frame.len(), enc, human(enc * n));
        }
    }
}
