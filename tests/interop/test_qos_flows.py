"""QoS 1 and 2 flows with a raw client: exactly once with DUP retries, redelivery of unacknowledged
messages after reconnect, packet identifiers in flight."""

import pytest

import mqtt_raw as r
from clients import Client, unique, sync

VERSIONS = pytest.mark.parametrize("v", [r.V311, r.V5], ids=["v311", "v5"])


def _pub_fields(p, v):
    assert p.type == r.PUBLISH, p
    return p.publish_fields(v)


@VERSIONS
def test_qos2_resent_with_dup_before_pubrel_is_delivered_exactly_once(broker, v):
    # [MQTT-4.3.3-10]: a PUBLISH with the same packet id before PUBREL is not delivered again
    topic = unique("eo")
    sub = Client(broker.port, "3.1.1").connect()
    sub.subscribe(topic, 2)
    pub = r.open_session(broker.port, unique(), v)
    pub.send(r.publish(topic, b"once", qos=2, pid=7, version=v))
    rec = pub.expect(r.PUBREC)
    assert rec.pid == 7 and (v != r.V5 or rec.body[2:3] in (b"", b"\x00"))
    for _ in range(2):
        pub.send(r.publish(topic, b"once", qos=2, pid=7, dup=True, version=v))
        assert pub.expect(r.PUBREC).pid == 7
    pub.send(r.ack(r.PUBREL, 7))
    comp = pub.expect(r.PUBCOMP)
    assert comp.pid == 7
    assert sub.expect_one().payload == b"once"
    sync(sub)
    sub.expect_none(0.1)
    # the id is free again: a new message with id 7 is a new message
    pub.send(r.publish(topic, b"again", qos=2, pid=7, version=v))
    pub.expect(r.PUBREC)
    pub.send(r.ack(r.PUBREL, 7))
    pub.expect(r.PUBCOMP)
    assert sub.expect_one().payload == b"again"
    pub.close(); sub.disconnect()


@VERSIONS
def test_qos2_publisher_reconnecting_before_pubrel_does_not_duplicate(broker, v):
    topic = unique("eo2")
    sub = Client(broker.port, "3.1.1").connect()
    sub.subscribe(topic, 2)
    cid = unique("p")
    kw = {"session_expiry": 60} if v == r.V5 else {}
    pub = r.open_session(broker.port, cid, v, clean=False, **kw)
    pub.send(r.publish(topic, b"x", qos=2, pid=3, version=v))
    pub.expect(r.PUBREC)
    pub.close()
    pub = r.Raw(broker.port)
    assert pub.connect(cid, v, clean=False, **kw).body[0] & 1 == 1  # session present
    pub.send(r.publish(topic, b"x", qos=2, pid=3, dup=True, version=v))
    pub.expect(r.PUBREC)
    pub.send(r.ack(r.PUBREL, 3))
    pub.expect(r.PUBCOMP)
    assert sub.expect_one().payload == b"x"
    sync(sub)
    sub.expect_none(0.1)
    pub.close(); sub.disconnect()


@VERSIONS
@pytest.mark.parametrize("qos", [1, 2])
def test_unacknowledged_publish_is_resent_with_dup_and_the_same_id_after_reconnect(broker, v, qos):
    # [MQTT-4.4.0-1] / [MQTT-3.3.1-1]
    cid, topic = unique("s"), unique("t")
    kw = {"session_expiry": 60} if v == r.V5 else {}
    s = r.open_session(broker.port, cid, v, clean=False, **kw)
    s.send(r.subscribe(1, [(topic, qos)], v))
    s.expect(r.SUBACK)
    pub = Client(broker.port, "3.1.1").connect()
    pub.publish(topic, b"pending", qos)
    first = s.expect(r.PUBLISH)
    t, pid, payload = _pub_fields(first, v)
    assert (t, payload, first.qos, first.dup) == (topic, b"pending", qos, False)
    s.close()  # no PUBACK / PUBREC

    s = r.Raw(broker.port)
    ack = s.connect(cid, v, clean=False, **kw)
    assert ack.body[0] & 1 == 1, "session not present"
    again = s.expect(r.PUBLISH)
    t2, pid2, payload2 = _pub_fields(again, v)
    assert (t2, pid2, payload2, again.qos, again.dup) == (topic, pid, b"pending", qos, True)
    if qos == 1:
        s.send(r.ack(r.PUBACK, pid))
    else:
        s.send(r.ack(r.PUBREC, pid))
        assert s.expect(r.PUBREL).pid == pid
        s.send(r.ack(r.PUBCOMP, pid))
    s.expect_silence(0.3)
    s.close(); pub.disconnect()


@VERSIONS
def test_pubrel_is_resent_after_reconnect_when_pubcomp_was_missing(broker, v):
    # [MQTT-4.4.0-1]: after PUBREC, the server resends PUBREL (not the PUBLISH)
    cid, topic = unique("s"), unique("t")
    kw = {"session_expiry": 60} if v == r.V5 else {}
    s = r.open_session(broker.port, cid, v, clean=False, **kw)
    s.send(r.subscribe(1, [(topic, 2)], v))
    s.expect(r.SUBACK)
    pub = Client(broker.port, "3.1.1").connect()
    pub.publish(topic, b"q2", 2)
    _, pid, _ = _pub_fields(s.expect(r.PUBLISH), v)
    s.send(r.ack(r.PUBREC, pid))
    assert s.expect(r.PUBREL).pid == pid
    s.close()
    s = r.Raw(broker.port)
    s.connect(cid, v, clean=False, **kw)
    rel = s.expect(r.PUBREL)
    assert rel.pid == pid and rel.flags == 0x2
    s.send(r.ack(r.PUBCOMP, pid))
    s.expect_silence(0.3)
    s.close(); pub.disconnect()


@VERSIONS
def test_packet_ids_in_flight_are_not_reused(broker, v):
    # [MQTT-2.3.1-4] (3.1.1 2.3.1): an identifier in use is not given to a new PUBLISH
    topic = unique("ids")
    s = r.open_session(broker.port, unique(), v)
    s.send(r.subscribe(1, [(topic, 1)], v))
    s.expect(r.SUBACK)
    pub = Client(broker.port, "3.1.1").connect()
    n = 80  # more than the inflight window (64): the rest waits in the queue
    infos = [pub.c.publish(topic, str(i).encode(), 1) for i in range(n)]
    for i in infos:
        i.wait_for_publish(3)
    in_flight = {}
    while True:
        try:
            p = s.recv(0.5)
        except TimeoutError:
            break
        _, pid, payload = _pub_fields(p, v)
        assert pid not in in_flight, f"id {pid} reused while in flight"
        in_flight[pid] = payload
    assert 0 < len(in_flight) < n
    # acknowledge the oldest few; every new PUBLISH must avoid the ids still unacknowledged
    received = len(in_flight)
    for pid in list(in_flight)[:10]:
        s.send(r.ack(r.PUBACK, pid))
        del in_flight[pid]
    while received < n:
        try:
            p = s.recv(1.0)
        except TimeoutError:
            break
        _, pid, payload = _pub_fields(p, v)
        assert pid not in in_flight, f"id {pid} reused while in flight"
        in_flight[pid] = payload
        received += 1
        s.send(r.ack(r.PUBACK, pid))
        del in_flight[pid]
    assert received == n
    s.close(); pub.disconnect()


@VERSIONS
def test_pubrec_for_an_unknown_id_gets_pubrel(broker, v):
    s = r.open_session(broker.port, unique(), v)
    s.send(r.ack(r.PUBREC, 99))
    rel = s.expect(r.PUBREL)
    assert rel.pid == 99
    if v == r.V5:
        assert rel.body[2:3] == b"\x92"  # Packet Identifier not found
    s.close()
