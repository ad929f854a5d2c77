//! Output batching: a connection's output is encoded ahead in pooled `buffer_size` chunks up to
//! `write_batch` bytes, handed out for one vectored write, and drained in order however the
//! writes split it.

use crate::common::*;
use edgemq::packets::{self, Packet, Version::*};
use edgemq::Options;
use std::io::IoSlice;

#[test]
fn output_is_encoded_ahead_up_to_write_batch_in_chunks_and_drains_in_order() {
    let o = Options { buffer_size: 256, write_batch: 1024, max_queued_messages: 1000, max_queued_bytes: 1 << 20, ..Options::default() };
    let mut t = TestBroker::with(o);
    let sub = t.connect(V5, "sub");
    t.subscribe(sub, V5, "t/#", opts(0));
    t.take(sub);
    let publisher = t.connect(V5, "pub");
    t.take(publisher);
    for i in 0..100u8 {
        t.send(publisher, V5, publish("t/x", &[i; 60], 0, 0, false));
    }

    // Bounded: about write_batch is encoded (chunks are cut early when the next packet would
    // not fit, and one more chunk may be started), the rest waits in the queue.
    let mut bufs = [IoSlice::new(&[]); 65];
    let n = t.b.output_vectored(sub, &mut bufs);
    let ahead: usize = bufs[..n].iter().map(|b| b.len()).sum();
    assert!(n >= 4, "{n} chunks");
    assert!((700..=1024 + 256).contains(&ahead), "{ahead} bytes encoded ahead");
    assert!(bufs[..n].iter().all(|b| b.len() <= 256), "a chunk outgrew buffer_size");
    assert_eq!(bufs[0].len(), t.b.output(sub).len());

    // Drain with writes that end inside chunks and across chunk boundaries.
    let mut wire = Vec::new();
    for step in [300usize, 1, 255, 700].iter().cycle() {
        let mut bufs = [IoSlice::new(&[]); 65];
        let n = t.b.output_vectored(sub, &mut bufs);
        if n == 0 {
            break;
        }
        let mut take = *step;
        let mut written = 0;
        for b in &bufs[..n] {
            let k = take.min(b.len());
            wire.extend_from_slice(&b[..k]);
            written += k;
            take -= k;
        }
        t.b.consume_output(sub, written, t.now);
    }
    let mut seen = Vec::new();
    let mut rest = &wire[..];
    while !rest.is_empty() {
        let (p, used) = packets::decode(rest, V5, u32::MAX).unwrap().unwrap();
        match p {
            Packet::Publish(p) => seen.push(p.payload[0]),
            other => panic!("unexpected {other:?}"),
        }
        rest = &rest[used..];
    }
    assert_eq!(seen, (0..100u8).collect::<Vec<_>>());
}
