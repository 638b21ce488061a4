"""Structured logs: kopf's own formats (JSON: one object per line, with the `extra` fields a handler
attached and kopf's `object` reference), plus the name of the logger that spoke."""

from __future__ import annotations

import logging

import kopf

FORMATS = {"json": kopf.LogFormat.JSON, "text": kopf.LogFormat.FULL}


class _LoggerName(logging.Filter):
    """kopf's JSON lines carry no logger name; `"logger": "awsctl.canary"` tells whose words they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.logger = record.name
        return True


def configure(fmt: str, verbose: bool) -> None:
    kopf.configure(verbose=verbose, log_format=FORMATS[fmt])
    if fmt == "json":
        for handler in logging.getLogger().handlers:
            handler.addFilter(_LoggerName())
    for noisy in ("botocore", "urllib3", "kubernetes", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kopf logs every handler success at INFO; ours say what changed, so keep kopf's for -v.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
