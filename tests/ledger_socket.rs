//! The ledger over a real socket with rumqttc: a known user gets in and may publish where its
//! rules allow; a wrong password is refused with CONNACK 0x86. Every wait is bounded.

use edgemq::hooks::ledger::{hash_password_with_salt, Ledger};
use edgemq::listeners::ListenerConfig;
use edgemq::{Options, Server};
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{Client, ConnectionError, Event, MqttOptions};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn ledger() -> Ledger {
    let hash = hash_password_with_salt("pw", 1000, b"fixed salt 12345");
    let text = format!(
        r#"
[[auth]]
username = "dev"
password = "{hash}"
allow = true

[[acl]]
username = "dev"
filters = {{ "up/%c/#" = "write", "up/#" = "read" }}
"#
    );
    Ledger::from_toml(&text, "ledger.toml").unwrap()
}

fn options(addr: &str, id: &str, password: &str) -> MqttOptions {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut o = MqttOptions::new(id, host, port.parse().unwrap());
    o.set_credentials("dev", password);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

#[test]
fn the_ledger_admits_refuses_and_applies_acls_over_tcp() {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut server = Server::new(Options::default())?;
        server.add_hook(ledger());
        server.add_listener(ListenerConfig::tcp("tcp", "127.0.0.1:0"))?;
        let _ = tx.send((server.handle(), server.local_addrs()));
        server.serve()
    });
    let (handle, addrs) = rx.recv_timeout(WAIT).unwrap();
    let addr = addrs[0].clone();

    // wrong password: CONNACK 0x86
    let (_c, mut conn) = Client::new(options(&addr, "bad", "nope"), 10);
    match conn.recv_timeout(WAIT) {
        Ok(Err(ConnectionError::ConnectionRefused(code))) => assert_eq!(code, ConnectReturnCode::BadUserNamePassword),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // the right one: in; publishes to its own up/<id>/... come back (QoS 1, PUBACK 0x00),
    // a publish elsewhere gets PUBACK 0x87 and is not delivered
    let (client, mut conn) = Client::new(options(&addr, "d1", "pw"), 10);
    client.subscribe("up/#", QoS::AtLeastOnce).unwrap();
    client.publish("up/d1/temp", QoS::AtLeastOnce, false, "21").unwrap();
    client.publish("up/other/temp", QoS::AtLeastOnce, false, "x").unwrap();
    let deadline = Instant::now() + WAIT;
    let (mut got, mut acks) = (Vec::new(), Vec::new());
    while acks.len() < 2 || got.is_empty() {
        assert!(Instant::now() < deadline, "got {got:?}, acks {acks:?}");
        match conn.recv_timeout(Duration::from_millis(500)) {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => got.push(String::from_utf8_lossy(&p.topic).into_owned()),
            Ok(Ok(Event::Incoming(Packet::PubAck(a)))) => acks.push(a.reason),
            Ok(Ok(Event::Incoming(Packet::SubAck(s)))) => assert_eq!(format!("{:?}", s.return_codes), "[Success(AtLeastOnce)]"),
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => panic!("{e:?}"),
        }
    }
    assert_eq!(got, ["up/d1/temp"]);
    assert_eq!(format!("{acks:?}"), "[Success, NotAuthorized]");

    handle.stop().unwrap();
    thread.join().unwrap().unwrap();
}
