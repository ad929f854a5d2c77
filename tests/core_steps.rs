//! The `core` fuzz target's step interpreter over fixed pseudo-random programs, so a plain
//! `cargo test` (no nightly) checks the broker's invariants after every step of 2,000 programs
//! of 200 steps. A failure prints the program's steps, and a minimized list; `replay` below runs
//! a program file the fuzz target saved.

#[path = "common/core_steps.rs"]
mod core_steps;

use core_steps::{ConnectSpec, Frame, Step};

/// xorshift64*: a fixed sequence per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A program of random bytes: at most 8 bytes a step, so 200 steps always fit.
fn program(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..1 + 200 * 8).map(|_| (rng.next() >> 32) as u8).collect()
}

#[test]
fn random_programs_keep_the_invariants_after_every_step() {
    for seed in 0..2_000 {
        if let Err(e) = core_steps::run(&program(seed), 200) {
            panic!("seed {seed}: {e}");
        }
    }
}

/// Replays a program the fuzz target saved (tests/fuzz/artifacts/core/crash-*) without nightly:
/// `EDGEMQ_CORE_PROGRAM=path cargo test --test core_steps replay -- --ignored --nocapture`.
#[test]
#[ignore = "replays the file named by EDGEMQ_CORE_PROGRAM"]
fn replay() {
    let path = std::env::var("EDGEMQ_CORE_PROGRAM").expect("EDGEMQ_CORE_PROGRAM names a program file");
    let data = std::fs::read(&path).expect("the program file is readable");
    if let Err(e) = core_steps::run(&data, usize::MAX) {
        panic!("{path}: {e}");
    }
}

// Reproducers of the known gaps (see `KNOWN_GAP_*` in src/broker/invariants.rs and
// tests/common/core_steps.rs). They pass vacuously while a gap's switch is on, and check the
// fix once it is flipped.

/// A CONNECT: `version` 1 = 3.1.1, 2 = 5.0; table indexes as in core_steps.
fn connect(version: u8, client: u8, clean: bool, expiry: u8, receive_max: u8, max_packet: u8) -> ConnectSpec {
    ConnectSpec { version, client, clean, keep_alive: 0, will: 0, expiry, receive_max, max_packet, alias_max: 0, username: false, auth: false }
}

fn subscribe(slot: u8, filter: u8, qos: u8) -> Step {
    Step::Send { slot, frame: Frame::Subscribe { pid: 1, filter, filter2: None, opts: qos, sub_id: false }, split: 0 }
}

fn check(sel: u8, steps: &[Step]) {
    if let Err((i, e)) = core_steps::run_steps(sel, steps) {
        panic!("step {i} ({:?}): {e}", steps[i]);
    }
}

/// KNOWN_GAP_RESEND_OVER_WINDOW: two QoS 1 messages in flight to a 3.1.1 client; it comes
/// back as 5.0 with Receive Maximum 1 and gets both resent [MQTT-3.3.4-9].
#[test]
fn a_resumed_session_keeps_to_the_smaller_receive_maximum() {
    let steps = [
        Step::Connect { slot: 0, spec: connect(1, 0, false, 0, 0, 0) },
        subscribe(0, 0, 1), // t/a at QoS 1
        Step::Publish { topic: 0, qos: 1, retain: false, len: 1 },
        Step::Publish { topic: 0, qos: 1, retain: false, len: 1 },
        // session expiry 100 s, Receive Maximum 1
        Step::Connect { slot: 0, spec: connect(2, 0, false, 3, 1, 0) },
    ];
    check(0, &steps);
}

/// KNOWN_GAP_GHOST_INFLIGHT: a 300-byte QoS 1 message in flight to a 3.1.1 client; it comes
/// back as 5.0 with Maximum Packet Size 200: the resend is dropped but the entry stays in the
/// window for good, and with two of them (max_inflight 2) nothing QoS 1 reaches it again.
#[test]
fn an_inflight_message_too_large_for_the_new_connection_does_not_hold_the_window() {
    let steps = [
        Step::Connect { slot: 0, spec: connect(1, 0, false, 0, 0, 0) },
        subscribe(0, 0, 1),
        Step::Publish { topic: 0, qos: 1, retain: false, len: 5 }, // 300 bytes
        Step::Publish { topic: 0, qos: 1, retain: false, len: 5 },
        // session expiry 100 s, Maximum Packet Size 200
        Step::Connect { slot: 0, spec: connect(2, 0, false, 3, 0, 3) },
        Step::Publish { topic: 0, qos: 1, retain: false, len: 1 },
        Step::Ping { slot: 0 },
    ];
    check(0, &steps);
}

/// KNOWN_GAP_OWN_PUBLISH_ENDS_SESSION: under `queue_full_policy = disconnect` (options 0x02),
/// a clean-session client whose own queue is full publishes a QoS 2 message to a topic it
/// subscribes to: routing disconnects it, its session ends, and `on_publish` panics.
#[test]
fn a_publisher_disconnected_by_its_own_message_does_not_panic() {
    let mut steps = vec![Step::Connect { slot: 0, spec: connect(1, 0, true, 0, 0, 0) }, subscribe(0, 0, 2)];
    // two in flight (max_inflight 2), then four queued (max_queued_messages 4)
    steps.extend((0..6).map(|_| Step::Publish { topic: 0, qos: 1, retain: false, len: 2 }));
    steps.push(Step::Send {
        slot: 0,
        frame: Frame::Publish { topic: 0, qos: 2, retain: false, dup: false, pid: 7, len: 2, expiry: false, alias: 0 },
        split: 0,
    });
    check(0x02, &steps);
}
