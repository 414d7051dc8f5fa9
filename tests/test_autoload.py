"""Auto-enable through jupyter-config/, its off switch and the status command.

The package is built and installed into a fresh virtual environment (as a wheel,
and as an editable checkout); kernels are started from that environment's own
``python3`` kernelspec by its own jupyter_client, as Jupyter would.
"""

from __future__ import annotations

import subprocess
import sys
import typing as t
import zipfile
from pathlib import Path

import pytest
from traitlets.config import Config
from traitlets.config.loader import KVArgParseConfigLoader

from kernel_comm_ext import KernelCommManager
from kernel_comm_ext.autoload import decide

from .fresh_env import OUR_MANAGER, REPO, STARTUP_SOURCE, FreshEnv

# Checks run in terminal IPython: whether anything of ours was imported.
TERMINAL_CODE = "import sys; print('kernel_comm_ext' in sys.modules)"

# The %comm listing as text on stdout (the magic returns it, a notebook shows HTML).
COMM_REPORT = "print(get_ipython().run_line_magic('comm', ''))"


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory: pytest.TempPathFactory) -> FreshEnv:
    """A venv with the runtime dependencies and without kernel-comm-ext."""
    return FreshEnv.create(tmp_path_factory.mktemp("fresh") / "venv")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--wheel-dir", str(out), str(REPO)),
        ],
        check=True,
        timeout=240,
    )
    (built,) = out.glob("kernel_comm_ext-*.whl")
    return built


@pytest.fixture
def installed_wheel(fresh_env: FreshEnv, wheel: Path) -> t.Iterator[FreshEnv]:
    fresh_env.install_wheel(wheel)
    try:
        yield fresh_env
    finally:
        if fresh_env.is_installed():
            fresh_env.uninstall()


def kernel_config(ipython_dir: Path, text: str) -> None:
    """Write the user's ipython_kernel_config.py (default profile)."""
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(text)


# The switch, as a function of the environment and the config


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("0", False), ("false", False), ("No", False), (" OFF ", False), ("1", True), ("on", True)],
)
def test_env_var_values(value: str, enabled: bool) -> None:
    config = Config()
    config.KernelCommManager.autoload = not enabled  # the variable wins over the config
    decision = decide({"KERNEL_COMM_EXT_AUTOLOAD": value}, config)
    assert decision.enabled is enabled
    assert "KERNEL_COMM_EXT_AUTOLOAD" in decision.reason


def test_unreadable_switches_are_reported() -> None:
    decision = decide({"KERNEL_COMM_EXT_AUTOLOAD": "maybe"}, Config())
    assert decision.enabled
    assert decision.problems == (
        "KERNEL_COMM_EXT_AUTOLOAD='maybe' is not understood (use 0/false/no/off or "
        "1/true/yes/on); ignored",
    )
    config = Config()
    config.KernelCommManager.autoload = "nah"
    decision = decide({}, config)
    assert not decision.enabled
    assert decision.reason == "off: c.KernelCommManager.autoload = 'nah' is not True or False"


def test_config_switch_from_a_command_line() -> None:
    loader = KVArgParseConfigLoader(
        ["--KernelCommManager.autoload=False"], classes=[KernelCommManager]
    )
    decision = decide({}, loader.load_config())
    assert (decision.enabled, decision.reason) == (
        False,
        "off: c.KernelCommManager.autoload = False",
    )
    assert decide({}, Config()).reason == "on (the default)"


# What ships


def test_wheel_ships_the_startup_file_and_no_kernel_config(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        data = [n for n in names if ".data/" in n]
        assert [n.split(".data/", 1)[1] for n in data] == [
            "data/etc/ipython/startup/00-kernel-comm-ext.py"
        ]
        assert whl.read(data[0]) == STARTUP_SOURCE.read_bytes()
        entry_points = whl.read(next(n for n in names if n.endswith("entry_points.txt")))
    assert not [n for n in names if "ipython_kernel_config" in n or "ipython_config" in n]
    assert b"jupyter-kernel-comm-ext = kernel_comm_ext.tools.cli:main" in entry_points


# In a fresh environment


def test_wheel_install_auto_enables_until_switched_off_or_uninstalled(
    fresh_env: FreshEnv, wheel: Path, tmp_path: Path
) -> None:
    env = fresh_env.environ(tmp_path / "ipython")
    before = fresh_env.probe(env)
    assert before.manager == "ipykernel.comm.manager.CommManager"
    assert before.expression("prefix") == str(fresh_env.root)
    terminal_before = fresh_env.ipython(TERMINAL_CODE, env)

    fresh_env.install_wheel(wheel)
    assert fresh_env.startup_file.read_bytes() == STARTUP_SOURCE.read_bytes()

    on = fresh_env.probe(env, cells=[COMM_REPORT])
    assert on.active, on.log
    assert on.loaded == sorted([*before.loaded, "kernel_comm_ext"])
    assert on.user_names == before.user_names  # the startup file left no names
    assert on.cells[0]["stdout"] == "0 open comms\n"
    assert "Traceback" not in on.log

    # Terminal IPython runs the startup file too, and it does nothing there.
    terminal = fresh_env.ipython(TERMINAL_CODE, env)
    assert (terminal.stdout, terminal.stderr) == ("False\n", terminal_before.stderr)

    off = fresh_env.probe({**env, "KERNEL_COMM_EXT_AUTOLOAD": "OFF"}, cells=["%comm"])
    assert not off.active
    assert off.loaded == before.loaded
    assert "UsageError: Line magic function `%comm` not found" in off.cells[0]["stderr"]
    assert off.user_names == before.user_names

    kernel_config(tmp_path / "ipython", "c.KernelCommManager.autoload = False\n")
    assert not fresh_env.probe(env).active
    # The variable, when set, wins over the config.
    assert fresh_env.probe({**env, "KERNEL_COMM_EXT_AUTOLOAD": "1"}).active

    fresh_env.uninstall()
    assert not fresh_env.startup_file.exists()
    assert not (fresh_env.bin / "jupyter-kernel-comm-ext").exists()
    gone = fresh_env.probe(fresh_env.environ(tmp_path / "ipython-2"))
    assert gone.manager == "ipykernel.comm.manager.CommManager"
    assert "kernel_comm_ext" not in gone.log


def test_editable_install_auto_enables(fresh_env: FreshEnv, tmp_path: Path) -> None:
    fresh_env.install_editable()
    try:
        assert fresh_env.startup_file.read_bytes() == STARTUP_SOURCE.read_bytes()
        env = fresh_env.environ(tmp_path / "ipython")
        on = fresh_env.probe(env)
        assert on.active, on.log
        assert not fresh_env.probe({**env, "KERNEL_COMM_EXT_AUTOLOAD": "no"}).active
    finally:
        fresh_env.uninstall()
    assert not fresh_env.startup_file.exists()


OTHER_EXTENSION = """
def load_ipython_extension(ip):
    ip.user_ns["other_extension_loaded"] = True
"""


def test_other_startup_files_and_user_config_keep_working(
    installed_wheel: FreshEnv, tmp_path: Path
) -> None:
    venv = installed_wheel
    ipython_dir = tmp_path / "ipython"
    # Another package's startup file (sorted after ours), a user's, and a user extension.
    other_startup = venv.startup_dir / "50-other-package.py"
    other_startup.write_text("other_startup_ran = True\n")
    user_startup = ipython_dir / "profile_default" / "startup" / "10-user.py"
    user_startup.parent.mkdir(parents=True)
    user_startup.write_text("user_startup_ran = True\n")
    site = venv.run(venv.python, "-c", "import site; print(site.getsitepackages()[0])").stdout
    (Path(site.strip()) / "other_extension.py").write_text(OTHER_EXTENSION)
    kernel_config(ipython_dir, 'c.InteractiveShellApp.extensions = ["other_extension"]\n')
    env = venv.environ(ipython_dir)
    check = "print(other_startup_ran, user_startup_ran, other_extension_loaded)"
    try:
        probe = venv.probe(env, cells=[check])
        assert probe.active, probe.log
        assert probe.cells[0]["stdout"] == "True True True\n", probe.cells
        assert {"kernel_comm_ext", "other_extension"} <= set(probe.loaded)

        # With the config switch off, only ours is off.
        kernel_config(
            ipython_dir,
            'c.InteractiveShellApp.extensions = ["other_extension"]\n'
            "c.KernelCommManager.autoload = False\n",
        )
        probe = venv.probe(env, cells=[check])
        assert not probe.active
        assert probe.cells[0]["stdout"] == "True True True\n", probe.cells

        # A user who also lists kernel_comm_ext in extensions gets it loaded once.
        kernel_config(ipython_dir, 'c.InteractiveShellApp.extensions = ["kernel_comm_ext"]\n')
        probe = venv.probe(env, cells=[COMM_REPORT])
        assert probe.active
        assert probe.cells[0]["stdout"] == "0 open comms\n"
        assert "Traceback" not in probe.log

        terminal = venv.ipython("print(other_startup_ran, user_startup_ran); " + TERMINAL_CODE, env)
        assert terminal.stdout == "True True\nFalse\n"
    finally:
        other_startup.unlink()


def test_a_failing_auto_enable_never_raises(installed_wheel: FreshEnv, tmp_path: Path) -> None:
    """A broken kernel_comm_ext import is logged; later startup files still run."""
    venv = installed_wheel
    other_startup = venv.startup_dir / "50-other-package.py"
    other_startup.write_text("other_startup_ran = True\n")
    broken = tmp_path / "broken" / "kernel_comm_ext"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('a broken install')\n")
    env = venv.environ(tmp_path / "ipython", PYTHONPATH=str(broken.parent))
    try:
        probe = venv.probe(env, cells=["print(other_startup_ran)"])
    finally:
        other_startup.unlink()
    assert not probe.active
    assert probe.cells[0]["stdout"] == "True\n"
    assert "kernel-comm-ext: auto-enable failed" in probe.log
    assert "RuntimeError: a broken install" in probe.log
    assert "other_startup_ran" in probe.user_names
    assert not {"kernel_comm_ext", "importlib", "contextlib"} & set(probe.user_names)


def test_status_command(installed_wheel: FreshEnv, tmp_path: Path) -> None:
    venv = installed_wheel
    env = venv.environ(tmp_path / "ipython")

    status = venv.run(venv.python, "-m", "kernel_comm_ext", "status", env=env)
    assert f"startup file:  installed, {venv.startup_file}" in status.stdout
    assert "KERNEL_COMM_EXT_AUTOLOAD=(not set)" in status.stdout
    assert "auto-enable:   on (the default): new kernels" in status.stdout

    checked = venv.run(venv.bin / "jupyter", "kernel-comm-ext", "status", "--check", env=env)
    assert f"it runs {venv.bin}/python" in checked.stdout
    assert "(this environment)" in checked.stdout
    assert "kernel-comm-ext is ACTIVE in it (auto-enabled)" in checked.stdout

    off_env = {**env, "KERNEL_COMM_EXT_AUTOLOAD": "0"}
    off = venv.run(
        venv.python, "-m", "kernel_comm_ext", "status", "--check", env=off_env, check=False
    )
    assert off.returncode == 1, off
    assert "auto-enable:   off: KERNEL_COMM_EXT_AUTOLOAD=0" in off.stdout
    assert (
        "kernel-comm-ext is NOT active in it (comm manager ipykernel.comm.manager.CommManager);"
        " auto-enable off: KERNEL_COMM_EXT_AUTOLOAD=0"
    ) in off.stdout

    kernel_config(tmp_path / "ipython", "c.KernelCommManager.autoload = False\n")
    config_off = venv.run(venv.python, "-m", "kernel_comm_ext", "status", env=env)
    config_file = tmp_path / "ipython" / "profile_default" / "ipython_kernel_config.py"
    assert f"c.KernelCommManager.autoload = False ({config_file})" in config_off.stdout
    assert "auto-enable:   off: c.KernelCommManager.autoload = False" in config_off.stdout

    # A kernel that loads it through the user's config, with auto-enable off.
    kernel_config(
        tmp_path / "ipython",
        "c.KernelCommManager.autoload = False\n"
        'c.InteractiveShellApp.extensions = ["kernel_comm_ext"]\n',
    )
    by_config = venv.run(venv.python, "-m", "kernel_comm_ext", "status", "--check", env=env)
    assert "kernel-comm-ext is ACTIVE in it (loaded by config)" in by_config.stdout

    # As after `pip install --user`: the file under the user base, where IPython never looks.
    venv.startup_file.unlink()
    user_base = tmp_path / "user-base"
    stranded = user_base / "etc" / "ipython" / "startup" / venv.startup_file.name
    stranded.parent.mkdir(parents=True)
    stranded.write_bytes(STARTUP_SOURCE.read_bytes())
    user_env = {**env, "PYTHONUSERBASE": str(user_base)}
    missing = venv.run(venv.python, "-m", "kernel_comm_ext", "status", env=user_env)
    assert f"startup file:  NOT installed (expected {venv.startup_file})" in missing.stdout
    assert f"found at {stranded}, which IPython does not read" in missing.stdout
    assert "auto-enable:   off: the startup file is not installed" in missing.stdout


def test_our_manager_name_matches_the_probe() -> None:
    assert f"{KernelCommManager.__module__}.{KernelCommManager.__name__}" == OUR_MANAGER
