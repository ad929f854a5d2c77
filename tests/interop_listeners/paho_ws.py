"""paho-mqtt over WebSocket against a running edgemq: subscribe, publish, receive.

Usage: paho_ws.py HOST PORT PATH [CAFILE]   (with CAFILE: WebSocket over TLS, verified)
Exit 0 on success, 1 on failure, 77 when paho-mqtt is not installed (the Rust test skips).
Every wait is bounded.
"""
import sys
import threading

try:
    import paho.mqtt.client as mqtt
except ImportError:
    sys.exit(77)

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cafile = sys.argv[4] if len(sys.argv) > 4 else None
got = threading.Event()
subscribed = threading.Event()
received = []


def on_connect(client, userdata, flags, reason_code, properties=None):
    client.subscribe("paho/ws", qos=1)


def on_subscribe(client, userdata, mid, reason_codes, properties=None):
    subscribed.set()


def on_message(client, userdata, msg):
    received.append((msg.topic, msg.payload))
    got.set()


for protocol in (mqtt.MQTTv311, mqtt.MQTTv5):
    got.clear()
    subscribed.clear()
    received.clear()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"paho-ws-{protocol}",
                    transport="websockets", protocol=protocol)
    c.ws_set_options(path=path)
    if cafile:
        c.tls_set(ca_certs=cafile)
    c.on_connect = on_connect
    c.on_subscribe = on_subscribe
    c.on_message = on_message
    c.connect(host, port, keepalive=30)
    c.loop_start()
    try:
        if not subscribed.wait(10):
            print(f"protocol {protocol}: no SUBACK", file=sys.stderr)
            sys.exit(1)
        c.publish("paho/ws", b"x" * 5000, qos=1).wait_for_publish(10)
        if not got.wait(10) or received[0] != ("paho/ws", b"x" * 5000):
            print(f"protocol {protocol}: message not received: {received}", file=sys.stderr)
            sys.exit(1)
    finally:
        c.disconnect()
        c.loop_stop()
print("ok")
