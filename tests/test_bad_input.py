"""Every entry point tolerates bad input.

Each malformed ``comm_open``/``comm_msg``/``comm_close`` gets a clear log line
and no exception out of a handler; open comms stay open, are neither replaced
nor lost, and the kernel keeps answering. ``target_module`` is never imported.
"""

from __future__ import annotations

import json
import typing as t
import uuid
from pathlib import Path

import pytest

from .conftest import AUTOLOAD_OFF
from .frontend import Frontend, start_frontend
from .helpers import (
    ECHO_TARGETS,
    REGISTRY,
    KernelLog,
    Recorder,
    assert_echoes,
    barrier,
    our_unexpected_tracebacks,
    supports_subshells,
)

HUGE = 1_000_000


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    return Recorder(tmp_path)


@pytest.fixture
def bad_input_kernel(tmp_path: Path, recorder: Recorder) -> t.Iterator[Frontend]:
    """A kernel with the extension and echo targets, whose path can import the recorder."""
    fe = start_frontend(tmp_path, env={**AUTOLOAD_OFF, **recorder.env()})
    try:
        fe.run("%load_ext kernel_comm_ext")
        fe.run(ECHO_TARGETS)
        yield fe
    finally:
        fe.shutdown()


def _raw(value: object) -> str:
    """Content already packed as JSON: lets the frontend send non-object content."""
    return json.dumps(value)


def _send(fe: Frontend, msg_type: str, content: object, metadata: object = None) -> None:
    fe.send_shell(msg_type, content, metadata=metadata, wait=False)
    barrier(fe)


ANCHOR = "anchor-comm"


def _malformed_cases(fresh: str) -> list[tuple[str, object, object, str]]:
    """(msg_type, content, metadata, expected log text) for every malformed shape."""
    long_id = "x" * HUGE
    cases: list[tuple[str, object, object, str]] = [
        # comm_open
        ("comm_open", {"target_name": "echo", "data": {}}, None,
         "Ignored comm_open: content.comm_id must be a non-empty string, got NoneType None"),
        ("comm_open", {"comm_id": 5, "target_name": "echo"}, None,
         "Ignored comm_open: content.comm_id must be a non-empty string, got int 5"),
        ("comm_open", {"comm_id": "", "target_name": "echo"}, None,
         "Ignored comm_open: content.comm_id must be a non-empty string, got str ''"),
        ("comm_open", {"comm_id": ["a"], "target_name": "echo"}, None,
         "Ignored comm_open: content.comm_id must be a non-empty string, got list ['a']"),
        ("comm_open", {"comm_id": {"a": 1}, "target_name": "echo"}, None,
         "Ignored comm_open: content.comm_id must be a non-empty string, got dict {'a': 1}"),
        ("comm_open", {"comm_id": fresh + "1"}, None,
         "Ignored comm_open: content.target_name must be a non-empty string, got NoneType None"),
        ("comm_open", {"comm_id": fresh + "2", "target_name": 3.5}, None,
         "Ignored comm_open: content.target_name must be a non-empty string, got float 3.5"),
        ("comm_open", {"comm_id": fresh + "3", "target_name": "echo", "data": [1, 2]}, None,
         "Ignored comm_open: content.data must be an object, got list [1, 2]"),
        ("comm_open", {"comm_id": fresh + "4", "target_name": "echo", "data": "text"}, None,
         "Ignored comm_open: content.data must be an object, got str 'text'"),
        ("comm_open", {"comm_id": fresh + "5", "target_name": "echo"}, [1],
         "Ignored comm_open: metadata must be an object, got list [1]"),
        ("comm_open", _raw([fresh]), None,
         "Ignored comm_open: content must be an object, got list"),
        ("comm_open", _raw("a string"), None,
         "Ignored comm_open: content must be an object, got str 'a string'"),
        ("comm_open", _raw(None), None,
         "Ignored comm_open: content must be an object, got NoneType None"),
        ("comm_open", _raw(42), None,
         "Ignored comm_open: content must be an object, got int 42"),
        ("comm_open", {"comm_id": long_id, "target_name": "echo"}, None,
         f"Ignored comm_open: content.comm_id is {HUGE} characters long (at most 1024)"),
        ("comm_open", {"comm_id": fresh + "6", "target_name": "t" * HUGE}, None,
         f"Ignored comm_open: content.target_name is {HUGE} characters long (at most 1024)"),
        ("comm_open", '{"comm_id": "\\ud800", "target_name": "echo", "data": {}}', None,
         "Ignored comm_open: content.comm_id is not valid Unicode text: str '\\ud800'"),
        ("comm_open", {"comm_id": fresh + "7", "target_name": "no.such.target"}, None,
         f"No such comm target registered: no.such.target; closing comm {fresh}7 back"),
        ("comm_open", {"comm_id": ANCHOR, "target_name": "async_echo", "data": {}}, None,
         f"Refused comm_open for {ANCHOR} (target 'async_echo'): a comm with that id is already"
         " open (target 'echo'); the open comm is kept."),
        # comm_msg
        ("comm_msg", {"data": {}}, None,
         "Ignored comm_msg: content.comm_id must be a non-empty string, got NoneType None"),
        ("comm_msg", {"comm_id": 7, "data": {}}, None,
         "Ignored comm_msg: content.comm_id must be a non-empty string, got int 7"),
        ("comm_msg", {"comm_id": long_id, "data": {}}, None,
         f"Ignored comm_msg: content.comm_id is {HUGE} characters long"),
        ("comm_msg", {"comm_id": ANCHOR, "data": ["not", "an", "object"]}, None,
         "Ignored comm_msg: content.data must be an object, got list"),
        ("comm_msg", {"comm_id": ANCHOR, "data": {}}, "metadata",
         "Ignored comm_msg: metadata must be an object, got str 'metadata'"),
        ("comm_msg", {"comm_id": "never-opened", "data": {}}, None,
         "Ignored comm_msg for comm never-opened: no such comm is open (closed, or never opened)."),
        # comm_close
        ("comm_close", {"data": {}}, None,
         "Ignored comm_close: content.comm_id must be a non-empty string, got NoneType None"),
        ("comm_close", {"comm_id": None}, None,
         "Ignored comm_close: content.comm_id must be a non-empty string, got NoneType None"),
        ("comm_close", {"comm_id": ANCHOR, "data": 17}, None,
         "Ignored comm_close: content.data must be an object, got int 17"),
        ("comm_close", {"comm_id": "never-opened"}, None,
         "Ignored comm_close for comm never-opened: no such comm is open"),
    ]  # fmt: skip
    return cases


def test_malformed_messages_get_a_log_line_and_lose_nothing(bad_input_kernel: Frontend) -> None:
    fe = bad_input_kernel
    log = KernelLog(fe)
    fe.open_comm("echo", comm_id=ANCHOR)
    anchor_object = fe.eval(f"id(get_ipython().kernel.comm_manager.comms[{ANCHOR!r}])")
    assert_echoes(fe, ANCHOR)
    fresh = uuid.uuid4().hex
    closed_back: list[str] = []
    for msg_type, content, metadata, expected in _malformed_cases(fresh):
        mark = fe.mark()
        _send(fe, msg_type, content, metadata)
        written = log.new()
        what = f"{msg_type} {str(content)[:80]!r} (metadata {metadata!r})"
        assert expected in written, f"{what}: expected log line {expected!r}, got:\n{written}"
        assert "Exception in message handler" not in written, f"{what} raised:\n{written}"
        # Log lines quote values from the wire briefly, however big they are.
        assert max(map(len, written.splitlines())) < 1000, what
        assert fe.kernel_info()["status"] == "ok"
        closes = [m["content"]["comm_id"] for m in fe.iopub("comm_close", since=mark)]
        assert ANCHOR not in closes, f"{what} closed the open comm"
        closed_back += closes

    # A comm_open with a usable, unused id is closed back; the others are not answered.
    assert sorted(closed_back) == sorted(f"{fresh}{n}" for n in range(1, 8))
    # The comm whose id was reused is the same object and still works.
    assert fe.eval(f"id(get_ipython().kernel.comm_manager.comms[{ANCHOR!r}])") == anchor_object
    assert fe.eval("echo_opened") == [ANCHOR]
    assert_echoes(fe, ANCHOR)
    assert fe.eval(REGISTRY) == [ANCHOR]
    assert fe.run("print(6 * 7)") == "42\n"
    assert our_unexpected_tracebacks(fe.kernel_log()) == []


def test_non_object_content_of_comm_msg_and_comm_close(bad_input_kernel: Frontend) -> None:
    """Content that is not an object never reaches a comm; the kernel says why in its log.

    On ipykernel 7 the shell-channel thread reads ``content["comm_id"]`` to route
    comm messages to subshells before any handler runs, so ipykernel itself
    logs and drops such a message; on ipykernel 6 our handler does.
    """
    fe = bad_input_kernel
    ipykernel_routes = supports_subshells(fe)
    fe.open_comm("echo", comm_id=ANCHOR)
    log = KernelLog(fe)
    for msg_type in ("comm_msg", "comm_close"):
        for content in ([ANCHOR], "text", None, 3):
            _send(fe, msg_type, _raw(content))
            written = log.new()
            expected = (
                "Invalid message"
                if ipykernel_routes
                else f"Ignored {msg_type}: content must be an object"
            )
            assert expected in written, f"{msg_type} {content!r}: {written}"
    assert_echoes(fe, ANCHOR)
    assert fe.eval(REGISTRY) == [ANCHOR]
    assert our_unexpected_tracebacks(fe.kernel_log()) == []


def test_just_closed_ids(bad_input_kernel: Frontend) -> None:
    """Messages for a comm that either side just closed are logged and dropped."""
    fe = bad_input_kernel
    log = KernelLog(fe)
    by_frontend = fe.open_comm("echo")
    fe.close_comm(by_frontend)
    fe.run("import comm; by_kernel = comm.create_comm(target_name='k'); by_kernel.close()")
    by_kernel = fe.eval("by_kernel.comm_id")
    for comm_id in (by_frontend, by_kernel):
        _send(fe, "comm_msg", {"comm_id": comm_id, "data": {"late": True}})
        _send(fe, "comm_close", {"comm_id": comm_id, "data": {}})
        written = log.new()
        assert f"Ignored comm_msg for comm {comm_id}: no such comm is open" in written
        assert f"Ignored comm_close for comm {comm_id}: no such comm is open" in written
    # A closed id may be opened again: it is a new comm.
    fe.open_comm("echo", comm_id=by_frontend)
    assert_echoes(fe, by_frontend)
    assert fe.eval(REGISTRY) == [by_frontend]
    assert our_unexpected_tracebacks(fe.kernel_log()) == []


def test_target_module_is_never_imported(bad_input_kernel: Frontend, recorder: Recorder) -> None:
    fe = bad_input_kernel
    name, marker = recorder.name, recorder.marker
    opened = fe.open_comm("echo", data={}, comm_id=None)
    fe.send_shell(
        "comm_open",
        {"comm_id": "with-module", "target_name": "echo", "target_module": name, "data": {}},
    )
    fe.send_shell(
        "comm_open",
        {"comm_id": "unknown-target", "target_name": "nope", "target_module": name, "data": {}},
    )
    # A target name that looks like a dotted path is a name, not an import.
    fe.send_shell("comm_open", {"comm_id": "dotted", "target_name": f"{name}.target", "data": {}})
    assert_echoes(fe, "with-module")
    assert fe.eval(REGISTRY) == sorted([opened, "with-module"])
    assert not marker.exists()
    assert fe.eval(f"{name!r} in __import__('sys').modules") is False
    # The module is importable: had anything imported it, the marker would exist.
    fe.run(f"import {name}")
    assert marker.exists()


def test_huge_strings_in_data_travel_both_ways(bad_input_kernel: Frontend) -> None:
    fe = bad_input_kernel
    big = "é" * 5_000_000
    comm_id = fe.open_comm("echo", data={"big": big})
    mark = fe.mark()
    fe.send_comm(comm_id, {"big": big}, wait=False)
    echoed = fe.wait_for("comm_msg", comm_id=comm_id, since=mark)[0]
    assert echoed["content"]["data"]["echo"]["big"] == big
    # Ids in any script are fine: they are text, not only ASCII hex digits.
    for odd in ("é-ü-✓", "日本語", "a b\tc", "\u0000nul"):
        fe.open_comm("echo", comm_id=odd)
        assert_echoes(fe, odd)
        fe.close_comm(odd)
    assert fe.eval(REGISTRY) == [comm_id]
    assert our_unexpected_tracebacks(fe.kernel_log()) == []
