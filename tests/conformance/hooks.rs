//! Hook points: each fires with the right arguments in the right order; modifying hooks pass
//! their result on; storage loaders restore state at start; panicking hooks are contained; the
//! inline client. Recorded through a hook that logs every call it gets.

use crate::common::*;
use edgemq::hooks::{
    Access, AllowAll, ClientInfo, Hook, MessageView, OwnedMessage, Point, Provides, Selected, Verdict, WillVerdict,
};
use edgemq::packets::{
    self, Ack, Disconnect, Packet, PacketId, Properties, Publish, QoS, QosPid, ReasonCode, Subscribe, SubscribeFilters,
    TopicList, Unsubscribe, Version::*, Will,
};
use edgemq::storage::{
    ClientRecord, InflightRecord, InflightState, MessageRecord, RetainedRecord, SubscriptionRecord, SysInfoRecord,
};
use edgemq::sys::Stats;
use edgemq::Options;
use std::cell::RefCell;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

/// Logs every call; admits every client and allows every topic itself.
struct Recorder {
    log: Log,
}

fn recorder(log: &Log) -> Box<dyn Hook> {
    Box::new(Recorder { log: log.clone() })
}

fn drain(log: &Log) -> Vec<String> {
    core::mem::take(&mut *log.borrow_mut())
}

fn who<'a>(c: &ClientInfo<'a>) -> &'a str {
    if c.client_id.is_empty() {
        "-"
    } else {
        c.client_id
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Recorder {
    fn push(&self, s: String) {
        self.log.borrow_mut().push(s);
    }
}

impl Hook for Recorder {
    fn id(&self) -> &str {
        "recorder"
    }
    fn provides(&self) -> Provides {
        Provides::ALL
    }
    fn on_started(&mut self) {
        self.push("started".into());
    }
    fn on_stopped(&mut self) {
        self.push("stopped".into());
    }
    fn on_sys_info_tick(&mut self, _: &Stats) {
        self.push("sys_tick".into());
    }
    fn on_connect(&mut self, c: &ClientInfo<'_>, _: &Packet<'_>) -> Result<(), ReasonCode> {
        self.push(format!("connect {}", who(c)));
        Ok(())
    }
    fn on_connect_authenticate(&mut self, c: &ClientInfo<'_>, password: Option<&[u8]>) -> bool {
        self.push(format!("authenticate {} {:?} {:?}", who(c), c.username, password.map(text)));
        true
    }
    fn on_acl_check(&mut self, c: &ClientInfo<'_>, topic: &str, access: Access) -> bool {
        self.push(format!("acl {} {topic} {access:?}", who(c)));
        true
    }
    fn on_session_established(&mut self, c: &ClientInfo<'_>, present: bool) {
        self.push(format!("session {} {present}", who(c)));
    }
    fn on_disconnect(&mut self, c: &ClientInfo<'_>, rc: ReasonCode, expire: bool) {
        self.push(format!("disconnect {} {rc:?} {expire}", who(c)));
    }
    fn on_client_expired(&mut self, id: &str) {
        self.push(format!("expired {id}"));
    }
    fn on_packet_read(&mut self, c: &ClientInfo<'_>, p: &Packet<'_>) -> Result<(), ReasonCode> {
        self.push(format!("read {} {}", who(c), p.name()));
        Ok(())
    }
    fn on_packet_processed(&mut self, c: &ClientInfo<'_>, p: &Packet<'_>) {
        self.push(format!("processed {} {}", who(c), p.name()));
    }
    fn on_packet_encode(&mut self, c: &ClientInfo<'_>, p: &Packet<'_>) {
        self.push(format!("encode {} {}", who(c), p.name()));
    }
    fn on_packet_sent(&mut self, c: &ClientInfo<'_>, p: &Packet<'_>, len: usize) {
        self.push(format!("sent {} {} {len}", who(c), p.name()));
    }
    fn on_subscribe(&mut self, c: &ClientInfo<'_>, filter: &str, qos: QoS) -> Result<QoS, ReasonCode> {
        self.push(format!("subscribe {} {filter} {}", who(c), qos.as_u8()));
        Ok(qos)
    }
    fn on_subscribed(&mut self, c: &ClientInfo<'_>, filter: &str, rc: ReasonCode) {
        self.push(format!("subscribed {} {filter} {rc:?}", who(c)));
    }
    fn on_unsubscribe(&mut self, c: &ClientInfo<'_>, filter: &str) {
        self.push(format!("unsubscribe {} {filter}", who(c)));
    }
    fn on_unsubscribed(&mut self, c: &ClientInfo<'_>, filter: &str) {
        self.push(format!("unsubscribed {} {filter}", who(c)));
    }
    fn on_publish(&mut self, c: &ClientInfo<'_>, m: &MessageView<'_>) -> Verdict {
        self.push(format!("publish {} {} {}", who(c), m.topic, text(m.payload)));
        Verdict::Continue
    }
    fn on_select_subscribers(&mut self, m: &MessageView<'_>, subs: &mut [Selected<'_>]) {
        let list: Vec<String> = subs.iter().filter(|s| s.deliver).map(|s| format!("{}:{}", s.client_id, s.qos.as_u8())).collect();
        self.push(format!("select {} [{}]", m.topic, list.join(",")));
    }
    fn on_published(&mut self, c: &ClientInfo<'_>, m: &MessageView<'_>, n: usize) {
        self.push(format!("published {} {} {n}", who(c), m.topic));
    }
    fn on_publish_dropped(&mut self, id: &str, m: &MessageView<'_>) {
        self.push(format!("dropped {id} {}", m.topic));
    }
    fn on_retain_message(&mut self, topic: &str, payload: &[u8]) {
        self.push(format!("retain {topic} {}", text(payload)));
    }
    fn on_retained_expired(&mut self, topic: &str) {
        self.push(format!("retained_expired {topic}"));
    }
    fn on_qos_publish(&mut self, c: &ClientInfo<'_>, m: &MessageView<'_>, pid: PacketId, resend: bool) {
        self.push(format!("qos_publish {} {} {} {resend}", who(c), m.topic, pid.get()));
    }
    fn on_qos_complete(&mut self, c: &ClientInfo<'_>, m: &MessageView<'_>, pid: PacketId) {
        self.push(format!("qos_complete {} {} {}", who(c), m.topic, pid.get()));
    }
    fn on_qos_dropped(&mut self, id: &str, m: &MessageView<'_>, pid: PacketId, rc: ReasonCode) {
        self.push(format!("qos_dropped {id} {} {} {rc:?}", m.topic, pid.get()));
    }
    fn on_packet_id_exhausted(&mut self, c: &ClientInfo<'_>, _: &MessageView<'_>) {
        self.push(format!("pid_exhausted {}", who(c)));
    }
    fn on_will(&mut self, id: &str, m: &MessageView<'_>) -> WillVerdict {
        self.push(format!("will {id} {} {}", m.topic, text(m.payload)));
        WillVerdict::Continue
    }
    fn on_will_sent(&mut self, id: &str, m: &MessageView<'_>) {
        self.push(format!("will_sent {id} {} {}", m.topic, text(m.payload)));
    }
}

fn recorded(opts: Options) -> (TestBroker, Log) {
    let log = Log::default();
    let t = TestBroker::with_hooks(opts, vec![recorder(&log)]);
    (t, log)
}

fn subscribe_many(t: &mut TestBroker, c: edgemq::broker::ClientId, f: &[(&str, packets::SubOptions)]) -> Vec<u8> {
    t.send(c, V5, Packet::Subscribe(Subscribe { pid: pid(1), properties: Properties::default(), filters: SubscribeFilters::List(f) }));
    t.take(c)
}

#[test]
fn connect_fires_read_connect_authenticate_connack_session_processed_in_order() {
    let (mut t, log) = recorded(Options::default());
    t.b.start(t.now);
    assert_eq!(drain(&log), ["started"]);
    let c = t.accept();
    let mut p = connect_packet(V5, "c", true, 0, None);
    if let Packet::Connect(ref mut k) = p {
        k.username = Some("u");
        k.password = Some(b"pw");
    }
    t.send(c, V5, p);
    let out = t.take(c);
    assert_eq!(
        drain(&log),
        [
            "read - CONNECT".to_string(), // before CONNECT is handled the client has no id
            "connect c".into(),
            "authenticate c Some(\"u\") Some(\"pw\")".into(),
            "encode c CONNACK".into(),
            format!("sent c CONNACK {}", out.len()),
            "session c false".into(),
            "processed c CONNECT".into(),
        ]
    );
    t.b.shutdown(t.now);
    assert_eq!(drain(&log), ["encode c DISCONNECT", "sent c DISCONNECT 3", "disconnect c ServerShuttingDown true", "stopped"]);
}

#[test]
fn subscribe_publish_and_acknowledge_fire_every_point_in_order() {
    let (mut t, log) = recorded(Options::default());
    let s = t.connect(V5, "s");
    drain(&log);
    let out = subscribe_many(&mut t, s, &[("a/+", opts(1))]);
    assert_eq!(
        drain(&log),
        [
            "read s SUBSCRIBE".to_string(),
            "subscribe s a/+ 1".into(),
            "acl s a/+ Read".into(),
            "subscribed s a/+ GrantedQoS1".into(),
            "encode s SUBACK".into(),
            format!("sent s SUBACK {}", out.len()),
            "processed s SUBSCRIBE".into(),
        ]
    );
    let p = t.connect(V5, "p");
    drain(&log);
    t.send(p, V5, publish("a/b", b"hi", 1, 7, false));
    let (to_s, to_p) = (t.take(s), t.take(p));
    assert_eq!(to_p, hex("40 02 00 07"));
    assert_eq!(
        drain(&log),
        [
            "read p PUBLISH".to_string(),
            "acl p a/b Write".into(),
            "publish p a/b hi".into(),
            "select a/b [s:1]".into(),
            "encode s PUBLISH".into(),
            format!("sent s PUBLISH {}", to_s.len()),
            "qos_publish s a/b 1 false".into(),
            "published p a/b 1".into(),
            "encode p PUBACK".into(),
            "sent p PUBACK 4".into(),
            "processed p PUBLISH".into(),
        ]
    );
    t.send(s, V5, Packet::PubAck(ack(1)));
    assert_eq!(drain(&log), ["read s PUBACK", "qos_complete s a/b 1", "processed s PUBACK"]);

    let f = ["a/+", "never"];
    t.send(s, V5, Packet::Unsubscribe(Unsubscribe { pid: pid(2), properties: Properties::default(), filters: TopicList::List(&f) }));
    assert_eq!(t.take(s), hex("b0 05 00 02 00 00 11"));
    assert_eq!(
        drain(&log),
        [
            "read s UNSUBSCRIBE",
            "unsubscribe s a/+",
            "unsubscribed s a/+",
            "unsubscribe s never",
            "encode s UNSUBACK",
            "sent s UNSUBACK 7",
            "processed s UNSUBSCRIBE",
        ]
    );
}

#[test]
fn a_lost_connection_fires_disconnect_will_retain_and_will_sent_then_expiry() {
    let (mut t, log) = recorded(Options::default());
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "w/#", opts(0));
    let will = Will { topic: "w/gone", payload: b"bye", qos: QoS::AtMostOnce, retain: true, properties: Properties::default() };
    let expiry = Properties { session_expiry_interval: Some(10), ..Properties::default() };
    let (w, _) = t.connect_full(V5, "w", true, 0, Some(will), expiry);
    drain(&log);
    t.b.on_closed(w, t.now);
    let to_s = t.take(s);
    assert_eq!(
        drain(&log),
        [
            "disconnect w UnspecifiedError false".to_string(),
            "will w w/gone bye".into(),
            "retain w/gone bye".into(),
            "select w/gone [s:0]".into(),
            "encode s PUBLISH".into(),
            format!("sent s PUBLISH {}", to_s.len()),
            "will_sent w w/gone bye".into(),
        ]
    );
    t.advance(10_000);
    assert_eq!(drain(&log), ["expired w"]);
}

#[test]
fn a_failed_pubrec_and_an_ended_session_drop_inflight_messages() {
    let (mut t, log) = recorded(Options::default());
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "q", opts(2));
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("q", b"1", 2, 1, false));
    t.send(p, V5, publish("q", b"2", 2, 2, false));
    t.take(s);
    drain(&log);
    t.send(s, V5, Packet::PubRec(Ack { pid: pid(1), reason: ReasonCode::UnspecifiedError, properties: Properties::default() }));
    assert_eq!(drain(&log), ["read s PUBREC", "qos_dropped s q 1 UnspecifiedError", "processed s PUBREC"]);
    t.b.on_closed(s, t.now);
    // session expiry 0: the session ends with message 2 unacknowledged
    assert_eq!(drain(&log), ["disconnect s UnspecifiedError true", "qos_dropped s q 2 UnspecifiedError"]);
}

#[test]
fn the_sys_interval_fires_retained_expiry_and_the_sys_tick() {
    let (mut t, log) = recorded(Options { sys_interval_secs: 5, ..Options::default() });
    t.b.start(t.now);
    let p = t.connect(V5, "p");
    let two = Properties { message_expiry_interval: Some(2), ..Properties::default() };
    t.send(p, V5, Packet::Publish(Publish { dup: false, qospid: QosPid::AtMostOnce, retain: true, topic: "r", properties: two, payload: b"x" }));
    drain(&log);
    t.advance(5_000);
    let got: Vec<String> = drain(&log).into_iter().filter(|l| !l.starts_with("retain $SYS")).collect();
    assert_eq!(got, ["retained_expired r", "sys_tick"]);
}

#[test]
fn a_message_too_large_for_a_subscriber_fires_publish_dropped() {
    let (mut t, log) = recorded(Options::default());
    let small = Properties { maximum_packet_size: Some(20), ..Properties::default() };
    let (s, _) = t.connect_full(V5, "s", true, 0, None, small);
    t.subscribe(s, V5, "t", opts(0));
    let p = t.connect(V5, "p");
    drain(&log);
    t.send(p, V5, publish("t", &[0; 64], 0, 0, false));
    assert!(t.take(s).is_empty());
    assert!(drain(&log).contains(&"dropped s t".to_string()));
}

#[test]
fn the_drop_oldest_policy_reports_the_messages_it_drops() {
    let o = Options { max_queued_messages: 2, queue_full_policy: edgemq::options::QueueFullPolicy::DropOldest, ..Options::default() };
    let (mut t, log) = recorded(o);
    let (s, _) = t.connect_full(V3_1_1, "s", false, 0, None, Properties::default());
    t.subscribe(s, V3_1_1, "t/#", opts(1));
    t.b.on_closed(s, t.now);
    let p = t.connect(V5, "p");
    drain(&log);
    for (i, topic) in ["t/1", "t/2", "t/3", "t/4"].into_iter().enumerate() {
        t.send(p, V5, publish(topic, b"x", 1, i as u16 + 1, false));
    }
    let dropped: Vec<String> = drain(&log).into_iter().filter(|l| l.starts_with("dropped")).collect();
    assert_eq!(dropped, ["dropped s t/1", "dropped s t/2"]);
    assert_eq!(t.b.stats(t.now).messages_dropped, 2);
}

// ---- modifying hooks -------------------------------------------------------------------

/// Grants at most QoS 0 on `slow/#`, refuses `secret/#` with 0x87.
struct SubPolicy;

impl Hook for SubPolicy {
    fn id(&self) -> &str {
        "sub-policy"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnSubscribe])
    }
    fn on_subscribe(&mut self, _: &ClientInfo<'_>, filter: &str, qos: QoS) -> Result<QoS, ReasonCode> {
        if filter.starts_with("secret/") {
            Err(ReasonCode::NotAuthorized)
        } else if filter.starts_with("slow/") {
            Ok(QoS::AtMostOnce)
        } else {
            Ok(qos)
        }
    }
}

#[test]
fn on_subscribe_lowers_the_granted_qos_or_refuses_per_filter_and_the_next_hook_sees_it() {
    let log = Log::default();
    let mut t = TestBroker::with_hooks(Options::default(), vec![Box::new(SubPolicy), recorder(&log)]);
    let c = t.connect(V5, "c");
    drain(&log);
    let out = subscribe_many(&mut t, c, &[("slow/a", opts(2)), ("secret/x", opts(1)), ("fast", opts(2))]);
    assert_eq!(out, hex("90 06 00 01 00 00 87 02"));
    let seen: Vec<String> = drain(&log).into_iter().filter(|l| l.starts_with("subscribe ")).collect();
    // the recorder comes second: it sees QoS 0 for slow/a and never sees secret/x
    assert_eq!(seen, ["subscribe c slow/a 0", "subscribe c fast 2"]);
    // and the lowered grant holds for delivery
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("slow/a", b"m", 2, 1, false));
    assert_eq!(t.take(c), encode(V5, publish("slow/a", b"m", 0, 0, false)));
}

/// Upper-cases payloads; rejects topic `bad` with 0x99.
struct Upper;

impl Hook for Upper {
    fn id(&self) -> &str {
        "upper"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnPublish])
    }
    fn on_publish(&mut self, _: &ClientInfo<'_>, m: &MessageView<'_>) -> Verdict {
        if m.topic == "bad" {
            return Verdict::Reject(ReasonCode::PayloadFormatInvalid);
        }
        Verdict::ReplacePayload(m.payload.to_ascii_uppercase())
    }
}

/// Appends `!` to payloads.
struct Bang;

impl Hook for Bang {
    fn id(&self) -> &str {
        "bang"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnPublish])
    }
    fn on_publish(&mut self, _: &ClientInfo<'_>, m: &MessageView<'_>) -> Verdict {
        let mut p = m.payload.to_vec();
        p.push(b'!');
        Verdict::ReplacePayload(p)
    }
}

#[test]
fn on_publish_changes_pass_down_the_chain_to_subscribers_and_a_rejection_reaches_the_publisher() {
    let log = Log::default();
    let mut t = TestBroker::with_hooks(Options::default(), vec![Box::new(AllowAll), Box::new(Upper), recorder(&log), Box::new(Bang)]);
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "#", opts(1));
    let p = t.connect(V5, "p");
    drain(&log);
    t.send(p, V5, publish("t", b"hi", 0, 0, false));
    assert_eq!(t.take(s), encode(V5, publish("t", b"HI!", 0, 0, false)));
    assert!(drain(&log).contains(&"publish p t HI".to_string()), "the recorder sees Upper's payload");
    // 5.0: PUBACK and PUBREC carry the code; QoS 0 is dropped silently
    t.send(p, V5, publish("bad", b"x", 1, 2, false));
    assert_eq!(t.take(p), hex("40 03 00 02 99"));
    t.send(p, V5, publish("bad", b"x", 2, 3, false));
    assert_eq!(t.take(p), hex("50 03 00 03 99"));
    t.send(p, V5, publish("bad", b"x", 0, 0, false));
    assert!(t.take(p).is_empty());
    assert!(t.take(s).is_empty());
}

/// Rewrites wills to `status/<client>` = "offline"; suppresses those of client `quiet`.
struct WillRewrite;

impl Hook for WillRewrite {
    fn id(&self) -> &str {
        "will-rewrite"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnWill])
    }
    fn on_will(&mut self, id: &str, _: &MessageView<'_>) -> WillVerdict {
        if id == "quiet" {
            return WillVerdict::Suppress;
        }
        WillVerdict::Replace(OwnedMessage { topic: format!("status/{id}"), payload: b"offline".to_vec(), qos: QoS::AtMostOnce, retain: false })
    }
}

#[test]
fn on_will_replaces_or_suppresses_the_will_and_the_next_hook_sees_the_change() {
    let log = Log::default();
    let mut t = TestBroker::with_hooks(Options::default(), vec![Box::new(AllowAll), Box::new(WillRewrite), recorder(&log)]);
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "#", opts(0));
    for id in ["dev", "quiet"] {
        let will = Will { topic: "w", payload: b"x", qos: QoS::AtMostOnce, retain: false, properties: Properties::default() };
        let (c, _) = t.connect_full(V5, id, true, 0, Some(will), Properties::default());
        t.b.on_closed(c, t.now);
    }
    assert_eq!(t.take(s), encode(V5, publish("status/dev", b"offline", 0, 0, false)));
    let wills: Vec<String> = drain(&log).into_iter().filter(|l| l.starts_with("will")).collect();
    assert_eq!(wills, ["will dev status/dev offline", "will_sent dev status/dev offline"]);
}

/// Leaves out client `muted` and delivers at most QoS 0 to `cheap`.
struct Select;

impl Hook for Select {
    fn id(&self) -> &str {
        "select"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnSelectSubscribers])
    }
    fn on_select_subscribers(&mut self, _: &MessageView<'_>, subs: &mut [Selected<'_>]) {
        for s in subs {
            match s.client_id {
                "muted" => s.deliver = false,
                "cheap" => s.qos = QoS::AtMostOnce,
                _ => {}
            }
        }
    }
}

#[test]
fn on_select_subscribers_filters_the_delivery_set_and_lowers_qos() {
    let log = Log::default();
    let mut t = TestBroker::with_hooks(Options::default(), vec![Box::new(AllowAll), Box::new(Select), recorder(&log)]);
    let muted = t.connect(V5, "muted");
    t.subscribe(muted, V5, "t", opts(1));
    let cheap = t.connect(V5, "cheap");
    t.subscribe(cheap, V5, "t", opts(1));
    let full = t.connect(V5, "full");
    t.subscribe(full, V5, "t", opts(1));
    let p = t.connect(V5, "p");
    drain(&log);
    t.send(p, V5, publish("t", b"m", 1, 1, false));
    assert!(t.take(muted).is_empty());
    assert_eq!(t.take(cheap), encode(V5, publish("t", b"m", 0, 0, false)));
    assert_eq!(t.take(full), encode(V5, publish("t", b"m", 1, 1, false)));
    let log = drain(&log);
    let select = log.iter().find(|l| l.starts_with("select")).unwrap();
    let published = log.iter().find(|l| l.starts_with("published")).unwrap();
    // the recorder, after Select, sees the changes; 2 deliveries
    assert!(select.contains("cheap:0") && !select.contains("muted"), "{select}");
    assert_eq!(published, "published p t 2");
}

/// Refuses PINGREQ (packet read) and client ids starting with `x` (connect).
struct Gate;

impl Hook for Gate {
    fn id(&self) -> &str {
        "gate"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnPacketRead, Point::OnConnect])
    }
    fn on_packet_read(&mut self, _: &ClientInfo<'_>, p: &Packet<'_>) -> Result<(), ReasonCode> {
        match p {
            Packet::PingReq => Err(ReasonCode::AdministrativeAction),
            _ => Ok(()),
        }
    }
    fn on_connect(&mut self, c: &ClientInfo<'_>, _: &Packet<'_>) -> Result<(), ReasonCode> {
        if c.client_id.starts_with('x') {
            Err(ReasonCode::Banned)
        } else {
            Ok(())
        }
    }
}

#[test]
fn on_packet_read_and_on_connect_can_refuse() {
    let mut t = TestBroker::with_hooks(Options::default(), vec![Box::new(Gate), Box::new(AllowAll)]);
    let c = t.connect(V5, "c");
    t.send(c, V5, Packet::PingReq);
    assert_eq!(t.take(c), hex("e0 01 98"));
    let x = t.accept();
    t.send(x, V5, connect_packet(V5, "xbad", true, 0, None));
    assert_eq!(t.take(x), hex("20 03 00 8a 00"));
}

// ---- storage loaders -------------------------------------------------------------------

struct Store;

fn msg_record(topic: &str, payload: &[u8], qos: u8) -> MessageRecord {
    MessageRecord { topic: topic.into(), payload: payload.to_vec(), qos, ..MessageRecord::default() }
}

impl Hook for Store {
    fn id(&self) -> &str {
        "store"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[
            Point::StoredClients,
            Point::StoredSubscriptions,
            Point::StoredInflightMessages,
            Point::StoredRetainedMessages,
            Point::StoredSysInfo,
        ])
    }
    fn stored_clients(&mut self) -> Vec<ClientRecord> {
        vec![
            ClientRecord { client_id: "c".into(), protocol_level: 5, session_expiry_secs: 100, ..ClientRecord::default() },
            // a duplicate and one that would expire at once are skipped
            ClientRecord { client_id: "c".into(), session_expiry_secs: 100, ..ClientRecord::default() },
            ClientRecord { client_id: "zero".into(), session_expiry_secs: 0, ..ClientRecord::default() },
        ]
    }
    fn stored_subscriptions(&mut self) -> Vec<SubscriptionRecord> {
        vec![
            SubscriptionRecord { client_id: "c".into(), filter: "news/#".into(), qos: 1, ..SubscriptionRecord::default() },
            SubscriptionRecord { client_id: "nobody".into(), filter: "x".into(), ..SubscriptionRecord::default() },
        ]
    }
    fn stored_inflight_messages(&mut self) -> Vec<InflightRecord> {
        vec![InflightRecord {
            client_id: "c".into(),
            packet_id: 5,
            message: msg_record("news/a", b"old", 1),
            qos: 1,
            state: InflightState::AwaitPubAck,
            ..InflightRecord::default()
        }]
    }
    fn stored_retained_messages(&mut self) -> Vec<RetainedRecord> {
        vec![RetainedRecord { message: msg_record("news/r", b"kept", 0) }, RetainedRecord { message: msg_record("bad/#", b"x", 0) }]
    }
    fn stored_sys_info(&mut self) -> Option<SysInfoRecord> {
        Some(SysInfoRecord { connections_total: 41, ..SysInfoRecord::default() })
    }
}

#[test]
fn stored_records_are_restored_at_start_before_on_started() {
    let log = Log::default();
    let mut o = Options::default();
    o.compat.restore_sys_info_on_restart = true;
    let mut t = TestBroker::with_hooks(o, vec![Box::new(AllowAll), Box::new(Store), recorder(&log)]);
    t.b.start(t.now);
    // restoring fires no hooks (a store must not see its own records again)
    assert_eq!(drain(&log), ["started"]);
    assert_eq!(t.b.session_count(), 1);
    assert_eq!(t.b.stats(t.now).connections_total, 41);
    assert_eq!(t.b.stats(t.now).retained_messages, 1);

    let expiry = Properties { session_expiry_interval: Some(100), ..Properties::default() };
    let (c, present) = t.connect_full(V5, "c", false, 0, None, expiry);
    assert!(present);
    // the inflight message is resent with DUP [MQTT-4.4.0-1]
    let resend = Publish { dup: true, qospid: QosPid::AtLeastOnce(pid(5)), retain: false, topic: "news/a", properties: Properties::default(), payload: b"old" };
    assert_eq!(t.take(c), encode(V5, Packet::Publish(resend)));
    assert!(drain(&log).contains(&"qos_publish c news/a 5 true".to_string()));
    // the subscription routes
    let p = t.connect(V5, "p");
    t.send(p, V5, publish("news/b", b"new", 0, 0, false));
    assert_eq!(t.take(c), encode(V5, publish("news/b", b"new", 0, 0, false)));
    // and the retained message is there
    let s = t.connect(V5, "s");
    assert_eq!(t.subscribe(s, V5, "news/r", opts(0)), encode(V5, publish("news/r", b"kept", 0, 0, true)));
}

// ---- panics ----------------------------------------------------------------------------

/// Panics at every point it provides.
struct Panicker(Provides);

impl Hook for Panicker {
    fn id(&self) -> &str {
        "panicker"
    }
    fn provides(&self) -> Provides {
        self.0
    }
    fn on_connect(&mut self, _: &ClientInfo<'_>, _: &Packet<'_>) -> Result<(), ReasonCode> {
        panic!("on_connect")
    }
    fn on_connect_authenticate(&mut self, _: &ClientInfo<'_>, _: Option<&[u8]>) -> bool {
        panic!("on_connect_authenticate")
    }
    fn on_acl_check(&mut self, _: &ClientInfo<'_>, _: &str, _: Access) -> bool {
        panic!("on_acl_check")
    }
    fn on_packet_read(&mut self, _: &ClientInfo<'_>, _: &Packet<'_>) -> Result<(), ReasonCode> {
        panic!("on_packet_read")
    }
    fn on_packet_sent(&mut self, _: &ClientInfo<'_>, _: &Packet<'_>, _: usize) {
        panic!("on_packet_sent")
    }
    fn on_packet_processed(&mut self, _: &ClientInfo<'_>, _: &Packet<'_>) {
        panic!("on_packet_processed")
    }
    fn on_subscribe(&mut self, _: &ClientInfo<'_>, _: &str, _: QoS) -> Result<QoS, ReasonCode> {
        panic!("on_subscribe")
    }
    fn on_publish(&mut self, _: &ClientInfo<'_>, _: &MessageView<'_>) -> Verdict {
        panic!("on_publish")
    }
    fn on_select_subscribers(&mut self, _: &MessageView<'_>, _: &mut [Selected<'_>]) {
        panic!("on_select_subscribers")
    }
    fn on_qos_complete(&mut self, _: &ClientInfo<'_>, _: &MessageView<'_>, _: PacketId) {
        panic!("on_qos_complete")
    }
    fn on_will(&mut self, _: &str, _: &MessageView<'_>) -> WillVerdict {
        panic!("on_will")
    }
    fn on_disconnect(&mut self, _: &ClientInfo<'_>, _: ReasonCode, _: bool) {
        panic!("on_disconnect")
    }
}

#[test]
fn panicking_hooks_at_every_stage_do_not_stop_the_broker_and_count_as_no_opinion() {
    let points = Provides::of(&[
        Point::OnConnect,
        Point::OnConnectAuthenticate,
        Point::OnAclCheck,
        Point::OnPacketRead,
        Point::OnPacketSent,
        Point::OnPacketProcessed,
        Point::OnSubscribe,
        Point::OnPublish,
        Point::OnSelectSubscribers,
        Point::OnQosComplete,
        Point::OnWill,
        Point::OnDisconnect,
    ]);
    let mut t = TestBroker::with_hooks(Options::default(), vec![Box::new(Panicker(points)), Box::new(AllowAll)]);
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "#", opts(1));
    let will = Will { topic: "w", payload: b"bye", qos: QoS::AtMostOnce, retain: false, properties: Properties::default() };
    let (p, _) = t.connect_full(V5, "p", true, 0, Some(will), Properties::default());
    t.send(p, V5, publish("t", b"m", 1, 9, false));
    assert_eq!(t.take(p), hex("40 02 00 09"));
    assert_eq!(t.take(s), encode(V5, publish("t", b"m", 1, 1, false)));
    t.send(s, V5, Packet::PubAck(ack(1)));
    t.b.on_closed(p, t.now);
    assert_eq!(t.take(s), encode(V5, publish("w", b"bye", 0, 0, false)));
    // a panicking authenticator alone admits nobody
    let mut t = TestBroker::with_hooks(Options::default(), vec![Box::new(Panicker(Provides::of(&[Point::OnConnectAuthenticate])))]);
    let c = t.accept();
    let mut k = connect_packet(V5, "c", true, 0, None);
    if let Packet::Connect(ref mut k) = k {
        k.username = Some("u");
    }
    t.send(c, V5, k);
    assert_eq!(t.take(c), hex("20 03 00 86 00"));
}

// ---- the inline client -----------------------------------------------------------------

#[test]
fn the_inline_client_may_publish_to_sys_and_a_normal_client_may_not() {
    let log = Log::default();
    let mut t = TestBroker::with_hooks(Options::default(), vec![recorder(&log)]);
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "$SYS/#", opts(0));
    let c = t.connect(V5, "c");
    t.send(c, V5, publish("$SYS/x", b"evil", 1, 1, false));
    assert_eq!(t.take(c), hex("40 03 00 01 87"));
    assert!(t.take(s).is_empty());
    drain(&log);

    let pkt = encode(V5, publish("$SYS/x", b"ok", 0, 0, false));
    assert_eq!(t.b.inject(&pkt, t.now), Ok(1));
    assert_eq!(t.take(s), encode(V5, publish("$SYS/x", b"ok", 0, 0, false)));
    let log = drain(&log);
    assert!(log.contains(&"publish inline $SYS/x ok".to_string()), "{log:?}");
    assert!(!log.iter().any(|l| l.starts_with("acl")), "no ACL for the inline client");
    // PUBLISH only, exactly one packet
    assert_eq!(t.b.inject(&encode(V5, Packet::PingReq), t.now), Err(edgemq::broker::InjectError::Unsupported("PINGREQ")));
    assert_eq!(t.b.inject(&pkt[..pkt.len() - 1], t.now), Err(edgemq::broker::InjectError::NotOnePacket));
}

#[test]
fn inject_as_goes_through_the_clients_acl_and_disconnect_client_closes_it() {
    let log = Log::default();
    let mut t = TestBroker::with_hooks(Options::default(), vec![recorder(&log)]);
    let s = t.connect(V5, "s");
    t.subscribe(s, V5, "t", opts(0));
    let c = t.connect(V3_1_1, "c");
    drain(&log);
    let pkt = encode(V3_1_1, publish("t", b"via", 0, 0, false));
    t.b.inject_as("c", &pkt, t.now).unwrap();
    assert_eq!(t.take(s), encode(V5, publish("t", b"via", 0, 0, false)));
    assert!(drain(&log).contains(&"acl c t Write".to_string()));
    assert_eq!(t.b.inject_as("nobody", &pkt, t.now), Err(edgemq::broker::InjectError::NoSuchClient));
    assert!(t.b.disconnect_client("s", ReasonCode::AdministrativeAction, t.now));
    assert_eq!(t.take(s), hex("e0 01 98"));
    assert!(!t.b.disconnect_client("s", ReasonCode::AdministrativeAction, t.now));
    let _ = (c, Disconnect { reason: ReasonCode::Success, properties: Properties::default() });
}
