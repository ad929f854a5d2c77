"""Volume within the default bounds: large payloads through partial reads and writes, a long
offline queue drained through the inflight window, fan-out to many subscribers."""

import pytest

import mqtt_raw as r
from clients import Client, unique


@pytest.mark.parametrize("size", [70_000, 250_000])
def test_large_payload_round_trip(broker, version, size):
    topic = unique("big")
    sub = Client(broker.port, version).connect()
    sub.subscribe(topic, 1)
    pub = Client(broker.port, version).connect()
    payload = bytes(i % 251 for i in range(size))
    pub.publish(topic, payload, 1)
    assert sub.expect_one(timeout=5).payload == payload
    pub.disconnect(); sub.disconnect()


def test_v5_packet_above_maximum_packet_size_gets_disconnect_0x95(broker):
    c = r.open_session(broker.port, unique(), r.V5)
    c.send(r.publish("big/t", b"x" * (256 * 1024 + 10), qos=0, version=r.V5))
    seen = c.expect_closed()
    assert [(p.type, p.body[:1]) for p in seen] == [(r.DISCONNECT, b"\x95")]
    c.close()


def test_long_offline_queue_is_drained_in_order_after_reconnect(broker, version):
    cid, topic = unique("q"), unique("t")
    kw = {"session_expiry": 60} if version == "5" else {}
    sub = Client(broker.port, version, client_id=cid, clean=False, **kw).connect()
    sub.subscribe(topic, 1)
    sub.disconnect()
    pub = Client(broker.port, version).connect()
    # within the default per-session bounds (256 messages, 64 KiB)
    n = 200
    infos = [pub.c.publish(topic, f"{i}".encode() + b"." * 100, 1) for i in range(n)]
    for i in infos:
        i.wait_for_publish(5)
    sub = Client(broker.port, version, client_id=cid, clean=False, **kw).connect()
    got = [int(m.payload.split(b".")[0]) for m in sub.expect(n, timeout=10)]
    assert got == list(range(n))
    pub.disconnect(); sub.disconnect()


def test_fan_out_to_many_subscribers(broker, version):
    topic = unique("fan")
    subs = [Client(broker.port, version).connect() for _ in range(20)]
    for s in subs:
        s.subscribe(topic, 2)
    pub = Client(broker.port, version).connect()
    for i in range(20):
        pub.publish(topic, str(i).encode(), 2)
    for s in subs:
        assert [int(m.payload) for m in s.expect(20, timeout=5)] == list(range(20))
    for s in subs + [pub]:
        s.disconnect()
