//! Fuzz `packets::decode` in every version. The first input byte picks the version and the
//! maximum packet size; the rest is the frame. Invariants checked:
//! - decode never panics;
//! - `Ok(Some((p, used)))` has `used <= len`, and `encode(p)` writes `encoded_len` bytes that
//!   decode to the same packet (round trip);
//! - `PacketTooLarge` only when the frame's own size exceeds the maximum.
#![no_main]

use edgemq::packets::{decode, DecodeError, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else { return };
    let v = match sel % 3 {
        0 => Version::V3_1,
        1 => Version::V3_1_1,
        _ => Version::V5,
    };
    // mostly unlimited; sometimes a small maximum to exercise the header-only refusal
    let max = if sel & 0x80 != 0 { u32::from(sel & 0x7f) * 8 + 2 } else { u32::MAX };
    match decode(bytes, v, max) {
        Ok(Some((p, used))) => {
            assert!(used <= bytes.len());
            assert!(used as u64 <= u64::from(max));
            let mut out = Vec::new();
            let n = p.encode(v, &mut out).expect("a decoded packet encodes");
            assert_eq!(n, out.len());
            assert_eq!(p.encoded_len(v), out.len());
            let (q, used2) = decode(&out, v, u32::MAX)
                .expect("re-encoding decodes")
                .expect("re-encoding is whole");
            assert_eq!(used2, out.len());
            assert_eq!(q, p, "round trip");
        }
        Ok(None) => {}
        Err(DecodeError::PacketTooLarge { size }) => assert!(size > u64::from(max)),
        Err(e) => {
            let _ = e.reason_code();
        }
    }
});
