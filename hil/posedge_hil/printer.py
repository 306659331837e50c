"""A TCP "printer" that records every byte per connection, and can be pulled out of the
wall mid-receipt: after `cut_after` complete receipts plus `tear_bytes` more bytes on a
connection it closes that connection and its listening socket for `down_s` seconds."""

from __future__ import annotations

import socket
import threading
import time

from .check import CUT


class RecordingPrinter:
    def __init__(self, host: str, port: int = 0):
        self.host = host
        self.port = port
        self.connections: list[bytearray] = []
        self.cut_after: int | None = None
        self.tear_bytes = 0
        self.down_s = 0.0
        self.disconnects = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._up = threading.Event()
        self._listen()
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        self.port = s.getsockname()[1]
        s.listen(8)
        s.settimeout(0.2)
        self.sock = s
        self._up.set()

    def pull_plug_mid_receipt(self, cut_after: int, tear_bytes: int, down_s: float):
        self.cut_after, self.tear_bytes, self.down_s = cut_after, tear_bytes, down_s

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)
                continue
            buf = bytearray()
            with self._lock:
                self.connections.append(buf)
            threading.Thread(target=self._client, args=(conn, buf), daemon=True).start()

    def _client(self, conn: socket.socket, buf: bytearray):
        conn.settimeout(0.5)
        limit = None
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                if limit is None and self.cut_after is not None:
                    if buf.count(CUT) + data.count(CUT) >= self.cut_after:
                        # The byte offset `tear_bytes` past the cut_after-th cut.
                        whole = bytes(buf) + data
                        at, pos = 0, -1
                        for _ in range(self.cut_after):
                            pos = whole.find(CUT, at)
                            at = pos + len(CUT)
                        limit = at + self.tear_bytes
                if limit is not None and len(buf) + len(data) >= limit:
                    buf.extend(data[: max(0, limit - len(buf))])
                    self.cut_after = None
                    self._unplug()
                    return
                buf.extend(data)

    def _unplug(self):
        """The printer goes dark: connection and listener closed, back after down_s."""
        self.disconnects += 1
        self._up.clear()
        try:
            self.sock.close()
        except OSError:
            pass

        def back():
            time.sleep(self.down_s)
            if not self._stop.is_set():
                self._listen()

        threading.Thread(target=back, daemon=True).start()

    def wait_up(self, timeout=30.0) -> bool:
        return self._up.wait(timeout)

    def streams(self) -> list[bytes]:
        with self._lock:
            return [bytes(b) for b in self.connections]

    def close(self):
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
