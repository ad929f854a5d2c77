//! Client identifier rules and CONNACK properties.

use crate::common::*;
use edgemq::packets::{self, ConnAck, Packet, Version::*};

#[test]
fn an_empty_id_with_clean_session_is_accepted_in_v311() {
    let mut t = TestBroker::new();
    let c = t.accept();
    t.send(c, V3_1_1, connect_packet(V3_1_1, "", true, 0, None));
    assert_eq!(t.take(c), hex("20 02 00 00"));
}

#[test]
fn an_empty_id_without_clean_session_is_refused_with_0x02_in_v311() {
    let mut t = TestBroker::new();
    let c = t.accept();
    t.send(c, V3_1_1, connect_packet(V3_1_1, "", false, 0, None));
    // [MQTT-3.1.3-8]
    assert_eq!(t.take(c), hex("20 02 00 02"));
    assert_eq!(t.reap(), [c]);
}

#[test]
fn an_empty_id_in_v5_gets_an_assigned_client_identifier() {
    let mut t = TestBroker::new();
    let c = t.accept();
    t.send(c, V5, connect_packet(V5, "", true, 0, None));
    let out = t.take(c);
    let (p, _) = packets::decode(&out, V5, u32::MAX).unwrap().unwrap();
    let Packet::ConnAck(ConnAck { properties, .. }) = p else { panic!("{p:?}") };
    // [MQTT-3.2.2-16]
    let id = properties.assigned_client_identifier.expect("assigned id");
    assert!(!id.is_empty());
}

#[test]
fn mqtt_31_clients_connect_with_mqisdp() {
    let mut t = TestBroker::new();
    let c = t.accept();
    t.send(c, V3_1, connect_packet(V3_1, "old", true, 0, None));
    assert_eq!(t.take(c), hex("20 02 00 00"));
    t.subscribe(c, V3_1, "x", opts(1));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("x", b"1", 1, 1, false));
    assert_eq!(t.take(c), encode(V3_1, publish("x", b"1", 1, 1, false)));
}

#[test]
fn without_an_auth_hook_enhanced_authentication_gets_0x8c() {
    let mut t = TestBroker::with(edgemq::Options::default());
    let c = t.accept();
    let mut p = connect_packet(V5, "c", true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.properties.authentication_method = Some("SCRAM-SHA-1");
    }
    // AllowAll admits everyone but runs no enhanced authentication: 0x8C.
    t.send(c, V5, p);
    let out = t.take(c);
    assert_eq!(&out[..4], &hex("20 03 00 8c")[..]);
}
