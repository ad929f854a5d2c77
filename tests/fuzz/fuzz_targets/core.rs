//! Fuzz the socket-free core with programs of steps over up to 8 clients: accept, feed canned
//! frames (3.1/3.1.1/5.0 CONNECT, SUBSCRIBE, PUBLISH, acknowledgements, PINGREQ, DISCONNECT,
//! AUTH) or raw bytes, drain part of the output (slow readers), close, move the clock and tick,
//! inline publish, inject, disconnect a client. The interpreter and the checks after every step
//! (`Broker::check_invariants`, the output bound, counters, the PINGREQ liveness check) are in
//! tests/common/core_steps.rs, shared with the plain test tests/core_steps.rs.
#![no_main]

#[path = "../../common/core_steps.rs"]
mod core_steps;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = core_steps::run(data, 1_000) {
        // The interpreter's panic hook replaced libFuzzer's aborting one: abort here.
        eprintln!("{e}");
        std::process::abort();
    }
});
