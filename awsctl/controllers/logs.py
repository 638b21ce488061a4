"""Structured logs: one JSON object per line, with the `extra` fields a handler attached."""

from __future__ import annotations

import json
import logging

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_KOPF_NOISE = {"settings", "k8s_skip", "k8s_ref"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            out["object"] = "/".join(filter(None, (ref.get("kind"), ref.get("namespace"), ref.get("name"))))
        for key, value in vars(record).items():
            if key in _KOPF_NOISE:
                continue
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                try:
                    json.dumps(value)
                except TypeError:
                    value = str(value)
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure(fmt: str, verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("botocore", "urllib3", "kubernetes", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kopf logs every handler success at INFO; ours say what changed, so keep kopf's for -v.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
