//! Real-socket tests of every listener kind on 127.0.0.1: TLS (rustls and mosquitto clients,
//! client certificates, bad and stalled handshakes, reload), WebSocket and WebSocket over TLS,
//! Unix sockets, an already-open TCP listener, and the HTTP stats responder.
//!
//! Every wait is bounded: sockets have read timeouts, threads are joined with a deadline.
#![cfg(all(feature = "tls", feature = "ws", feature = "http-stats"))]

use edgemq::hooks::{ClientInfo, Hook, Point, Provides};
use edgemq::listeners::{ListenerConfig, TlsConfig};
use edgemq::packets::Packet;
use edgemq::{Handle, Options, Server};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Certificates

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("edgemq-listeners-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ca(cn: &str) -> (rcgen::CertificateParams, rcgen::KeyPair, String) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = p.self_signed(&key).unwrap().pem();
    (p, key, pem)
}

fn leaf(issuer: &(rcgen::CertificateParams, rcgen::KeyPair, String), cn: &str, sans: &[&str], client: bool) -> (String, String) {
    let mut p = rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(rcgen::DnType::OrganizationName, "edgemq tests");
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.extended_key_usages =
        vec![if client { rcgen::ExtendedKeyUsagePurpose::ClientAuth } else { rcgen::ExtendedKeyUsagePurpose::ServerAuth }];
    let key = rcgen::KeyPair::generate().unwrap();
    let iss = rcgen::Issuer::from_params(&issuer.0, &issuer.1);
    (p.signed_by(&key, &iss).unwrap().pem(), key.serialize_pem())
}

/// ca.pem, server.pem/-key.pem (127.0.0.1, localhost), client.pem/-key.pem (CN sensor-17,
/// signed by the CA), rogue.pem/-key.pem (signed by another CA), and a second server
/// certificate from a second CA (ca2.pem, server2.pem) for the reload test.
fn pki() -> Pki {
    let dir = temp_dir("pki");
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    let root = ca("edgemq test CA");
    w("ca.pem", &root.2);
    let (c, k) = leaf(&root, "edgemq server", &["127.0.0.1", "localhost"], false);
    w("server.pem", &c);
    w("server-key.pem", &k);
    let (c, k) = leaf(&root, "sensor-17", &[], true);
    w("client.pem", &c);
    w("client-key.pem", &k);
    let other = ca("untrusted CA");
    let (c, k) = leaf(&other, "rogue", &[], true);
    w("rogue.pem", &c);
    w("rogue-key.pem", &k);
    let root2 = ca("edgemq second CA");
    w("ca2.pem", &root2.2);
    let (c, k) = leaf(&root2, "edgemq server 2", &["127.0.0.1", "localhost"], false);
    w("server2.pem", &c);
    w("server2-key.pem", &k);
    Pki { dir }
}

fn tls_config(pki: &Pki) -> TlsConfig {
    TlsConfig::new(pki.path("server.pem"), pki.path("server-key.pem"))
}

// ---------------------------------------------------------------------------------------------
// Server

/// Records the user name each client connected with.
#[derive(Clone, Default)]
struct Usernames(Arc<Mutex<Vec<ClientName>>>);

/// (client identifier, user name).
type ClientName = (String, Option<String>);

impl Hook for Usernames {
    fn id(&self) -> &str {
        "usernames"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnConnect])
    }
    fn on_connect(&mut self, client: &ClientInfo<'_>, _: &Packet<'_>) -> Result<(), edgemq::packets::ReasonCode> {
        if let Ok(mut v) = self.0.lock() {
            v.push((client.client_id.to_string(), client.username.map(str::to_string)));
        }
        Ok(())
    }
}

struct Running {
    handle: Handle,
    addrs: Vec<String>,
    thread: Option<std::thread::JoinHandle<()>>,
    usernames: Usernames,
}

impl Running {
    fn addr(&self, i: usize) -> &str {
        &self.addrs[i]
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + WAIT;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

fn start(listeners: Vec<ListenerConfig>) -> Running {
    start_with(listeners, |_| {})
}

/// Builds the server on its own thread (the server is not `Send`: hooks and shared payloads
/// stay on the loop thread) and returns its handle and addresses.
fn start_with(listeners: Vec<ListenerConfig>, more: impl FnOnce(&mut Server) + Send + 'static) -> Running {
    start_with_options(Options::default(), listeners, more)
}

fn start_with_options(opts: Options, listeners: Vec<ListenerConfig>, more: impl FnOnce(&mut Server) + Send + 'static) -> Running {
    let usernames = Usernames::default();
    let hook = usernames.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut server = Server::new(opts).unwrap();
        server.add_hook(hook);
        server.add_hook(edgemq::hooks::AllowAll);
        for l in listeners {
            server.add_listener(l).unwrap();
        }
        more(&mut server);
        tx.send((server.handle(), server.local_addrs())).unwrap();
        server.serve().unwrap();
    });
    let (handle, addrs) = rx.recv_timeout(WAIT).expect("server started");
    Running { handle, addrs, thread: Some(thread), usernames }
}

// ---------------------------------------------------------------------------------------------
// A few MQTT 3.1.1 packets by hand

fn connect(id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    body.extend((id.len() as u16).to_be_bytes());
    body.extend(id.as_bytes());
    frame(0x10, &body)
}

fn subscribe(topic: &str) -> Vec<u8> {
    let mut body = vec![0, 1];
    body.extend((topic.len() as u16).to_be_bytes());
    body.extend(topic.as_bytes());
    body.push(0);
    frame(0x82, &body)
}

fn publish(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = (topic.len() as u16).to_be_bytes().to_vec();
    body.extend(topic.as_bytes());
    body.extend(payload);
    frame(0x30, &body)
}

const PINGREQ: [u8; 2] = [0xc0, 0];
const CONNACK_OK: [u8; 4] = [0x20, 2, 0, 0];
const SUBACK_1: [u8; 5] = [0x90, 3, 0, 1, 0];
const PINGRESP: [u8; 2] = [0xd0, 0];

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
    out.extend(body);
    out
}

/// Reads one MQTT packet (fixed header + body) from a byte source.
fn read_packet(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8];
    r.read_exact(&mut out[..1])?;
    let mut len = 0usize;
    for i in 0..4 {
        let mut b = [0u8];
        r.read_exact(&mut b)?;
        out.push(b[0]);
        len |= ((b[0] & 0x7f) as usize) << (7 * i);
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let start = out.len();
    out.resize(start + len, 0);
    r.read_exact(&mut out[start..])?;
    Ok(out)
}

/// Connects, subscribes to `topic`, and checks CONNACK and SUBACK.
fn mqtt_session(s: &mut (impl Read + Write), id: &str, topic: &str) {
    s.write_all(&connect(id)).unwrap();
    s.flush().unwrap();
    assert_eq!(read_packet(s).unwrap(), CONNACK_OK);
    s.write_all(&subscribe(topic)).unwrap();
    s.flush().unwrap();
    assert_eq!(read_packet(s).unwrap(), SUBACK_1);
}

/// A round trip through the broker: publish to our own subscription and read it back.
fn echo(s: &mut (impl Read + Write), topic: &str, payload: &[u8]) {
    s.write_all(&publish(topic, payload)).unwrap();
    s.flush().unwrap();
    assert_eq!(read_packet(s).unwrap(), publish(topic, payload));
}

fn tcp(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// True when the peer closes the connection (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) if Instant::now() < deadline => {}
            Ok(_) => return false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rustls client

fn client_config(pki: &Pki, ca: &str, cert: Option<(&str, &str)>, version: Option<&'static rustls::SupportedProtocolVersion>) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(pki.path(ca)).unwrap()).unwrap();
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match version {
        Some(v) => vec![v],
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let b = rustls::ClientConfig::builder_with_provider(provider).with_protocol_versions(&versions).unwrap().with_root_certificates(roots);
    let cfg = match cert {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(pki.path(c)).unwrap()],
                PrivateKeyDer::from_pem_file(pki.path(k)).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_connect(addr: &str, cfg: Arc<rustls::ClientConfig>) -> io::Result<Tls> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(cfg, name).map_err(io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, tcp(addr));
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// TLS

#[test]
fn tls_1_2_and_1_3_clients_connect_publish_and_receive() {
    let pki = pki();
    let srv = start(vec![ListenerConfig::tls("tls", "127.0.0.1:0", tls_config(&pki))]);
    for (v, name) in [(&rustls::version::TLS12, "TLSv1_2"), (&rustls::version::TLS13, "TLSv1_3")] {
        let mut s = tls_connect(srv.addr(0), client_config(&pki, "ca.pem", None, Some(v))).unwrap();
        assert_eq!(format!("{:?}", s.conn.protocol_version().unwrap()), name);
        mqtt_session(&mut s, &format!("c-{name}"), "t/tls");
        echo(&mut s, "t/tls", b"over tls");
        // A payload larger than one TLS record and than one read of the loop's buffer.
        let big = vec![0x5a; 100_000];
        echo(&mut s, "t/tls", &big);
    }
}

#[test]
fn mosquitto_clients_over_tls_with_and_without_a_client_certificate() {
    let pki = pki();
    let ccert = tls_config(&pki).with_client_ca(pki.path("ca.pem"), true).with_cn_as_username(true);
    let srv = start(vec![
        ListenerConfig::tls("tls", "127.0.0.1:0", tls_config(&pki)),
        ListenerConfig::tls("mtls", "127.0.0.1:0", ccert),
    ]);
    let port = |i: usize| srv.addr(i).rsplit(':').next().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("timeout").arg("20").args(args).output().expect("mosquitto clients installed");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let ca = pki.s("ca.pem");
    let (cert, key) = (pki.s("client.pem"), pki.s("client-key.pem"));
    for (i, extra) in [(0, vec![]), (1, vec!["--cert", &cert, "--key", &key])] {
        let p = port(i);
        let topic = format!("mosq/{i}");
        let mut pub_args = vec!["mosquitto_pub", "-h", "localhost", "-p", &p, "--cafile", &ca, "-t", &topic, "-m", "hello tls", "-r", "-i", "mpub"];
        pub_args.extend(extra.iter().copied());
        run(&pub_args);
        let mut sub_args = vec!["mosquitto_sub", "-h", "localhost", "-p", &p, "--cafile", &ca, "-t", &topic, "-C", "1", "-W", "10", "-i", "msub"];
        sub_args.extend(extra.iter().copied());
        assert_eq!(run(&sub_args).trim(), "hello tls");
    }
    // On the client-certificate listener the certificate's CN is the user name.
    let names = srv.usernames.0.lock().unwrap().clone();
    assert!(names.contains(&("msub".to_string(), Some("sensor-17".to_string()))), "{names:?}");
    assert!(names.contains(&("mpub".to_string(), None)), "{names:?}");
}

#[test]
fn bad_tls_clients_are_closed_while_a_good_one_keeps_working() {
    let pki = pki();
    let cfg = tls_config(&pki).with_client_ca(pki.path("ca.pem"), true).with_handshake_timeout_ms(300);
    let srv = start(vec![ListenerConfig::tls("mtls", "127.0.0.1:0", cfg)]);
    let addr = srv.addr(0);
    let mut good = tls_connect(addr, client_config(&pki, "ca.pem", Some(("client.pem", "client-key.pem")), None)).unwrap();
    mqtt_session(&mut good, "good", "t/good");

    // Garbage instead of a ClientHello: an alert, then close.
    let mut garbage = tcp(addr);
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_within(&mut garbage, WAIT), "garbage client not closed");
    echo(&mut good, "t/good", b"after garbage");

    // Half a ClientHello, then silence: closed after the handshake timeout.
    let mut stalled = tcp(addr);
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]).unwrap();
    let t0 = Instant::now();
    assert!(closed_within(&mut stalled, WAIT), "stalled client not closed");
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(250), "closed too early: {took:?}");
    echo(&mut good, "t/good", b"after stall");

    // A client certificate from an unknown CA: the handshake fails.
    let rogue = client_config(&pki, "ca.pem", Some(("rogue.pem", "rogue-key.pem")), None);
    let result = tls_connect(addr, rogue).and_then(|mut s| {
        // TLS 1.3 clients learn of the refusal on their first read.
        s.write_all(&connect("rogue"))?;
        read_packet(&mut s)
    });
    assert!(result.is_err(), "untrusted client certificate accepted: {result:?}");

    // No client certificate on a listener that requires one.
    let anon = client_config(&pki, "ca.pem", None, None);
    let result = tls_connect(addr, anon).and_then(|mut s| {
        s.write_all(&connect("anon"))?;
        read_packet(&mut s)
    });
    assert!(result.is_err(), "client without certificate accepted: {result:?}");

    echo(&mut good, "t/good", b"still here");
    let stats = srv.handle.stats().unwrap();
    assert_eq!(stats.clients_connected, 1, "{stats:?}");
}

#[test]
fn reload_tls_serves_new_certificates_to_new_clients_and_keeps_old_ones() {
    let pki = pki();
    let dir = temp_dir("reload");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::copy(pki.path("server.pem"), &cert).unwrap();
    std::fs::copy(pki.path("server-key.pem"), &key).unwrap();
    let srv = start(vec![ListenerConfig::tls("tls", "127.0.0.1:0", TlsConfig::new(&cert, &key))]);
    let addr = srv.addr(0);
    let mut old = tls_connect(addr, client_config(&pki, "ca.pem", None, None)).unwrap();
    mqtt_session(&mut old, "old", "t/reload");

    std::fs::copy(pki.path("server2.pem"), &cert).unwrap();
    std::fs::copy(pki.path("server2-key.pem"), &key).unwrap();
    srv.handle.reload_tls().unwrap();

    assert!(tls_connect(addr, client_config(&pki, "ca.pem", None, None)).is_err(), "old certificate still served");
    let mut new = tls_connect(addr, client_config(&pki, "ca2.pem", None, None)).unwrap();
    mqtt_session(&mut new, "new", "t/reload2");
    echo(&mut old, "t/reload", b"old connection still up");

    // A broken file keeps the current configuration.
    std::fs::write(&key, "not a key").unwrap();
    assert!(srv.handle.reload_tls().is_err());
    assert!(tls_connect(addr, client_config(&pki, "ca2.pem", None, None)).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// WebSocket

use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

fn ws_request(url: &str, protocol: Option<&str>) -> tungstenite::handshake::client::Request {
    let mut req = url.into_client_request().unwrap();
    if let Some(p) = protocol {
        req.headers_mut().insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    req
}

/// MQTT bytes over a blocking tungstenite client: `Read` concatenates binary messages.
struct WsClient<S: Read + Write> {
    ws: tungstenite::WebSocket<S>,
    rx: Vec<u8>,
    pongs: usize,
}

impl<S: Read + Write> WsClient<S> {
    fn send_frames(&mut self, frames: &[&[u8]]) {
        for f in frames {
            self.ws.send(Message::Binary(f.to_vec().into())).unwrap();
        }
    }
}

impl<S: Read + Write> Read for WsClient<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.rx.is_empty() {
            match self.ws.read().map_err(io::Error::other)? {
                Message::Binary(b) => self.rx.extend_from_slice(&b),
                Message::Pong(_) => self.pongs += 1,
                Message::Close(_) => return Ok(0),
                _ => {}
            }
        }
        let n = buf.len().min(self.rx.len());
        buf[..n].copy_from_slice(&self.rx[..n]);
        self.rx.drain(..n);
        Ok(n)
    }
}

impl<S: Read + Write> Write for WsClient<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.ws.send(Message::Binary(buf.to_vec().into())).map_err(io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.ws.flush().map_err(io::Error::other)
    }
}

fn ws_connect(addr: &str, path: &str) -> WsClient<TcpStream> {
    let (ws, resp) = tungstenite::client(ws_request(&format!("ws://{addr}{path}"), Some("mqtt")), tcp(addr)).unwrap();
    assert_eq!(resp.headers().get("Sec-WebSocket-Protocol").unwrap(), "mqtt");
    WsClient { ws, rx: Vec::new(), pongs: 0 }
}

fn ws_session<S: Read + Write>(c: &mut WsClient<S>, id: &str) {
    // CONNECT split across two frames; SUBSCRIBE and a PUBLISH to it in one frame.
    let conn = connect(id);
    let (a, b) = conn.split_at(5);
    c.send_frames(&[a, b]);
    assert_eq!(read_packet(c).unwrap(), CONNACK_OK);
    let both = [subscribe("ws/t"), publish("ws/t", b"one frame, two packets")].concat();
    c.send_frames(&[&both]);
    assert_eq!(read_packet(c).unwrap(), SUBACK_1);
    assert_eq!(read_packet(c).unwrap(), publish("ws/t", b"one frame, two packets"));
    // A PUBLISH split in three frames, with a ping between.
    let p = publish("ws/t", &[7u8; 3000]);
    c.send_frames(&[&p[..1], &p[1..2000]]);
    c.ws.send(Message::Ping(b"hi".to_vec().into())).unwrap();
    c.send_frames(&[&p[2000..]]);
    assert_eq!(read_packet(c).unwrap(), p);
    c.send_frames(&[&PINGREQ]);
    assert_eq!(read_packet(c).unwrap(), PINGRESP);
    assert_eq!(c.pongs, 1, "ping not answered");
}

#[test]
fn websocket_clients_publish_and_subscribe_across_frame_boundaries() {
    let srv = start(vec![ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt")]);
    let mut c = ws_connect(srv.addr(0), "/mqtt");
    ws_session(&mut c, "ws1");
    // A second client receives what the first publishes, framed in binary messages.
    let mut other = ws_connect(srv.addr(0), "/mqtt");
    mqtt_session(&mut other, "ws2", "ws/x");
    c.send_frames(&[&publish("ws/x", b"to the other")]);
    assert_eq!(read_packet(&mut other).unwrap(), publish("ws/x", b"to the other"));
    // A close frame ends the connection; the broker counts it gone.
    c.ws.close(None).unwrap();
    let deadline = Instant::now() + WAIT;
    while srv.handle.stats().unwrap().clients_connected != 1 {
        assert!(Instant::now() < deadline, "closed websocket client still counted");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn websocket_over_tls() {
    let pki = pki();
    let srv = start(vec![ListenerConfig::wss("wss", "127.0.0.1:0", "/mqtt", tls_config(&pki))]);
    let tls = tls_connect(srv.addr(0), client_config(&pki, "ca.pem", None, None)).unwrap();
    let url = format!("wss://localhost:{}/mqtt", srv.addr(0).rsplit(':').next().unwrap());
    let (ws, resp) = tungstenite::client(ws_request(&url, Some("mqtt")), tls).unwrap();
    assert_eq!(resp.headers().get("Sec-WebSocket-Protocol").unwrap(), "mqtt");
    let mut c = WsClient { ws, rx: Vec::new(), pongs: 0 };
    ws_session(&mut c, "wss1");
}

fn http_exchange(addr: &str, request: &[u8]) -> String {
    let mut s = tcp(addr);
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

fn status_line(resp: &str) -> &str {
    resp.lines().next().unwrap_or("")
}

#[test]
fn before_connect_a_websocket_message_is_held_to_max_connect_size_and_a_listener_to_max_handshakes_connections() {
    let opts = Options { max_connect_size: 1024, max_handshakes: 2, ..Options::default() };
    let srv = start_with_options(opts, vec![ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt")], |_| {});
    let addr = srv.addr(0);
    // Before CONNECT a message (or frame) over max_connect_size closes the connection:
    // tungstenite never holds more for a peer that has not sent its CONNECT.
    // (A CONNECT and 600 PINGREQs in one message: valid MQTT, 1,200 bytes of it before CONNACK.)
    let mut big = ws_connect(addr, "/mqtt");
    let message = [connect("ws-x"), PINGREQ.repeat(600)].concat();
    big.send_frames(&[&message]);
    assert!(read_packet(&mut big).is_err(), "a 1,200-byte message before CONNECT was taken");
    // After CONNECT, messages as large as packets.
    let mut c = ws_connect(addr, "/mqtt");
    mqtt_session(&mut c, "ws-big", "ws/big");
    echo(&mut c, "ws/big", &[7; 20_000]);
    // Two connections upgraded but without CONNECT take the listener's two places; a third is
    // closed at once (before its upgrade is answered)...
    let deadline = Instant::now() + WAIT;
    let (mut a, _b) = loop {
        // (the closed connection above gives its place back as the server notices)
        let a = ws_connect(addr, "/mqtt");
        let b = ws_connect(addr, "/mqtt");
        if tungstenite::client(ws_request(&format!("ws://{addr}/mqtt"), Some("mqtt")), tcp(addr)).is_err() {
            break (a, b);
        }
        assert!(Instant::now() < deadline, "a third connection before CONNECT was upgraded");
    };
    // ...until one of them CONNECTs: its place is free again.
    mqtt_session(&mut a, "ws-a", "ws/a");
    let mut d = ws_connect(addr, "/mqtt");
    mqtt_session(&mut d, "ws-d", "ws/d");
    echo(&mut c, "ws/big", b"still served");
}

#[test]
fn websocket_upgrades_that_break_the_rules_are_refused() {
    let srv = start(vec![ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt")]);
    let addr = srv.addr(0);
    // No mqtt subprotocol: tungstenite's client sees the refusal.
    let err = tungstenite::client(ws_request(&format!("ws://{addr}/mqtt"), None), tcp(addr)).unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    let err = tungstenite::client(ws_request(&format!("ws://{addr}/mqtt"), Some("chat")), tcp(addr)).unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    // Wrong path.
    let err = tungstenite::client(ws_request(&format!("ws://{addr}/other"), Some("mqtt")), tcp(addr)).unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    // An oversized header: 431, and the connection is closed.
    let big = format!(
        "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    assert_eq!(status_line(&http_exchange(addr, big.as_bytes())), "HTTP/1.1 431 Request Header Fields Too Large");
    // Garbage.
    assert_eq!(status_line(&http_exchange(addr, b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\r\n\r\n")), "HTTP/1.1 400 Bad Request");
    // The listener still works.
    let mut c = ws_connect(addr, "/mqtt");
    mqtt_session(&mut c, "after", "ws/after");
}

#[test]
fn websocket_handshake_that_stalls_is_closed() {
    let srv = start(vec![ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt")]);
    let mut c = tcp(srv.addr(0));
    c.write_all(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n").unwrap();
    let limit = Duration::from_millis(Options::default().connect_timeout_ms) + WAIT;
    assert!(closed_within(&mut c, limit), "stalled upgrade not closed");
}

// ---------------------------------------------------------------------------------------------
// Unix socket and an already-open TCP listener

#[test]
fn a_raw_unix_socket_client_connects() {
    let dir = temp_dir("unix");
    let path = dir.join("edgemq.sock");
    let srv = start(vec![ListenerConfig::unix("unix", path.to_str().unwrap(), 0o660)]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    mqtt_session(&mut s, "unix1", "u/t");
    echo(&mut s, "u/t", b"over a unix socket");
    assert_eq!(srv.addr(0), path.to_str().unwrap());
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_already_open_tcp_listener_is_served() {
    let pki = pki();
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_addr = plain.local_addr().unwrap().to_string();
    let secure = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let secure_addr = secure.local_addr().unwrap().to_string();
    let tls_cfg = ListenerConfig::tls("inherited-tls", &secure_addr, tls_config(&pki));
    let srv = start_with(vec![], move |s| {
        s.add_tcp_listener("inherited", plain).unwrap();
        s.add_open_listener(tls_cfg, secure).unwrap();
    });
    assert_eq!(srv.addrs, vec![plain_addr.clone(), secure_addr.clone()]);
    let mut a = tcp(&plain_addr);
    mqtt_session(&mut a, "inh1", "i/t");
    let mut b = tls_connect(&secure_addr, client_config(&pki, "ca.pem", None, None)).unwrap();
    mqtt_session(&mut b, "inh2", "i/t");
    a.write_all(&publish("i/t", b"both")).unwrap();
    assert_eq!(read_packet(&mut a).unwrap(), publish("i/t", b"both"));
    assert_eq!(read_packet(&mut b).unwrap(), publish("i/t", b"both"));
}

// ---------------------------------------------------------------------------------------------
// HTTP stats

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// Checks the Prometheus text format and returns the samples.
fn parse_metrics(text: &str) -> Vec<(String, u64)> {
    let valid_name = |n: &str| {
        let mut b = n.bytes();
        b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
    };
    let mut samples = Vec::new();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(valid_name(name) && (kind == "gauge" || kind == "counter"), "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            assert!(line.is_empty() || line.starts_with("# HELP "), "{line}");
            continue;
        }
        let (name, value) = line.split_once(' ').unwrap_or_else(|| panic!("not `name value`: {line}"));
        assert!(valid_name(name), "bad metric name: {name}");
        assert!(typed.contains(name), "no # TYPE before {name}");
        samples.push((name.to_string(), value.parse().unwrap_or_else(|_| panic!("bad value: {line}"))));
    }
    samples
}

fn metric(addr: &str, name: &str) -> u64 {
    let resp = http_exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_line(&resp), "HTTP/1.1 200 OK");
    assert!(resp.contains("Content-Type: text/plain; version=0.0.4"));
    parse_metrics(body(&resp)).into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} missing")).1
}

#[test]
fn http_stats_serves_metrics_and_json_and_refuses_the_rest() {
    let srv = start(vec![ListenerConfig::http("http", "127.0.0.1:0"), ListenerConfig::tcp("mqtt", "127.0.0.1:0")]);
    let (http, mqtt) = (srv.addr(0).to_string(), srv.addr(1).to_string());
    assert_eq!(metric(&http, "edgemq_clients_connected"), 0);
    let mut a = tcp(&mqtt);
    mqtt_session(&mut a, "m1", "m/t");
    let mut b = tcp(&mqtt);
    mqtt_session(&mut b, "m2", "m/t");
    assert_eq!(metric(&http, "edgemq_clients_connected"), 2);
    assert!(metric(&http, "edgemq_connections_total") >= 2);
    drop(a);
    let deadline = Instant::now() + WAIT;
    while metric(&http, "edgemq_clients_connected") != 1 {
        assert!(Instant::now() < deadline, "clients_connected did not drop to 1");
        std::thread::sleep(Duration::from_millis(20));
    }
    // HTTP connections are not MQTT clients.
    assert_eq!(srv.handle.stats().unwrap().clients_connected, 1);

    for path in ["/", "/stats"] {
        let resp = http_exchange(&http, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        assert_eq!(status_line(&resp), "HTTP/1.1 200 OK");
        assert!(resp.contains("Content-Type: application/json"));
        let json = body(&resp).trim();
        assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
        for key in ["uptime_seconds", "clients_connected", "subscriptions", "messages_received", "bytes_sent"] {
            assert!(json.contains(&format!("\"{key}\":")), "{key} missing from {json}");
        }
        assert!(json.contains("\"clients_connected\":1"), "{json}");
    }
    assert_eq!(status_line(&http_exchange(&http, b"GET /nope HTTP/1.1\r\n\r\n")), "HTTP/1.1 404 Not Found");
    assert_eq!(status_line(&http_exchange(&http, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")), "HTTP/1.1 405 Method Not Allowed");
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9000));
    assert_eq!(status_line(&http_exchange(&http, long_line.as_bytes())), "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(status_line(&http_exchange(&http, b"BLAH\r\n\r\n")), "HTTP/1.1 400 Bad Request");
    // The request may arrive in pieces.
    let mut s = tcp(&http);
    s.write_all(b"GET /sta").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"ts HTTP/1.1\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert_eq!(status_line(&out), "HTTP/1.1 200 OK");
}


// ---------------------------------------------------------------------------------------------
// Interop: paho-mqtt (Python) over WebSocket, skipped when python3 or paho-mqtt is missing.

/// Runs tests/interop_listeners/paho_ws.py against `addr`; skips when python3 or paho is missing.
fn run_paho_ws(addr: &str, cafile: Option<&str>) {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop_listeners/paho_ws.py");
    let mut args = vec!["60", "python3", script, host, port, "/mqtt"];
    args.extend(cafile);
    let out = match std::process::Command::new("timeout").args(&args).output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: cannot run python3: {e}");
            return;
        }
    };
    if out.status.code() == Some(77) {
        eprintln!("skipped: paho-mqtt not installed");
        return;
    }
    assert!(out.status.success(), "paho over websocket failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn paho_mqtt_over_websocket() {
    let srv = start(vec![ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt")]);
    run_paho_ws(srv.addr(0), None);
}

#[test]
fn paho_mqtt_over_websocket_over_tls() {
    let pki = pki();
    let srv = start(vec![ListenerConfig::wss("wss", "127.0.0.1:0", "/mqtt", tls_config(&pki))]);
    run_paho_ws(srv.addr(0), Some(&pki.s("ca.pem")));
}

// ---------------------------------------------------------------------------------------------
// Conformance statements proven at the listener level (linked from tests/conformance/matrix.md):
// the transport (MQTT 5.0 4.2.0-1, 3.1.1 7.1.1-1) and MQTT over WebSocket (chapter 6 of both).
// Each runs the MQTT version of the statement it is named after.

/// CONNECT (clean start, keep alive 60) of MQTT 5.0 (`v5`) or 3.1.1.
fn connect_v(v5: bool, id: &str) -> Vec<u8> {
    if !v5 {
        return connect(id);
    }
    // properties: none
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0];
    body.extend((id.len() as u16).to_be_bytes());
    body.extend(id.as_bytes());
    frame(0x10, &body)
}

/// SUBSCRIBE (packet id 1, QoS 0) of either version.
fn subscribe_v(v5: bool, topic: &str) -> Vec<u8> {
    if !v5 {
        return subscribe(topic);
    }
    let mut body = vec![0, 1, 0];
    body.extend((topic.len() as u16).to_be_bytes());
    body.extend(topic.as_bytes());
    body.push(0);
    frame(0x82, &body)
}

/// QoS 0 PUBLISH of either version (no properties in 5.0).
fn publish_v(v5: bool, topic: &str, payload: &[u8]) -> Vec<u8> {
    if !v5 {
        return publish(topic, payload);
    }
    let mut body = (topic.len() as u16).to_be_bytes().to_vec();
    body.extend(topic.as_bytes());
    body.push(0);
    body.extend(payload);
    frame(0x30, &body)
}

/// The CONNACK of a default-configured server: 5.0 carries receive maximum 64, topic alias
/// maximum 64 and maximum packet size 256 KiB.
fn connack_ok(v5: bool) -> Vec<u8> {
    if v5 {
        vec![0x20, 0x0e, 0, 0, 0x0b, 0x21, 0, 0x40, 0x22, 0, 0x40, 0x27, 0, 0x04, 0, 0]
    } else {
        CONNACK_OK.to_vec()
    }
}

fn suback_v(v5: bool) -> Vec<u8> {
    if v5 {
        vec![0x90, 4, 0, 1, 0, 0]
    } else {
        SUBACK_1.to_vec()
    }
}

/// Connects with `id`, subscribes to `topic`, and checks CONNACK and SUBACK byte for byte.
fn session_v(s: &mut (impl Read + Write), v5: bool, id: &str, topic: &str) {
    s.write_all(&connect_v(v5, id)).unwrap();
    s.flush().unwrap();
    assert_eq!(read_packet(s).unwrap(), connack_ok(v5));
    s.write_all(&subscribe_v(v5, topic)).unwrap();
    s.flush().unwrap();
    assert_eq!(read_packet(s).unwrap(), suback_v(v5));
}

/// A WebSocket client that fails the test when the server sends anything but binary data frames
/// (pings and pongs are control frames, not data frames, and are let through).
struct StrictWs {
    ws: tungstenite::WebSocket<TcpStream>,
    rx: Vec<u8>,
    binary_messages: usize,
}

impl StrictWs {
    fn connect(addr: &str, offer: &str) -> StrictWs {
        let (ws, resp) = tungstenite::client(ws_request(&format!("ws://{addr}/mqtt"), Some(offer)), tcp(addr)).unwrap();
        assert_eq!(resp.headers().get("Sec-WebSocket-Protocol").unwrap(), "mqtt");
        StrictWs { ws, rx: Vec::new(), binary_messages: 0 }
    }

    /// True when the server ends the connection (close frame, EOF or reset) within `within`;
    /// false when it is still open then.
    fn closed_within(&mut self, within: Duration) -> bool {
        self.ws.get_mut().set_read_timeout(Some(within)).unwrap();
        let deadline = Instant::now() + within;
        loop {
            match self.ws.read() {
                Ok(Message::Close(_)) => return true,
                Ok(Message::Text(t)) => panic!("[MQTT-6.0.0-1] the server sent a text frame: {t:?}"),
                Ok(_) if Instant::now() < deadline => {}
                Ok(_) => return false,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
        }
    }
}

impl Read for StrictWs {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.rx.is_empty() {
            match self.ws.read().map_err(io::Error::other)? {
                Message::Binary(b) => {
                    self.binary_messages += 1;
                    self.rx.extend_from_slice(&b);
                }
                Message::Ping(_) | Message::Pong(_) => {}
                Message::Close(_) => return Ok(0),
                other => panic!("[MQTT-6.0.0-1] the server sent a non-binary data frame: {other:?}"),
            }
        }
        let n = buf.len().min(self.rx.len());
        buf[..n].copy_from_slice(&self.rx[..n]);
        self.rx.drain(..n);
        Ok(n)
    }
}

impl Write for StrictWs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.ws.send(Message::Binary(buf.to_vec().into())).map_err(io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.ws.flush().map_err(io::Error::other)
    }
}

/// [MQTT-6.0.0-1] The server sends its packets in binary data frames, and closes a connection
/// that sends it a text data frame, without taking the frame's content as MQTT.
fn binary_frames_only(v5: bool) {
    let srv = start(vec![ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt")]);
    let addr = srv.addr(0);
    // Everything the server sends on a working session comes in binary frames.
    let mut a = StrictWs::connect(addr, "mqtt");
    session_v(&mut a, v5, "sender", "ws/own");
    a.write_all(&publish_v(v5, "ws/own", b"echo")).unwrap();
    assert_eq!(read_packet(&mut a).unwrap(), publish_v(v5, "ws/own", b"echo"));
    a.write_all(&PINGREQ).unwrap();
    assert_eq!(read_packet(&mut a).unwrap(), PINGRESP);
    assert_eq!(a.binary_messages, 4, "CONNACK, SUBACK, PUBLISH and PINGRESP in binary frames");

    let mut watcher = StrictWs::connect(addr, "mqtt");
    session_v(&mut watcher, v5, "watcher", "ws/text");
    // A well-formed PUBLISH to the watcher's topic, sent in a text frame (its bytes are ASCII,
    // so the frame is valid UTF-8): the server closes the connection.
    let in_text = publish_v(v5, "ws/text", b"in a text frame");
    let text = String::from_utf8(in_text).expect("an ASCII packet");
    a.ws.send(Message::Text(text.into())).unwrap();
    assert!(a.closed_within(WAIT), "a text frame did not close the connection");
    let deadline = Instant::now() + WAIT;
    while srv.handle.stats().unwrap().clients_connected != 1 {
        assert!(Instant::now() < deadline, "the text-frame client is still counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The PUBLISH in the text frame was not routed: had it been, it would be queued to the
    // watcher ahead of this PINGRESP.
    watcher.write_all(&PINGREQ).unwrap();
    assert_eq!(read_packet(&mut watcher).unwrap(), PINGRESP);
}

#[test]
fn mqtt5_6_0_0_1_the_server_sends_binary_frames_and_closes_on_a_text_frame() {
    binary_frames_only(true);
}

#[test]
fn mqtt311_6_0_0_1_the_server_sends_binary_frames_and_closes_on_a_text_frame() {
    binary_frames_only(false);
}

/// [MQTT-6.0.0-2] MQTT 5.0 packets are not aligned to frames: a CONNECT one byte per frame, a
/// frame holding a whole SUBSCRIBE and the start of a PUBLISH, a frame holding the end of that
/// PUBLISH, a whole PINGREQ and the first byte of another PUBLISH, whose rest spans two frames.
/// (The 3.1.1 row is proven by `websocket_clients_publish_and_subscribe_across_frame_boundaries`.)
#[test]
fn mqtt5_6_0_0_2_mqtt5_packets_span_frames_and_share_them() {
    let srv = start(vec![ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt")]);
    let mut c = StrictWs::connect(srv.addr(0), "mqtt");
    for b in connect_v(true, "frames5") {
        c.ws.send(Message::Binary(vec![b].into())).unwrap();
    }
    assert_eq!(read_packet(&mut c).unwrap(), connack_ok(true));
    let p1 = publish_v(true, "ws/5", b"first");
    let p2 = publish_v(true, "ws/5", &[9u8; 3000]);
    let frames: Vec<Vec<u8>> = vec![
        [subscribe_v(true, "ws/5"), p1[..3].to_vec()].concat(),
        [p1[3..].to_vec(), PINGREQ.to_vec(), p2[..1].to_vec()].concat(),
        p2[1..1500].to_vec(),
        p2[1500..].to_vec(),
    ];
    for f in frames {
        c.ws.send(Message::Binary(f.into())).unwrap();
    }
    assert_eq!(read_packet(&mut c).unwrap(), suback_v(true));
    assert_eq!(read_packet(&mut c).unwrap(), p1);
    assert_eq!(read_packet(&mut c).unwrap(), PINGRESP);
    assert_eq!(read_packet(&mut c).unwrap(), p2);
}

/// [MQTT-6.0.0-4] Whatever list the client offers, the subprotocol the server selects and
/// returns is `mqtt`; a client that does not offer it is refused (400) with no subprotocol
/// selected. The session that follows speaks the statement's MQTT version.
fn selects_mqtt(v5: bool) {
    let srv = start(vec![ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt")]);
    let addr = srv.addr(0);
    for offer in ["mqtt", "mqttv3.1, mqtt", "chat, mqtt, mqttv3.1"] {
        let (_ws, resp) = tungstenite::client(ws_request(&format!("ws://{addr}/mqtt"), Some(offer)), tcp(addr)).unwrap();
        let selected: Vec<_> = resp.headers().get_all("Sec-WebSocket-Protocol").iter().collect();
        assert_eq!(selected, ["mqtt"], "offer {offer:?}");
    }
    for offer in ["chat", "mqttv3.1", "mqtt5, mqtts"] {
        match tungstenite::client(ws_request(&format!("ws://{addr}/mqtt"), Some(offer)), tcp(addr)) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                assert_eq!(resp.status().as_u16(), 400, "offer {offer:?}");
                assert!(resp.headers().get("Sec-WebSocket-Protocol").is_none(), "offer {offer:?}: a subprotocol was selected");
            }
            other => panic!("offer {offer:?}: expected a 400 refusal, got {:?}", other.map(|(_, r)| r)),
        }
    }
    let mut c = StrictWs::connect(addr, "mqttv3.1, mqtt");
    session_v(&mut c, v5, "subprotocol", "ws/p");
    c.write_all(&publish_v(v5, "ws/p", b"over mqtt")).unwrap();
    assert_eq!(read_packet(&mut c).unwrap(), publish_v(v5, "ws/p", b"over mqtt"));
}

#[test]
fn mqtt5_6_0_0_4_the_server_selects_the_mqtt_subprotocol() {
    selects_mqtt(true);
}

#[test]
fn mqtt311_6_0_0_4_the_server_selects_the_mqtt_subprotocol() {
    selects_mqtt(false);
}

/// The transport statements (MQTT 5.0 [MQTT-4.2.0-1], 3.1.1 [MQTT-7.1.1-1]): the server
/// supports transports that carry an ordered, lossless byte stream both ways. Over plain TCP,
/// TLS and WebSocket, 100 QoS 0 PUBLISH packets of 0 to 600 bytes (each payload distinct) are
/// written as one byte stream cut into 4 KiB writes that ignore packet boundaries; the server
/// must decode every one (client to server) and send each back to the subscribed client byte
/// for byte and in order (server to client). The whole stream stays well under the default
/// session queue (`max_queued_bytes`, 64 KiB): past it QoS 0 messages are dropped by policy
/// (`queue_full_policy` drop-new), which is the broker's bound, not the transport losing bytes.
fn ordered_lossless_both_ways(v5: bool) {
    let pki = pki();
    let srv = start(vec![
        ListenerConfig::tcp("tcp", "127.0.0.1:0"),
        ListenerConfig::tls("tls", "127.0.0.1:0", tls_config(&pki)),
        ListenerConfig::ws("ws", "127.0.0.1:0", "/mqtt"),
    ]);
    let packets: Vec<Vec<u8>> = (0..100usize)
        .map(|i| {
            let payload: Vec<u8> = (0..(i * 97) % 600).map(|j| (i * 31 + j) as u8).collect();
            publish_v(v5, "order/t", &payload)
        })
        .collect();
    let total: usize = packets.iter().map(Vec::len).sum();
    assert!(total > 4 * 4096 && total < 40 * 1024, "{total} bytes");
    run_stream(&mut tcp(srv.addr(0)), v5, "tcp", &packets);
    run_stream(&mut tls_connect(srv.addr(1), client_config(&pki, "ca.pem", None, None)).unwrap(), v5, "tls", &packets);
    run_stream(&mut StrictWs::connect(srv.addr(2), "mqtt"), v5, "ws", &packets);
}

/// Subscribes, writes `packets` as one stream in 4 KiB pieces, and reads each back in order.
fn run_stream(s: &mut (impl Read + Write), v5: bool, name: &str, packets: &[Vec<u8>]) {
    session_v(s, v5, &format!("order-{name}"), "order/t");
    for chunk in packets.concat().chunks(4096) {
        s.write_all(chunk).unwrap();
        s.flush().unwrap();
    }
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(&read_packet(s).unwrap(), p, "{name}: packet {i} lost, altered or out of order");
    }
    s.write_all(&PINGREQ).unwrap();
    s.flush().unwrap();
    assert_eq!(read_packet(s).unwrap(), PINGRESP, "{name}: something after the last packet");
}

#[test]
fn mqtt5_4_2_0_1_tcp_tls_and_websocket_carry_an_ordered_lossless_stream_both_ways() {
    ordered_lossless_both_ways(true);
}

#[test]
fn mqtt311_7_1_1_1_tcp_tls_and_websocket_carry_an_ordered_lossless_stream_both_ways() {
    ordered_lossless_both_ways(false);
}
