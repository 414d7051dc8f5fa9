"""Benchmark kernel-comm-ext against ipykernel's default comm layer, side by side.

    python benchmarks/run.py                 # all workloads, 7 A/B pairs, JSON to results/
    python benchmarks/run.py --quick         # tiny sizes: proves the harness works, judges nothing
    python benchmarks/run.py --only W1,W5 --pairs 11
    python benchmarks/run.py --variants default,ext   # the first is the baseline

One real kernel per variant runs for the whole benchmark; every workload runs
on them in turn, repetition by repetition (A B A B ...), after an untimed
warm-up. The report gives each variant's median and the median of the pair
ratios (variant / baseline), checks the issue's targets (PASS/FAIL), and
writes everything, each repetition included, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import typing as t
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import ``benchmarks`` from the repository root, and let no
    # module of this folder shadow one of the standard library.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks.frontend import BenchKernel, isolate_jupyter_dirs
from benchmarks.report import Results, check_targets, machine, summarize, table
from benchmarks.variants import DEFAULT_VARIANTS, VARIANTS, Variant
from benchmarks.workloads import FULL, PRELUDE, QUICK, WORKLOADS, Workload

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 pairs, no verdict")
    parser.add_argument("--pairs", type=int, help="A/B repetitions per workload (default 7)")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W5")
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, baseline first; known: {', '.join(VARIANTS)}",
    )
    parser.add_argument("--json", type=Path, help="where to write the JSON report")
    return parser.parse_args(argv)


def start_kernel(variant: Variant, log_dir: Path) -> BenchKernel:
    """A fresh kernel set up as ``variant`` says, its comm manager checked."""
    kernel = BenchKernel(variant.name, log_dir / f"kernel-{variant.name}.log")
    try:
        kernel.execute(PRELUDE)
        if variant.setup:
            kernel.execute(variant.setup)
        if variant.comm_subshell:
            kernel.use_comm_subshell()
        module = kernel.execute("", result="type(get_ipython().kernel.comm_manager).__module__")
        if module.result.startswith("kernel_comm_ext.") != variant.extension:
            raise RuntimeError(
                f"variant {variant.name}: the kernel's comm manager comes from {module.result}"
            )
    except BaseException:
        kernel.shutdown()
        raise
    return kernel


def run_workload(
    workload: Workload, kernels: list[BenchKernel], pairs: int, quick: bool, results: Results
) -> None:
    sizes = QUICK if quick else FULL
    per_variant = results.setdefault(workload.key, {k.name: [] for k in kernels})
    for kernel in kernels:
        workload.setup(kernel, sizes)
        kernel.iopub.forget()
        workload.run(kernel, QUICK)  # warm-up, not recorded
    for rep in range(pairs):
        # Every other pair runs in reverse order, so going first or last favours no one.
        for kernel in kernels if rep % 2 == 0 else kernels[::-1]:
            kernel.iopub.forget()
            figures = workload.run(kernel, sizes)
            per_variant[kernel.name].append(figures)
        shown = ", ".join(f"{k.name} {_brief(per_variant[k.name][-1], workload)}" for k in kernels)
        print(f"  {workload.key} pair {rep + 1}/{pairs}: {shown}", flush=True)
    for kernel in kernels:
        workload.teardown(kernel, sizes)


def _brief(figures: dict[str, t.Any], workload: Workload) -> str:
    metric = workload.metrics[0]
    return f"{figures[metric.key] * metric.scale:.4g} {metric.unit}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if len(names) < 2 or unknown:
        sys.exit(f"--variants needs two or more of {', '.join(VARIANTS)}; unknown: {unknown}")
    wanted = {w.strip().upper() for w in args.only.split(",")} if args.only else None
    workloads = [w for w in WORKLOADS if wanted is None or w.key in wanted]
    pairs = args.pairs or (2 if args.quick else 7)
    json_path = args.json or RESULTS_DIR / ("quick.json" if args.quick else "latest.json")

    info = machine()
    info["load_before"] = os.getloadavg()
    print(f"{info['cpu']}, {info['cores']} cores, load {_load(info['load_before'])}", flush=True)
    results: Results = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kce-bench-") as tmp:
        root = Path(tmp)
        isolate_jupyter_dirs(root)
        kernels: list[BenchKernel] = []
        try:
            for name in names:
                kernels.append(start_kernel(VARIANTS[name], root))
            for workload in workloads:
                print(f"{workload.key}: {workload.title}", flush=True)
                run_workload(workload, kernels, pairs, args.quick, results)
        finally:
            for kernel in kernels:
                kernel.shutdown()
    info["load_after"] = os.getloadavg()
    info["seconds"] = round(time.monotonic() - started, 1)

    summary = summarize(results, names)
    targets = [
        target
        for name in names[1:]
        if VARIANTS[name].judged
        for target in check_targets(results, name, names[0])
    ]
    report = {
        "machine": info,
        "quick": args.quick,
        "pairs": pairs,
        "variants": {n: VARIANTS[n].description for n in names},
        "summary": summary,
        "targets": [
            {"name": g.name, "value": g.value, "limit": g.limit, "op": g.op, "passed": g.passed}
            for g in targets
        ],
        "repetitions": results,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1, default=str) + "\n")

    print()
    print(
        f"{info['cpu']}, {info['cores']} cores, Python {info['python']}, ipykernel"
        f" {info['versions']['ipykernel']}; load {_load(info['load_before'])} before,"
        f" {_load(info['load_after'])} after; {pairs} pairs, {info['seconds']} s"
    )
    print(table(summary, names))
    for key, entry in summary.items():
        for variant, lost in entry["lost"].items():
            if any(lost):
                print(f"note: {key} on {variant}: messages missing at the frontend: {lost}")
    print()
    verdict = "not judged (quick mode)" if args.quick else None
    for target in targets:
        mark = verdict or ("PASS" if target.passed else "FAIL")
        print(f"{mark:>4}  {target.name}: {target.value:.3f} ({target.op} {target.limit:g})")
    print(f"\nJSON: {json_path}")
    failed = [g for g in targets if not g.passed]
    return 1 if failed and not args.quick else 0


def _load(load: t.Sequence[float]) -> str:
    return "/".join(f"{x:.2f}" for x in load)


if __name__ == "__main__":
    sys.exit(main())
