//! Real-socket tests on 127.0.0.1:0: an in-process `edgemq::Server` on its own thread, driven
//! by an independent client (rumqttc 0.25) or by raw `std::net` sockets. Every wait is bounded.

use edgemq::listeners::ListenerConfig;
use edgemq::{Handle, Options, Server};
use rumqttc::{Client, Connection, Event, MqttOptions, Packet, Publish, QoS};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(3);

/// A server on 127.0.0.1:0 serving on its own thread; stopped and joined on drop.
struct TestServer {
    addr: String,
    handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    fn start() -> TestServer {
        Self::with(Options::default())
    }

    fn with(opts: Options) -> TestServer {
        // `Server` is not `Send` (sessions share messages through `Rc`): build it on its thread
        // and hand back the address and the handle.
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || {
            let mut s = Server::new(opts)?;
            s.add_listener(ListenerConfig::tcp("t", "127.0.0.1:0"))?;
            let _ = tx.send((s.local_addrs()[0].clone(), s.handle()));
            s.serve()
        });
        let (addr, handle) = rx.recv_timeout(WAIT).expect("server did not start");
        TestServer { addr, handle, thread: Some(thread) }
    }

    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        if let Some(t) = self.thread.take() {
            let r = t.join();
            if !thread::panicking() {
                r.expect("server thread panicked").expect("serve failed");
            }
        }
    }
}

fn client(server: &TestServer, id: &str) -> (Client, Connection) {
    let mut o = MqttOptions::new(id, "127.0.0.1", server.port());
    o.set_keep_alive(Duration::from_secs(30));
    let (c, mut conn) = Client::new(o, 16);
    // Wait for CONNACK.
    let deadline = Instant::now() + WAIT;
    loop {
        match next_event(&mut conn, deadline) {
            Some(Event::Incoming(Packet::ConnAck(a))) => {
                assert_eq!(a.code, rumqttc::ConnectReturnCode::Success);
                return (c, conn);
            }
            Some(_) => {}
            None => panic!("{id}: no CONNACK"),
        }
    }
}

fn next_event(conn: &mut Connection, deadline: Instant) -> Option<Event> {
    let left = deadline.checked_duration_since(Instant::now())?;
    match conn.recv_timeout(left) {
        Ok(Ok(e)) => Some(e),
        Ok(Err(e)) => panic!("connection error: {e}"),
        Err(_) => None,
    }
}

/// Drives the connection until `pred` holds for an incoming packet (or the time is up).
fn wait_for<T>(conn: &mut Connection, within: Duration, mut pred: impl FnMut(&Packet) -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    while let Some(e) = next_event(conn, deadline) {
        if let Event::Incoming(p) = e {
            if let Some(t) = pred(&p) {
                return Some(t);
            }
        }
    }
    None
}

fn suback(conn: &mut Connection) -> Vec<rumqttc::SubscribeReasonCode> {
    wait_for(conn, WAIT, |p| match p {
        Packet::SubAck(s) => Some(s.return_codes.clone()),
        _ => None,
    })
    .expect("SUBACK")
}

fn next_publish(conn: &mut Connection, within: Duration) -> Option<Publish> {
    wait_for(conn, within, |p| match p {
        Packet::Publish(p) => Some(p.clone()),
        _ => None,
    })
}

/// Collects publishes for `within` (for "nothing more arrives" checks).
fn publishes_during(conn: &mut Connection, within: Duration) -> Vec<Publish> {
    let mut out = Vec::new();
    let deadline = Instant::now() + within;
    while let Some(e) = next_event(conn, deadline) {
        if let Event::Incoming(Packet::Publish(p)) = e {
            out.push(p);
        }
    }
    out
}

#[test]
fn publish_at_each_qos_arrives_at_the_lower_of_publish_and_granted_qos() {
    let server = TestServer::start();
    let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    for (gi, granted) in qos.iter().enumerate() {
        let (sub, mut sconn) = client(&server, &format!("sub{gi}"));
        let topic = format!("lb/qos/{gi}");
        sub.subscribe(&topic, *granted).unwrap();
        assert_eq!(suback(&mut sconn), vec![rumqttc::SubscribeReasonCode::Success(*granted)]);
        let (publisher, mut pconn) = client(&server, &format!("pub{gi}"));
        for (pi, pq) in qos.iter().enumerate() {
            publisher.publish(&topic, *pq, false, vec![pi as u8]).unwrap();
            // Drive the publisher until its flow completes (PUBACK / PUBCOMP or just sent).
            let done = match pq {
                QoS::AtMostOnce => wait_for(&mut pconn, Duration::from_millis(50), |_| Some(())).is_none(),
                QoS::AtLeastOnce => wait_for(&mut pconn, WAIT, |p| matches!(p, Packet::PubAck(_)).then_some(())).is_some(),
                QoS::ExactlyOnce => wait_for(&mut pconn, WAIT, |p| matches!(p, Packet::PubComp(_)).then_some(())).is_some(),
            };
            assert!(done, "publish at {pq:?} did not complete");
            let got = next_publish(&mut sconn, WAIT).unwrap_or_else(|| panic!("nothing at granted {granted:?} published {pq:?}"));
            assert_eq!(got.payload.as_ref(), &[pi as u8]);
            assert_eq!(got.qos, qos[pi.min(gi)], "granted {granted:?}, published {pq:?}");
            assert!(!got.retain);
        }
        assert!(publishes_during(&mut sconn, Duration::from_millis(200)).is_empty(), "a message arrived twice");
    }
}

#[test]
fn retained_message_is_delivered_on_subscribe_with_the_retain_flag() {
    let server = TestServer::start();
    let (p, mut pconn) = client(&server, "rp");
    p.publish("lb/retained", QoS::AtLeastOnce, true, "kept").unwrap();
    wait_for(&mut pconn, WAIT, |p| matches!(p, Packet::PubAck(_)).then_some(())).expect("PUBACK");
    let (s, mut sconn) = client(&server, "rs");
    s.subscribe("lb/#", QoS::AtLeastOnce).unwrap();
    suback(&mut sconn);
    let got = next_publish(&mut sconn, WAIT).expect("retained message");
    assert_eq!((got.topic.as_str(), got.payload.as_ref(), got.retain), ("lb/retained", &b"kept"[..], true));
}

#[test]
fn hash_does_not_match_sys_topics_but_sys_hash_does() {
    // [MQTT-4.7.2-1] a filter starting with a wildcard does not match a topic starting with `$`.
    let server = TestServer::start();
    let (all, mut aconn) = client(&server, "all");
    all.subscribe("#", QoS::AtMostOnce).unwrap();
    suback(&mut aconn);
    let (sys, mut sconn) = client(&server, "sys");
    sys.subscribe("$SYS/#", QoS::AtMostOnce).unwrap();
    suback(&mut sconn);
    server.handle.publish("$SYS/test/x", b"1", false, 0).unwrap();
    server.handle.publish("plain/x", b"2", false, 0).unwrap();
    let got = next_publish(&mut sconn, WAIT).expect("$SYS/# gets $SYS messages");
    assert_eq!(got.topic, "$SYS/test/x");
    let got = next_publish(&mut aconn, WAIT).expect("# gets plain topics");
    assert_eq!(got.topic, "plain/x", "`#` received a $SYS topic");
    assert!(publishes_during(&mut aconn, Duration::from_millis(200)).is_empty());
}

#[test]
fn v5_overlapping_subscriptions_deliver_once_at_the_highest_qos() {
    use rumqttc::v5::{mqttbytes::v5::Packet as P5, mqttbytes::QoS as Q5, Client as C5, Event as E5, MqttOptions as O5};
    let server = TestServer::start();
    let (c, mut conn) = C5::new(O5::new("v5o", "127.0.0.1", server.port()), 16);
    c.subscribe("ov/#", Q5::AtMostOnce).unwrap();
    c.subscribe("ov/+", Q5::AtLeastOnce).unwrap();
    c.publish("ov/x", Q5::ExactlyOnce, false, "m").unwrap();
    // Collect until one second after the first delivery (a duplicate would come right behind).
    let mut deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match conn.recv_timeout(left) {
            Ok(Ok(E5::Incoming(P5::Publish(p)))) => {
                if got.is_empty() {
                    deadline = Instant::now() + Duration::from_secs(1);
                }
                got.push(p);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => break,
        }
    }
    assert_eq!(got.len(), 1, "deliveries: {got:?}");
    assert_eq!(got[0].qos, Q5::AtLeastOnce);
}

/// Reads one MQTT packet (first byte + body) from a blocking socket with a read timeout.
fn read_packet(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    let first = b[0];
    let (mut len, mut mult) = (0usize, 1usize);
    loop {
        s.read_exact(&mut b)?;
        len += (b[0] & 0x7f) as usize * mult;
        mult *= 128;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body)?;
    Ok((first, body))
}

#[test]
fn a_connection_closing_while_another_is_accepted_does_not_close_the_new_one() {
    // A connection that closes in the same loop turn in which a new one takes its freed slot:
    // the new connection must not be shut down with the old one.
    let server = TestServer::start();
    const CONNECT: [u8; 15] = [0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, b'c'];
    for i in 0..100 {
        drop(TcpStream::connect(&server.addr).unwrap());
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(&CONNECT).unwrap();
        let ack = read_packet(&mut s).unwrap_or_else(|e| panic!("round {i}: no CONNACK: {e}"));
        assert_eq!(ack, (0x20, vec![0, 0]));
        s.write_all(&[0xc0, 0]).unwrap();
        let pong = read_packet(&mut s).unwrap_or_else(|e| panic!("round {i}: connection dropped after CONNACK: {e}"));
        assert_eq!(pong, (0xd0, vec![]));
    }
}

#[test]
fn v5_connack_over_a_socket_carries_the_configured_limits() {
    use rumqttc::v5::{mqttbytes::v5::Packet as P5, Client as C5, Event as E5, MqttOptions as O5};
    let server = TestServer::with(Options {
        receive_maximum: 7,
        topic_alias_maximum: 3,
        max_packet_size: 5000,
        max_session_expiry: 30,
        ..Options::default()
    });
    let mut o = O5::new("v5limits", "127.0.0.1", server.port());
    o.set_clean_start(false).set_session_expiry_interval(Some(3600));
    let (_c, mut conn) = C5::new(o, 16);
    let deadline = Instant::now() + WAIT;
    let ack = loop {
        let left = deadline.checked_duration_since(Instant::now()).expect("no CONNACK");
        match conn.recv_timeout(left) {
            Ok(Ok(E5::Incoming(P5::ConnAck(a)))) => break a,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("no CONNACK"),
        }
    };
    assert_eq!(ack.code, rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success);
    let p = ack.properties.expect("CONNACK properties");
    assert_eq!(p.receive_max, Some(7));
    assert_eq!(p.topic_alias_max, Some(3));
    assert_eq!(p.max_packet_size, Some(5000));
    // the requested 3600 s is capped, and CONNACK says so
    assert_eq!(p.session_expiry_interval, Some(30));
}

#[test]
fn v5_message_expiry_is_capped_by_max_message_expiry_over_a_socket() {
    use rumqttc::v5::{mqttbytes::v5::Packet as P5, mqttbytes::v5::PublishProperties, mqttbytes::QoS as Q5, Client as C5, Event as E5, MqttOptions as O5};
    let server = TestServer::with(Options { max_message_expiry: 5, ..Options::default() });
    let (c, mut conn) = C5::new(O5::new("v5mexp", "127.0.0.1", server.port()), 16);
    c.subscribe("mexp", Q5::AtLeastOnce).unwrap();
    // wait for the SUBACK before publishing
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.checked_duration_since(Instant::now()).expect("no SUBACK");
        match conn.recv_timeout(left) {
            Ok(Ok(E5::Incoming(P5::SubAck(_)))) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("no SUBACK"),
        }
    }
    c.publish("mexp", Q5::AtLeastOnce, false, "none").unwrap();
    let long = PublishProperties { message_expiry_interval: Some(3600), ..Default::default() };
    c.publish_with_properties("mexp", Q5::AtLeastOnce, false, "long", long).unwrap();
    let short = PublishProperties { message_expiry_interval: Some(2), ..Default::default() };
    c.publish_with_properties("mexp", Q5::AtLeastOnce, false, "short", short).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < 3 {
        let left = deadline.checked_duration_since(Instant::now()).unwrap_or_else(|| panic!("got {got:?}"));
        match conn.recv_timeout(left) {
            Ok(Ok(E5::Incoming(P5::Publish(p)))) => {
                got.push((p.payload.clone(), p.properties.and_then(|q| q.message_expiry_interval)))
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("got {got:?}"),
        }
    }
    // longer is capped to 5; shorter is kept (at most what was sent). An absent interval is
    // capped inside the broker (the message expires) but no property is added on the way out:
    // the forwarded interval is only for a message that was sent with one [MQTT-3.3.2-6].
    assert_eq!(got[0].0.as_ref(), b"none");
    assert_eq!(got[0].1, None, "{got:?}");
    assert_eq!(got[1].0.as_ref(), b"long");
    assert!(matches!(got[1].1, Some(4..=5)), "{got:?}");
    assert_eq!(got[2].0.as_ref(), b"short");
    assert!(matches!(got[2].1, Some(1..=2)), "{got:?}");
}
