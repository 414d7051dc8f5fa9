"""docs/architecture.md names only modules, classes, functions and settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kernel_comm_ext"
DOC = ROOT / "docs" / "architecture.md"

# Names of ipykernel, IPython and zmq the page refers to (not the package's).
OUTSIDE = {"dispatch_shell", "shell_handlers", "get_parent", "shell_channel_thread"}


def _package_words() -> set[str]:
    words: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        words |= set(re.findall(r"\w+", path.read_text()))
    return words


def _code_spans() -> list[str]:
    return re.findall(r"`([^`\n]+)`", DOC.read_text())


def test_every_module_it_names_exists() -> None:
    text = DOC.read_text()
    missing = []
    for name in set(re.findall(r"`((?:\w+/)*\w+\.py)`", text)):
        found = (PACKAGE / name).exists() if "/" in name else any(PACKAGE.rglob(name))
        if not found:
            missing.append(name)
    # The module table: each row's files are in that row's folder.
    rows = re.findall(r"^\| `(\w+)/` \| ([^|]+) \|", text, flags=re.MULTILINE)
    assert rows
    for folder, cells in rows:
        missing += [
            f"{folder}/{name}"
            for name in re.findall(r"`(\w+\.py)`", cells)
            if not (PACKAGE / folder / name).exists()
        ]
    assert not missing


def test_every_class_function_lock_and_setting_it_names_exists() -> None:
    words = _package_words() | OUTSIDE
    unknown = []
    for span in _code_spans():
        if span.endswith((".py", "/")) or span.startswith("%"):
            continue
        for identifier in re.findall(r"[A-Za-z_]\w*", span):
            if identifier not in words:
                unknown.append(f"{identifier} (in `{span}`)")
    assert not unknown, unknown
