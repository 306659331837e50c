"""The cloud subscriber: our own MQTT 5 client over TLS with a client certificate, a
persistent session (survives broker restarts), recording every event message with its
arrival time. Payloads are parsed after the run, so the network thread only appends."""

from __future__ import annotations

import ssl
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .check import Delivery, parse_delivery

EVENT_TYPES = [
    "transaction", "no_sale", "drawer", "till", "shift", "operator", "cash_movement",
    "inventory_adjustment", "price_change", "customer_update", "receipt", "device_status",
]


class Subscriber:
    def __init__(self, host, port, ca, cert, key, prefix, client_id):
        self.raw: list[tuple[float, bytes]] = []
        self.connects = 0
        self.subscribed = threading.Event()
        self.prefix = prefix
        self._parsed: list[Delivery] = []
        self._parsed_upto = 0
        self._keys: set[str] = set()
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(cert), str(key))
        c.tls_set_context(ctx)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(0.1, 1)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_subscribe = lambda *a, **k: self.subscribed.set()
        self.client = c
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect_async(host, port, keepalive=10, clean_start=False, properties=props)
        c.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            return
        self.connects += 1
        client.subscribe([(f"{self.prefix}/+/{t}", 1) for t in EVENT_TYPES])

    def _on_message(self, client, userdata, msg):
        self.raw.append((time.time() * 1000.0, msg.payload))

    def wait_subscribed(self, timeout=20.0) -> bool:
        return self.subscribed.wait(timeout)

    def count(self) -> int:
        return len(self.raw)

    def poll(self) -> None:
        """Parses what arrived since the last call."""
        n = len(self.raw)
        for at, payload in self.raw[self._parsed_upto : n]:
            d = parse_delivery(payload, at)
            if d is not None:
                self._parsed.append(d)
                self._keys.add(d.key)
        self._parsed_upto = n

    def deliveries(self) -> list[Delivery]:
        self.poll()
        return list(self._parsed)

    def keys(self) -> set[str]:
        self.poll()
        return self._keys

    def stop(self):
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
