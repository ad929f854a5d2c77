"""Wills and keep alive. The will sender is a raw client (so it can go silent or vanish); the
observer is paho."""

import time

import pytest

import mqtt_raw as r
from clients import Client, sync, unique

VERSIONS = pytest.mark.parametrize("v", [r.V311, r.V5], ids=["v311", "v5"])
PAHO = {r.V311: "3.1.1", r.V5: "5"}


def _observer(broker, v, topic, qos=1):
    o = Client(broker.port, PAHO[v]).connect()
    o.subscribe(topic, qos)
    return o


@VERSIONS
def test_will_is_sent_when_the_keep_alive_expires(broker, v):
    # [MQTT-3.1.2-8] / [MQTT-3.1.2-24]: keep alive 1 s, silent client: closed after 1.5 s
    topic = unique("will")
    o = _observer(broker, v, topic)
    c = r.open_session(broker.port, unique(), v, keepalive=1, will=(topic, "gone", 1, False))
    t0 = time.monotonic()
    seen = c.expect_closed(timeout=4)
    elapsed = time.monotonic() - t0
    assert 1.3 <= elapsed <= 2.8, f"closed after {elapsed:.2f}s"
    if v == r.V5:
        assert [(p.type, p.body[:1]) for p in seen] == [(r.DISCONNECT, b"\x8d")]  # Keep Alive timeout
    else:
        assert seen == []
    m = o.expect_one(timeout=2)
    assert (m.topic, m.payload, m.qos, m.retain) == (topic, b"gone", 1, False)
    o.disconnect()


@VERSIONS
def test_pingreq_keeps_the_connection_alive(broker, v):
    c = r.open_session(broker.port, unique(), v, keepalive=1)
    for _ in range(4):  # 2.4 s > 1.5 x keep alive
        time.sleep(0.6)
        c.send(r.PINGREQ_BYTES)
        assert c.expect(r.PINGRESP).raw == b"\xd0\x00"
    c.close()


@VERSIONS
def test_will_is_sent_when_the_network_connection_closes_without_disconnect(broker, v):
    topic = unique("will")
    o = _observer(broker, v, topic)
    c = r.open_session(broker.port, unique(), v, will=(topic, "dropped", 0, False))
    c.close()
    m = o.expect_one()
    assert (m.topic, m.payload, m.qos) == (topic, b"dropped", 0)
    o.disconnect()


@VERSIONS
def test_will_is_not_sent_after_a_normal_disconnect(broker, v):
    # [MQTT-3.1.2-10] / [MQTT-3.14.4-3]
    topic = unique("will")
    o = _observer(broker, v, topic)
    c = r.open_session(broker.port, unique(), v, will=(topic, "no", 1, False))
    c.send(r.disconnect(v))
    assert c.expect_closed() == []
    c.close()
    sync(o)
    o.expect_none(0.3)
    o.disconnect()


def test_v5_disconnect_with_will_message_sends_the_will(broker):
    topic = unique("will")
    o = _observer(broker, r.V5, topic)
    c = r.open_session(broker.port, unique(), r.V5, will=(topic, "asked", 0, False))
    c.send(r.disconnect(r.V5, reason=0x04))
    c.expect_closed()
    assert o.expect_one().payload == b"asked"
    o.disconnect()


@VERSIONS
def test_retained_will_is_retained(broker, v):
    topic = unique("will")
    c = r.open_session(broker.port, unique(), v, will=(topic, "last", 1, True))
    c.close()
    deadline = time.monotonic() + 3
    while True:  # the will is published when the broker sees the close: poll for it
        late = Client(broker.port, PAHO[v]).connect()
        late.subscribe(topic, 1)
        sync(late)
        if not late.messages.empty() or time.monotonic() > deadline:
            break
        late.disconnect()
    m = late.expect_one(timeout=0.1)
    assert (m.payload, m.retain) == (b"last", True)
    late.disconnect()


@VERSIONS
def test_paho_will_is_sent_when_paho_vanishes(broker, v):
    topic = unique("will")
    o = _observer(broker, v, topic)
    c = Client(broker.port, PAHO[v], will=(topic, b"paho-gone", 1, False)).connect()
    c.close()  # socket closed without DISCONNECT
    assert o.expect_one().payload == b"paho-gone"
    o.disconnect()


@VERSIONS
def test_a_half_sent_packet_does_not_count_as_traffic_for_keep_alive(broker, v):
    # A PUBLISH whose remaining bytes never come: the connection is closed at 1.5 x keep alive,
    # and the broker serves others meanwhile and after.
    c = r.open_session(broker.port, unique(), v, keepalive=1)
    whole = r.publish("half/t", b"x" * 100, qos=1, pid=1, version=v)
    c.send(whole[:20])
    other = Client(broker.port, "3.1.1").connect()
    other.subscribe("half/other", 1)
    other.publish("half/other", b"fine", 1)
    assert other.expect_one().payload == b"fine"
    t0 = time.monotonic()
    c.expect_closed(timeout=3)
    assert time.monotonic() - t0 <= 2.0
    other.publish("half/other", b"still", 1)
    assert other.expect_one().payload == b"still"
    c.close(); other.disconnect()
