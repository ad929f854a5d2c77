"""CONNECT / CONNACK: protocol levels, client identifiers, take-over, session resumption."""

import time

import pytest

import mqtt_raw as r
from clients import Client, unique, sync


@pytest.mark.parametrize("level", [r.V31, r.V311, r.V5], ids=["v31", "v311", "v5"])
def test_every_protocol_level_is_accepted_on_one_port(broker, level):
    with r.Raw(broker.port) as c:
        ack = c.connect(unique(), level)
        if level == r.V5:
            assert ack.body[:2] == b"\x00\x00"  # flags, reason Success, then properties
        else:
            assert ack.raw == bytes.fromhex("20 02 00 00")
        c.send(r.PINGREQ_BYTES)
        assert c.expect(r.PINGRESP).raw == b"\xd0\x00"


@pytest.mark.parametrize("level", [0, 2, 6, 0x85, 255])
def test_an_unknown_protocol_level_gets_connack_0x01_and_close(broker, level):
    # [MQTT-3.1.2-2]: the server cannot know the client's packet format, so the refusal is in
    # the 3.1.1 form (0x01 "unacceptable protocol level", the 3.1.1 code for 5.0's 0x84).
    with r.Raw(broker.port) as c:
        c.send(r.connect(unique(), r.V311, level=level))
        seen = c.expect_closed()
        assert [p.raw for p in seen] == [bytes.fromhex("20 02 00 01")]


def test_a_v5_shaped_connect_with_level_6_is_refused_and_closed(broker):
    with r.Raw(broker.port) as c:
        c.send(r.connect(unique(), r.V5, level=6))
        seen = c.expect_closed()
        assert [p.raw for p in seen] == [bytes.fromhex("20 02 00 01")]
    _another_client_works(broker)


def test_v311_empty_client_id_with_clean_session_is_accepted(broker):
    with r.Raw(broker.port) as c:
        assert c.connect("", r.V311, clean=True).raw == bytes.fromhex("20 02 00 00")


def test_v311_empty_client_id_without_clean_session_is_refused_with_0x02(broker):
    # [MQTT-3.1.3-8]
    with r.Raw(broker.port) as c:
        c.send(r.connect("", r.V311, clean=False))
        assert [p.raw for p in c.expect_closed()] == [bytes.fromhex("20 02 00 02")]


def test_v5_empty_client_id_gets_an_assigned_client_identifier(broker):
    # [MQTT-3.2.2-16]
    with r.Raw(broker.port) as c:
        ack = c.connect("", r.V5)
        assert ack.body[1] == 0
        assigned = ack.v5_props(2).get(r.ASSIGNED_CLIENT_ID)
        assert assigned, f"no Assigned Client Identifier in {ack!r}"
        with r.Raw(broker.port) as d:
            other = d.connect("", r.V5).v5_props(2).get(r.ASSIGNED_CLIENT_ID)
            assert other and other != assigned


def test_paho_v5_empty_client_id_sees_the_assigned_identifier(broker):
    c = Client(broker.port, "5", client_id="").connect()
    assert c.connack_props.AssignedClientIdentifier
    c.disconnect()


def test_v5_takeover_sends_disconnect_0x8e_to_the_old_connection_and_closes_it(broker):
    cid = unique()
    old = r.open_session(broker.port, cid, r.V5)
    new = r.open_session(broker.port, cid, r.V5)
    seen = old.expect_closed()
    assert [(p.type, p.body[:1]) for p in seen] == [(r.DISCONNECT, b"\x8e")]
    new.send(r.PINGREQ_BYTES)
    new.expect(r.PINGRESP)
    old.close(); new.close()


def test_v311_takeover_closes_the_old_connection_without_a_packet(broker):
    cid = unique()
    old = r.open_session(broker.port, cid, r.V311)
    new = r.open_session(broker.port, cid, r.V311)
    assert old.expect_closed() == []
    new.send(r.PINGREQ_BYTES)
    new.expect(r.PINGRESP)
    old.close(); new.close()


def test_paho_takeover_keeps_the_new_client_working(broker, version):
    cid = unique()
    a = Client(broker.port, version, client_id=cid).connect()
    b = Client(broker.port, version, client_id=cid).connect()
    assert a.disconnected.wait(3), "old connection was not closed"
    if version == "5":
        assert a.disconnect_reason.value == 0x8E
    b.subscribe("take/over", 1)
    b.publish("take/over", b"x", 1)
    assert b.expect_one().payload == b"x"
    a.close(); b.disconnect()


def _persistent(port, version, cid, **kw):
    if version == "5":
        return Client(port, version, client_id=cid, clean=False, session_expiry=300, **kw)
    return Client(port, version, client_id=cid, clean=False, **kw)


@pytest.mark.parametrize("qos", [1, 2])
def test_persistent_session_resumes_subscriptions_and_gets_messages_queued_offline(broker, version, qos):
    cid = unique("persist")
    sub = _persistent(broker.port, version, cid).connect()
    assert sub.session_present is False
    assert sub.subscribe("persist/t", qos) == [qos]
    sub.disconnect()

    pub = Client(broker.port, version).connect()
    for i in range(3):
        pub.publish("persist/t", f"m{i}".encode(), qos)
    pub.disconnect()

    sub = _persistent(broker.port, version, cid).connect()
    assert sub.session_present is True
    got = sub.expect(3)
    assert [m.payload for m in got] == [b"m0", b"m1", b"m2"]
    assert all(m.qos == qos for m in got)
    sub.expect_none(0.3)
    # the subscription itself survived too
    pub = Client(broker.port, version).connect()
    pub.publish("persist/t", b"live", qos)
    assert sub.expect_one().payload == b"live"
    pub.disconnect(); sub.disconnect()


def test_clean_start_discards_the_old_session(broker, version):
    cid = unique()
    sub = _persistent(broker.port, version, cid).connect()
    sub.subscribe("clean/t", 1)
    sub.disconnect()
    c = Client(broker.port, version, client_id=cid, clean=True).connect()
    assert c.session_present is False
    pub = Client(broker.port, version).connect()
    pub.publish("clean/t", b"x", 1)
    sync(c)
    c.expect_none(0.2)
    pub.disconnect(); c.disconnect()


def test_v5_session_with_expiry_0_ends_at_disconnect(broker):
    cid = unique()
    c = Client(broker.port, "5", client_id=cid, clean=False, session_expiry=0).connect()
    c.subscribe("exp/t", 1)
    c.disconnect()
    c = Client(broker.port, "5", client_id=cid, clean=False, session_expiry=0).connect()
    assert c.session_present is False
    c.disconnect()


def _another_client_works(broker):
    c = Client(broker.port, "3.1.1").connect()
    c.subscribe("alive/t", 1)
    c.publish("alive/t", b"ok", 1)
    assert c.expect_one().payload == b"ok"
    c.disconnect()


def test_v31_empty_client_id_is_refused_with_0x02(broker):
    # MQTT 3.1: the client identifier is 1 to 23 characters
    with r.Raw(broker.port) as c:
        c.send(r.connect("", r.V31, clean=True))
        assert [p.raw for p in c.expect_closed()] == [bytes.fromhex("20 02 00 02")]


def test_v5_session_ends_when_its_expiry_interval_passes(broker):
    # [MQTT-3.1.2-23]: kept for the interval after the connection closes, then discarded
    cid = unique()
    c = Client(broker.port, "5", client_id=cid, clean=False, session_expiry=1).connect()
    c.subscribe("exp/t", 1)
    c.disconnect()
    c = Client(broker.port, "5", client_id=cid, clean=False, session_expiry=1).connect()
    assert c.session_present is True  # within the interval
    c.disconnect()
    time.sleep(1.3)
    c = Client(broker.port, "5", client_id=cid, clean=False, session_expiry=1).connect()
    assert c.session_present is False
    c.disconnect()


def test_v5_takeover_of_a_persistent_session_resends_its_unacknowledged_message(broker):
    cid, topic = unique("s"), unique("t")
    old = r.open_session(broker.port, cid, r.V5, clean=False, session_expiry=60)
    old.send(r.subscribe(1, [(topic, 1)], r.V5))
    old.expect(r.SUBACK)
    pub = Client(broker.port, "5").connect()
    pub.publish(topic, b"inflight", 1)
    _, pid, _ = old.expect(r.PUBLISH).publish_fields(r.V5)
    new = r.Raw(broker.port)
    ack = new.connect(cid, r.V5, clean=False, session_expiry=60)
    assert ack.body[:2] == b"\x01\x00"  # session present, success
    again = new.expect(r.PUBLISH)
    assert again.dup and again.publish_fields(r.V5)[1:] == (pid, b"inflight")
    assert [(p.type, p.body[:1]) for p in old.expect_closed()] == [(r.DISCONNECT, b"\x8e")]
    old.close(); new.close(); pub.disconnect()
