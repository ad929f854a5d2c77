//! The `Ledger` hook through the socket-free broker: an auth allow/deny matrix, ACL on
//! subscribe (0x87 per filter) and publish (0x87 in PUBACK, silent drop at QoS 0), `%c`, and
//! the inline client passing by the ACL while `inject_as` does not.

use crate::common::*;
use edgemq::broker::{ClientId, PeerInfo};
use edgemq::hooks::ledger::{hash_password_with_salt, Ledger};
use edgemq::hooks::{ClientInfo, Hook, Point, Provides};
use edgemq::packets::{self, Packet, Properties, ReasonCode, Subscribe, SubscribeFilters, Version::*};
use edgemq::Options;
use std::cell::RefCell;
use std::rc::Rc;

fn ledger() -> Ledger {
    let alice = hash_password_with_salt("wonderland", 1000, b"0123456789abcdef");
    let text = format!(
        r#"
acl_default = "deny"

[[auth]]
client = "banned-*"
allow = false

[[auth]]
username = "alice"
password = "{alice}"
allow = true

[[auth]]
username = "bob"
password = "builder"
allow = true

[[auth]]
client = "gw-*"
remote = "10.0.0.*"
allow = true

[[acl]]
username = "alice"
filters = {{ "home/#" = "readwrite", "home/secret/#" = "deny", "alerts/#" = "read", "cmd/%c" = "write" }}

[[acl]]
username = "bob"
filters = {{ "build/#" = "write" }}
"#
    );
    Ledger::from_toml(&text, "test.toml").unwrap()
}

fn broker() -> TestBroker {
    TestBroker::with_hooks(Options::default(), vec![Box::new(ledger())])
}

/// CONNECT from `remote` on a listener that does not admit anonymous clients; the CONNACK
/// reason code.
fn try_connect(t: &mut TestBroker, client: &str, user: Option<&str>, pass: Option<&[u8]>, remote: &str) -> (ClientId, u8) {
    let peer = PeerInfo { remote: remote.into(), listener: "t".into(), allow_anonymous: false, cert_username: None };
    let c = t.b.accept(peer, t.now).unwrap();
    let mut p = connect_packet(V5, client, true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.username = user;
        k.password = pass;
    }
    t.send(c, V5, p);
    let out = t.take(c);
    match packets::decode(&out, V5, u32::MAX).unwrap().unwrap().0 {
        Packet::ConnAck(a) => (c, a.reason.as_u8()),
        other => panic!("{other:?}"),
    }
}

/// client, user name, password, remote, expected CONNACK code.
type Case<'a> = (&'a str, Option<&'a str>, Option<&'a [u8]>, &'a str, u8);

#[test]
fn auth_rules_first_match_wins_and_nothing_matching_is_refused() {
    let mut t = broker();
    let local = "127.0.0.1:4000";
    let cases: &[Case<'_>] = &[
        ("a1", Some("alice"), Some(b"wonderland"), local, 0x00),
        ("a2", Some("alice"), Some(b"Wonderland"), local, 0x86),
        ("a3", Some("alice"), None, local, 0x86),
        ("banned-1", Some("alice"), Some(b"wonderland"), local, 0x86),
        ("b1", Some("bob"), Some(b"builder"), local, 0x00),
        ("b2", Some("bob"), Some(b"builde"), local, 0x86),
        ("gw-1", None, None, "10.0.0.7:999", 0x00),
        ("gw-2", None, None, "10.0.1.7:999", 0x87),
        ("other", None, None, local, 0x87),
        ("other", Some("mallory"), Some(b"x"), local, 0x86),
    ];
    for &(client, user, pass, remote, want) in cases {
        let (_, got) = try_connect(&mut t, client, user, pass, remote);
        assert_eq!(got, want, "{client} {user:?} {remote}");
    }
}

fn subscribe_codes(t: &mut TestBroker, c: ClientId, filters: &[&str]) -> Vec<u8> {
    let f: Vec<(&str, packets::SubOptions)> = filters.iter().map(|f| (*f, opts(1))).collect();
    t.send(c, V5, Packet::Subscribe(Subscribe { pid: pid(1), properties: Properties::default(), filters: SubscribeFilters::List(&f) }));
    let out = t.take(c);
    match packets::decode(&out, V5, u32::MAX).unwrap().unwrap().0 {
        Packet::SubAck(a) => a.codes.to_vec(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn acl_refuses_subscriptions_per_filter_with_0x87() {
    let mut t = broker();
    let (a, _) = try_connect(&mut t, "a1", Some("alice"), Some(b"wonderland"), "127.0.0.1:1");
    let codes = subscribe_codes(&mut t, a, &["home/lights/+", "home/secret/x", "home/#", "#", "alerts/+", "build/#", "cmd/a1"]);
    // home/# overlaps the denied home/secret/#; cmd/a1 is write-only
    assert_eq!(codes, [0x01, 0x87, 0x87, 0x87, 0x01, 0x87, 0x87]);
}

#[test]
fn acl_refuses_publishes_with_0x87_in_puback_and_drops_qos0_silently() {
    let mut t = broker();
    let (a, _) = try_connect(&mut t, "a1", Some("alice"), Some(b"wonderland"), "127.0.0.1:1");
    assert_eq!(subscribe_codes(&mut t, a, &["home/lights/+", "alerts/+"]), [0x01, 0x01]);
    let (b, _) = try_connect(&mut t, "b1", Some("bob"), Some(b"builder"), "127.0.0.1:2");

    t.send(a, V5, publish("home/lights/1", b"on", 1, 1, false));
    assert_eq!(t.take(a), [encode(V5, publish("home/lights/1", b"on", 1, 1, false)), hex("40 02 00 01")].concat());
    t.send(a, V5, publish("alerts/x", b"no", 1, 2, false));
    assert_eq!(t.take(a), hex("40 03 00 02 87"), "read-only");
    t.send(a, V5, publish("cmd/a1", b"ok", 1, 3, false));
    assert_eq!(t.take(a), hex("40 03 00 03 10"), "%c matches its own id");
    t.send(a, V5, publish("cmd/b1", b"no", 1, 4, false));
    assert_eq!(t.take(a), hex("40 03 00 04 87"));
    t.send(a, V5, publish("home/secret/door", b"no", 1, 5, false));
    assert_eq!(t.take(a), hex("40 03 00 05 87"), "deny wins over home/#");
    // QoS 0: dropped without a word
    t.send(b, V5, publish("alerts/x", b"quiet", 0, 0, false));
    assert!(t.take(b).is_empty());
    assert!(t.take(a).is_empty());
    // 3.1.1 has no reason code in PUBACK: acknowledged, not delivered
    let mut t3 = broker();
    let c = t3.accept();
    let mut p = connect_packet(V3_1_1, "b3", true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.username = Some("bob");
        k.password = Some(b"builder");
    }
    t3.send(c, V3_1_1, p);
    t3.take(c);
    t3.send(c, V3_1_1, publish("home/x", b"no", 1, 6, false));
    assert_eq!(t3.take(c), hex("40 02 00 06"));
}

#[test]
fn the_inline_client_passes_by_the_acl_and_inject_as_does_not() {
    let mut t = broker();
    let (a, _) = try_connect(&mut t, "a1", Some("alice"), Some(b"wonderland"), "127.0.0.1:1");
    assert_eq!(subscribe_codes(&mut t, a, &["alerts/+"]), [0x01]);
    let pkt = encode(V5, publish("alerts/fire", b"!", 0, 0, false));
    assert_eq!(t.b.inject(&pkt, t.now), Ok(1));
    assert_eq!(t.take(a), pkt);
    // on behalf of alice, who may only read alerts/#: dropped (QoS 0)
    t.b.inject_as("a1", &pkt, t.now).unwrap();
    assert!(t.take(a).is_empty());
    let _ = ReasonCode::Success;
}

// ---- password hashing on the loop (issue 13) ----------------------------------------------

/// The ledger as a hook the test can still look into (PBKDF2 runs) and reload.
struct Shared(Rc<RefCell<Ledger>>);

impl Hook for Shared {
    fn id(&self) -> &str {
        "ledger"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnConnectAuthenticate])
    }
    fn on_connect_authenticate(&mut self, client: &ClientInfo<'_>, password: Option<&[u8]>) -> bool {
        self.0.borrow_mut().on_connect_authenticate(client, password)
    }
}

/// Four rules that all match user `dev`, with hashes of four passwords made with one salt,
/// then one more with its own salt.
fn dev_ledger() -> Rc<RefCell<Ledger>> {
    let mut text = String::new();
    for (i, salt) in [b"same salt 123456", b"same salt 123456", b"same salt 123456", b"same salt 123456", b"other salt 12345"]
        .iter()
        .enumerate()
    {
        let h = hash_password_with_salt(&format!("pw{i}"), 200, *salt);
        text.push_str(&format!("[[auth]]\nusername = \"dev\"\npassword = \"{h}\"\nallow = true\n"));
    }
    Rc::new(RefCell::new(Ledger::from_toml(&text, "dev.toml").unwrap()))
}

fn dev_broker(opts: Options) -> (TestBroker, Rc<RefCell<Ledger>>) {
    let l = dev_ledger();
    (TestBroker::with_hooks(opts, vec![Box::new(Shared(l.clone()))]), l)
}

#[test]
fn a_connect_matching_several_hashed_rules_derives_once_per_salt() {
    let (mut t, l) = dev_broker(Options::default());
    // Wrong password: five candidate rules, two salts, two runs (not five).
    assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"nope"), "127.0.0.1:1").1, 0x86);
    assert_eq!(l.borrow().pbkdf2_runs(), 2);
    // The third rule's password: the first four rules share one derivation.
    assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"pw2"), "127.0.0.1:1").1, 0x00);
    assert_eq!(l.borrow().pbkdf2_runs(), 3);
}

#[test]
fn a_reconnect_with_the_same_password_is_not_hashed_and_a_reload_forgets_it() {
    let (mut t, l) = dev_broker(Options::default());
    assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"pw4"), "127.0.0.1:1").1, 0x00);
    assert_eq!(l.borrow().pbkdf2_runs(), 2, "one run for the shared salt, one for the last rule");
    for i in 0..5 {
        let id = format!("d{i}");
        assert_eq!(try_connect(&mut t, &id, Some("dev"), Some(b"pw4"), "10.1.1.1:9").1, 0x00);
    }
    assert_eq!(l.borrow().pbkdf2_runs(), 2, "reconnects cost no PBKDF2 run");
    // Reloading (SIGHUP replaces the `ledger` hook with a new ledger) forgets every verdict.
    let reloaded = dev_ledger();
    assert!(t.b.hooks_mut().replace("ledger", Box::new(Shared(reloaded.clone()))));
    assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"pw4"), "127.0.0.1:1").1, 0x00);
    assert_eq!(reloaded.borrow().pbkdf2_runs(), 2);
    assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"pw4"), "127.0.0.1:1").1, 0x00);
    assert_eq!(reloaded.borrow().pbkdf2_runs(), 2);
}

#[test]
fn an_address_over_its_failures_per_minute_is_refused_without_hashing() {
    let (mut t, l) = dev_broker(Options { auth_failures_per_minute: 3, ..Options::default() });
    let runs = || l.borrow().pbkdf2_runs();
    for port in 1..=3 {
        assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"nope"), &format!("127.0.0.1:{port}")).1, 0x86);
    }
    assert_eq!(runs(), 6);
    // Blocked: 0x87 at once, even with the right password, from any port, as mapped IPv6.
    assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"nope"), "127.0.0.1:4").1, 0x87);
    assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"pw0"), "127.0.0.1:5").1, 0x87);
    assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"pw0"), "[::ffff:127.0.0.1]:6").1, 0x87);
    assert_eq!(runs(), 6, "no hashing for a blocked address");
    // 3.1.1: 0x05 not authorized.
    let peer = PeerInfo { remote: "127.0.0.1:7".into(), listener: "t".into(), allow_anonymous: false, cert_username: None };
    let c = t.b.accept(peer, t.now).unwrap();
    let mut p = connect_packet(V3_1_1, "d3", true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.username = Some("dev");
        k.password = Some(b"pw0");
    }
    t.send(c, V3_1_1, p);
    assert_eq!(t.take(c), hex("20 02 00 05"));
    // Another address is not affected.
    assert_eq!(try_connect(&mut t, "e", Some("dev"), Some(b"nope"), "127.0.0.2:1").1, 0x86);
    assert_eq!(try_connect(&mut t, "e", Some("dev"), Some(b"pw0"), "[::1]:1").1, 0x00);
    assert_eq!(runs(), 9, "two salts for the wrong password, one for pw0");
    // A minute after the first failure the address may try again.
    t.advance(59_999);
    assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"pw0"), "127.0.0.1:8").1, 0x87);
    t.advance(1);
    assert_eq!(try_connect(&mut t, "d", Some("dev"), Some(b"pw0"), "127.0.0.1:8").1, 0x00);
}
