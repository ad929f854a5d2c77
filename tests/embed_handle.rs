//! An embedding program: a server on 127.0.0.1:0 with an extra hook, driven through its
//! `Handle` (publish, inject, inject_as, stats, disconnect, stop) and checked by a subscriber
//! over a real socket speaking our own codec. Every wait is bounded.

use edgemq::hooks::{AllowAll, ClientInfo, Hook, MessageView, Point, Provides, Verdict};
use edgemq::listeners::ListenerConfig;
use edgemq::packets::{self, Connect, Packet, Properties, Publish, QoS, QosPid, ReasonCode, Subscribe, SubscribeFilters, SubOptions, Version};
use edgemq::{Handle, Options, Server};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// Counts the publishes it sees (from clients and from the inline client).
struct Counter(Arc<AtomicUsize>);

impl Hook for Counter {
    fn id(&self) -> &str {
        "counter"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnPublish])
    }
    fn on_publish(&mut self, _: &ClientInfo<'_>, _: &MessageView<'_>) -> Verdict {
        self.0.fetch_add(1, Ordering::Relaxed);
        Verdict::Continue
    }
}

/// Starts a server in its own thread (the server is built there: it is not `Send`).
fn start(counter: Arc<AtomicUsize>) -> (Handle, String, JoinHandle<std::io::Result<()>>) {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut server = Server::new(Options::default())?;
        server.add_hook(AllowAll);
        server.add_hook(Counter(counter));
        server.add_listener(ListenerConfig::tcp("tcp", "127.0.0.1:0"))?;
        let addr = server.local_addrs().into_iter().next().unwrap_or_default();
        let _ = tx.send((server.handle(), addr));
        server.serve()
    });
    let (handle, addr) = rx.recv_timeout(WAIT).expect("the server starts");
    (handle, addr, thread)
}

/// What a raw client got.
#[derive(Debug, PartialEq)]
enum Got {
    Publish(String, Vec<u8>),
    Disconnect(ReasonCode),
    Other(&'static str),
    Closed,
}

/// A minimal MQTT 5 client over a blocking socket with read timeouts.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(addr: &str, id: &str) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut r = Raw { s, buf: Vec::new() };
        r.send(Packet::Connect(Connect {
            version: Version::V5,
            clean_start: true,
            keep_alive: 0,
            client_id: id,
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }));
        assert_eq!(r.next(), Got::Other("CONNACK"));
        r
    }

    fn send(&mut self, p: Packet<'_>) {
        let mut out = Vec::new();
        p.encode(Version::V5, &mut out).unwrap();
        self.s.write_all(&out).unwrap();
    }

    fn subscribe(&mut self, filters: &[&str]) {
        let f: Vec<(&str, SubOptions)> = filters.iter().map(|f| (*f, SubOptions::default())).collect();
        self.send(Packet::Subscribe(Subscribe {
            pid: packets::PacketId::new(1).unwrap(),
            properties: Properties::default(),
            filters: SubscribeFilters::List(&f),
        }));
        assert_eq!(self.next(), Got::Other("SUBACK"));
    }

    /// The next packet, waiting at most `WAIT`.
    fn next(&mut self) -> Got {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some((p, n))) = packets::decode(&self.buf, Version::V5, u32::MAX) {
                let got = match p {
                    Packet::Publish(p) => Got::Publish(p.topic.to_string(), p.payload.to_vec()),
                    Packet::Disconnect(d) => Got::Disconnect(d.reason),
                    other => Got::Other(other.name()),
                };
                self.buf.drain(..n);
                return got;
            }
            assert!(Instant::now() < deadline, "nothing from the broker within {WAIT:?}");
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => return Got::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Got::Closed,
            }
        }
    }
}

fn publish_bytes(topic: &str, payload: &[u8]) -> Vec<u8> {
    let p = Packet::Publish(Publish { dup: false, qospid: QosPid::AtMostOnce, retain: false, topic, properties: Properties::default(), payload });
    let mut out = Vec::new();
    p.encode(Version::V5, &mut out).unwrap();
    out
}

#[test]
fn an_embedding_program_publishes_injects_reads_stats_and_disconnects_through_the_handle() {
    let counter = Arc::new(AtomicUsize::new(0));
    let (handle, addr, thread) = start(counter.clone());
    let mut sub = Raw::connect(&addr, "sub");
    sub.subscribe(&["t/#", "$SYS/custom"]);

    handle.publish("t/direct", b"1", false, 0).unwrap();
    handle.inject(publish_bytes("$SYS/custom", b"2")).unwrap();
    handle.inject_as("sub", publish_bytes("t/as-sub", b"3")).unwrap();
    // on behalf of a client that is not connected: logged and dropped
    handle.inject_as("ghost", publish_bytes("t/ghost", b"x")).unwrap();
    assert_eq!(sub.next(), Got::Publish("t/direct".into(), b"1".to_vec()));
    assert_eq!(sub.next(), Got::Publish("$SYS/custom".into(), b"2".to_vec()));
    assert_eq!(sub.next(), Got::Publish("t/as-sub".into(), b"3".to_vec()));

    let stats = handle.stats().unwrap();
    assert_eq!(stats.clients_connected, 1);
    assert!(stats.messages_sent >= 3, "{stats:?}");
    assert_eq!(counter.load(Ordering::Relaxed), 3, "the hook saw all three");

    handle.disconnect("sub", ReasonCode::AdministrativeAction).unwrap();
    assert_eq!(sub.next(), Got::Disconnect(ReasonCode::AdministrativeAction));
    assert_eq!(sub.next(), Got::Closed);

    handle.stop().unwrap();
    thread.join().unwrap().unwrap();
    assert!(handle.publish("t", b"late", false, 0).is_err(), "the server is gone");
}

#[test]
fn the_handle_is_used_from_four_threads_while_clients_publish() {
    const PER_THREAD: usize = 50;
    const PER_CLIENT: usize = 50;
    let counter = Arc::new(AtomicUsize::new(0));
    let (handle, addr, thread) = start(counter.clone());
    let mut sub = Raw::connect(&addr, "sub");
    sub.subscribe(&["load/#"]);

    let mut workers = Vec::new();
    for t in 0..4 {
        let h = handle.clone();
        workers.push(std::thread::spawn(move || {
            for i in 0..PER_THREAD {
                if i % 2 == 0 {
                    h.publish(&format!("load/handle/{t}"), &[i as u8], false, 1).unwrap();
                } else {
                    h.inject(publish_bytes(&format!("load/inject/{t}"), &[i as u8])).unwrap();
                }
                if i % 10 == 0 {
                    h.stats().unwrap();
                }
            }
        }));
    }
    for c in 0..2 {
        let addr = addr.clone();
        workers.push(std::thread::spawn(move || {
            let mut p = Raw::connect(&addr, &format!("pub{c}"));
            for i in 0..PER_CLIENT {
                let topic = format!("load/client/{c}");
                p.send(Packet::Publish(Publish { dup: false, qospid: QosPid::AtMostOnce, retain: false, topic: &topic, properties: Properties::default(), payload: &[i as u8] }));
            }
            // a PINGREQ round trip: everything before it was handled
            p.send(Packet::PingReq);
            assert_eq!(p.next(), Got::Other("PINGRESP"));
        }));
    }
    for w in workers {
        w.join().unwrap();
    }

    let want = 4 * PER_THREAD + 2 * PER_CLIENT;
    let mut per_topic = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..want {
        match sub.next() {
            Got::Publish(topic, _) => *per_topic.entry(topic).or_default() += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(per_topic.len(), 10);
    assert!(per_topic.iter().all(|(t, n)| if t.starts_with("load/client") { *n == PER_CLIENT } else { *n == PER_THREAD / 2 }), "{per_topic:?}");
    assert_eq!(counter.load(Ordering::Relaxed), want);
    let stats = handle.stats().unwrap();
    assert_eq!(stats.messages_dropped, 0);

    handle.stop().unwrap();
    thread.join().unwrap().unwrap();
    let _ = QoS::AtMostOnce;
}

#[test]
fn a_full_command_channel_is_an_error_naming_its_bound_not_a_block() {
    use edgemq::server::{HandleError, COMMAND_CAPACITY};
    // No loop runs: nothing takes the commands.
    let mut server = Server::new(Options::default()).unwrap();
    let handle = server.handle();
    for i in 0..COMMAND_CAPACITY - 1 {
        handle.publish("t", &[i as u8], false, 0).unwrap();
    }
    handle.stop().unwrap();
    let full = HandleError::Full { capacity: COMMAND_CAPACITY };
    assert_eq!(handle.publish("t", b"more", false, 0), Err(full));
    assert_eq!(handle.stats().unwrap_err(), full);
    assert!(full.to_string().contains(&COMMAND_CAPACITY.to_string()), "{full}");
    assert_eq!(handle.reload_tls().unwrap_err().kind(), ErrorKind::WouldBlock);
    // The loop takes them all (the last one stops it), and the channel has room again.
    server.serve().unwrap();
    handle.publish("t", b"again", false, 0).unwrap();
    drop(server);
    assert_eq!(handle.publish("t", b"late", false, 0), Err(HandleError::Stopped));
}

#[test]
fn the_command_channel_is_bounded_in_bytes_too_and_a_command_over_max_packet_size_is_refused() {
    use edgemq::server::{HandleError, COMMAND_CAPACITY};
    let opts = Options { max_packet_size: 1024, buffer_memory: 64 * 1024, queue_memory: 1 << 20, ..Options::default() };
    assert_eq!(opts.command_memory(), 4 * 1024);
    let mut server = Server::new(opts).unwrap();
    let handle = server.handle();
    // One command carries at most max_packet_size bytes (topic and payload): never sent.
    let too_large = HandleError::TooLarge { limit: 1024 };
    assert_eq!(handle.publish("t", &[0; 1024], false, 0), Err(too_large));
    assert_eq!(handle.inject(vec![0; 1025]), Err(too_large));
    assert_eq!(std::io::Error::from(too_large).kind(), ErrorKind::InvalidInput);
    // Waiting commands carry at most command_memory bytes together: the fifth 1 KiB one finds
    // the channel full long before COMMAND_CAPACITY commands wait.
    for _ in 0..4 {
        handle.publish("t", &[0; 1023], false, 0).unwrap();
    }
    assert_eq!(handle.publish("t", &[0; 1023], false, 0), Err(HandleError::Full { capacity: COMMAND_CAPACITY }));
    handle.publish("", &[], false, 0).unwrap(); // an empty one still fits
    handle.stop().unwrap();
    // The loop takes them and gives their bytes back.
    server.serve().unwrap();
    for _ in 0..4 {
        handle.publish("t", &[0; 1023], false, 0).unwrap();
    }
}

#[test]
fn a_listener_whose_handshakes_would_pass_memory_limit_is_refused_naming_it() {
    // 200 WebSocket connections before CONNECT may hold 2 x 64 KiB + 32 KiB each: 31 MiB.
    let mut server = Server::new(Options { max_handshakes: 200, ..Options::default() }).unwrap();
    server.add_listener(ListenerConfig::tcp("tcp", "127.0.0.1:0")).unwrap();
    let e = server.add_listener(ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = e.to_string();
    assert!(e.starts_with("listener `ws`: option `memory_limit`: expected at least"), "{e}");
    assert!(e.contains("WebSocket listeners: max_handshakes x (2 x max_connect_size + WS_FIXED_BYTES) = 32768000"), "{e}");
    // The defaults leave room for a TLS and a WebSocket listener.
    let mut server = Server::new(Options::default()).unwrap();
    server.add_listener(ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt")).unwrap();
    server.add_listener(ListenerConfig::http("http", "127.0.0.1:0")).unwrap();
}
