//! Correctness and latency accounting, independent of sockets and MQTT.
//!
//! Every benchmark message carries `(publisher id, sequence number, send time)` in the first
//! [`HEADER_LEN`] bytes of its payload. Each subscriber keeps one [`Flow`] per publisher it hears
//! from, which counts unique messages, duplicates and reorders; loss is what the publisher sent
//! minus what arrived uniquely. Latency goes into a fixed-size log-linear [`Histogram`].

use std::collections::HashMap;

/// Bytes of payload used by the benchmark header: publisher id u32, sequence u32, send time u64 ns.
pub const HEADER_LEN: usize = 16;

/// The benchmark header of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub seq: u32,
    /// Nanoseconds since the generator's epoch (scheduled send time for paced publishers).
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the header into the front of `payload` (which is at least [`HEADER_LEN`] long).
    pub fn write(&self, payload: &mut [u8]) {
        payload[0..4].copy_from_slice(&self.publisher.to_be_bytes());
        payload[4..8].copy_from_slice(&self.seq.to_be_bytes());
        payload[8..16].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads the header; `None` if the payload is too short to be one of ours.
    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let h: &[u8; HEADER_LEN] = payload.get(..HEADER_LEN)?.try_into().ok()?;
        let [a, b, c, d, e, f, g, i, j, k, l, m, n, o, p, q] = *h;
        Some(Stamp {
            publisher: u32::from_be_bytes([a, b, c, d]),
            seq: u32::from_be_bytes([e, f, g, i]),
            sent_ns: u64::from_be_bytes([j, k, l, m, n, o, p, q]),
        })
    }
}

/// What one arrival was, relative to what this flow had seen before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    InOrder,
    /// New, but a higher sequence number had already arrived.
    Reordered,
    Duplicate,
}

/// Messages from one publisher as seen by one subscriber.
#[derive(Debug, Default)]
pub struct Flow {
    seen: Vec<u64>,
    highest: Option<u32>,
    pub unique: u64,
    pub dups: u64,
    pub reorders: u64,
}

impl Flow {
    /// Sequence numbers recorded here but not in `other` (e.g. completed by a publisher but never
    /// received by a subscriber).
    pub fn missing_from(&self, other: &Flow) -> u64 {
        let theirs = |i: usize| other.seen.get(i).copied().unwrap_or(0);
        self.seen.iter().enumerate().map(|(i, &w)| u64::from((w & !theirs(i)).count_ones())).sum()
    }

    pub fn record(&mut self, seq: u32) -> Arrival {
        let (word, bit) = (seq as usize / 64, 1u64 << (seq % 64));
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & bit != 0 {
            self.dups += 1;
            return Arrival::Duplicate;
        }
        self.seen[word] |= bit;
        self.unique += 1;
        match self.highest {
            Some(h) if seq < h => {
                self.reorders += 1;
                Arrival::Reordered
            }
            _ => {
                self.highest = Some(seq);
                Arrival::InOrder
            }
        }
    }
}

/// All flows into one subscriber, keyed by publisher id.
#[derive(Debug, Default)]
pub struct Tracker {
    pub flows: HashMap<u32, Flow>,
}

impl Tracker {
    pub fn record(&mut self, s: Stamp) -> Arrival {
        self.flows.entry(s.publisher).or_default().record(s.seq)
    }

    pub fn unique_from(&self, publisher: u32) -> u64 {
        self.flows.get(&publisher).map_or(0, |f| f.unique)
    }
}

/// Run totals over every (publisher, subscriber) pair the scenario routes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub expected: u64,
    pub unique: u64,
    pub loss: u64,
    pub dups: u64,
    pub reorders: u64,
    /// Unique messages from publishers the scenario does not route to that subscriber.
    pub strays: u64,
}

impl Totals {
    /// Adds one subscriber: `routes` lists `(publisher id, messages that publisher sent)` for every
    /// publisher whose messages should reach it.
    pub fn add(&mut self, t: &Tracker, routes: &[(u32, u64)]) {
        for &(publisher, sent) in routes {
            let got = t.unique_from(publisher);
            self.expected += sent;
            self.loss += sent.saturating_sub(got);
        }
        for (publisher, f) in &t.flows {
            self.unique += f.unique;
            self.dups += f.dups;
            self.reorders += f.reorders;
            if !routes.iter().any(|(p, _)| p == publisher) {
                self.strays += f.unique;
            }
        }
    }
}

/// Log-linear histogram of nanosecond values: exact below 64, then 32 sub-buckets per power of two
/// (at most about 3% error), in a fixed 1,920-bucket array.
pub struct Histogram {
    buckets: Vec<u64>,
    pub count: u64,
    pub max: u64,
}

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: vec![0; 64 + (64 - SUB_BITS as usize - 1) * SUB as usize], count: 0, max: 0 }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < 2 * SUB {
            return v as usize;
        }
        let shift = 63 - v.leading_zeros() - SUB_BITS; // >= 1
        (2 * SUB + u64::from(shift - 1) * SUB + ((v >> shift) - SUB)) as usize
    }

    /// Midpoint of bucket `i` (exact for the linear range).
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < 2 * SUB {
            return i;
        }
        let shift = (i - 2 * SUB) / SUB + 1;
        let mantissa = (i - 2 * SUB) % SUB + SUB;
        (mantissa << shift) + (1 << shift) / 2
    }

    pub fn record(&mut self, v: u64) {
        if let Some(b) = self.buckets.get_mut(Self::index(v)) {
            *b += 1;
        }
        self.count += 1;
        self.max = self.max.max(v);
    }

    /// The value at quantile `q` (0..=1), or 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank == self.count {
            return self.max;
        }
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::value(i).min(self.max);
            }
        }
        self.max
    }
}

pub(crate) mod tests {
    use super::*;

    crate::unit_tests! {
        fn stamp_round_trips_through_a_payload() {
            let s = Stamp { publisher: 7, seq: 123_456, sent_ns: 9_876_543_210 };
            let mut payload = [0xAAu8; 64];
            s.write(&mut payload);
            assert_eq!(Stamp::read(&payload), Some(s));
            assert_eq!(Stamp::read(&payload[..15]), None);
        }

        fn in_order_messages_count_as_unique_with_no_dups_or_reorders() {
            let mut f = Flow::default();
            for seq in 0..1000 {
                assert_eq!(f.record(seq), Arrival::InOrder);
            }
            assert_eq!((f.unique, f.dups, f.reorders), (1000, 0, 0));
        }

        fn a_repeated_sequence_number_is_a_duplicate_even_after_later_ones() {
            let mut f = Flow::default();
            f.record(0);
            f.record(1);
            f.record(2);
            assert_eq!(f.record(1), Arrival::Duplicate);
            assert_eq!(f.record(2), Arrival::Duplicate);
            assert_eq!((f.unique, f.dups, f.reorders), (3, 2, 0));
        }

        fn a_late_new_message_is_a_reorder_not_a_duplicate() {
            let mut f = Flow::default();
            f.record(0);
            f.record(2);
            assert_eq!(f.record(1), Arrival::Reordered);
            assert_eq!(f.record(3), Arrival::InOrder);
            assert_eq!((f.unique, f.dups, f.reorders), (4, 0, 1));
        }

        fn loss_is_sent_minus_unique_per_routed_publisher() {
            let mut t = Tracker::default();
            for seq in [0, 1, 3, 3] {
                t.record(Stamp { publisher: 1, seq, sent_ns: 0 });
            }
            t.record(Stamp { publisher: 2, seq: 0, sent_ns: 0 });
            let mut totals = Totals::default();
            totals.add(&t, &[(1, 5), (2, 1), (3, 2)]);
            // publisher 1: 5 sent, 3 unique -> 2 lost; publisher 3 never arrived -> 2 lost
            assert_eq!(totals, Totals { expected: 8, unique: 4, loss: 4, dups: 1, reorders: 0, strays: 0 });
        }

        fn missing_from_counts_what_one_flow_holds_and_the_other_lacks() {
            let (mut sent, mut got) = (Flow::default(), Flow::default());
            for seq in [0, 1, 2, 63, 64, 200] {
                sent.record(seq);
            }
            for seq in [1, 64, 300] {
                got.record(seq);
            }
            assert_eq!(sent.missing_from(&got), 4); // 0, 2, 63, 200
            assert_eq!(got.missing_from(&sent), 1); // 300
            assert_eq!(Flow::default().missing_from(&got), 0);
        }

        fn messages_from_an_unrouted_publisher_are_strays() {
            let mut t = Tracker::default();
            t.record(Stamp { publisher: 9, seq: 0, sent_ns: 0 });
            let mut totals = Totals::default();
            totals.add(&t, &[(1, 0)]);
            assert_eq!((totals.strays, totals.loss), (1, 0));
        }

        fn histogram_index_is_monotonic_and_value_lies_in_its_bucket() {
            let mut last = 0;
            for v in (0..1_000_000u64).step_by(7).chain([u64::MAX / 2, u64::MAX]) {
                let i = Histogram::index(v);
                assert!(i >= last, "index went down at {v}");
                last = i;
                assert_eq!(Histogram::index(Histogram::value(i)), i, "value of bucket {i} (from {v})");
            }
            assert!(Histogram::index(u64::MAX) < Histogram::default().buckets.len());
        }

        fn histogram_quantiles_are_within_three_percent() {
            let mut h = Histogram::default();
            for v in 1..=100_000u64 {
                h.record(v * 1000);
            }
            for (q, want) in [(0.5, 50_000_000.0), (0.99, 99_000_000.0), (0.999, 99_900_000.0)] {
                let got = h.quantile(q) as f64;
                assert!((got - want).abs() / want < 0.03, "q{q}: got {got}, want {want}");
            }
            assert_eq!(h.quantile(1.0), 100_000_000);
            assert_eq!(Histogram::default().quantile(0.5), 0);
        }
    }
}
