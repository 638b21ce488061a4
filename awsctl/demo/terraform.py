"""Runs terraform/examples/local against the local moto server, with the provider from an offline mirror.

Used by `awsctl demo` and by the terraform test tier. The tree is copied to a work directory so
that .terraform/ and the state never land in the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

PLUGIN_MIRROR = Path(os.environ.get("AWSCTL_TF_PLUGINS", "/opt/tf-plugins"))
SOURCE = Path(__file__).resolve().parents[2] / "terraform"


class TerraformError(RuntimeError):
    pass


def terraform_binary() -> str | None:
    found = shutil.which("terraform")
    if found:
        return found
    return "/usr/local/bin/terraform" if Path("/usr/local/bin/terraform").exists() else None


def available() -> bool:
    return terraform_binary() is not None and PLUGIN_MIRROR.is_dir() and SOURCE.is_dir()


class Terraform:
    def __init__(self, workdir: Path, example: str = "local"):
        binary = terraform_binary()
        if binary is None:
            raise TerraformError("terraform is not installed (looked on PATH and at /usr/local/bin/terraform)")
        if not PLUGIN_MIRROR.is_dir():
            raise TerraformError(f"no provider mirror at {PLUGIN_MIRROR} (set AWSCTL_TF_PLUGINS)")
        self.binary = binary
        self.root = workdir / "terraform"
        if not self.root.exists():
            shutil.copytree(SOURCE, self.root, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
        self.dir = self.root / "examples" / example
        rc = workdir / "terraformrc"
        rc.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{PLUGIN_MIRROR}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
            '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n}\n'
        )
        self.env = dict(os.environ, TF_CLI_CONFIG_FILE=str(rc), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")

    def run(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            [self.binary, *args], cwd=cwd or self.dir, env=self.env, capture_output=True, text=True, timeout=900
        )
        if proc.returncode != 0:
            raise TerraformError(
                f"terraform {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc.stdout

    def init(self) -> None:
        self.run("init", "-input=false", "-no-color", "-backend=false")

    def apply(self, **variables: str) -> dict:
        self.run(
            "apply", "-auto-approve", "-input=false", "-no-color", *(f"-var={k}={v}" for k, v in variables.items())
        )
        return {k: v["value"] for k, v in json.loads(self.run("output", "-json")).items()}

    def destroy(self, **variables: str) -> None:
        self.run(
            "destroy", "-auto-approve", "-input=false", "-no-color", *(f"-var={k}={v}" for k, v in variables.items())
        )
