use crate::common::{hex, TestBroker};

#[test]
fn v311_connect_gets_connack_accepted() {
    let mut t = TestBroker::new();
    let c = t.accept();
    // CONNECT 3.1.1, clean session, keep alive 60, client id "c"
    t.feed(c, &hex("10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 63"));
    assert_eq!(t.take(c), hex("20 02 00 00"));
}

#[test]
fn v5_qos2_publish_completes_after_pubrel() {
    let mut t = TestBroker::new();
    let c = t.accept();
    // CONNECT 5.0, clean start, keep alive 60, no properties, client id "p"
    t.feed(c, &hex("10 0e 00 04 4d 51 54 54 05 02 00 3c 00 00 01 70"));
    // CONNACK: receive maximum 64, topic alias maximum 64, maximum packet size 256 KiB
    assert_eq!(t.take(c), hex("20 0e 00 00 0b 21 00 40 22 00 40 27 00 04 00 00"));
    // PUBLISH QoS 2, topic "a", pid 1, no properties, payload "x"
    t.feed(c, &hex("34 07 00 01 61 00 01 00 78"));
    assert_eq!(t.take(c), hex("50 03 00 01 10"));
    t.feed(c, &hex("62 02 00 01"));
    assert_eq!(t.take(c), hex("70 02 00 01"));
    t.advance(30_000);
    assert!(t.reap().is_empty());
}
