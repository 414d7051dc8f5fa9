"""Turning repetitions into medians, pair ratios, target verdicts, a table and JSON."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
import typing as t
from pathlib import Path

from .workloads import WORKLOADS, Figures, Metric

# results[workload key][variant name] = figures of each repetition, in order
Results = dict[str, dict[str, list[Figures]]]


def median(values: t.Sequence[float]) -> float:
    """The median, ignoring NaN; NaN when nothing is left."""
    clean = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def pair_ratios(results: Results, workload: str, key: str, variant: str, base: str) -> list[float]:
    """``variant / base`` of one metric, repetition by repetition (A B A B pairs)."""
    ours, theirs = results[workload][variant], results[workload][base]
    return [a[key] / b[key] for a, b in zip(ours, theirs, strict=True) if b[key]]


@dataclasses.dataclass
class Target:
    """One target of the issue, checked on this run's figures."""

    name: str
    value: float
    limit: float
    op: str  # "<=" or ">=" or "=="

    @property
    def passed(self) -> bool:
        if math.isnan(self.value):
            return False
        if self.op == "<=":
            return self.value <= self.limit
        if self.op == ">=":
            return self.value >= self.limit
        return self.value == self.limit


def check_targets(results: Results, variant: str, base: str) -> list[Target]:
    """The issue's targets for ``variant`` against ``base``."""
    targets: list[Target] = []

    def ratio(workload: str, key: str, label: str, op: str = "<=") -> None:
        if workload in results:
            value = median(pair_ratios(results, workload, key, variant, base))
            targets.append(Target(f"{workload} {label} {variant}/{base}", value, 1.0, op))

    ratio("W1", "loop_s", "in-kernel loop time")
    ratio("W1", "delivered_s", "time until the frontend has the last message")
    ratio("W2", "throughput_Bps", "throughput", ">=")
    ratio("W3", "open_per_comm_s", "open time per comm")
    ratio("W3", "close_per_comm_s", "close time per comm")
    ratio("W4", "burst_rate", "back-to-back echo rate", ">=")
    ratio("W4", "rtt_median_s", "round trip median")
    ratio("W4", "rtt_p95_s", "round trip p95")
    if "W1" in results and "W5" in results:
        w1w5 = [
            a["loop_s"] / b["loop_s"]
            for a, b in zip(results["W1"][variant], results["W5"][variant], strict=True)
        ]
        targets.append(Target(f"W1/W5 in-kernel loop time on {variant}", median(w1w5), 1.15, "<="))
    if "W3" in results:
        mine = median([f["bytes_per_comm"] for f in results["W3"][variant]])
        theirs = median([f["bytes_per_comm"] for f in results["W3"][base]])
        targets.append(Target(f"W3 memory per open comm, {variant} <= {base}", mine, theirs, "<="))
        # "Nothing retained": under 1% of what the open comms took, after close and gc
        # (what is left is ipykernel's and the allocator's, not a comm's).
        reps = results["W3"][variant]
        retained = median([f["retained_bytes"] for f in reps])
        allowed = 0.01 * mine * max(f["comms"] for f in reps) / 2
        targets.append(
            Target(f"W3 bytes retained after closing all + gc, {variant}", retained, allowed, "<=")
        )
        duplicates = sum(f["duplicates"] for f in reps)
        targets.append(
            Target(f"W3 no comm_open/comm_close twice for a comm, {variant}", duplicates, 0, "==")
        )
    return targets


def summarize(results: Results, variants: list[str]) -> dict[str, t.Any]:
    """Per workload and metric: each variant's median and values, and median pair ratios."""
    base = variants[0]
    summary: dict[str, t.Any] = {}
    for workload in WORKLOADS:
        if workload.key not in results:
            continue
        reps = results[workload.key]
        metrics: dict[str, t.Any] = {}
        for metric in workload.metrics:
            entry: dict[str, t.Any] = {"unit": metric.unit, "label": metric.label}
            for v in variants:
                values = [f[metric.key] for f in reps[v]]
                entry[v] = {"values": values, "median": _typical(values)}
            if metric.better is not None:
                entry["pair_ratio_median"] = {
                    v: median(pair_ratios(results, workload.key, metric.key, v, base))
                    for v in variants[1:]
                }
            metrics[metric.key] = entry
        lost = {v: [_missing(f) for f in reps[v]] for v in variants}
        summary[workload.key] = {"title": workload.title, "metrics": metrics, "lost": lost}
    return summary


def _missing(figures: Figures) -> int:
    if "received" in figures:
        return int(figures["expected"] - figures["received"])
    return int(figures.get("missing", 0) + figures.get("lost", 0))


def _typical(values: list[t.Any]) -> t.Any:
    if all(isinstance(v, bool) for v in values):
        return all(values)
    if all(isinstance(v, int | float) for v in values):
        return median(values)
    return values[-1] if values else None


def _show(metric: Metric, value: t.Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if not isinstance(value, int | float) or math.isnan(value):
        return "n/a"
    shown = value * metric.scale
    if metric.better is None and float(shown).is_integer():
        return f"{int(shown):,}"
    if abs(shown) >= 100:
        return f"{shown:,.0f}"
    if abs(shown) >= 10:
        return f"{shown:.1f}"
    return f"{shown:.2f}"


def table(summary: dict[str, t.Any], variants: list[str]) -> str:
    """The summary as a Markdown table."""
    head = ["workload", "metric", *variants, *(f"{v}/{variants[0]}" for v in variants[1:])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for workload in WORKLOADS:
        if workload.key not in summary:
            continue
        first = True
        for metric in workload.metrics:
            entry = summary[workload.key]["metrics"][metric.key]
            label = f"{metric.label} ({metric.unit})" if metric.unit else metric.label
            cells = [f"{workload.key} {workload.title}" if first else "", label]
            cells += [_show(metric, entry[v]["median"]) for v in variants]
            ratios = entry.get("pair_ratio_median", {})
            cells += [f"{ratios[v]:.3f}" if v in ratios else "" for v in variants[1:]]
            lines.append("| " + " | ".join(cells) + " |")
            first = False
    return "\n".join(lines)


def machine() -> dict[str, t.Any]:
    """What the run ran on: hardware, load, software versions, commit."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("ipykernel", "jupyter_client", "pyzmq", "comm", "ipywidgets", "kernel-comm-ext"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()
