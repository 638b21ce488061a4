"""`awsctl dev`: starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and moto,
with pods that answer (`awsctl.dev.pods`) and a data plane for moto's listeners (`awsctl.dev.dataplane`).

Everything listens on free 127.0.0.1 ports; the state directory holds the PKI, the
kubeconfig, the logs and `state.json` (ports and PIDs), so `down` stops exactly what
`up` started.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from awsctl.dev import pki, tools

POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
REGION = "us-east-1"
NODE_COUNT = 3
_FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


class DevError(RuntimeError):
    """The local environment could not be started; the message says which component and where its log is."""


def default_state_dir() -> Path:
    root = Path(os.environ.get("AWSCTL_CACHE_DIR", Path.home() / ".cache" / "awsctl"))
    return root / "dev"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _say(message: str) -> None:
    print(f"[awsctl dev] {message}", file=sys.stderr, flush=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is dead for our purposes
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def fake_node(index: int) -> dict:
    """A kwok-managed node whose providerID has the shape EKS gives EC2 instances."""
    zone = f"{REGION}{'abc'[index % 3]}"
    instance = f"i-0{index:016x}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": f"kwok-node-{index}",
            "annotations": {_FAKE_NODE_ANNOTATION: "fake"},
            "labels": {
                "kubernetes.io/hostname": f"kwok-node-{index}",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": REGION,
                "type": "kwok",
            },
        },
        "spec": {
            "providerID": f"aws:///{zone}/{instance}",
            "podCIDR": f"10.244.{index}.0/24",
        },
    }


@dataclass
class Environment:
    state_dir: Path

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def load_state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        state = self.load_state()
        return state is not None and all(_alive(pid) for pid in state["pids"].values())

    # -- exports -----------------------------------------------------------------------
    def exports(self) -> dict[str, str]:
        state = self.load_state()
        if not state:
            raise DevError(f"no environment in {self.state_dir}; run `awsctl dev up` first")
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{state['ports']['moto']}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWSCTL_CLUSTER_NAME": "dev",  # `awsctl run` needs one; this environment's
        }

    def listeners(self) -> list[dict]:
        """The data plane's listeners: ARN, load balancer ARN and the URL that serves its traffic."""
        state = self.load_state()
        if not state or "dataplane" not in state["ports"]:
            raise DevError(f"no environment with a data plane in {self.state_dir}; run `awsctl dev up` first")
        url = f"http://127.0.0.1:{state['ports']['dataplane']}/listeners"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return json.loads(answer.read())
        except OSError as err:
            raise DevError(
                f"the data plane at {url} did not answer ({err}); see {self.state_dir / 'logs' / 'moto.log'}"
            ) from None

    def export_lines(self) -> str:
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in self.exports().items())

    # -- up ----------------------------------------------------------------------------
    def up(self, *, nodes: int = NODE_COUNT, with_moto: bool = True) -> dict[str, str]:
        if self.running():
            _say(f"an environment is already running in {self.state_dir}")
            return self.exports()
        if self.load_state():
            self.down(quiet=True)
        started = time.monotonic()
        bin_dir = tools.ensure_binaries()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        pki_dir = self.state_dir / "pki"
        pki.generate(pki_dir)
        ports = {name: free_port() for name in ("etcd", "etcd_peer", "apiserver", "kwok", "moto", "pods", "dataplane")}
        state = {"ports": ports, "pids": {}, "bin": str(bin_dir)}
        self._write_kubeconfig(pki_dir, ports["apiserver"])
        try:
            self._spawn(
                state,
                "etcd",
                [
                    str(bin_dir / "etcd"),
                    "--name=default",
                    f"--data-dir={self.state_dir / 'etcd'}",
                    f"--listen-client-urls=http://127.0.0.1:{ports['etcd']}",
                    f"--advertise-client-urls=http://127.0.0.1:{ports['etcd']}",
                    f"--listen-peer-urls=http://127.0.0.1:{ports['etcd_peer']}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd_peer']}",
                    f"--initial-cluster=default=http://127.0.0.1:{ports['etcd_peer']}",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                ],
            )
            self._wait_http(f"http://127.0.0.1:{ports['etcd']}/health", "etcd", state)
            self._spawn(
                state,
                "kube-apiserver",
                [
                    str(bin_dir / "kube-apiserver"),
                    f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={ports['apiserver']}",
                    f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
                    f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
                    f"--client-ca-file={pki_dir / 'ca.crt'}",
                    f"--service-account-key-file={pki_dir / 'sa.pub'}",
                    f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--authorization-mode=RBAC",
                    "--allow-privileged=true",
                    "--enable-priority-and-fairness=false",
                    "--endpoint-reconciler-type=none",
                ],
            )
            self._wait_apiserver(pki_dir, ports["apiserver"], state)
            kubeconfig = f"--kubeconfig={self.kubeconfig}"
            self._spawn(
                state,
                "kube-controller-manager",
                [
                    str(bin_dir / "kube-controller-manager"),
                    kubeconfig,
                    "--leader-elect=false",
                    "--secure-port=0",
                    f"--service-account-private-key-file={pki_dir / 'sa.key'}",
                    f"--root-ca-file={pki_dir / 'ca.crt'}",
                    "--use-service-account-credentials=false",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--controllers=*,-nodeipam,-cloud-node-lifecycle,-route,-service",
                    "--concurrent-deployment-syncs=10",
                    "--concurrent-replicaset-syncs=10",
                    "--concurrent-service-endpoint-syncs=10",
                    "--endpointslice-updates-batch-period=0s",
                    "--kube-api-qps=100",
                    "--kube-api-burst=200",  # client-side limits, not the fake cluster's pace
                ],
            )
            self._spawn(
                state,
                "kube-scheduler",
                [
                    str(bin_dir / "kube-scheduler"),
                    kubeconfig,
                    "--leader-elect=false",
                    "--secure-port=0",
                    "--kube-api-qps=100",
                    "--kube-api-burst=200",
                ],
            )
            self._spawn(
                state,
                "kwok",
                [
                    str(bin_dir / "kwok"),
                    kubeconfig,
                    f"--manage-nodes-with-annotation-selector={_FAKE_NODE_ANNOTATION}=fake",
                    f"--config={Path(__file__).with_name('stages.yaml')}",
                    f"--cidr={POD_CIDR}",
                    "--node-ip=127.0.0.1",
                    "--node-lease-duration-seconds=40",
                    f"--server-address=127.0.0.1:{ports['kwok']}",
                ],
            )
            if with_moto:
                self._spawn(
                    state,
                    "pods",
                    [
                        sys.executable,
                        "-m",
                        "awsctl.dev.pods",
                        f"--kubeconfig={self.kubeconfig}",
                        f"--port={ports['pods']}",
                    ],
                )
                self._wait_http(f"http://127.0.0.1:{ports['pods']}/healthz", "pods", state)
                self._spawn(
                    state,
                    "moto",
                    [
                        sys.executable,
                        "-m",
                        "awsctl.dev.moto_server",
                        "-H",
                        "127.0.0.1",
                        "-p",
                        str(ports["moto"]),
                    ],
                    env={
                        "AWSCTL_DEV_PODS_URL": f"http://127.0.0.1:{ports['pods']}",
                        "AWSCTL_DATAPLANE_PORT": str(ports["dataplane"]),
                    },
                )
                self._wait_http(f"http://127.0.0.1:{ports['moto']}/moto-api/", "moto", state)
            self._create_nodes(nodes, state)
        except BaseException:
            self.down(quiet=True, keep_logs=True)
            raise
        _say(f"ready in {time.monotonic() - started:.1f}s (state in {self.state_dir})")
        return self.exports()

    def _write_kubeconfig(self, pki_dir: Path, port: int) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "awsctl-dev",
                    "cluster": {
                        "server": f"https://127.0.0.1:{port}",
                        "certificate-authority": str(pki_dir / "ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(pki_dir / "admin.crt"),
                        "client-key": str(pki_dir / "admin.key"),
                    },
                }
            ],
            "contexts": [{"name": "awsctl-dev", "context": {"cluster": "awsctl-dev", "user": "admin"}}],
            "current-context": "awsctl-dev",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))
        self.kubeconfig.chmod(0o600)

    def _spawn(self, state: dict, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        _say(f"starting {name}")
        log = open(self.state_dir / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.state_dir,
            env={**os.environ, **env} if env else None,
        )
        log.close()
        state["pids"][name] = proc.pid
        self.state_file.write_text(json.dumps(state, indent=2))

    def _check_alive(self, state: dict) -> None:
        for name, pid in state["pids"].items():
            if not _alive(pid):
                log = self.state_dir / "logs" / f"{name}.log"
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise DevError(f"{name} exited during startup; log {log}:\n{tail}")

    def _wait(self, probe, what: str, state: dict, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(state)
            try:
                if probe():
                    return
            except Exception:  # noqa: BLE001 - a server still starting fails its probe in many ways
                pass
            time.sleep(0.2)
        raise DevError(f"{what} was not ready within {timeout:.0f}s; logs in {self.state_dir / 'logs'}")

    def _wait_http(self, url: str, what: str, state: dict) -> None:
        self._wait(lambda: urllib.request.urlopen(url, timeout=2).status == 200, what, state)

    def _wait_apiserver(self, pki_dir: Path, port: int, state: dict) -> None:
        ctx = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        ctx.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        url = f"https://127.0.0.1:{port}/readyz"
        self._wait(lambda: urllib.request.urlopen(url, context=ctx, timeout=2).status == 200, "kube-apiserver", state)

    def _create_nodes(self, count: int, state: dict) -> None:
        from kubernetes import client, config

        api = client.CoreV1Api(config.new_client_from_config(str(self.kubeconfig)))
        for index in range(count):
            api.create_node(fake_node(index))

        def ready() -> bool:
            nodes = api.list_node(label_selector="type=kwok").items
            return len(nodes) == count and all(
                any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or [])) for n in nodes
            )

        _say(f"waiting for {count} kwok nodes to be Ready")
        self._wait(ready, "kwok nodes", state)

        def default_sa() -> bool:
            return bool(api.list_namespaced_service_account("default").items)

        self._wait(default_sa, "default service account", state)

    def install_crds(self, timeout: float = 30.0) -> None:
        """Creates every CRD in crds/ and waits until the apiserver serves them (Established)."""
        import yaml
        from kubernetes import client, config

        from awsctl.api import crds as crd_files

        ext = client.ApiextensionsV1Api(config.new_client_from_config(str(self.kubeconfig)))
        names = []
        for name in crd_files.DEFINITIONS:
            body = yaml.safe_load((crd_files.crds_dir() / name).read_text())
            try:
                ext.create_custom_resource_definition(body)
            except client.ApiException as err:
                if err.status != 409:  # already there: `awsctl dev up` on a running environment
                    raise
            names.append(body["metadata"]["name"])

        def established() -> bool:
            return all(
                any(
                    c.type == "Established" and c.status == "True"
                    for c in ext.read_custom_resource_definition(name).status.conditions or []
                )
                for name in names
            )

        self._wait(established, "CRDs established", self.load_state() or {"pids": {}}, timeout)

    def grant(self, name: str, spec: dict) -> None:
        """Creates a TrafficGrant (cluster-scoped; left as it is when one of that name exists): without one,
        awsctl refuses every Canary and binding (awsctl/api/grant.py)."""
        from kubernetes import client, config

        from awsctl.api import GROUP, VERSION
        from awsctl.api import grant as grant_api

        custom = client.CustomObjectsApi(config.new_client_from_config(str(self.kubeconfig)))
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": grant_api.KIND, "metadata": {"name": name}, "spec": spec}
        try:
            custom.create_cluster_custom_object(GROUP, VERSION, grant_api.PLURAL, body)
        except client.ApiException as err:
            if err.status != 409:
                raise

    # -- down --------------------------------------------------------------------------
    def down(self, *, quiet: bool = False, keep_logs: bool = True) -> None:
        state = self.load_state()
        if not state:
            if not quiet:
                _say(f"nothing running in {self.state_dir}")
            return
        order = ["moto", "pods", "kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
        pids = state["pids"]
        for name in order + [n for n in pids if n not in order]:
            pid = pids.get(name)
            if pid and _alive(pid):
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
            time.sleep(0.1)
        for pid in pids.values():
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid in pids.values():
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        self.state_file.unlink(missing_ok=True)
        for stale in ("etcd", "pki"):
            path = self.state_dir / stale
            if path.exists():
                subprocess.run(["rm", "-rf", str(path)], check=False)
        if not quiet:
            _say(f"stopped; logs kept in {self.state_dir / 'logs'}" if keep_logs else "stopped")
