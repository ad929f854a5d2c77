//! Bad input: each gets the spec's reason code where one exists and a close; others carry on.

use crate::common::*;
use edgemq::packets::{Packet, Version::*};

#[test]
fn a_first_packet_that_is_not_connect_closes_without_connack() {
    let mut t = TestBroker::new();
    let c = t.accept();
    t.feed(c, &hex("c0 00")); // PINGREQ
    assert!(t.take(c).is_empty(), "[MQTT-3.1.0-1] no CONNACK");
    assert_eq!(t.reap(), [c]);
}

#[test]
fn garbage_bytes_close_the_connection_and_others_carry_on() {
    let mut t = TestBroker::new();
    let other = t.connect(V3_1_1, "other");
    let c = t.accept();
    t.feed(c, &[0x00, 0xff, 0x13, 0x37, 0xde, 0xad]);
    assert_eq!(t.reap(), [c]);
    t.send(other, V3_1_1, Packet::PingReq);
    assert_eq!(t.take(other), hex("d0 00"));
}

#[test]
fn a_second_connect_is_a_protocol_error() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.send(c, V5, connect_packet(V5, "c", true, 0, None));
    // [MQTT-3.1.0-2] DISCONNECT 0x82
    assert_eq!(t.take(c), hex("e0 01 82"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn an_unsupported_protocol_level_gets_connack_0x01_in_v311_framing() {
    let mut t = TestBroker::new();
    let c = t.accept();
    t.feed(c, &hex("10 0d 00 04 4d 51 54 54 06 02 00 3c 00 01 63"));
    // [MQTT-3.1.2-2] unacceptable protocol version
    assert_eq!(t.take(c), hex("20 02 00 01"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn a_bad_protocol_name_is_refused() {
    let mut t = TestBroker::new();
    let c = t.accept();
    t.feed(c, &hex("10 0d 00 04 4d 51 54 58 04 02 00 3c 00 01 63"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn a_268_megabyte_remaining_length_is_refused_from_the_header() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("30 ff ff ff 7f"));
    // 0x95 packet too large, before any body byte arrives
    assert_eq!(t.take(c), hex("e0 01 95"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn a_five_byte_remaining_length_is_malformed() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("30 ff ff ff ff 01"));
    assert_eq!(t.take(c), hex("e0 01 81"));
}

#[test]
fn a_publish_topic_with_a_wildcard_is_refused() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("30 05 00 03 61 2f 23"));
    // [MQTT-3.3.2-2]
    assert_eq!(t.take(c), hex("e0 01 90"));
}

#[test]
fn a_packet_split_into_single_bytes_is_reassembled() {
    let mut t = TestBroker::new();
    let c = t.accept();
    for b in hex("10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 63") {
        t.feed(c, &[b]);
    }
    assert_eq!(t.take(c), hex("20 02 00 00"));
}

#[test]
fn several_packets_in_one_read_are_all_handled() {
    let mut t = TestBroker::new();
    let c = t.accept();
    let mut bytes = hex("10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 63");
    bytes.extend(hex("c0 00 c0 00"));
    t.feed(c, &bytes);
    assert_eq!(t.take(c), hex("20 02 00 00 d0 00 d0 00"));
}

#[test]
fn server_to_client_packets_from_a_client_are_protocol_errors() {
    let mut t = TestBroker::new();
    let c = t.connect(V5, "c");
    t.feed(c, &hex("d0 00")); // PINGRESP
    assert_eq!(t.take(c), hex("e0 01 82"));
}

#[test]
fn a_partial_frame_larger_than_a_buffer_reserves_its_size_and_others_keep_being_read() {
    // buffer_memory holds one 1 KiB frame beside the reads' margin, not two.
    let opts = edgemq::Options { buffer_size: 64, max_packet_size: 1024, max_connect_size: 64, buffer_memory: 1024 + 2 * 64 + 600, ..edgemq::Options::default() };
    let mut t = TestBroker::with(opts);
    let (a, b, c) = (t.connect(V5, "a"), t.connect(V5, "b"), t.connect(V5, "c"));
    // PUBLISH QoS 0 to `t` with a 1,000-byte payload: 1 + 2 + 1,004 bytes.
    let mut big = hex("30 ec 07 00 01 74 00");
    big.extend(vec![b'x'; 1000]);
    assert_eq!(big.len(), 1007);
    for id in [a, b] {
        assert_eq!(t.b.read_allowance(id, 65536), Some(64), "a small read while the budget could not take a large one");
        t.feed(id, &big[..10]);
    }
    // The first connection to ask gets its whole frame reserved and reads up to its end.
    assert_eq!(t.b.read_allowance(a, 65536), Some(997));
    // The second waits for room; a third with nothing pending is read as before.
    assert_eq!(t.b.read_allowance(b, 65536), Some(0));
    assert_eq!(t.b.read_allowance(c, 65536), Some(64));
    t.feed(c, &hex("c0 00"));
    assert_eq!(t.take(c), hex("d0 00"), "the waiting connection does not hold up the others");
    t.feed(a, &big[10..]);
    // The frame completed: its buffer went back, and the waiting connection gets its room.
    assert_eq!(t.b.read_allowance(b, 65536), Some(997));
    t.feed(b, &big[10..]);
    // Only the pooled buffer lent for the first partial read is left (in the pool).
    assert_eq!(t.b.stats(t.now).buffer_bytes, 64, "completed frames give their buffers back");
}

#[test]
fn a_connect_larger_than_max_connect_size_is_refused_from_its_fixed_header() {
    let mut t = TestBroker::new();
    let c = t.accept();
    // CONNECT announcing 100,000 bytes (over the 64 KiB default), MQTT 5.
    t.feed(c, &hex("10 a0 8d 06 00 04 4d 51 54 54 05"));
    assert_eq!(t.take(c), hex("20 03 00 95 00"));
    assert!(t.b.is_closing(c));
}

#[test]
fn a_partial_frame_older_than_frame_timeout_closes_the_connection_even_without_keep_alive() {
    let opts = edgemq::Options { frame_timeout_ms: 5_000, ..edgemq::Options::default() };
    let mut t = TestBroker::with(opts);
    let c = t.connect(V5, "slow"); // keep alive 0
    t.feed(c, &hex("30 0a 00 01 74")); // 5 of 12 bytes of a PUBLISH
    t.advance(4_000);
    assert!(!t.b.is_closing(c), "closed before frame_timeout_ms");
    t.advance(2_500);
    assert!(t.b.is_closing(c), "a partial frame older than frame_timeout_ms must close the connection");
}
