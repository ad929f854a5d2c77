"""`$`-topics: a filter starting with a wildcard does not match topics starting with `$`
[MQTT-4.7.2-1]. edgemq publishes `$SYS` every 10 s (retained), so this uses the broker that was
started with the session; live routing of `$SYS` with a fast clock is covered by
tests/loopback.rs."""

import time

from clients import Client, sync


def test_hash_receives_no_sys_topics_retained_or_live(early_broker):
    port = early_broker.port
    everything = Client(port, "3.1.1").connect()
    everything.subscribe("#", 0)
    plus = Client(port, "5").connect()
    plus.subscribe("+/broker/#", 0)
    sys = Client(port, "3.1.1").connect()
    sys.subscribe("$SYS/#", 0)
    # Wait for a live (non-retained) $SYS publication: at most one interval after the first.
    # $SYS is published every 10 s: 11 s from now always catches a live one, however late this runs.
    deadline = max(early_broker.started_at + 25, time.monotonic() + 11)
    live = None
    while live is None:
        m = sys.expect_one(timeout=max(0.1, deadline - time.monotonic()))
        assert m.topic.startswith("$SYS/")
        if not m.retain:
            live = m
    everyone = Client(port, "5").connect()
    everyone.publish("plain/topic", b"x", 1)
    sync(everything)
    got = []
    while not everything.messages.empty():
        got.append(everything.messages.get().topic)
    assert got == ["plain/topic"], f"`#` received {got}"
    sync(plus)
    assert plus.messages.empty(), f"`+/broker/#` received {plus.messages.get().topic}"
    for c in (everything, plus, sys, everyone):
        c.disconnect()
