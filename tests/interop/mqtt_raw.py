"""A tiny MQTT client over a raw socket, written from the spec, for the cases a library client
cannot express: malformed bytes, withheld acknowledgements, DUP resends, silence.

It shares no code with the broker or with paho: packets are built byte by byte here, and every
read is bounded by a timeout.
"""

import socket
import struct
import time

# Packet types (MQTT 2.1.2).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

V31, V311, V5 = 3, 4, 5


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(text):
    b = text.encode() if isinstance(text, str) else bytes(text)
    return struct.pack(">H", len(b)) + b


def frame(first_byte, body):
    return bytes([first_byte]) + varint(len(body)) + body


def props(*items):
    """v5 properties: items are already-encoded (id byte + value) chunks."""
    body = b"".join(items)
    return varint(len(body)) + body


def prop_u32(pid, v):
    return bytes([pid]) + struct.pack(">I", v)


def prop_u16(pid, v):
    return bytes([pid]) + struct.pack(">H", v)


SESSION_EXPIRY = 0x11
RECEIVE_MAXIMUM = 0x21
ASSIGNED_CLIENT_ID = 0x12


def connect(client_id="", version=V311, clean=True, keepalive=60, will=None, session_expiry=None,
            username=None, password=None, level=None):
    """CONNECT. `will` is (topic, payload, qos, retain)."""
    name = "MQIsdp" if version == V31 else "MQTT"
    flags = 0x02 if clean else 0
    if will:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    vh = s(name) + bytes([level if level is not None else version, flags]) + struct.pack(">H", keepalive)
    if version == V5:
        vh += props(prop_u32(SESSION_EXPIRY, session_expiry)) if session_expiry is not None else props()
    pl = s(client_id)
    if will:
        if version == V5:
            pl += props()
        pl += s(will[0]) + s(will[1])
    if username is not None:
        pl += s(username)
    if password is not None:
        pl += s(password)
    return frame(0x10, vh + pl)


def publish(topic, payload=b"", qos=0, pid=None, retain=False, dup=False, version=V311):
    fb = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = s(topic)
    if qos:
        body += struct.pack(">H", pid)
    if version == V5:
        body += props()
    return frame(fb, body + (payload.encode() if isinstance(payload, str) else payload))


def ack(ptype, pid):
    return frame((ptype << 4) | (0x02 if ptype == PUBREL else 0), struct.pack(">H", pid))


def subscribe(pid, filters, version=V311):
    """filters: [(filter, qos)]"""
    body = struct.pack(">H", pid) + (props() if version == V5 else b"")
    for f, q in filters:
        body += s(f) + bytes([q])
    return frame(0x82, body)


def disconnect(version=V311, reason=0):
    return frame(0xE0, bytes([reason, 0]) if version == V5 else b"")


PINGREQ_BYTES = b"\xc0\x00"


class Packet:
    def __init__(self, first, body):
        self.first = first
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = body

    def __repr__(self):
        return f"Packet(type={self.type}, flags={self.flags:#x}, body={self.body.hex(' ')})"

    @property
    def raw(self):
        return bytes([self.first]) + varint(len(self.body)) + self.body

    # PUBLISH fields
    @property
    def qos(self):
        return (self.flags >> 1) & 3

    @property
    def dup(self):
        return bool(self.flags & 0x08)

    @property
    def retain(self):
        return bool(self.flags & 0x01)

    def publish_fields(self, version=V311):
        """(topic, pid or None, payload)"""
        b = self.body
        n = struct.unpack(">H", b[:2])[0]
        topic = b[2:2 + n].decode()
        i = 2 + n
        pid = None
        if self.qos:
            pid = struct.unpack(">H", b[i:i + 2])[0]
            i += 2
        if version == V5:
            plen, used = read_varint(b, i)
            i += used + plen
        return topic, pid, b[i:]

    @property
    def pid(self):
        return struct.unpack(">H", self.body[:2])[0]

    def v5_props(self, offset):
        """Properties of a v5 packet starting at `offset` in the body, as {id: raw value bytes}."""
        plen, used = read_varint(self.body, offset)
        p = self.body[offset + used: offset + used + plen]
        out, i = {}, 0
        while i < len(p):
            pid = p[i]
            i += 1
            if pid in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A):
                out[pid] = p[i:i + 1]; i += 1
            elif pid in (0x13, 0x21, 0x22, 0x23):
                out[pid] = p[i:i + 2]; i += 2
            elif pid in (0x02, 0x11, 0x18, 0x27):
                out[pid] = p[i:i + 4]; i += 4
            elif pid == 0x0B:
                v, u = read_varint(p, i); out[pid] = v; i += u
            elif pid == 0x26:
                n = struct.unpack(">H", p[i:i + 2])[0]; i += 2 + n
                m = struct.unpack(">H", p[i:i + 2])[0]; i += 2 + m
            else:  # strings and binary data
                n = struct.unpack(">H", p[i:i + 2])[0]
                out[pid] = p[i + 2:i + 2 + n]; i += 2 + n
        return out


def read_varint(b, i):
    mult, val, used = 1, 0, 0
    while True:
        byte = b[i + used]
        used += 1
        val += (byte & 0x7F) * mult
        mult *= 128
        if not byte & 0x80:
            return val, used


class Closed(Exception):
    """The broker closed the connection."""


class Raw:
    """One TCP connection to the broker; every read has a deadline."""

    def __init__(self, port, timeout=3.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no packet from the broker in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no packet from the broker in time") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed()
        self.buf += chunk

    def recv(self, timeout=None):
        """The next whole packet; raises TimeoutError or Closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buf) >= 2:
                try:
                    n, used = read_varint(self.buf, 1)
                except IndexError:
                    n = None
                if n is not None and len(self.buf) >= 1 + used + n:
                    p = Packet(self.buf[0], self.buf[1 + used:1 + used + n])
                    self.buf = self.buf[1 + used + n:]
                    return p
            self._fill(deadline)

    def expect(self, ptype, timeout=None):
        p = self.recv(timeout)
        assert p.type == ptype, f"expected packet type {ptype}, got {p!r}"
        return p

    def expect_closed(self, timeout=None):
        """Reads until the broker closes the connection; returns the packets seen before."""
        seen = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                seen.append(self.recv(max(0.0, deadline - time.monotonic())))
            except Closed:
                return seen
            except TimeoutError:
                raise AssertionError(f"broker did not close the connection in time; saw {seen}") from None

    def expect_silence(self, duration):
        """Nothing arrives (and the connection stays open) for `duration` seconds."""
        try:
            p = self.recv(duration)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected packet {p!r}")

    def connect(self, client_id="", version=V311, **kw):
        """Sends CONNECT and returns the CONNACK packet."""
        self.send(connect(client_id, version, **kw))
        return self.expect(CONNACK)


def open_session(port, client_id, version=V311, **kw):
    """A connected Raw client whose CONNACK was 0."""
    r = Raw(port)
    ack = r.connect(client_id, version, **kw)
    assert ack.body[1] == 0, f"CONNACK refused: {ack!r}"
    return r
