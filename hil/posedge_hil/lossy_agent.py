"""A stand-in "agent" that breaks the durability promise on purpose: it acks every LAN
line at once, before storing anything, keeps the events in memory for `--hold-ms` before
forwarding them to the broker, and drops every n-th line outright (`--drop-every`, 0:
none). The runner must FAIL a scenario run against it (hil/rigs/sim-lossy.yaml drops
lines; hil/rigs/sim-ack-before-durable.yaml drops nothing and loses only what a power cut
takes from memory; hil/test_runner.py proves both fail).

    python -m posedge_hil.lossy_agent --config posedge.toml --drop-every 10 --hold-ms 0
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import threading
import time
import tomllib
import uuid
from urllib.parse import urlparse

import paho.mqtt.client as mqtt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--drop-every", type=int, default=10)
    ap.add_argument("--hold-ms", type=int, default=0)
    a = ap.parse_args()
    cfg = tomllib.load(open(a.config, "rb"))
    up = cfg["uplink"]
    u = urlparse(up["url"])
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"lossy-{cfg['store_id']}",
                    protocol=mqtt.MQTTv5)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=up["ca"])
    ctx.load_cert_chain(up["cert"], up["key"])
    c.tls_set_context(ctx)
    c.connect_async(u.hostname, u.port or 8883)
    c.loop_start()
    prefix = f"posedge/v1/{cfg['tenant']}/{cfg['store_id']}"
    counter = {"n": 0}
    lock = threading.Lock()
    held: list[tuple[str, str]] = []

    def forward():
        # "Group commit" to nowhere: what is held when the process dies is gone.
        while True:
            time.sleep(max(a.hold_ms, 1) / 1000)
            with lock:
                batch, held[:] = list(held), []
            for topic, payload in batch:
                c.publish(topic, payload, qos=1)

    threading.Thread(target=forward, daemon=True).start()

    def serve(src):
        host, port = src["listen"].rsplit(":", 1)
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, int(port)))
        ls.listen(16)
        seq = 0
        while True:
            conn, _ = ls.accept()
            f = conn.makefile("rwb")
            n = 0
            for line in f:
                n += 1
                seq += 1
                eid = str(uuid.uuid4())
                # The bug on purpose: the ack goes out before anything is durable.
                f.write(json.dumps({"ack": n, "event_id": eid, "seq": seq}).encode() + b"\n")
                f.flush()
                with lock:
                    counter["n"] += 1
                    drop = a.drop_every > 0 and counter["n"] % a.drop_every == 0
                if drop:
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                reg = ev.get("register_id") or src.get("register_id", "")
                ev.update(schema="posedge.event/1", event_id=eid, seq=seq, store_id=cfg["store_id"],
                          source={"name": src["name"], "kind": "tcp", "format": "ndjson"},
                          received_at=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                          idempotency_key="|".join(str(x) for x in [
                              cfg["store_id"], reg, ev.get("business_day", ""), ev.get("pos_sequence", ""),
                              ev.get("event_type", "")]))
                with lock:
                    held.append((f"{prefix}/{reg}/{ev.get('event_type')}", json.dumps(ev)))

    for src in cfg.get("source", []):
        if src.get("kind") == "tcp":
            threading.Thread(target=serve, args=(src,), daemon=True).start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
