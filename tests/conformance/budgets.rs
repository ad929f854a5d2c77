//! The byte budgets that make `memory_limit` a bound on what clients can make the broker hold
//! (`Options::memory_terms`): each is refused with its reason code when full, and given back
//! when what it counts goes, so that a new request fits again. After every step the budgets'
//! counts equal a recount from the structures themselves (`Broker::held_recounted`).

use crate::common::*;
use edgemq::broker::cost;
use edgemq::message::{Message, MessageProps};
use edgemq::hooks::{AuthStep, ClientInfo, Hook, Point, Provides};
use edgemq::packets::{
    self, Disconnect, Packet, Properties, Publish, QoS, QosPid, ReasonCode, SubOptions, Subscribe, SubscribeFilters, TopicList,
    Unsubscribe, Version, Version::*, Will,
};
use edgemq::broker::{ClientId, Held};
use edgemq::Options;

/// The budgets count what the structures hold: nothing taken twice, nothing forgotten.
fn balanced(t: &TestBroker) -> Held {
    let held = t.b.held();
    assert_eq!(held, t.b.held_recounted(), "the budgets drifted from what is held");
    held
}

/// SUBSCRIBE to `filters` in one packet; the SUBACK's codes.
fn suback(t: &mut TestBroker, c: ClientId, v: Version, filters: &[&str]) -> Vec<u8> {
    let f: Vec<(&str, SubOptions)> = filters.iter().map(|f| (*f, opts(1))).collect();
    t.send(c, v, Packet::Subscribe(Subscribe { pid: pid(7), properties: Properties::default(), filters: SubscribeFilters::List(&f) }));
    let out = t.take(c);
    match packets::decode(&out, v, u32::MAX).unwrap().unwrap().0 {
        Packet::SubAck(a) => a.codes.to_vec(),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

fn unsubscribe(t: &mut TestBroker, c: ClientId, v: Version, filter: &str) {
    let f = [filter];
    t.send(c, v, Packet::Unsubscribe(Unsubscribe { pid: pid(8), properties: Properties::default(), filters: TopicList::List(&f) }));
    t.take(c);
}

/// Connects with this CONNECT (changed by `edit`) and returns the connection and the CONNACK's
/// reason as the version encodes it (5.0 reason code, 3.x return code).
fn connack<'a>(t: &mut TestBroker, v: Version, id: &'a str, will: Option<Will<'a>>, edit: impl FnOnce(&mut packets::Connect<'a>)) -> (ClientId, u8) {
    let c = t.accept();
    let mut p = connect_packet(v, id, true, 0, will);
    if let Packet::Connect(ref mut k) = p {
        edit(k);
    }
    t.send(c, v, p);
    let out = t.take(c);
    assert_eq!(out[0], 0x20, "CONNACK expected: {out:02x?}");
    (c, out[3])
}

fn disconnect(t: &mut TestBroker, c: ClientId, v: Version) {
    t.send(c, v, Packet::Disconnect(Disconnect { reason: ReasonCode::Success, properties: Properties::default() }));
    t.reap();
}

// ---- max_subscription_bytes ---------------------------------------------------------------

#[test]
fn a_subscription_past_max_subscription_bytes_gets_0x97_and_unsubscribe_or_session_end_make_room_again() {
    let one = cost::subscription("s/1");
    let mut t = TestBroker::with(Options { max_subscription_bytes: 2 * one, ..Options::default() });
    let a = t.connect(V5, "a");
    // One SUBSCRIBE, three filters: the third does not fit and only it is refused.
    assert_eq!(suback(&mut t, a, V5, &["s/1", "s/2", "s/3"]), [1, 1, 0x97]);
    assert_eq!(balanced(&t).subscriptions, 2 * one);
    // 3.1.1 has no 0x97: the failure return code 0x80.
    let b = t.connect(V3_1_1, "b");
    assert_eq!(suback(&mut t, b, V3_1_1, &["s/3"]), [0x80]);
    // Subscribing again to a filter held replaces it and costs nothing more.
    assert_eq!(suback(&mut t, a, V5, &["s/1"]), [1]);
    // UNSUBSCRIBE gives the bytes back...
    unsubscribe(&mut t, a, V5, "s/1");
    assert_eq!(balanced(&t).subscriptions, one);
    assert_eq!(suback(&mut t, b, V3_1_1, &["s/3"]), [1]);
    assert_eq!(suback(&mut t, a, V5, &["s/4"]), [0x97]);
    // ...and so does the end of a session (clean start, expiry 0: ends with its connection).
    disconnect(&mut t, b, V3_1_1);
    assert_eq!(balanced(&t).subscriptions, one);
    assert_eq!(suback(&mut t, a, V5, &["s/4"]), [1]);
    // A published message still reaches the subscriptions held.
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("s/4", b"x", 0, 0, false));
    assert_eq!(t.take_packets(a, V5).len(), 1);
    disconnect(&mut t, a, V5);
    assert_eq!(balanced(&t).subscriptions, 0);
    assert_eq!(t.b.stats(t.now).subscriptions, 0);
}

#[test]
fn the_budget_counts_a_filter_and_its_trie_nodes_so_long_filters_fill_it_sooner() {
    // The same budget holds many short filters or few deep ones: a filter of 8 levels costs
    // about 8 nodes, whatever its length in bytes.
    let budget = 10 * cost::subscription("x/1");
    let mut t = TestBroker::with(Options { max_subscription_bytes: budget, ..Options::default() });
    let c = t.connect(V5, "c");
    let deep: Vec<String> = (0..10).map(|i| format!("{i}/a/b/c/d/e/f/g")).collect();
    let deep: Vec<&str> = deep.iter().map(String::as_str).collect();
    let codes = suback(&mut t, c, V5, &deep);
    let granted = codes.iter().filter(|&&x| x == 1).count();
    assert!((1..4).contains(&granted), "{codes:02x?}");
    assert!(balanced(&t).subscriptions <= budget);
}

#[test]
fn a_shared_filter_is_held_to_max_topic_length_with_its_group_name() {
    let mut t = TestBroker::with(Options { max_topic_length: 64, ..Options::default() });
    let c = t.connect(V5, "c");
    let long_group = format!("$share/{}/a", "g".repeat(60));
    // The filter after the group is short, but the session would keep all of it: 0x8F.
    assert_eq!(suback(&mut t, c, V5, &[&long_group, "$share/g/a"]), [0x8f, 1]);
    assert_eq!(balanced(&t).subscriptions, cost::subscription("$share/g/a"));
}

// ---- max_will_bytes -----------------------------------------------------------------------

fn will(topic: &str) -> Will<'_> {
    Will { topic, payload: b"gone", qos: QoS::AtMostOnce, retain: false, properties: Properties::default() }
}

fn will_cost(topic: &str) -> usize {
    let m = Message {
        topic: topic.into(),
        payload: b"gone".to_vec().into(),
        qos: QoS::AtMostOnce,
        retain: false,
        props: MessageProps::default(),
        expires_at: None,
        has_expiry: false,
        origin: None,
    };
    m.cost()
}

#[test]
fn a_connect_whose_will_does_not_fit_max_will_bytes_is_refused_and_sent_or_discarded_wills_make_room() {
    let one = will_cost("w/a");
    let mut t = TestBroker::with(Options { max_will_bytes: one, ..Options::default() });
    let (a, rc) = connack(&mut t, V5, "a", Some(will("w/a")), |_| {});
    assert_eq!(rc, 0);
    assert_eq!(balanced(&t).wills, one);
    // No room: 0x97 quota exceeded in 5.0, 0x03 server unavailable in 3.x; a CONNECT without
    // a will is not affected.
    assert_eq!(connack(&mut t, V5, "b", Some(will("w/b")), |_| {}).1, 0x97);
    assert_eq!(connack(&mut t, V3_1_1, "c", Some(will("w/c")), |_| {}).1, 0x03);
    assert_eq!(connack(&mut t, V5, "d", None, |_| {}).1, 0);
    t.reap();
    // The same client reconnecting replaces its own will: that fits.
    let (a2, rc) = connack(&mut t, V5, "a", Some(will("w/a")), |_| {});
    assert_eq!(rc, 0);
    t.reap();
    assert!(t.b.is_closing(a), "taken over");
    assert_eq!(balanced(&t).wills, one);
    // A normal DISCONNECT discards the will [MQTT-3.1.2-10]: its bytes come back.
    disconnect(&mut t, a2, V5);
    assert_eq!(balanced(&t).wills, 0);
    let (b, rc) = connack(&mut t, V5, "b", Some(will("w/b")), |_| {});
    assert_eq!(rc, 0);
    // A will sent when the network connection drops gives its bytes back too.
    t.b.on_closed(b, t.now);
    t.reap();
    assert_eq!(balanced(&t).wills, 0);
    assert_eq!(connack(&mut t, V3_1_1, "c", Some(will("w/c")), |_| {}).1, 0);
}

#[test]
fn a_delayed_will_holds_its_bytes_until_it_is_sent_at_its_delay() {
    let one = will_cost("w/a");
    let mut t = TestBroker::with(Options { max_will_bytes: one, ..Options::default() });
    let delayed = Will { properties: Properties { will_delay_interval: Some(5), ..Properties::default() }, ..will("w/a") };
    let expiry = Properties { session_expiry_interval: Some(60), ..Properties::default() };
    let (a, rc) = connack(&mut t, V5, "a", Some(delayed), |k| k.properties = expiry);
    assert_eq!(rc, 0);
    t.b.on_closed(a, t.now);
    t.reap();
    assert_eq!(balanced(&t).wills, one, "held while its delay runs");
    assert_eq!(connack(&mut t, V5, "b", Some(will("w/b")), |_| {}).1, 0x97);
    t.reap();
    t.advance(5_000);
    assert_eq!(balanced(&t).wills, 0, "sent at its delay");
    assert_eq!(connack(&mut t, V5, "b", Some(will("w/b")), |_| {}).1, 0);
}

// ---- queue_memory -------------------------------------------------------------------------

fn queued_cost(topic: &str, payload: usize) -> usize {
    let m = Message {
        topic: topic.into(),
        payload: vec![0; payload].into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        props: MessageProps::default(),
        expires_at: None,
        has_expiry: false,
        origin: None,
    };
    m.cost()
}

/// A 5.0 subscriber to `q` at QoS 1 whose session outlives its connection.
fn persistent_subscriber(t: &mut TestBroker, id: &str) -> ClientId {
    let expiry = Properties { session_expiry_interval: Some(600), ..Properties::default() };
    let (c, _) = t.connect_full(V5, id, false, 0, None, expiry);
    t.subscribe(c, V5, "q", opts(1));
    c
}

#[test]
fn queues_and_inflight_windows_share_queue_memory_and_give_it_back_on_ack_and_session_end() {
    let one = queued_cost("q", 100);
    let mut t = TestBroker::with(Options { queue_memory: 3 * one, ..Options::default() });
    let s1 = persistent_subscriber(&mut t, "s1");
    let s2 = persistent_subscriber(&mut t, "s2");
    t.b.on_closed(s1, t.now);
    t.b.on_closed(s2, t.now);
    t.reap();
    let p = t.connect(V5, "p");
    let dropped = |t: &TestBroker| t.b.stats(t.now).messages_dropped;
    t.send(p, V5, publish("q", &[1; 100], 1, 1, false));
    t.send(p, V5, publish("q", &[2; 100], 1, 2, false));
    // Four deliveries, room for three: the last one (to s2) is dropped and counted, though
    // s2's own queue (64 KiB) has room.
    assert_eq!(balanced(&t).queued, 3 * one);
    assert_eq!(dropped(&t), 1);
    // s2 comes back: its message moves from the queue into the window (still held until its
    // PUBACK), and a new message for it cannot skip the queue into the window either.
    let (s2, present) = t.connect_full(V5, "s2", false, 0, None, Properties { session_expiry_interval: Some(600), ..Properties::default() });
    assert!(present);
    assert_eq!(t.take_packets(s2, V5).len(), 1);
    assert_eq!(balanced(&t).queued, 3 * one);
    t.send(p, V5, publish("q", &[3; 100], 1, 3, false));
    assert_eq!(dropped(&t), 3, "for s1 (offline, budget full) and s2 (window open, budget full)");
    assert!(t.take_packets(s2, V5).is_empty());
    // Its PUBACK gives the bytes back.
    t.send(s2, V5, Packet::PubAck(ack(1)));
    assert_eq!(balanced(&t).queued, 2 * one, "s1's two queued");
    // s1's session ends (a clean start discards it): its queue gives its bytes back, and the
    // next message goes straight into s2's window.
    let s1 = t.connect(V5, "s1");
    assert_eq!(balanced(&t).queued, 0);
    disconnect(&mut t, s1, V5);
    t.send(p, V5, publish("q", &[4; 100], 1, 4, false));
    assert_eq!(t.take_packets(s2, V5).len(), 1);
    assert_eq!(balanced(&t).queued, one, "in flight until acknowledged");
    // s2's session ends with its message unacknowledged: nothing is left.
    t.b.on_closed(s2, t.now);
    t.reap();
    assert_eq!(balanced(&t).queued, one, "kept by the offline session");
    let s2 = t.connect(V5, "s2");
    disconnect(&mut t, s2, V5);
    assert_eq!(balanced(&t).queued, 0);
}

#[test]
fn drop_oldest_makes_room_in_queue_memory_from_the_same_queue_only() {
    let one = queued_cost("q", 100);
    let o = Options { queue_memory: 2 * one, queue_full_policy: edgemq::options::QueueFullPolicy::DropOldest, ..Options::default() };
    let mut t = TestBroker::with(o);
    let s1 = persistent_subscriber(&mut t, "s1");
    t.b.on_closed(s1, t.now);
    t.reap();
    let p = t.connect(V5, "p");
    for i in 1..=3u16 {
        t.send(p, V5, publish("q", &[i as u8; 100], 1, i, false));
    }
    // The third message pushed the first out of s1's queue.
    assert_eq!(balanced(&t).queued, 2 * one);
    assert_eq!(t.b.stats(t.now).messages_dropped, 1);
    let (s1, _) = t.connect_full(V5, "s1", false, 0, None, Properties { session_expiry_interval: Some(600), ..Properties::default() });
    let got = t.take_packets(s1, V5);
    assert_eq!(got.len(), 2);
    assert!(got[0].contains("[2, 2, 2"), "{}", got[0]);
}

// ---- max_alias_bytes ----------------------------------------------------------------------

fn aliased<'a>(topic: &'a str, alias: u16) -> Packet<'a> {
    let properties = Properties { topic_alias: Some(alias), ..Properties::default() };
    Packet::Publish(Publish { dup: false, qospid: QosPid::AtMostOnce, retain: false, topic, properties, payload: b"x" })
}

#[test]
fn an_inbound_topic_alias_past_max_alias_bytes_is_refused_with_0x97_and_a_closed_connection_gives_its_table_back() {
    let one = cost::ALIAS_SLOT + cost::alias_in("t/1");
    let mut t = TestBroker::with(Options { max_alias_bytes: one, ..Options::default() });
    let c = t.connect(V5, "c");
    t.send(c, V5, aliased("t/1", 1));
    assert_eq!(balanced(&t).aliases, one);
    // Replacing alias 1 by a topic of the same length fits.
    t.send(c, V5, aliased("t/2", 1));
    assert!(t.take(c).is_empty());
    // Alias 2 needs a slot and a topic more: DISCONNECT 0x97 rather than a mapping forgotten.
    t.send(c, V5, aliased("t/3", 2));
    assert_eq!(t.take(c), hex("e0 01 97"));
    t.reap();
    assert_eq!(balanced(&t).aliases, 0);
    let d = t.connect(V5, "d");
    t.send(d, V5, aliased("t/9", 1));
    assert!(t.take(d).is_empty());
    assert_eq!(balanced(&t).aliases, one);
}

#[test]
fn outbound_topic_aliases_past_max_alias_bytes_are_not_assigned_and_the_topic_goes_in_full() {
    // Outbound aliases take at most half of the budget: the rest is for the clients' own.
    let mut t = TestBroker::with(Options { max_alias_bytes: 2 * cost::alias_out("o/1") + 1, ..Options::default() });
    let props = Properties { topic_alias_maximum: Some(10), ..Properties::default() };
    let (s, _) = t.connect_full(V5, "s", true, 0, None, props);
    t.subscribe(s, V5, "o/+", opts(0));
    let p = t.connect(V5, "p");
    let alias_of = |t: &mut TestBroker| {
        let out = t.take(s);
        match packets::decode(&out, V5, u32::MAX).unwrap().unwrap().0 {
            Packet::Publish(p) => (p.topic.to_string(), p.properties.topic_alias),
            other => panic!("{other:?}"),
        }
    };
    t.send(p, V5, publish("o/1", b"x", 0, 0, false));
    assert_eq!(alias_of(&mut t), ("o/1".to_string(), Some(1)));
    t.send(p, V5, publish("o/1", b"x", 0, 0, false));
    assert_eq!(alias_of(&mut t), (String::new(), Some(1)));
    t.send(p, V5, publish("o/2", b"x", 0, 0, false));
    assert_eq!(alias_of(&mut t), ("o/2".to_string(), None), "no room for a second alias");
    assert_eq!(balanced(&t).aliases, cost::alias_out("o/1"));
    disconnect(&mut t, s, V5);
    assert_eq!(balanced(&t).aliases, 0);
}

// ---- max_id_length ------------------------------------------------------------------------

#[test]
fn client_identifiers_and_user_names_longer_than_max_id_length_are_refused() {
    let mut t = TestBroker::with(Options { max_id_length: 32, ..Options::default() });
    let long = "i".repeat(33);
    // [MQTT-3.1.3-8] a client identifier the server rejects: 0x85 (5.0), 0x02 (3.x).
    assert_eq!(connack(&mut t, V5, &long, None, |_| {}).1, 0x85);
    assert_eq!(connack(&mut t, V3_1_1, &long, None, |_| {}).1, 0x02);
    assert_eq!(connack(&mut t, V5, &long[..32], None, |_| {}).1, 0, "32 bytes are fine");
    // A user name: 0x86 bad user name or password (0x04).
    assert_eq!(connack(&mut t, V5, "u5", None, |k| k.username = Some(&long)).1, 0x86);
    assert_eq!(connack(&mut t, V3_1_1, "u3", None, |k| k.username = Some(&long)).1, 0x04);
    // An authentication method: 0x8C, before any hook is asked.
    assert_eq!(connack(&mut t, V5, "m", None, |k| k.properties.authentication_method = Some(&long)).1, 0x8c);
}

// ---- enhanced authentication in progress (max_handshakes) ---------------------------------

struct Challenge;

impl Hook for Challenge {
    fn id(&self) -> &str {
        "challenge"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnAuthPacket])
    }
    fn on_auth_packet(&mut self, _: &ClientInfo<'_>, _: &str, data: Option<&[u8]>, _: bool) -> AuthStep {
        match data {
            None => AuthStep::Continue(b"nonce".to_vec()),
            Some(_) => AuthStep::Success(None),
        }
    }
}

fn auth_continue(data: Option<&[u8]>) -> Packet<'_> {
    Packet::Auth(Disconnect {
        reason: ReasonCode::ContinueAuthentication,
        properties: Properties { authentication_method: Some("X"), authentication_data: data, ..Properties::default() },
    })
}

#[test]
fn enhanced_authentications_in_progress_are_at_most_max_handshakes_each_holding_its_connect() {
    let mut t = TestBroker::with(Options { max_handshakes: 2, ..Options::default() });
    t.b.hooks_mut().add(Box::new(Challenge));
    let start = |t: &mut TestBroker, id: &str| {
        let c = t.accept();
        let mut p = connect_packet(V5, id, true, 0, None);
        if let Packet::Connect(ref mut k) = p {
            k.properties.authentication_method = Some("X");
        }
        t.send(c, V5, p);
        (c, t.take(c))
    };
    let challenge = encode(V5, auth_continue(Some(b"nonce")));
    let (a, out) = start(&mut t, "a");
    assert_eq!(out, challenge);
    let (b, out) = start(&mut t, "b");
    assert_eq!(out, challenge);
    assert_eq!(balanced(&t).authenticating, 2);
    // A third CONNECT would hold a third: CONNACK 0x97.
    let (_, out) = start(&mut t, "c");
    assert_eq!(out, hex("20 03 00 97 00"));
    t.reap();
    // One exchange succeeds, one connection drops: both places come back.
    t.send(a, V5, auth_continue(Some(b"answer")));
    let out = t.take(a);
    assert_eq!((out[0], out[3]), (0x20, 0), "CONNACK success");
    t.b.on_closed(b, t.now);
    t.reap();
    assert_eq!(balanced(&t).authenticating, 0);
    assert_eq!(start(&mut t, "c").1, challenge);
}

// ---- retained messages count their index nodes --------------------------------------------

#[test]
fn a_retained_message_counts_its_topics_nodes_against_max_retained_bytes() {
    let mut t = TestBroker::new();
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("a/b/c/d", b"v", 0, 0, true));
    let m = Message {
        topic: "a/b/c/d".into(),
        payload: b"v".to_vec().into(),
        qos: QoS::AtMostOnce,
        retain: true,
        props: MessageProps::default(),
        expires_at: None,
        has_expiry: false,
        origin: None,
    };
    assert_eq!(t.b.retained_bytes(), cost::retained(&m));
    assert!(cost::retained(&m) > m.cost() + 4 * 100, "four levels, four nodes");
    assert_eq!(balanced(&t).retained, cost::retained(&m));
    t.send(p, V5, publish("a/b/c/d", b"", 0, 0, true));
    assert_eq!(balanced(&t).retained, 0);
}

// ---- everything at once -------------------------------------------------------------------

#[test]
fn a_long_mixed_run_keeps_every_budget_equal_to_what_is_held_and_ends_at_zero() {
    let o = Options {
        queue_memory: 40 * queued_cost("m/0/x", 64),
        max_subscription_bytes: 30 * cost::subscription("m/0/+"),
        max_will_bytes: 5 * will_cost("w/00"),
        max_alias_bytes: 4 * (cost::ALIAS_SLOT + cost::alias_in("m/0/x")),
        ..Options::default()
    };
    let mut t = TestBroker::with(o);
    t.b.hooks_mut().add(Box::new(Challenge));
    let p = t.connect(V5, "publisher");
    let mut live: Vec<(ClientId, Version)> = Vec::new();
    let (mut wills_refused, mut subs_refused, mut peak) = (0, 0, Held::default());
    for i in 0..400usize {
        let v = if i % 3 == 0 { V3_1_1 } else { V5 };
        let id = format!("c{}", i % 23);
        let topic = format!("w/{:02}", i % 100);
        let w = (i % 2 == 0).then(|| will(&topic));
        let expiry = Properties { session_expiry_interval: Some((i % 4) as u32 * 10), ..Properties::default() };
        let (c, rc) = connack(&mut t, v, &id, w, |k| {
            k.clean_start = i % 5 == 0;
            if v == V5 {
                k.properties = expiry;
            }
        });
        t.reap();
        wills_refused += usize::from(rc == 0x97 || rc == 0x03);
        if rc == 0 {
            let f1 = format!("m/{}/+", i % 7);
            let f2 = format!("$share/g/m/{}/#", i % 5);
            subs_refused += suback(&mut t, c, v, &[&f1, &f2, "m/#"]).iter().filter(|&&x| x == 0x97 || x == 0x80).count();
            if v == V5 {
                t.send(c, V5, aliased(&format!("m/{}/x", i % 9), (i % 3 + 1) as u16));
            }
            live.push((c, v));
        }
        for j in 0..3u16 {
            let topic = format!("m/{}/x", (i + j as usize) % 7);
            t.send(p, V5, publish(&topic, &[j as u8; 64], (j % 3) as u8, j + 1, j == 0));
        }
        t.take(p);
        // Some clients read and acknowledge, some leave, some unsubscribe.
        if let Some(&(c, v)) = live.get(i % live.len().max(1)) {
            match i % 4 {
                0 => {
                    for pkt in t.take_packets(c, v) {
                        if let Some(n) = pkt.split("AtLeastOnce(PacketId(").nth(1).and_then(|s| s.split(')').next()) {
                            t.send(c, v, Packet::PubAck(ack(n.parse().unwrap())));
                        }
                    }
                }
                1 => t.b.on_closed(c, t.now),
                2 => unsubscribe(&mut t, c, v, "m/#"),
                _ => disconnect(&mut t, c, v),
            }
            t.reap();
        }
        if i % 50 == 49 {
            t.advance(15_000);
        }
        let h = balanced(&t);
        peak = Held {
            queued: peak.queued.max(h.queued),
            subscriptions: peak.subscriptions.max(h.subscriptions),
            wills: peak.wills.max(h.wills),
            aliases: peak.aliases.max(h.aliases),
            ..peak
        };
    }
    // The run reached every bound (so it proves something), and never passed one.
    let o = t.b.options();
    assert!(wills_refused > 0 && subs_refused > 0 && t.b.stats(t.now).messages_dropped > 0, "{wills_refused} {subs_refused}");
    assert!(peak.queued <= o.queue_memory && peak.queued + queued_cost("m/0/x", 64) > o.queue_memory, "{peak:?}");
    assert!(peak.subscriptions <= o.max_subscription_bytes && peak.wills == o.max_will_bytes, "{peak:?}");
    assert!(peak.aliases <= o.max_alias_bytes && peak.aliases > 0, "{peak:?}");
    // Everyone leaves, every session expires, the retained messages are cleared.
    for (c, v) in live {
        if !t.b.is_closing(c) {
            disconnect(&mut t, c, v);
        }
    }
    t.advance(60_000);
    disconnect(&mut t, p, V5);
    let p = t.connect(V5, "publisher");
    for k in 0..7 {
        t.send(p, V5, publish(&format!("m/{k}/x"), b"", 0, 0, true));
    }
    disconnect(&mut t, p, V5);
    for k in 0..23 {
        let c = t.connect(V5, &format!("c{k}"));
        disconnect(&mut t, c, V5);
    }
    t.advance(60_000);
    let held = balanced(&t);
    assert_eq!(held, Held::default(), "{held:?}");
}
