"""The demo's picture, drawn with matplotlib (the `demo` extra): what the requests measured beside what
AWS showed, over time.

- top: the share of answers per version, second by second, as the load generator measured them,
  and the canary weight as AWS showed it on the listener rule;
- bottom: the share of requests that failed, per second;
- vertical lines: when each rollout began and when a bake began.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen


def chart(
    path: Path,
    *,
    seconds: Sequence[float],
    shares: Mapping[str, Sequence[float | None]],
    weight_times: Sequence[float],
    weights: Sequence[float],
    errors: Sequence[float | None],
    marks: Sequence[tuple[float, str]] = (),
) -> Path:
    """`seconds`: the start of each one-second window; `shares[version]` and `errors`: percent in that
    window (None: no answer); `weights`: the canary percent AWS showed at `weight_times`."""
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}, constrained_layout=True
    )
    for version, values in shares.items():
        top.plot(
            seconds, [v if v is not None else float("nan") for v in values], lw=1.2, label=f"answered by {version}"
        )
    top.step(weight_times, weights, where="post", color="black", lw=1.8, ls="--", label="canary weight (AWS)")
    top.set_ylabel("% of requests")
    top.set_ylim(-2, 102)
    top.legend(loc="center left", fontsize=8, framealpha=0.9)
    top.grid(alpha=0.3)
    bottom.plot(seconds, [v if v is not None else float("nan") for v in errors], color="tab:red", lw=1.2)
    bottom.set_ylabel("failed %")
    bottom.set_xlabel("seconds since the first rollout began")
    bottom.set_ylim(bottom=0)
    bottom.grid(alpha=0.3)
    for at, label in marks:
        for axis in (top, bottom):
            axis.axvline(at, color="grey", lw=0.8, ls=":")
        top.annotate(label, (at, 100), textcoords="offset points", xytext=(3, -10), fontsize=8, color="grey")
    top.set_title("awsctl demo: real requests through the ALB's weights")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
