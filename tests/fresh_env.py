"""A fresh virtual environment to install kernel-comm-ext into, as a user would.

``FreshEnv`` is a venv with the package's runtime dependencies (installed once,
at the versions of the test environment, from pip's cache) and without the
package; tests install the built wheel or an editable checkout into it with
``--no-deps`` (the editable one built by the venv's hatchling), start kernels the
way Jupyter does (``fresh_env_probe.py``, run by the venv's own Python), and
uninstall it again.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("fresh_env_probe.py")
STARTUP_SOURCE = REPO / "jupyter-config" / "ipython" / "startup" / "00-kernel-comm-ext.py"
OUR_MANAGER = "kernel_comm_ext.kernel.manager.KernelCommManager"


def runtime_requirements() -> list[str]:
    """The package's own dependencies (no extras), as installed in the test environment."""
    requires = importlib.metadata.requires("kernel-comm-ext") or []
    return [r for r in requires if "extra ==" not in r]


def pinned_versions() -> str:
    """Constraints pinning every distribution of the test environment (pip's cache has them)."""
    lines = []
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() != "kernel-comm-ext":
            lines.append(f"{name}=={dist.version}")
    return "\n".join(sorted(set(lines))) + "\n"


@dataclasses.dataclass
class KernelProbe:
    """What a kernel of the fresh environment said (see fresh_env_probe.py)."""

    raw: dict[str, t.Any]

    def expression(self, name: str) -> t.Any:
        text = self.raw["expressions"][name]
        if text.startswith("!"):
            raise AssertionError(f"{name} failed in the kernel: {text}\n{self.log}")
        return ast.literal_eval(text)

    @property
    def manager(self) -> str:
        return str(self.expression("manager"))

    @property
    def active(self) -> bool:
        return self.manager == OUR_MANAGER

    @property
    def loaded(self) -> list[str]:
        return list(self.expression("loaded"))

    @property
    def user_names(self) -> list[str]:
        return list(self.expression("user_names"))

    @property
    def cells(self) -> list[dict[str, t.Any]]:
        return list(self.raw["cells"])

    @property
    def log(self) -> str:
        return str(self.raw["log"])


class FreshEnv:
    """A virtual environment of its own with kernel-comm-ext's dependencies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.python = self.bin / "python"
        self.startup_dir = root / "etc" / "ipython" / "startup"
        self.startup_file = self.startup_dir / "00-kernel-comm-ext.py"

    @classmethod
    def create(cls, root: Path) -> FreshEnv:
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
        env = cls(root)
        constraints = root / "constraints.txt"
        constraints.write_text(pinned_versions())
        # The build backend too, so that the editable install needs no isolated build env.
        backend = ["hatchling", "editables"]
        env.pip("install", "-c", str(constraints), *runtime_requirements(), *backend)
        return env

    def environ(self, ipython_dir: Path, **extra: str) -> dict[str, str]:
        """The environment of a user of this venv (no off switch set, own IPython dir)."""
        drop = {"KERNEL_COMM_EXT_AUTOLOAD", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["IPYTHONDIR"] = str(ipython_dir)
        env.update(extra)
        return env

    def run(
        self, *args: str | Path, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(a) for a in args],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def pip(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-m", "pip", "--quiet", *args)

    def install_wheel(self, wheel: Path) -> None:
        self.pip("install", "--no-deps", wheel)

    def install_editable(self) -> None:
        self.pip("install", "--no-deps", "--no-build-isolation", "--editable", REPO)

    def uninstall(self) -> None:
        self.pip("uninstall", "--yes", "kernel-comm-ext")

    def is_installed(self) -> bool:
        result = self.run(self.python, "-m", "pip", "show", "kernel-comm-ext", check=False)
        return result.returncode == 0

    def probe(self, env: dict[str, str], cells: t.Sequence[str] = ()) -> KernelProbe:
        """Start this venv's ``python3`` kernel with jupyter_client and ask it."""
        request = json.dumps({"cells": list(cells)})
        result = self.run(self.python, PROBE, request, env=env)
        return KernelProbe(json.loads(result.stdout.splitlines()[-1]))

    def ipython(self, code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """Terminal IPython of this venv, running ``code``."""
        return self.run(self.bin / "ipython", "-c", code, env=env)
