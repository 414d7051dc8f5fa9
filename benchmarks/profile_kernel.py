"""Where a workload's time goes in the kernel: py-spy samples every thread of the kernel process.

    python benchmarks/profile_kernel.py W1        # the default variants, 3 repetitions each
    python benchmarks/profile_kernel.py W3 --variants ext --repeat 5 --top 30

For each variant it starts a kernel, sets the workload up, and records the
kernel process with ``py-spy record`` (``--format raw``: collapsed stacks, kept
next to the JSON results) while the workload runs. It prints, per thread, the
functions with the most samples on the stack (inclusive) and at the top of it
(self). py-spy comes with the ``bench`` extra (``make bench-setup``).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import ``benchmarks`` from the repository root, and let no
    # module of this folder shadow one of the standard library.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks.frontend import isolate_jupyter_dirs
from benchmarks.run import RESULTS_DIR, start_kernel
from benchmarks.variants import DEFAULT_VARIANTS, VARIANTS
from benchmarks.workloads import FULL, WORKLOADS


def summarize(raw: Path, top: int) -> str:
    """Inclusive and self shares of the hottest functions, per thread, from collapsed stacks."""
    per_thread: dict[str, tuple[collections.Counter[str], collections.Counter[str]]] = {}
    totals: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        thread, *frames = stack.split(";")
        name = thread.split(":", 1)[-1].strip()
        n = int(count)
        totals[name] += n
        inclusive, own = per_thread.setdefault(name, (collections.Counter(), collections.Counter()))
        functions = [f.split(" (")[0] + " (" + _short(f) + ")" for f in frames]
        for function in set(functions):
            inclusive[function] += n
        if functions:
            own[functions[-1]] += n
    lines = []
    for name, total in totals.most_common():
        if total < 0.05 * sum(totals.values()):
            continue
        inclusive, own = per_thread[name]
        lines.append(f"--- thread {name}: {total} samples")
        lines.append("  inclusive:")
        lines += [f"    {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(top)]
        lines.append("  self:")
        lines += [f"    {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top // 2)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    where = frame.rpartition(" (")[2].rstrip(")")
    path, _, _line = where.rpartition(":")
    return "/".join(path.split("/")[-2:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", help="W1 ... W7")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=24)
    args = parser.parse_args(argv)
    workload = next((w for w in WORKLOADS if w.key == args.workload.upper()), None)
    if workload is None:
        sys.exit(f"unknown workload {args.workload}")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    RESULTS_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kce-profile-") as tmp:
        isolate_jupyter_dirs(Path(tmp))
        for name in args.variants.split(","):
            kernel = start_kernel(VARIANTS[name], Path(tmp))
            raw = RESULTS_DIR / f"profile-{workload.key}-{name}.txt"
            try:
                workload.setup(kernel, FULL)
                pid = kernel.km.provisioner.process.pid  # type: ignore[union-attr]
                command = [py_spy, "record", "--pid", str(pid), "--rate", str(args.rate)]
                command += ["--format", "raw", "--threads", "--nonblocking", "-o", str(raw)]
                spy = subprocess.Popen(
                    command,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)
                for _ in range(args.repeat):
                    kernel.iopub.forget()
                    workload.run(kernel, FULL)
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
                workload.teardown(kernel, FULL)
            finally:
                kernel.shutdown()
            print(f"===== {workload.key} on {name} ({raw})")
            print(summarize(raw, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
