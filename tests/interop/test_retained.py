"""Retained messages: set, replace, clear, delivery on subscribe, wildcard matching."""

from clients import Client, sync, unique


def test_retained_is_set_replaced_and_cleared(broker, version):
    topic = unique("ret")
    pub = Client(broker.port, version).connect()
    pub.publish(topic, b"one", 1, retain=True)
    s1 = Client(broker.port, version).connect()
    s1.subscribe(topic, 1)
    m = s1.expect_one()
    assert (m.payload, m.retain) == (b"one", True)  # [MQTT-3.3.1-8]
    s1.disconnect()

    pub.publish(topic, b"two", 1, retain=True)  # replaces [MQTT-3.3.1-5]
    s2 = Client(broker.port, version).connect()
    s2.subscribe(topic, 1)
    m = s2.expect_one()
    assert (m.payload, m.retain) == (b"two", True)
    sync(s2)
    s2.expect_none(0.1)
    s2.disconnect()

    pub.publish(topic, b"", 1, retain=True)  # clears [MQTT-3.3.1-10]
    s3 = Client(broker.port, version).connect()
    s3.subscribe(topic, 1)
    sync(s3)
    s3.expect_none(0.1)
    s3.disconnect(); pub.disconnect()


def test_live_delivery_of_a_retained_publish_has_retain_0_for_an_existing_subscription(broker, version):
    # [MQTT-3.3.1-9] (3.1.1); 5.0 with Retain As Published 0 behaves the same
    topic = unique("ret")
    sub = Client(broker.port, version).connect()
    sub.subscribe(topic, 1)
    pub = Client(broker.port, version).connect()
    pub.publish(topic, b"live", 1, retain=True)
    m = sub.expect_one()
    assert (m.payload, m.retain) == (b"live", False)
    pub.disconnect(); sub.disconnect()


def test_v5_retain_as_published_keeps_the_flag(broker):
    topic = unique("rap")
    sub = Client(broker.port, "5").connect()
    sub.subscribe(topic, 1, retainAsPublished=True)
    pub = Client(broker.port, "5").connect()
    pub.publish(topic, b"live", 1, retain=True)
    assert sub.expect_one().retain is True
    pub.disconnect(); sub.disconnect()


def test_wildcard_subscription_receives_every_matching_retained_message(broker, version):
    base = unique("rw")
    pub = Client(broker.port, version).connect()
    topics = [f"{base}/a", f"{base}/b/c", f"{base}/b/d", f"{base}x/other"]
    for t in topics:
        pub.publish(t, t.encode(), 1, retain=True)
    sub = Client(broker.port, version).connect()
    sub.subscribe(f"{base}/#", 1)
    got = sorted((m.topic, m.retain) for m in sub.expect(3))
    assert got == [(t, True) for t in topics[:3]]
    sub.subscribe(f"{base}/+/d", 0)
    m = sub.expect_one()
    assert (m.topic, m.qos, m.retain) == (f"{base}/b/d", 0, True)
    sync(sub)
    sub.expect_none(0.1)
    pub.disconnect(); sub.disconnect()


def test_retained_is_delivered_at_the_lower_of_stored_and_granted_qos(broker, version):
    topic = unique("rq")
    pub = Client(broker.port, version).connect()
    pub.publish(topic, b"q2", 2, retain=True)
    sub = Client(broker.port, version).connect()
    sub.subscribe(topic, 1)
    m = sub.expect_one()
    assert (m.qos, m.retain) == (1, True)
    pub.disconnect(); sub.disconnect()


def test_v5_retain_handling_2_sends_no_retained_messages(broker):
    topic = unique("rh")
    pub = Client(broker.port, "5").connect()
    pub.publish(topic, b"x", 1, retain=True)
    sub = Client(broker.port, "5").connect()
    sub.subscribe(topic, 1, retainHandling=2)
    sync(sub)
    sub.expect_none(0.1)
    pub.disconnect(); sub.disconnect()
