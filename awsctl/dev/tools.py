"""Builds the control-plane binaries from the Go module proxy and caches them outside the clone.

The cache key is a hash of the pinned Go module (go.mod, go.sum, the etcd main), so a
version bump rebuilds and an unchanged pin is a no-op, also for CI on the same machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
_PACKAGES = {
    "etcd": "./etcd",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "kwok": "sigs.k8s.io/kwok/cmd/kwok",
}


class ToolsError(RuntimeError):
    """The cluster tools cannot be built; the e2e tier must fail on this, never skip."""


def module_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "hack" / "cluster-tools"


def kubernetes_version(mod: Path | None = None) -> str:
    text = ((mod or module_dir()) / "go.mod").read_text()
    found = re.search(r"k8s\.io/kubernetes (v\S+)", text)
    if not found:
        raise ToolsError("hack/cluster-tools/go.mod does not pin k8s.io/kubernetes")
    return found.group(1)


def cache_dir(mod: Path | None = None) -> Path:
    mod = mod or module_dir()
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "etcd/main.go"):
        digest.update((mod / name).read_bytes())
    root = Path(os.environ.get("AWSCTL_CACHE_DIR", Path.home() / ".cache" / "awsctl"))
    return root / f"k8s-{kubernetes_version(mod)}-{digest.hexdigest()[:12]}" / "bin"


def _say(message: str) -> None:
    print(f"[awsctl dev] {message}", file=sys.stderr, flush=True)


def ensure_binaries() -> Path:
    """Returns the bin directory, building whatever is missing (minutes on a cold cache)."""
    mod = module_dir()
    if not (mod / "go.mod").exists():
        raise ToolsError(f"cluster tools module not found at {mod}")
    bin_dir = cache_dir(mod)
    missing = [b for b in BINARIES if not (bin_dir / b).exists()]
    if not missing:
        return bin_dir
    go = shutil.which("go")
    if not go:
        raise ToolsError("Go is required to build the local control plane and was not found on PATH")
    bin_dir.mkdir(parents=True, exist_ok=True)
    staging = bin_dir.parent / "staging"
    staging.mkdir(exist_ok=True)
    _say(f"building {', '.join(missing)} into {bin_dir} (a cold build takes about 7-10 minutes)")
    started = time.monotonic()
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=readonly -buildvcs=false")
    proc = subprocess.Popen(
        [go, "build", "-o", str(staging) + "/", *[_PACKAGES[b] for b in missing]],
        cwd=mod,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    stream = proc.stdout
    assert stream is not None  # stdout=PIPE
    while proc.poll() is None:
        line = stream.readline()
        if line:
            output.append(line)
            _say(f"go: {line.rstrip()}")
        elif proc.poll() is None:
            time.sleep(0.2)
    output.extend(stream.readlines())
    if proc.returncode != 0:
        raise ToolsError("go build of the cluster tools failed:\n" + "".join(output[-40:]))
    for name in missing:
        (staging / name).replace(bin_dir / name)
    _say(f"built in {time.monotonic() - started:.0f}s")
    return bin_dir


HELM_VERSION = "v3.22.0"  # the chart's tests run this helm; `go install` fetches it from the module proxy
HELM_KUBE_MINOR = "37"  # its client-go is v0.37: what helm's Makefile stamps in as the default Kubernetes 1.37


def ensure_helm() -> Path:
    """Returns the path of helm, building it once (about 3 minutes cold) into the cache."""
    root = Path(os.environ.get("AWSCTL_CACHE_DIR", Path.home() / ".cache" / "awsctl"))
    bin_dir = root / f"helm-{HELM_VERSION}-k8s1.{HELM_KUBE_MINOR}" / "bin"
    helm = bin_dir / "helm"
    if helm.exists():
        return helm
    go = shutil.which("go")
    if not go:
        raise ToolsError("Go is required to build helm for the chart's tests and was not found on PATH")
    _say(f"building helm {HELM_VERSION} into {bin_dir} (a cold build takes about 3 minutes)")
    started = time.monotonic()
    staging = bin_dir.parent / "staging"
    env = dict(os.environ, CGO_ENABLED="0", GOBIN=str(staging), GOFLAGS="-buildvcs=false")
    stamps = [f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"] + [
        f"-X helm.sh/helm/v3/pkg/{pkg}.k8sVersion{part}={value}"
        for pkg in ("lint/rules", "chartutil")
        for part, value in (("Major", "1"), ("Minor", HELM_KUBE_MINOR))
    ]
    proc = subprocess.run(
        [go, "install", "-ldflags", " ".join(stamps), f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
        cwd=root if root.exists() else None,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if proc.returncode != 0:
        raise ToolsError("go install of helm failed:\n" + "\n".join(proc.stdout.splitlines()[-40:]))
    bin_dir.mkdir(parents=True, exist_ok=True)
    (staging / "helm").replace(helm)
    _say(f"built helm in {time.monotonic() - started:.0f}s")
    return helm


def main() -> int:
    try:
        print(ensure_binaries())
        print(ensure_helm())
    except ToolsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
