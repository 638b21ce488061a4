"""awsctl's own Kubernetes REST client: kubeconfig credentials (an exec plugin included), a 401 that
loads them again, and refusals as ApiError. Served by a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from awsctl.kube.client import ApiError, Kube, Rest, kubeconfig_connection


def write_kubeconfig(tmp_path, server: str, user: dict):
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "team"}}],
                "clusters": [{"name": "k", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": user}],
            }
        )
    )
    return path


def exec_plugin(tmp_path) -> dict:
    """An exec credential plugin that hands out token-1, token-2, ... (a counter file), as an
    expiring EKS token would change."""
    counter = tmp_path / "count"
    counter.write_text("0")
    script = (
        f"import json, pathlib; p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) + 1; "
        "p.write_text(str(n)); print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
        "'kind': 'ExecCredential', 'status': {'token': f'token-{n}'}}))"
    )
    return {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable, "args": ["-c", script]}


class FakeApiServer:
    """Answers 401 to every token but the accepted one; records what it was asked."""

    def __init__(self, accepted: str, busy: int = 0):
        self.accepted = accepted
        self.busy = busy  # answer this many requests first with 429 (storage re-initialising)
        self.seen: list[tuple[str, str, str | None, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.seen.append((self.command, self.path, self.headers.get("Authorization"), body))
                if outer.busy:
                    outer.busy -= 1
                    return self._send(
                        429, {"kind": "Status", "message": "storage is (re)initializing"}, {"Retry-After": "0"}
                    )
                if self.headers.get("Authorization") != f"Bearer {outer.accepted}":
                    return self._send(401, {"kind": "Status", "message": "Unauthorized"})
                if self.path.endswith("/missing"):
                    return self._send(404, {"kind": "Status", "message": "not found"})
                if self.command == "POST":
                    return self._send(409, {"kind": "Status", "message": "already exists"})
                return self._send(200, {"kind": "Thing", "path": self.path})

            def _send(self, code, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_POST = do_DELETE = _answer

            def log_message(self, *_):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_kubeconfig_exec_plugin_gives_the_token(tmp_path):
    info = kubeconfig_connection(
        str(write_kubeconfig(tmp_path, "https://example:6443", {"exec": exec_plugin(tmp_path)}))
    )
    assert info.server == "https://example:6443" and info.token == "token-1" and info.default_namespace == "team"


def test_a_static_token_is_used_as_it_is(tmp_path):
    info = kubeconfig_connection(str(write_kubeconfig(tmp_path, "https://example:6443", {"token": "abc"})))
    assert info.as_http_headers() == {"Authorization": "Bearer abc"}


def test_a_401_loads_the_credentials_again_once(tmp_path):
    with FakeApiServer(accepted="token-2") as server:
        kube = Kube(Rest(str(write_kubeconfig(tmp_path, server.url, {"exec": exec_plugin(tmp_path)}))))
        got = kube.get_service("team", "web")
        assert got == {"kind": "Thing", "path": "/api/v1/namespaces/team/services/web"}
        assert [auth for _, _, auth, _ in server.seen] == ["Bearer token-1", "Bearer token-2"]


def test_refusals_are_api_errors_and_absence_is_none(tmp_path):
    with FakeApiServer(accepted="abc") as server:
        kube = Kube(Rest(str(write_kubeconfig(tmp_path, server.url, {"token": "abc"}))))
        assert kube.get_custom("canaries", "team", "missing") is None
        with pytest.raises(ApiError) as refused:
            kube.create_secret("team", "s", {"tls.crt": b"x"})
        assert refused.value.status == 409 and json.loads(refused.value.body)["message"] == "already exists"
        kube.patch_status("canaries", "team", "web", {"phase": "Progressing"})
        method, path, _, body = server.seen[-1]
        assert (method, path) == ("PATCH", "/apis/awsctl.io/v1alpha1/namespaces/team/canaries/web/status")
        assert json.loads(body) == {"status": {"phase": "Progressing"}}
        kube.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "team"}})
        assert server.seen[-1][1] == "/api/v1/namespaces/team/services/web?fieldManager=awsctl&force=true"


def test_events_name_the_object_and_this_instance(tmp_path):
    with FakeApiServer(accepted="abc") as server:
        kube = Kube(Rest(str(write_kubeconfig(tmp_path, server.url, {"token": "abc"}))))
        kube.event(
            {
                "apiVersion": "awsctl.io/v1alpha1",
                "kind": "Canary",
                "metadata": {"name": "web", "namespace": "team", "uid": "u1"},
            },
            type="Normal",
            reason="Progressing",
            message="step 1",
        )
        method, path, _, body = server.seen[-1]
        assert (method, path) == ("POST", "/api/v1/namespaces/team/events")
        event = json.loads(body)
        assert event["involvedObject"]["uid"] == "u1" and event["reason"] == "Progressing"
        assert event["reportingInstance"]


def test_a_429_is_sent_again_after_retry_after_any_verb_and_a_lasting_one_is_an_api_error(tmp_path):
    with FakeApiServer(accepted="abc", busy=2) as server:
        kube = Kube(Rest(str(write_kubeconfig(tmp_path, server.url, {"token": "abc"}))))
        kube.patch_status("canaries", "team", "web", {"phase": "Progressing"})  # a PATCH, retried too
        assert [m for m, *_ in server.seen] == ["PATCH"] * 3
        server.busy = 10
        with pytest.raises(ApiError) as busy:
            kube.get_service("team", "web")
        assert busy.value.status == 429 and len(server.seen) == 3 + 4  # the first try and three more
