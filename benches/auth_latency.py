#!/usr/bin/env python3
"""PINGRESP latency of a connected client while wrong-password CONNECTs arrive.

Starts the release broker on 127.0.0.1 with a ledger holding one PBKDF2 hash
(10,000 iterations by default), connects one client with the right password,
and has it send PINGREQ every few milliseconds, timing each PINGRESP. Each run
has two phases of --phase seconds: pings alone, then pings while another
process sends --rate wrong-password CONNECTs per second (each waits for its
CONNACK). It runs once with limits.auth_failures_per_minute = 0 (unlimited:
every wrong CONNECT is hashed) and once with the default 10. Bounded: about
4 x --phase seconds plus start-up (16 s with the defaults), every wait has a
timeout, and the broker it started is stopped by its pid.

    cargo build --release && python3 benches/auth_latency.py

Prints the PBKDF2 cost per 10,000 iterations (timed through `edgemq passwd`),
then p50/p99/max PINGRESP latency per phase and the CONNACK codes the wrong
CONNECTs got.
"""

import argparse
import multiprocessing
import os
import queue
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BINARY = os.path.join(ROOT, ".target", "release", "edgemq")


def mqtt_string(b):
    return struct.pack("!H", len(b)) + b


def remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id, username, password, keep_alive=60):
    """MQTT 3.1.1 CONNECT with clean session, user name and password."""
    var = mqtt_string(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", keep_alive)
    payload = mqtt_string(client_id) + mqtt_string(username) + mqtt_string(password)
    body = var + payload
    return b"\x10" + remaining_length(len(body)) + body


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def connack_code(sock):
    """The return code of the CONNACK on `sock` (3.1.1: 20 02 flags code)."""
    head = recv_exact(sock, 4)
    if head[0] != 0x20:
        raise ConnectionError(f"not a CONNACK: {head.hex()}")
    return head[3]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pbkdf2_ms_per_10k(binary):
    """Milliseconds per 10,000 PBKDF2-HMAC-SHA256 iterations, timed through `edgemq passwd`
    (1,000,000 iterations minus the process start, measured with 1 iteration)."""

    def run(iterations):
        t = time.perf_counter()
        subprocess.run([binary, "passwd", "-i", str(iterations), "x"], check=True, capture_output=True, timeout=60)
        return time.perf_counter() - t

    base = min(run(1) for _ in range(3))
    big = run(1_000_000)
    return (big - base) * 1000 / 100


def attacker(port, rate, seconds, out):
    """`rate` wrong-password CONNECTs per second for `seconds`; puts the CONNACK codes in `out`."""
    codes = {}
    start = time.perf_counter()  # CLOCK_MONOTONIC: comparable with the pinger's clock
    out.put(start)
    n = int(rate * seconds)
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(connect_packet(f"bad{i}".encode(), b"dev", b"wrong password"))
                code = connack_code(s)
        except (OSError, ConnectionError):
            code = "error"
        codes[code] = codes.get(code, 0) + 1
    out.put(codes)


def ping_phase(sock, seconds, interval):
    """PINGREQ every `interval` s for `seconds`; (send time, round-trip time in ms) each."""
    rtts = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        sock.sendall(b"\xc0\x00")
        resp = recv_exact(sock, 2)
        rtts.append((t, (time.perf_counter() - t) * 1000))
        if resp != b"\xd0\x00":
            raise ConnectionError(f"not a PINGRESP: {resp.hex()}")
        rest = interval - (time.perf_counter() - t)
        if rest > 0:
            time.sleep(rest)
    return rtts


def summary(samples):
    s = sorted(rtt for _, rtt in samples)
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    slow = sum(1 for r in s if r > 1.0)
    return f"n={len(s):4d}  p50 {statistics.median(s):6.3f} ms  p99 {p(0.99):7.3f} ms  max {s[-1]:7.3f} ms  >1 ms: {slow}"


def run_broker(binary, dir, port, hash_, per_minute):
    ledger = os.path.join(dir, "ledger.toml")
    with open(ledger, "w") as f:
        f.write(f'[[auth]]\nusername = "dev"\npassword = "{hash_}"\nallow = true\n')
    conf = os.path.join(dir, f"edgemq-{per_minute}.conf")
    with open(conf, "w") as f:
        f.write(
            'log_level = "error"\n'
            f"[limits]\nauth_failures_per_minute = {per_minute}\n"
            '[auth]\nledger = "ledger.toml"\n'
            f'[[listener]]\ntype = "tcp"\nbind = "127.0.0.1:{port}"\nallow_anonymous = false\n'
        )
    proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"broker exited: {proc.stderr.read().decode()}")
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("broker did not listen within 5 s")


def measure(args, dir, hash_, per_minute):
    port = free_port()
    proc = run_broker(args.binary, dir, port, hash_, per_minute)
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(connect_packet(b"pinger", b"dev", b"right password"))
        if connack_code(sock) != 0:
            raise RuntimeError("the pinger was refused")
        idle = ping_phase(sock, args.phase, args.interval)
        out = multiprocessing.Queue()
        p = multiprocessing.Process(target=attacker, args=(port, args.rate, args.phase, out))
        p.start()
        loaded = ping_phase(sock, args.phase, args.interval)
        p.join(timeout=args.phase + 10)
        if p.is_alive():
            p.terminate()
        try:
            start = out.get(timeout=5)
            codes = out.get(timeout=5)
        except queue.Empty:
            start, codes = None, {"attacker gave no result": 1}
        sock.close()
        print(f"auth_failures_per_minute = {per_minute}")
        print(f"  pings only:                   {summary(idle)}")
        print(f"  + {args.rate:g} wrong CONNECT/s:         {summary(loaded)}")
        if per_minute and start is not None:
            # Pings sent once every wrong CONNECT is refused without hashing.
            after = [x for x in loaded if x[0] > start + (per_minute + 1) / args.rate]
            print(f"    of which after the limit:   {summary(after)}")
        names = {4: "0x04 bad user name or password (hashed)", 5: "0x05 not authorized (throttled)"}
        for code, n in sorted(codes.items(), key=lambda kv: str(kv[0])):
            print(f"  wrong CONNECTs answered {names.get(code, code)}: {n}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--iterations", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=20.0, help="wrong CONNECTs per second")
    ap.add_argument("--phase", type=float, default=4.0, help="seconds per phase (4 phases)")
    ap.add_argument("--interval", type=float, default=0.005, help="seconds between PINGREQs")
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} missing: cargo build --release")
    args.phase = min(args.phase, 4.5)  # four phases stay under 20 s
    hash_ = subprocess.run(
        [args.binary, "passwd", "-i", str(args.iterations), "right password"], check=True, capture_output=True, timeout=30
    ).stdout.decode().strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} cores, {cpu}")
    print(f"PBKDF2-HMAC-SHA256: {pbkdf2_ms_per_10k(args.binary):.2f} ms per 10,000 iterations (ledger hash: {args.iterations})")
    with tempfile.TemporaryDirectory(prefix="edgemq-auth-") as dir:
        for per_minute in (0, 10):
            measure(args, dir, hash_, per_minute)


if __name__ == "__main__":
    main()
