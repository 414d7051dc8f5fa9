"""CPU time each thread of the kernel spends on a workload, variants side by side (Linux).

    python benchmarks/thread_cpu.py W4                         # default,ext; 6 rounds
    python benchmarks/thread_cpu.py W4 --variants default,ext,ext-wakeups --rounds 8

On a 2-core machine a kernel under load is CPU-bound, so its threads' CPU time
shows where a difference in throughput comes from better than wall-clock
samples do. For each round, every variant runs the workload once (the order
alternates); user + system time per thread is read from
``/proc/<pid>/task/<tid>/stat`` before and after. Prints the median per thread
(by Python thread name; zmq's own threads are "other") in ms per repetition,
and the medians of the workload's first metric.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks.frontend import BenchKernel, isolate_jupyter_dirs
from benchmarks.run import start_kernel
from benchmarks.variants import VARIANTS
from benchmarks.workloads import FULL, WORKLOADS

TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of process ``pid``, by native id."""
    seconds = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        seconds[int(tid)] = (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


def thread_names(kernel: BenchKernel) -> tuple[int, dict[int, str]]:
    """The kernel's process id and its Python threads' names by native id."""
    pid, names = kernel.execute(
        "import os as _os, threading as _threading",
        result="[_os.getpid(), [[t.native_id, t.name] for t in _threading.enumerate()]]",
    ).result
    return int(pid), {int(tid): name for tid, name in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", help="W1 ... W7")
    parser.add_argument("--variants", default="default,ext")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    workload = next((w for w in WORKLOADS if w.key == args.workload.upper()), None)
    if workload is None:
        sys.exit(f"unknown workload {args.workload}")
    names = args.variants.split(",")
    metric = workload.metrics[0]
    cpu: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    figures: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="kce-cpu-") as tmp:
        isolate_jupyter_dirs(Path(tmp))
        kernels = []
        try:
            for name in names:
                kernels.append(start_kernel(VARIANTS[name], Path(tmp)))
                workload.setup(kernels[-1], FULL)
            for round_ in range(args.rounds):
                for kernel in kernels if round_ % 2 == 0 else kernels[::-1]:
                    pid, by_id = thread_names(kernel)
                    kernel.iopub.forget()
                    before = thread_cpu(pid)
                    result = workload.run(kernel, FULL)
                    after = thread_cpu(pid)
                    spent: dict[str, float] = {}
                    for tid, seconds in after.items():
                        thread = by_id.get(tid, "other")
                        spent[thread] = spent.get(thread, 0.0) + seconds - before.get(tid, 0.0)
                    spent["all threads"] = sum(spent.values())
                    for thread, seconds in spent.items():
                        cpu[kernel.name].setdefault(thread, []).append(seconds)
                    shown = result[metric.key] * metric.scale
                    figures[kernel.name].append(shown)
                    print(f"  round {round_ + 1}: {kernel.name} {shown:.4g}", flush=True)
            for kernel in kernels:
                workload.teardown(kernel, FULL)
        finally:
            for kernel in kernels:
                kernel.shutdown()
    print(f"\n{workload.key}: CPU per repetition, median of {args.rounds} (ms)")
    threads = sorted({t for per in cpu.values() for t in per}, key=lambda t: t == "all threads")
    print(f"| thread | {' | '.join(names)} |")
    print(f"|---|{'---|' * len(names)}")
    for thread in threads:
        cells = [statistics.median(cpu[n].get(thread, [0.0])) * 1e3 for n in names]
        if max(cells) >= 1.0:
            print(f"| {thread} | {' | '.join(f'{c:,.0f}' for c in cells)} |")
    medians = " | ".join(f"{statistics.median(figures[n]):.4g}" for n in names)
    print(f"| {metric.label} ({metric.unit}) | {medians} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
