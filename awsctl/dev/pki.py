"""Certificates for the local control plane.

The apiserver needs real TLS and client-certificate authentication so that RBAC is
enforced exactly as on EKS; a throwaway CA per environment keeps that honest.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from awsctl.kube import tls

APISERVER_NAMES = ("localhost", "kubernetes", "kubernetes.default.svc", "127.0.0.1", "10.96.0.1")


def _write_key(key, path: Path) -> None:
    path.write_bytes(tls.key_pem(key))
    path.chmod(0o600)


def generate(pki_dir: Path) -> None:
    """Writes ca, apiserver serving cert, an admin client cert and the service-account key pair."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, ca_cert = tls.make_ca("awsctl-dev-ca", now)
    _write_key(ca_key, pki_dir / "ca.key")
    (pki_dir / "ca.crt").write_bytes(tls.cert_pem(ca_cert))

    for stem, subject, names in (
        ("apiserver", tls.name("kube-apiserver"), APISERVER_NAMES),
        ("admin", tls.name("awsctl-dev-admin", "system:masters"), ()),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = tls.issue(ca_key, ca_cert, subject, key, now=now, server_names=names)
        _write_key(key, pki_dir / f"{stem}.key")
        (pki_dir / f"{stem}.crt").write_bytes(tls.cert_pem(cert))

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(sa_key, pki_dir / "sa.key")
    (pki_dir / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
