"""Bad input never crashes the broker: each case ends with the bad connection closed (and the
exact reply where the spec names one), then a check that another client still works. The
`broker` fixture also fails the test if the process died."""

import socket

import pytest

import mqtt_raw as r
from clients import Client, unique

VERSIONS = pytest.mark.parametrize("v", [r.V311, r.V5], ids=["v311", "v5"])


def another_client_works(broker):
    c = Client(broker.port, "5").connect()
    c.subscribe("alive/t", 1)
    c.publish("alive/t", b"ok", 1)
    assert c.expect_one().payload == b"ok"
    c.disconnect()


@pytest.mark.parametrize("garbage", [
    b"\x00\x00",
    b"\xff" * 64,
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    bytes(range(256)),
    b"\x10\xff\xff\xff\xff\x7f",  # variable byte integer longer than 4 bytes [MQTT-1.5.5-1]
], ids=["zeros", "ff", "http", "bytes", "varint5"])
def test_garbage_before_connect_is_closed_without_crash(broker, garbage):
    with r.Raw(broker.port) as c:
        c.send(garbage)
        seen = c.expect_closed()
        assert all(p.type == r.CONNACK for p in seen), seen
    another_client_works(broker)


@VERSIONS
def test_garbage_after_connect_closes_the_connection(broker, v):
    c = r.open_session(broker.port, unique(), v)
    c.send(b"\x00\x00\x00\x00")  # reserved packet type 0 [MQTT-2.1.3-1]
    seen = c.expect_closed()
    if v == r.V5:
        assert [(p.type, p.body[:1]) for p in seen] == [(r.DISCONNECT, b"\x81")]  # Malformed
    else:
        assert seen == []
    c.close()
    another_client_works(broker)


@pytest.mark.parametrize("first", [
    r.PINGREQ_BYTES,
    r.publish("x/y", b"p"),
    r.subscribe(1, [("x/#", 0)]),
    r.disconnect(),
], ids=["pingreq", "publish", "subscribe", "disconnect"])
def test_first_packet_not_connect_is_closed_without_reply(broker, first):
    # [MQTT-3.1.0-1]
    with r.Raw(broker.port) as c:
        c.send(first)
        assert c.expect_closed() == []
    another_client_works(broker)


@VERSIONS
def test_a_second_connect_is_a_protocol_error(broker, v):
    # [MQTT-3.1.0-2]
    c = r.open_session(broker.port, unique(), v)
    c.send(r.connect(unique(), v))
    seen = c.expect_closed()
    if v == r.V5:
        assert [(p.type, p.body[:1]) for p in seen] == [(r.DISCONNECT, b"\x82")]
    else:
        assert seen == []
    c.close()
    another_client_works(broker)


@VERSIONS
def test_remaining_length_of_268_mb_is_refused_from_the_header(broker, v):
    # Maximum remaining length 268,435,455 > Maximum Packet Size: 0x95 (5.0) or close.
    c = r.open_session(broker.port, unique(), v)
    c.send(b"\x30\xff\xff\xff\x7f" + b"\x00\x03a/b")
    seen = c.expect_closed()
    if v == r.V5:
        assert [(p.type, p.body[:1]) for p in seen] == [(r.DISCONNECT, b"\x95")]
    else:
        assert seen == []
    c.close()
    another_client_works(broker)


def test_remaining_length_of_268_mb_in_connect_is_closed(broker):
    with r.Raw(broker.port) as c:
        c.send(b"\x10\xff\xff\xff\x7f\x00\x04MQTT\x05")
        seen = c.expect_closed()
        assert all(p.type == r.CONNACK and p.body[1] in (0x01, 0x95) for p in seen), seen
    another_client_works(broker)


@VERSIONS
@pytest.mark.parametrize("case", [
    b"\x32\x03\x00\x01a",  # QoS 1 PUBLISH whose length leaves no room for the packet id
    b"\x36\x05\x00\x01a\x00\x01",  # QoS 3 [MQTT-3.3.1-4]
    b"\x30\x04\x00\x03a/",  # topic length beyond the packet
    b"\x30\x05\x00\x03a/+",  # wildcard in topic name [MQTT-3.3.2-2]
    b"\x82\x02\x00\x01",  # SUBSCRIBE without filters [MQTT-3.8.3-3]
    b"\x80\x06\x00\x01\x00\x01a\x00",  # SUBSCRIBE with bad header flags [MQTT-3.8.1-1]
    b"\x30\x06\x00\x02\xc3\x28\x00\x00",  # invalid UTF-8 in topic [MQTT-1.5.3-1]
], ids=["short", "qos3", "topiclen", "wildcard", "nofilters", "flags", "utf8"])
def test_malformed_packets_after_connect_close_the_connection(broker, v, case):
    c = r.open_session(broker.port, unique(), v)
    c.send(case)
    seen = c.expect_closed()
    if v == r.V5:
        assert len(seen) == 1 and seen[0].type == r.DISCONNECT and seen[0].body[0] >= 0x80, seen
    else:
        assert seen == []
    c.close()
    another_client_works(broker)


def test_many_connections_that_vanish_mid_connect_do_not_disturb_others(broker):
    stay = Client(broker.port, "3.1.1").connect()
    stay.subscribe("storm/t", 1)
    full = r.connect(unique(), r.V5)
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", broker.port), timeout=2)
        s.sendall(full[: 1 + i % (len(full) - 1)])
        s.close()
    stay.publish("storm/t", b"after", 1)
    assert stay.expect_one().payload == b"after"
    stay.disconnect()
    another_client_works(broker)
