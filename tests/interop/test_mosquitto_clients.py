"""The mosquitto command-line clients (mosquitto-clients package) at MQTT 3.1, 3.1.1 and 5.0,
mixed with paho."""

import queue
import shutil
import subprocess
import threading
import time

import pytest

from clients import Client, unique

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_sub") is None,
                                reason="mosquitto-clients not installed (.ci/run installs it)")

VERSIONS = pytest.mark.parametrize("mv", ["mqttv31", "mqttv311", "mqttv5"])


def mpub(port, mv, topic, payload, qos=0, retain=False, extra=()):
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", mv, "-t", topic, "-q", str(qos)]
    args += ["-r"] if retain else []
    args += ["-n"] if payload is None else ["-m", payload]
    p = subprocess.run(args + list(extra), capture_output=True, timeout=10)
    assert p.returncode == 0, p.stderr.decode()


class MSub:
    """mosquitto_sub in the background (line-buffered); `-d` output tells when SUBACK arrived."""

    def __init__(self, port, mv, topic, qos=0, count=1, extra=()):
        args = ["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-V", mv, "-t", topic,
                "-q", str(qos), "-C", str(count), "-W", "8", "-d", "-F", "MSG %t %q %r %p"]
        self.p = subprocess.Popen(args + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait_line(lambda l: "received SUBACK" in l)

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, pred, timeout=5):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"mosquitto_sub: nothing matching in {seen}") from None
            if line is None:
                raise AssertionError(f"mosquitto_sub exited ({self.p.wait()}): {seen}")
            seen.append(line)
            if pred(line):
                return line

    def messages(self, n, timeout=5):
        return [self.wait_line(lambda l: l.startswith("MSG "), timeout)[4:] for _ in range(n)]

    def finish(self):
        try:
            assert self.p.wait(timeout=5) == 0
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()


@VERSIONS
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_to_mosquitto_sub(broker, mv, qos):
    topic = unique("mq")
    sub = MSub(broker.port, mv, topic, qos=qos)
    mpub(broker.port, mv, topic, f"hello{qos}", qos=qos)
    assert sub.messages(1) == [f"{topic} {qos} 0 hello{qos}"]
    sub.finish()


@VERSIONS
def test_mosquitto_retained_set_delivered_and_cleared(broker, mv):
    topic = unique("mqr")
    mpub(broker.port, mv, topic, "kept", qos=1, retain=True)
    sub = MSub(broker.port, mv, topic, qos=1)
    assert sub.messages(1) == [f"{topic} 1 1 kept"]
    sub.finish()
    mpub(broker.port, mv, topic, None, qos=1, retain=True)  # -n: empty payload clears
    p = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", mv, "-t", topic,
                        "--retained-only", "-W", "1", "-C", "1"], capture_output=True, timeout=10)
    assert p.stdout == b"", p.stdout  # timed out with nothing retained


def test_mqtt31_subscriber_receives_from_paho_v5_and_v311(broker):
    topic = unique("x")
    sub = MSub(broker.port, "mqttv31", topic, qos=2, count=2)
    for v in ("5", "3.1.1"):
        c = Client(broker.port, v).connect()
        c.publish(topic, f"from {v}".encode(), 2)
        c.disconnect()
    assert sorted(sub.messages(2)) == [f"{topic} 2 0 from 3.1.1", f"{topic} 2 0 from 5"]
    sub.finish()


def test_mqtt31_will_reaches_a_paho_subscriber(broker):
    topic = unique("w31")
    o = Client(broker.port, "5").connect()
    o.subscribe(topic, 1)
    # mosquitto_sub with a will, killed: the broker sees the socket close without DISCONNECT
    p = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv31",
                          "-t", unique("idle"), "--will-topic", topic, "--will-payload", "bye31",
                          "--will-qos", "1", "-d"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "received SUBACK" in p.stdout.readline():
                break
        p.kill()
        p.wait(timeout=5)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert o.expect_one().payload == b"bye31"
    o.disconnect()
