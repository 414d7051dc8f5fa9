"""The benchmark harness runs end to end (``benchmarks/run.py --quick``); nothing here is timed.

Speed and memory goals are judged by the benchmark itself on full sizes; this
test only proves that the one documented command starts both kernels, runs
every workload on each, and writes a complete report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")


@pytest.mark.timeout(600)
def test_quick_benchmark_runs_every_workload_on_both_kernels(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)]
    proc = subprocess.run(
        [*command, "--variants", "default,ext"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())

    assert report["quick"] is True
    assert list(report["variants"]) == ["default", "ext"]
    pairs = report["pairs"]
    assert pairs >= 2
    for key in WORKLOADS:
        for variant in ("default", "ext"):
            reps = report["repetitions"][key][variant]
            assert len(reps) == pairs, (key, variant)
            # A quick run is small enough that nothing may be lost on the way.
            for figures in reps:
                if "received" in figures:
                    assert figures["received"] == figures["expected"], (key, variant, figures)
        assert report["summary"][key]["metrics"]

    for variant in ("default", "ext"):
        for figures in report["repetitions"]["W3"][variant]:
            assert figures["duplicates"] == 0, figures
            assert figures["missing"] == 0, figures
            assert figures["bytes_per_comm"] > 0
        for figures in report["repetitions"]["W6"][variant]:
            assert figures["last_value"] == figures["expected"] - 1
            assert figures["lost"] == 0, figures
        for figures in report["repetitions"]["W7"][variant]:
            assert figures["final_ok"] is True, figures
            assert figures["in_order"] is True, figures
    ratios = report["summary"]["W1"]["metrics"]["loop_s"]["pair_ratio_median"]
    assert ratios["ext"] > 0

    names = [target["name"] for target in report["targets"]]
    assert any(name.startswith("W1/W5") for name in names)
    assert any("retained" in name for name in names)
    # The table and the verdict lines are printed.
    assert "| W1 " in proc.stdout
    assert "not judged (quick mode)" in proc.stdout
