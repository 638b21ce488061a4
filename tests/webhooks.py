"""A webhook receiver on a free 127.0.0.1 port: answers each path with a status the test sets, records payloads."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from awsctl.dev.cluster import free_port


class Hooks:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.status: dict[str, int] = {}
        self.first: dict[str, list[int]] = {}  # answers given once each, in order, before `status`
        self.calls: list[tuple[str, dict]] = []
        self.answered: list[tuple[str, int, float]] = []  # (path, status, monotonic time of the answer)
        self.location: dict[str, str] = {}  # path -> the Location header it answers with (a redirect)
        self.held: dict[str, threading.Event] = {}  # path -> answered only once the event is set
        self.lock = threading.Lock()

    def respond(self, path: str, status: int, first: tuple[int, ...] = ()) -> None:
        """Answer `path` with `status`, after answering its next calls with `first`, one each."""
        with self.lock:
            self.first[path] = list(first)
            self.status[path] = status

    def hold(self, path: str) -> threading.Event:
        """Calls to `path` are received at once and answered only when the returned event is set."""
        with self.lock:
            self.held[path] = threading.Event()
            return self.held[path]

    def received(self, path: str) -> list[dict]:
        with self.lock:
            return [body for p, body in self.calls if p == path]


@contextlib.contextmanager
def webhook_server():
    port = free_port()
    hooks = Hooks(port)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with hooks.lock:
                queued = hooks.first.get(self.path)
                status = queued.pop(0) if queued else hooks.status.get(self.path, 200)
                hooks.calls.append((self.path, body))
                held = hooks.held.get(self.path)
            if held is not None:
                held.wait(60)
            with hooks.lock:
                hooks.answered.append((self.path, status, time.monotonic()))
            self.send_response(status)
            if self.path in hooks.location:
                self.send_header("Location", hooks.location[self.path])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hooks
    finally:
        server.shutdown()
        server.server_close()
