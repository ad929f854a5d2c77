"""A paho-mqtt 2.x client wrapped for tests: synchronous connect/subscribe/publish with bounded
waits, received messages in a queue, and no automatic reconnect (a broker-side close stays
visible to the test)."""

import queue
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

WAIT = 3.0  # seconds any single broker reply may take


def unique(prefix="c"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Client:
    def __init__(self, port, version="3.1.1", client_id=None, clean=True, session_expiry=None,
                 keepalive=30, will=None):
        self.port = port
        self.version = version
        self.v5 = version == "5"
        self.client_id = unique() if client_id is None else client_id
        self.clean = clean
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        proto = {"3.1": mqtt.MQTTv31, "3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}[version]
        kw = {} if self.v5 else {"clean_session": clean}
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=proto, **kw)
        if will:
            topic, payload, qos, retain = will
            self.c.will_set(topic, payload, qos, retain)
        self.messages = queue.Queue()
        self.connack = None
        self.connack_props = None
        self.session_present = None
        self._connected = threading.Event()
        self._subacks = {}
        self._unsubacks = {}
        self.disconnected = threading.Event()
        self.disconnect_reason = None
        self._stop = threading.Event()
        self._thread = None
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = self._on_disconnect

    # callbacks (run on the loop thread)
    def _on_connect(self, c, u, flags, rc, props):
        self.connack = rc
        self.connack_props = props
        self.session_present = flags.session_present
        self._connected.set()

    def _on_message(self, c, u, msg):
        self.messages.put(msg)

    def _on_subscribe(self, c, u, mid, rcs, props):
        self._subacks[mid] = rcs

    def _on_unsubscribe(self, c, u, mid, rcs, props):
        self._unsubacks[mid] = rcs

    def _on_disconnect(self, c, u, flags, rc, props):
        self.disconnect_reason = rc
        self.disconnected.set()

    def _loop(self):
        while not self._stop.is_set():
            if self.c.loop(timeout=0.02) != mqtt.MQTT_ERR_SUCCESS:
                self.disconnected.set()
                return

    # operations
    def connect(self, expect_success=True):
        props = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            if self.session_expiry is not None:
                props.SessionExpiryInterval = self.session_expiry
            self.c.connect("127.0.0.1", self.port, self.keepalive, clean_start=self.clean, properties=props)
        else:
            self.c.connect("127.0.0.1", self.port, self.keepalive)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        assert self._connected.wait(WAIT), "no CONNACK"
        if expect_success:
            assert not self.connack.is_failure, f"CONNACK {self.connack}"
        return self

    def subscribe(self, topic, qos=0, **opts):
        if self.v5:
            rc, mid = self.c.subscribe(topic, options=mqtt.SubscribeOptions(qos=qos, **opts))
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        granted = wait_for(lambda: self._subacks.get(mid), "SUBACK")
        return [r.value for r in granted]

    def unsubscribe(self, topic):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        return wait_for(lambda: self._unsubacks.get(mid) if mid in self._unsubacks else None, "UNSUBACK")

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos, retain)
        info.wait_for_publish(WAIT)
        assert info.is_published(), f"publish of {topic} (QoS {qos}) not completed"
        return info

    def expect(self, n=1, timeout=WAIT):
        """Exactly the next `n` messages (fails when fewer arrive in time)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            try:
                out.append(self.messages.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"expected {n} messages, got {[(m.topic, m.payload) for m in out]}") from None
        return out

    def expect_one(self, timeout=WAIT):
        return self.expect(1, timeout)[0]

    def expect_none(self, timeout=0.5):
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message {m.topic} {m.payload!r} qos={m.qos} retain={m.retain}")

    def disconnect(self):
        if self._thread and self._thread.is_alive():
            self.c.disconnect()
            self.disconnected.wait(WAIT)
        self.close()

    def close(self):
        """Stops the loop thread and drops the socket without DISCONNECT."""
        self._stop.set()
        if self._thread:
            self._thread.join(WAIT)
        sock = self.c.socket()
        if sock:
            sock.close()


def wait_for(fn, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v is not None:
            return v
        time.sleep(0.005)
    raise AssertionError(f"no {what} within {timeout}s")


def sync(client):
    """A round trip (SUBSCRIBE/SUBACK to an unused filter) so everything the broker sent before
    has been read: a cheap barrier instead of a sleep."""
    client.subscribe(unique("sync"), 0)
