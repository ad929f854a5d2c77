"""MQTT 5 features over a real socket, seen by an independent client (paho-mqtt 2.x, or the raw
client in mqtt_raw.py where paho cannot withhold acknowledgements).

tests/conformance/mqtt5.rs proves each feature byte-exact through the socket-free core; these
tests prove the same features end to end against the `edgemq` binary. Every wait is bounded.
"""

import struct
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import mqtt_raw as r
from clients import WAIT, Client, sync, unique, wait_for


def props(ptype, **kw):
    p = Properties(ptype)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def pub_props(**kw):
    return props(PacketTypes.PUBLISH, **kw)


class C5(Client):
    """An MQTT 5 paho client whose CONNECT may carry any property, and which records every
    on_disconnect reason code and on_publish reason code."""

    def __init__(self, port, connect_props=None, will_props=None, will=None, **kw):
        super().__init__(port, "5", **kw)
        self.connect_props = connect_props or {}
        if will:
            topic, payload, qos, retain = will
            wp = props(PacketTypes.WILLMESSAGE, **(will_props or {})) if will_props else None
            self.c.will_set(topic, payload, qos, retain, properties=wp)
        self.disconnects = []
        self.puback_codes = {}
        self.c.on_publish = self._on_publish

    def _on_disconnect(self, c, u, flags, rc, p):
        self.disconnects.append(rc.value if hasattr(rc, "value") else rc)
        super()._on_disconnect(c, u, flags, rc, p)

    def _on_publish(self, c, u, mid, rc, p):
        self.puback_codes[mid] = rc.value if hasattr(rc, "value") else rc

    def connect(self, expect_success=True):
        p = props(PacketTypes.CONNECT, **self.connect_props)
        if self.session_expiry is not None:
            p.SessionExpiryInterval = self.session_expiry
        self.c.connect("127.0.0.1", self.port, self.keepalive, clean_start=self.clean, properties=p)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        assert self._connected.wait(WAIT), "no CONNACK"
        if expect_success:
            assert not self.connack.is_failure, f"CONNACK {self.connack}"
        return self

    def pub(self, topic, payload, qos=0, retain=False, **kw):
        info = self.c.publish(topic, payload, qos, retain, properties=pub_props(**kw) if kw else None)
        info.wait_for_publish(WAIT)
        assert info.is_published(), f"publish of {topic!r} (QoS {qos}) not completed"
        return info

    def sub_with_id(self, topic, sub_id, qos=0):
        p = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id)
        rc, mid = self.c.subscribe(topic, options=mqtt.SubscribeOptions(qos=qos), properties=p)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        return [x.value for x in wait_for(lambda: self._subacks.get(mid), "SUBACK")]


def drain(client, timeout=0.3):
    """Every message that arrives within `timeout` after a sync barrier."""
    sync(client)
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            out.append(client.messages.get(timeout=max(0.0, deadline - time.monotonic())))
        except Exception:
            break
    return out


def raw_connect_v5(client_id, *prop_chunks, clean=True, keepalive=60):
    """A v5 CONNECT with arbitrary properties (mqtt_raw.connect only knows session expiry)."""
    vh = r.s("MQTT") + bytes([5, 0x02 if clean else 0]) + struct.pack(">H", keepalive)
    vh += r.props(*prop_chunks)
    return r.frame(0x10, vh + r.s(client_id))


# ---------------------------------------------------------------------------------------------
# properties forwarded


def test_publish_properties_reach_a_v5_subscriber_unchanged_and_a_v311_one_without_them(broker):
    # [MQTT-3.3.2-17..20], user properties in order [MQTT-3.3.2-18]
    topic = unique("props")
    s5 = C5(broker.port).connect()
    s5.subscribe(topic, 0)
    s3 = Client(broker.port, "3.1.1").connect()
    s3.subscribe(topic, 0)
    raw3 = r.open_session(broker.port, unique("raw"), r.V311)
    raw3.send(r.subscribe(1, [(topic, 0)]))
    raw3.expect(r.SUBACK)
    pub = C5(broker.port).connect()
    user = [("a", "1"), ("b", "2"), ("a", "3")]
    pub.pub(topic, b"req", 1, UserProperty=user, ContentType="text/plain", PayloadFormatIndicator=1,
            ResponseTopic="reply/here", CorrelationData=b"\x00\x01corr")
    m = s5.expect_one()
    assert m.payload == b"req"
    p = m.properties
    assert p.UserProperty == user
    assert p.ContentType == "text/plain"
    assert p.PayloadFormatIndicator == 1
    assert p.ResponseTopic == "reply/here"
    assert p.CorrelationData == b"\x00\x01corr"
    m3 = s3.expect_one()
    assert m3.payload == b"req"
    assert not getattr(m3, "properties", None)
    # byte level: a 3.1.1 PUBLISH is topic + payload, nothing else
    pk = raw3.expect(r.PUBLISH)
    assert pk.body == r.s(topic) + b"req"
    raw3.close(); pub.disconnect(); s5.disconnect(); s3.disconnect()


# ---------------------------------------------------------------------------------------------
# CONNACK


def test_connack_properties_and_assigned_client_identifier(broker):
    c = C5(broker.port, client_id="").connect()
    p = c.connack_props
    assert p.ReceiveMaximum == 64
    assert p.TopicAliasMaximum == 64
    assert p.MaximumPacketSize == 262144
    assigned = p.AssignedClientIdentifier
    assert assigned, "no AssignedClientIdentifier for an empty client id"
    c.disconnect()
    named = C5(broker.port).connect()
    assert not hasattr(named.connack_props, "AssignedClientIdentifier")
    named.disconnect()


# ---------------------------------------------------------------------------------------------
# topic aliases


def test_a_publisher_topic_alias_is_resolved_for_the_subscriber(broker):
    topic = unique("alias/long/topic")
    sub = C5(broker.port).connect()
    sub.subscribe(topic, 1)
    pub = C5(broker.port).connect()
    pub.pub(topic, b"1", 1, TopicAlias=1)
    pub.pub("", b"2", 1, TopicAlias=1)
    got = sub.expect(2)
    assert [(m.topic, m.payload) for m in got] == [(topic, b"1"), (topic, b"2")]
    # the subscriber announced no TopicAliasMaximum: the server must not use aliases towards it
    assert all(not hasattr(m.properties, "TopicAlias") for m in got)
    pub.disconnect(); sub.disconnect()


def test_a_subscriber_with_topic_alias_maximum_gets_aliases_on_repeated_topics(broker):
    # paho 2.x does not resolve inbound aliases itself (msg.topic is "" for an aliased PUBLISH),
    # so the test resolves them as a client must, and checks the result.
    topic = unique("out/alias/topic")
    sub = C5(broker.port, connect_props={"TopicAliasMaximum": 4}).connect()
    sub.subscribe(topic, 1)
    pub = C5(broker.port).connect()
    for i in range(3):
        pub.pub(topic, str(i).encode(), 1)
    got = sub.expect(3)
    aliases, resolved = {}, []
    for m in got:
        alias = getattr(m.properties, "TopicAlias", None)
        assert alias is not None, f"no TopicAlias on {m.topic!r}"
        assert 1 <= alias <= 4
        if m.topic:
            aliases[alias] = m.topic
        resolved.append(aliases[alias])
    assert resolved == [topic] * 3
    assert got[0].topic == topic
    assert [m.topic for m in got[1:]] == ["", ""], "repeated topic not sent as an alias"
    assert [m.payload for m in got] == [b"0", b"1", b"2"]
    pub.disconnect(); sub.disconnect()


# ---------------------------------------------------------------------------------------------
# shared subscriptions


def test_shared_subscription_splits_messages_and_a_leaving_member_stops_receiving(broker):
    a = C5(broker.port).connect()
    b = C5(broker.port).connect()
    a.subscribe("$share/g/jobs", 1)
    b.subscribe("$share/g/jobs", 1)
    pub = C5(broker.port).connect()
    for i in range(10):
        pub.pub("jobs", str(i).encode(), 1)
    ga, gb = drain(a), drain(b)
    pa, pb = [m.payload for m in ga], [m.payload for m in gb]
    assert sorted(pa + pb, key=int) == [str(i).encode() for i in range(10)], (pa, pb)
    assert pa and pb, f"one member got everything: {pa} / {pb}"
    assert all(m.topic == "jobs" for m in ga + gb)
    b.disconnect()
    for i in range(10, 14):
        pub.pub("jobs", str(i).encode(), 1)
    assert [m.payload for m in a.expect(4)] == [b"10", b"11", b"12", b"13"]
    sync(a)
    a.expect_none(0.1)
    pub.disconnect(); a.disconnect()


def test_a_shared_subscribe_gets_no_retained_message(broker):
    topic = unique("sr")
    pub = C5(broker.port).connect()
    pub.pub(topic, b"kept", 1, retain=True)
    s = C5(broker.port).connect()
    s.subscribe(f"$share/g/{topic}", 1)
    sync(s)
    s.expect_none(0.2)
    # control: a plain subscribe does get it
    s.subscribe(topic, 1)
    assert s.expect_one().payload == b"kept"
    pub.disconnect(); s.disconnect()


# ---------------------------------------------------------------------------------------------
# subscription options


def test_no_local(broker):
    topic = unique("nl")
    c = C5(broker.port).connect()
    c.subscribe(topic, 1, noLocal=True)
    c.pub(topic, b"me", 1)
    sync(c)
    c.expect_none(0.1)
    o = C5(broker.port).connect()
    o.pub(topic, b"you", 1)
    assert c.expect_one().payload == b"you"
    o.disconnect(); c.disconnect()


def test_retain_as_published(broker):
    topic = unique("rap")
    keep = C5(broker.port).connect()
    keep.subscribe(topic, 1, retainAsPublished=True)
    clear = C5(broker.port).connect()
    clear.subscribe(topic, 1, retainAsPublished=False)
    pub = C5(broker.port).connect()
    pub.pub(topic, b"r", 1, retain=True)
    pub.pub(topic, b"n", 1, retain=False)
    assert [(m.payload, m.retain) for m in keep.expect(2)] == [(b"r", True), (b"n", False)]
    assert [(m.payload, m.retain) for m in clear.expect(2)] == [(b"r", False), (b"n", False)]
    pub.pub(topic, b"", 1, retain=True)  # clear the retained message
    pub.disconnect(); keep.disconnect(); clear.disconnect()


def test_retain_handling_1_and_2(broker):
    topic = unique("rh")
    pub = C5(broker.port).connect()
    pub.pub(topic, b"kept", 1, retain=True)
    s = C5(broker.port).connect()
    # 1: retained messages only if the subscription did not exist
    s.subscribe(topic, 1, retainHandling=1)
    m = s.expect_one()
    assert (m.payload, m.retain) == (b"kept", True)
    s.subscribe(topic, 1, retainHandling=1)
    sync(s)
    s.expect_none(0.1)
    # 0 on the existing subscription: sent again (control)
    s.subscribe(topic, 1, retainHandling=0)
    assert s.expect_one().payload == b"kept"
    # 2: never
    t = C5(broker.port).connect()
    t.subscribe(topic, 1, retainHandling=2)
    sync(t)
    t.expect_none(0.1)
    pub.pub(topic, b"live", 1)
    assert t.expect_one().payload == b"live"
    pub.disconnect(); s.disconnect(); t.disconnect()


# ---------------------------------------------------------------------------------------------
# subscription identifiers


def test_subscription_identifiers_one_and_several(broker):
    base = unique("sid")
    s = C5(broker.port).connect()
    assert s.sub_with_id(f"{base}/#", 1, 1) == [1]
    assert s.sub_with_id(f"{base}/+", 2, 1) == [1]
    assert s.sub_with_id(f"{base}/only/x", 77, 0) == [0]
    pub = C5(broker.port).connect()
    pub.pub(f"{base}/a", b"two", 1)
    m = s.expect_one()
    assert m.payload == b"two"
    assert sorted(m.properties.SubscriptionIdentifier) == [1, 2], "[MQTT-3.3.4-3]"
    sync(s)
    s.expect_none(0.1)  # [MQTT-3.3.4-2] one delivery
    pub.pub(f"{base}/only/x", b"one", 1)
    m = s.expect_one()
    assert sorted(m.properties.SubscriptionIdentifier) == [1, 77]
    pub.pub(f"{base}/b/c", b"hash", 1)
    m = s.expect_one()
    assert m.properties.SubscriptionIdentifier == [1]
    pub.disconnect(); s.disconnect()


# ---------------------------------------------------------------------------------------------
# message expiry


def test_forwarded_message_expiry_is_at_most_the_one_sent(broker):
    topic = unique("mexp")
    s = C5(broker.port).connect()
    s.subscribe(topic, 1)
    pub = C5(broker.port).connect()
    pub.pub(topic, b"x", 1, MessageExpiryInterval=60)
    m = s.expect_one()
    assert 55 <= m.properties.MessageExpiryInterval <= 60
    pub.pub(topic, b"y", 1)
    assert not hasattr(s.expect_one().properties, "MessageExpiryInterval")
    pub.disconnect(); s.disconnect()


def test_a_retained_message_with_expiry_1s_is_gone_after_2s(broker):
    topic = unique("rexp")
    pub = C5(broker.port).connect()
    pub.pub(topic, b"short", 1, retain=True, MessageExpiryInterval=1)
    first = C5(broker.port).connect()
    first.subscribe(topic, 1)
    m = first.expect_one()
    assert (m.payload, m.retain) == (b"short", True)
    assert m.properties.MessageExpiryInterval <= 1
    first.disconnect()
    time.sleep(2.0)
    late = C5(broker.port).connect()
    late.subscribe(topic, 1)
    sync(late)
    late.expect_none(0.1)
    pub.disconnect(); late.disconnect()


# ---------------------------------------------------------------------------------------------
# session expiry


def test_a_session_with_expiry_1s_is_gone_after_2s(broker):
    cid = unique("sexp")
    c = C5(broker.port, client_id=cid, clean=True, session_expiry=1).connect()
    c.subscribe(unique("t"), 1)
    c.disconnect()
    # control: reconnecting at once finds the session
    c = C5(broker.port, client_id=cid, clean=False, session_expiry=1).connect()
    assert c.session_present is True
    c.disconnect()
    time.sleep(2.0)
    c = C5(broker.port, client_id=cid, clean=False, session_expiry=1).connect()
    assert c.session_present is False
    c.disconnect()


# ---------------------------------------------------------------------------------------------
# flow control


def test_receive_maximum_2_holds_the_third_qos1_message_until_an_ack(broker):
    topic = unique("flow")
    s = r.Raw(broker.port)
    s.send(raw_connect_v5(unique("rm"), r.prop_u16(r.RECEIVE_MAXIMUM, 2)))
    ack = s.expect(r.CONNACK)
    assert ack.body[1] == 0
    s.send(r.subscribe(1, [(topic, 1)], r.V5))
    s.expect(r.SUBACK)
    pub = C5(broker.port).connect()
    for i in range(5):
        pub.pub(topic, str(i).encode(), 1)
    got = [s.expect(r.PUBLISH, 2.0), s.expect(r.PUBLISH, 2.0)]
    s.expect_silence(0.5)
    assert [pk.publish_fields(r.V5)[2] for pk in got] == [b"0", b"1"]
    s.send(r.ack(r.PUBACK, got[0].publish_fields(r.V5)[1]))
    third = s.expect(r.PUBLISH, 2.0)
    assert third.publish_fields(r.V5)[2] == b"2"
    s.expect_silence(0.3)
    for pk in got[1:] + [third]:
        s.send(r.ack(r.PUBACK, pk.publish_fields(r.V5)[1]))
    rest = [s.expect(r.PUBLISH, 2.0), s.expect(r.PUBLISH, 2.0)]
    assert [pk.publish_fields(r.V5)[2] for pk in rest] == [b"3", b"4"]
    s.close(); pub.disconnect()


# ---------------------------------------------------------------------------------------------
# maximum packet size


def test_a_message_over_the_client_maximum_packet_size_is_not_sent(broker):
    topic = unique("mps")
    s = C5(broker.port, connect_props={"MaximumPacketSize": 64}).connect()
    s.subscribe(topic, 1)
    pub = C5(broker.port).connect()
    pub.pub(topic, b"B" * 200, 1)
    pub.pub(topic, b"small", 1)
    m = s.expect_one()
    assert m.payload == b"small"
    sync(s)
    s.expect_none(0.1)
    assert s._thread.is_alive() and not s.disconnected.is_set()
    pub.disconnect(); s.disconnect()


# ---------------------------------------------------------------------------------------------
# will delay


def test_a_delayed_will_is_published_after_the_delay(broker):
    wt = unique("will")
    watcher = C5(broker.port).connect()
    watcher.subscribe(wt, 1)
    c = C5(broker.port, will=(wt, b"gone", 1, False), will_props={"WillDelayInterval": 2},
           session_expiry=10).connect()
    t0 = time.monotonic()
    c.close()  # no DISCONNECT: the will applies
    watcher.expect_none(1.5)
    m = watcher.expect_one(timeout=2.5)
    elapsed = time.monotonic() - t0
    assert m.payload == b"gone"
    assert 1.8 <= elapsed <= 3.5, elapsed
    watcher.disconnect()


def test_a_reconnect_within_the_will_delay_cancels_the_will(broker):
    # [MQTT-3.1.3-9]; clean start 0 keeps the session (clean start 1 would end it, which
    # publishes the will at once)
    wt = unique("will")
    cid = unique("wd")
    watcher = C5(broker.port).connect()
    watcher.subscribe(wt, 1)
    c = C5(broker.port, client_id=cid, will=(wt, b"gone", 1, False),
           will_props={"WillDelayInterval": 2}, session_expiry=10).connect()
    c.close()
    time.sleep(0.3)
    back = C5(broker.port, client_id=cid, clean=False, session_expiry=10).connect()
    assert back.session_present is True
    watcher.expect_none(2.7)
    back.disconnect(); watcher.disconnect()


# ---------------------------------------------------------------------------------------------
# take-over, request/response, PUBACK 0x10, AUTH


def test_take_over_sends_disconnect_0x8e_to_the_old_connection(broker):
    cid = unique("to")
    old = C5(broker.port, client_id=cid).connect()
    new = C5(broker.port, client_id=cid).connect()
    assert old.disconnected.wait(WAIT)
    assert old.disconnects and old.disconnects[0] == 0x8E, old.disconnects
    new.disconnect(); old.close()


def test_request_response_round_trip(broker):
    req_topic = unique("req")
    resp_topic = unique("resp")
    requester = C5(broker.port).connect()
    requester.subscribe(resp_topic, 1)
    responder = C5(broker.port).connect()
    responder.subscribe(req_topic, 1)
    requester.pub(req_topic, b"question", 1, ResponseTopic=resp_topic, CorrelationData=b"id-42")
    q = responder.expect_one()
    assert q.payload == b"question"
    responder.pub(q.properties.ResponseTopic, b"answer", 1, CorrelationData=q.properties.CorrelationData)
    a = requester.expect_one()
    assert (a.topic, a.payload, a.properties.CorrelationData) == (resp_topic, b"answer", b"id-42")
    requester.disconnect(); responder.disconnect()


def test_puback_reason_0x10_when_nobody_subscribes(broker):
    c = C5(broker.port).connect()
    info = c.pub(unique("nobody"), b"x", 1)
    assert wait_for(lambda: c.puback_codes.get(info.mid), "on_publish") == 0x10
    s = C5(broker.port).connect()
    t = unique("somebody")
    s.subscribe(t, 1)
    info = c.pub(t, b"y", 1)
    assert wait_for(lambda: c.puback_codes.get(info.mid), "on_publish") == 0x00
    s.disconnect(); c.disconnect()


def test_an_authentication_method_without_a_hook_gets_connack_0x8c(broker):
    c = C5(broker.port, connect_props={"AuthenticationMethod": "SCRAM-SHA-1"})
    c.connect(expect_success=False)
    assert c.connack.value == 0x8C == 140
    c.close()
