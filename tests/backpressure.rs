//! Back-pressure is per connection, never global (issue 13): real sockets on 127.0.0.1 against
//! an in-process server, raw MQTT 3.1.1 bytes, every wait bounded.
//!
//! - Connections whose client does not read its output stop being read, and are read again
//!   when their output drains: no input is left unread (edge-triggered readiness would not say
//!   so again).
//! - Publishers to subscribers that do not keep up are never stalled, whatever `buffer_memory`
//!   is: the subscribers' queues apply their policy, everyone else goes on.
//! - A client flooding PINGREQ without reading is closed by the write-stall timeout.

use edgemq::listeners::ListenerConfig;
use edgemq::{Handle, Options, Server};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

struct TestServer {
    addr: String,
    handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    fn with(opts: Options) -> TestServer {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || {
            let mut s = Server::new(opts)?;
            s.add_listener(ListenerConfig::tcp("t", "127.0.0.1:0"))?;
            let _ = tx.send((s.local_addrs()[0].clone(), s.handle()));
            s.serve()
        });
        let (addr, handle) = rx.recv_timeout(Duration::from_secs(5)).expect("server did not start");
        TestServer { addr, handle, thread: Some(thread) }
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

fn remaining_len(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return;
        }
    }
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    remaining_len(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

fn str_field(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn connect_bytes(id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0];
    str_field(id, &mut body);
    packet(0x10, &body)
}

fn publish_bytes(topic: &str, qos: u8, pid: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    str_field(topic, &mut body);
    if qos > 0 {
        body.extend_from_slice(&pid.to_be_bytes());
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1), &body)
}

fn subscribe_bytes(topic: &str, qos: u8) -> Vec<u8> {
    let mut body = vec![0, 1];
    str_field(topic, &mut body);
    body.push(qos);
    packet(0x82, &body)
}

/// Connects with a small receive buffer (so an unread socket fills quickly) and reads CONNACK.
fn connect(addr: &str, id: &str, rcvbuf: Option<usize>) -> TcpStream {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n).unwrap();
    }
    sock.connect(&addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&connect_bytes(id)).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack, [0x20, 2, 0, 0], "{id}: CONNACK");
    s
}

/// Reads whole packets until `want` of type `kind` (first byte) are seen; returns them in order
/// (their bodies). Fails at the deadline.
fn read_packets(s: &mut TcpStream, kind: u8, want: usize, deadline: Instant) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut got = Vec::new();
    let mut chunk = [0u8; 16384];
    while got.len() < want {
        // Parse what is there.
        loop {
            if buf.len() < 2 {
                break;
            }
            let (mut len, mut mul, mut i) = (0usize, 1usize, 1);
            let mut complete = false;
            while i < buf.len() && i < 5 {
                len += (buf[i] & 0x7f) as usize * mul;
                mul *= 128;
                i += 1;
                if buf[i - 1] & 0x80 == 0 {
                    complete = true;
                    break;
                }
            }
            if !complete || buf.len() < i + len {
                break;
            }
            if buf[0] & 0xf0 == kind & 0xf0 {
                got.push(buf[i..i + len].to_vec());
            }
            buf.drain(..i + len);
        }
        if got.len() >= want {
            break;
        }
        assert!(Instant::now() < deadline, "only {} of {want} packets of type {kind:#x} before the deadline", got.len());
        match s.read(&mut chunk) {
            Ok(0) => panic!("closed after {} of {want} packets of type {kind:#x}", got.len()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    got
}

/// A client connected to the server answers PINGREQ within `limit`.
fn ping_within(addr: &str, id: &str, limit: Duration) {
    let mut s = connect(addr, id, None);
    let t = Instant::now();
    s.write_all(&[0xc0, 0]).unwrap();
    let mut resp = [0u8; 2];
    s.read_exact(&mut resp).unwrap();
    assert_eq!(resp, [0xd0, 0]);
    assert!(t.elapsed() < limit, "PINGRESP took {:?}", t.elapsed());
}

/// Many clients each publish thousands of QoS 1 messages without reading their PUBACKs: their
/// outputs fill, they stop being read, and nobody else is held up. Then they read: each must get
/// every PUBACK, in order. A connection that was not read again when its output drained would
/// leave its input unread and miss PUBACKs.
#[test]
fn connections_paused_for_their_output_are_read_again_and_no_input_is_left_unread() {
    let opts = Options { buffer_size: 256, write_batch: 1024, ..Options::default() };
    let server = TestServer::with(opts);
    const CLIENTS: usize = 24;
    const MESSAGES: u16 = 60000;
    let addr = server.addr.clone();
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for i in 0..CLIENTS {
        let s = connect(&addr, &format!("flood-{i}"), Some(4096));
        let mut w = s.try_clone().unwrap();
        readers.push(s);
        writers.push(thread::spawn(move || {
            let mut all = Vec::new();
            for pid in 1..=MESSAGES {
                all.extend(publish_bytes(&format!("bp/{i}"), 1, pid, b"0123456789abcdef"));
            }
            // Blocks while the broker does not read us: that is the point.
            w.write_all(&all).unwrap();
        }));
    }
    // While the flooders are paused, others are served at once.
    thread::sleep(Duration::from_millis(300));
    ping_within(&addr, "probe", Duration::from_secs(2));
    let stats = server.handle.stats().expect("stats");
    assert!(
        stats.bytes_received < (CLIENTS as u64) * MESSAGES as u64 * 20,
        "the flooders were not paused: the broker read all {} bytes while nobody read a PUBACK ({stats:?})",
        stats.bytes_received
    );
    let deadline = Instant::now() + WAIT;
    for (i, s) in readers.iter_mut().enumerate() {
        let acks = read_packets(s, 0x40, MESSAGES as usize, deadline);
        for (n, a) in acks.iter().enumerate() {
            assert_eq!(a[..2], ((n + 1) as u16).to_be_bytes(), "client {i}: PUBACK {n} out of order");
        }
    }
    for w in writers {
        w.join().unwrap();
    }
}

/// The stall: pairs of a publisher connection and a subscriber connection, the
/// subscribers slow at first, with a small `buffer_memory`. Every publisher must finish (its
/// last message is QoS 1 and must be acknowledged), QoS 0 may be dropped at the subscribers'
/// queue bound, and an unrelated client is served throughout and afterwards.
#[test]
fn publishers_to_slow_subscribers_never_stall_the_broker_whatever_buffer_memory_is() {
    let opts = Options { max_packet_size: 16 * 1024, max_connect_size: 1024, buffer_memory: 48 * 1024, ..Options::default() };
    let server = TestServer::with(opts);
    const PAIRS: usize = 16;
    const MESSAGES: usize = 4000;
    let addr = server.addr.clone();
    let mut subs = Vec::new();
    for i in 0..PAIRS {
        let mut s = connect(&addr, &format!("sub-{i}"), Some(4096));
        s.write_all(&subscribe_bytes(&format!("pairs/{i}"), 0)).unwrap();
        let mut ack = [0u8; 5];
        s.read_exact(&mut ack).unwrap();
        assert_eq!(ack, [0x90, 3, 0, 1, 0]);
        subs.push(s);
    }
    let mut pubs = Vec::new();
    for i in 0..PAIRS {
        let mut p = connect(&addr, &format!("pub-{i}"), None);
        pubs.push(thread::spawn(move || {
            let mut all = Vec::new();
            let payload = [b'p'; 64];
            for _ in 0..MESSAGES - 1 {
                all.extend(publish_bytes(&format!("pairs/{i}"), 0, 0, &payload));
            }
            all.extend(publish_bytes(&format!("pairs/{i}"), 1, 7, &payload));
            p.write_all(&all).unwrap();
            let acks = read_packets(&mut p, 0x40, 1, Instant::now() + WAIT);
            assert_eq!(acks[0], [0, 7], "publisher {i}: PUBACK for its last message");
        }));
    }
    // Subscribers do not read for a while: their queues fill, publishers must go on.
    thread::sleep(Duration::from_millis(500));
    ping_within(&addr, "probe-during", Duration::from_secs(2));
    for (i, p) in pubs.into_iter().enumerate() {
        p.join().unwrap_or_else(|_| panic!("publisher {i} stalled"));
    }
    // Now the subscribers read what was kept for them: at least their queue's worth each.
    let deadline = Instant::now() + WAIT;
    for s in subs.iter_mut() {
        let got = read_packets(s, 0x30, 100, deadline);
        assert!(got.len() >= 100);
    }
    ping_within(&addr, "probe-after", Duration::from_secs(2));
    let stats = server.handle.stats().expect("stats");
    assert_eq!(stats.messages_received, (PAIRS * MESSAGES) as u64, "every publish was read");
}

/// A client that floods PINGREQ and never reads fills its output, stops being read, and is
/// closed after `write_stall_timeout_ms` without a byte written: its own writes then fail. It
/// never reads, so nothing but the timeout can end it.
#[test]
fn a_client_that_never_reads_is_closed_after_the_write_stall_timeout() {
    let opts = Options { buffer_size: 256, write_batch: 1024, write_stall_timeout_ms: 1000, ..Options::default() };
    let server = TestServer::with(opts);
    let s = connect(&server.addr, "pinger", Some(4096));
    let mut w = s.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let pings = [0xc0u8, 0].repeat(32 * 1024);
        // At most 1 GB: far more than the kernel buffers on both sides and the broker's bound.
        for _ in 0..16 * 1024 {
            if let Err(e) = w.write_all(&pings) {
                let _ = tx.send(Some(e.kind()));
                return;
            }
        }
        let _ = tx.send(None);
    });
    let ended = rx.recv_timeout(Duration::from_secs(30));
    let _ = s.shutdown(std::net::Shutdown::Both);
    match ended {
        Ok(Some(_)) => {}
        Ok(None) => panic!("the broker read 1 GB of PINGREQ from a client that never read a PINGRESP"),
        Err(_) => panic!("the flooder was not closed within 30 s"),
    }
    ping_within(&server.addr, "probe", Duration::from_secs(2));
}

/// 64 peers each send 250 KiB of a 256 KiB CONNECT and stall. With the default
/// `max_connect_size` they are refused from the fixed header; with it raised to take them, their
/// partial frames reserve `buffer_memory` until it is used up and the rest wait. Either way a
/// publisher/subscriber pair that comes after them is served at once.
#[test]
fn stalled_partial_connects_do_not_slow_a_working_pair() {
    for max_connect_size in [Options::default().max_connect_size, 512 * 1024] {
        let opts = Options { max_connect_size, ..Options::default() };
        let server = TestServer::with(opts);
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0];
        str_field("big", &mut body);
        str_field("", &mut body);
        body.resize(256 * 1024 - 4, b'x');
        let frame = packet(0x10, &body);
        let mut stalled = Vec::new();
        for _ in 0..64 {
            let mut s = TcpStream::connect(&server.addr).unwrap();
            let _ = s.write_all(&frame[..250 * 1024]);
            stalled.push(s);
        }
        let t = Instant::now();
        let mut sub = connect(&server.addr, "sub", None);
        sub.write_all(&subscribe_bytes("work/1", 1)).unwrap();
        let mut ack = [0u8; 5];
        sub.read_exact(&mut ack).unwrap();
        let mut publ = connect(&server.addr, "pub", None);
        publ.write_all(&publish_bytes("work/1", 1, 9, b"hello")).unwrap();
        let got = read_packets(&mut sub, 0x30, 1, Instant::now() + Duration::from_secs(5));
        assert!(got[0].ends_with(b"hello"));
        assert_eq!(read_packets(&mut publ, 0x40, 1, Instant::now() + Duration::from_secs(5))[0], [0, 9]);
        assert!(t.elapsed() < Duration::from_secs(2), "max_connect_size {max_connect_size}: the pair took {:?}", t.elapsed());
        drop(stalled);
    }
}

/// The handshake cap is per listener: idle connections filling one HTTP stats listener's
/// `max_handshakes` do not lock out another listener's clients.
#[test]
fn idle_connections_on_one_listener_do_not_lock_out_another() {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = thread::spawn(move || {
        let mut s = Server::new(Options { max_handshakes: 2, ..Options::default() })?;
        s.add_listener(ListenerConfig::http("stats-a", "127.0.0.1:0"))?;
        s.add_listener(ListenerConfig::http("stats-b", "127.0.0.1:0"))?;
        let _ = tx.send((s.local_addrs(), s.handle()));
        s.serve()
    });
    let (addrs, handle) = rx.recv_timeout(Duration::from_secs(5)).expect("server did not start");
    // Two idle connections fill listener a; the third is closed at once.
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&addrs[0]).unwrap()).collect();
    thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(&addrs[0]).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    let _ = third.write_all(b"GET /stats HTTP/1.0\r\n\r\n");
    assert!(matches!(third.read(&mut buf), Ok(0) | Err(_)), "a third connection beyond max_handshakes was served");
    // Listener b answers.
    let mut b = TcpStream::connect(&addrs[1]).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    b.write_all(b"GET /stats HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = b.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1."), "listener b did not answer: {answer:?}");
    drop(idle);
    let _ = handle.stop();
    thread.join().unwrap().unwrap();
}
