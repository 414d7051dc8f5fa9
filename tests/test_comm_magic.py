"""The %comm magic: open comms with their figures, targets, closing by id."""

from __future__ import annotations

import re

from .frontend import Frontend
from .helpers import comm_magic

# One row of the %comm table: id, target, opened by, age, msgs in/out, bytes in/out, last active.
ROW = re.compile(
    r"^(?P<id>\S+)\s+(?P<target>\S+)\s+(?P<by>kernel|frontend|-)\s+(?P<age>\S+)\s+"
    r"(?P<msgs_in>\S+)\s+(?P<msgs_out>\S+)\s+(?P<bytes_in>\d+(?:\.\d)? \S+|-)\s+"
    r"(?P<bytes_out>\d+(?:\.\d)? \S+|-)\s+(?P<last>\S+ ago|-)$"
)

KERNEL_SIDE = """
import comm
kernel_side = comm.create_comm(target_name="kernel.side", data={"a": 1}, buffers=[b"12345"])
kernel_side.send({"x": 1}, buffers=[b"abc"])
front_seen = []

def front_target(c, msg):
    front_seen.append(c)
    c.on_msg(lambda m: c.send({"echo": len(m["buffers"])}, buffers=[b"zz"]))

get_ipython().kernel.comm_manager.register_target("front.side", front_target)
"""


def comm_rows(output: str) -> dict[str, dict[str, str]]:
    """The rows of a %comm listing, by comm id."""
    rows = {}
    for line in output.splitlines():
        match = ROW.match(line)
        if match and match["id"] != "comm":
            rows[match["id"]] = match.groupdict()
    return rows


def test_comm_lists_comms_opened_from_both_sides_with_their_figures(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    assert comm_magic(fe).strip() == "0 open comms"
    fe.run(KERNEL_SIDE)
    kernel_id = fe.eval("kernel_side.comm_id")
    fe.send_comm(kernel_id, {"from": "frontend"}, buffers=[b"1234567"])

    front_id = fe.open_comm("front.side", buffers=[b"xy"])
    mark = fe.mark()
    fe.send_comm(front_id, {"n": 1}, buffers=[b"0123456789"])
    fe.send_comm(front_id, {"n": 2}, buffers=[b"x" * 3000])
    assert len(fe.wait_for("comm_msg", comm_id=front_id, since=mark, count=2)) == 2

    output = comm_magic(fe)
    assert output.splitlines()[0] == "2 open comms"
    assert output.splitlines()[1].split()[:4] == ["comm", "id", "target", "opened"]
    rows = comm_rows(output)
    assert set(rows) == {kernel_id, front_id}
    kernel_row, front_row = rows[kernel_id], rows[front_id]
    # comm_open + one send out, with 5 + 3 bytes; one comm_msg in with 7 bytes.
    assert kernel_row["target"] == "kernel.side"
    assert kernel_row["by"] == "kernel"
    assert (kernel_row["msgs_in"], kernel_row["msgs_out"]) == ("1", "2")
    assert (kernel_row["bytes_in"], kernel_row["bytes_out"]) == ("7 B", "8 B")
    # comm_open (2 bytes) + two comm_msg (10 + 3000 bytes) in; two echoes of 2 bytes out.
    assert front_row["target"] == "front.side"
    assert front_row["by"] == "frontend"
    assert (front_row["msgs_in"], front_row["msgs_out"]) == ("3", "2")
    assert (front_row["bytes_in"], front_row["bytes_out"]) == ("2.9 KiB", "4 B")
    for row in (kernel_row, front_row):
        assert re.fullmatch(r"\d+s", row["age"]), row
        assert re.fullmatch(r"\d+s ago", row["last"]), row
    # Oldest first: the kernel's comm was opened before the frontend's.
    assert output.index(kernel_id) < output.index(front_id)

    # The same figures, from Python, for tools.
    stats = fe.eval(
        "{s.comm_id: (s.opened_by, s.messages_in, s.messages_out, s.buffer_bytes_in,"
        " s.buffer_bytes_out) for s in get_ipython().kernel.comm_manager.comm_stats()}"
    )
    assert stats == {
        kernel_id: ("kernel", 1, 2, 7, 8),
        front_id: ("frontend", 3, 2, 3012, 4),
    }


def test_comm_targets_and_close(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run(KERNEL_SIDE)
    kernel_id = fe.eval("kernel_side.comm_id")
    front_id = fe.open_comm("front.side")

    targets = comm_magic(fe, "targets")
    lines = targets.splitlines()
    assert lines[0] == "1 comm target"
    assert lines[1].split() == ["target", "callback", "open", "comms"]
    assert lines[2].split() == ["front.side", "__main__.front_target", "1"]

    # A unique start of the id is enough.
    mark = fe.mark()
    closed = fe.run(f"%comm close {front_id[:12]}")
    assert closed.strip() == f"closed comm {front_id} (target 'front.side')"
    assert len(fe.wait_for("comm_close", comm_id=front_id, since=mark)) == 1
    assert fe.eval("front_seen[0]._closed")
    rows = comm_rows(comm_magic(fe))
    assert set(rows) == {kernel_id}
    assert comm_magic(fe, "targets").splitlines()[2].split()[-1] == "0"

    mark = fe.mark()
    fe.run(f"%comm close {kernel_id}")
    assert len(fe.wait_for("comm_close", comm_id=kernel_id, since=mark)) == 1
    assert comm_magic(fe).strip() == "0 open comms"


def test_comm_bad_arguments_get_a_clear_error(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    for line, message in [
        ("%comm close nosuchcomm", "no open comm has the id 'nosuchcomm'"),
        ("%comm close", "not understood"),
        ("%comm frobnicate", "not understood"),
    ]:
        execution = fe.execute(line, allow_error=True)
        assert execution.status == "error", line
        assert execution.reply["content"]["ename"] == "UsageError", line
        assert message in execution.reply["content"]["evalue"], line
    # Two comms whose ids start alike: a start shared by both is refused.
    fe.run(
        "import comm; a = comm.create_comm(comm_id='abc1'); b = comm.create_comm(comm_id='abc2')"
    )
    execution = fe.execute("%comm close abc", allow_error=True)
    assert "is the start of several comm ids: abc1, abc2" in execution.reply["content"]["evalue"]
    assert "%comm close ID" in comm_magic(fe, "help")
    assert fe.kernel_info()["status"] == "ok"


def test_comm_shows_adopted_comms_and_extra_sections(kernel: Frontend) -> None:
    fe = kernel
    # A comm of ipykernel's own class, opened before the extension loads, has no figures.
    fe.run("import comm; old = comm.create_comm(target_name='old.side')")
    old_id = fe.eval("old.comm_id")
    fe.run("%load_ext kernel_comm_ext")
    fe.run("new = comm.create_comm(target_name='new.side')")
    fe.run(
        "m = get_ipython().kernel.comm_manager\n"
        "m.add_report_section('IOPub delivery', lambda: 'queued: 0\\ndropped: 0')\n"
        "m.add_report_section('Quiet', lambda: None)\n"
        "m.add_report_section('Broken', lambda: 1 / 0)\n"
    )
    output = comm_magic(fe)
    rows = comm_rows(output)
    old_row = rows[old_id]
    assert (old_row["target"], old_row["by"]) == ("old.side", "kernel")
    assert [old_row[k] for k in ("age", "msgs_in", "msgs_out", "bytes_in", "last")] == ["-"] * 5
    assert "-: a comm of another class" in output
    # Comms without figures come last.
    assert output.index(fe.eval("new.comm_id")) < output.index(old_id)
    assert "\n\nIOPub delivery\nqueued: 0\ndropped: 0\n" in output
    assert "Quiet" not in output
    assert "\n\nBroken\n(unavailable: ZeroDivisionError('division by zero'))" in output
    assert "The %comm section 'Broken' failed" in fe.kernel_log()


def test_comm_survives_reload_and_unload_restores_the_previous_magic(kernel: Frontend) -> None:
    fe = kernel
    fe.run(
        "from IPython.core.magic import register_line_magic\n"
        "@register_line_magic\n"
        "def comm(line):\n"
        "    print('the user comm magic')\n"
        "del comm\n"
    )
    fe.run("%load_ext kernel_comm_ext")
    fe.run("import comm; c = comm.create_comm(target_name='kept')")
    comm_id = fe.eval("c.comm_id")
    assert comm_id in comm_rows(comm_magic(fe))
    fe.run("%reload_ext kernel_comm_ext")
    assert comm_id in comm_rows(comm_magic(fe))
    fe.run("%unload_ext kernel_comm_ext")
    assert comm_magic(fe).strip() == "the user comm magic"
    fe.run("%load_ext kernel_comm_ext")
    assert comm_id in comm_rows(comm_magic(fe))


def test_comm_names_widgets_by_model_and_shows_html_tables(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run(
        "import ipywidgets, comm\n"
        "s = ipywidgets.IntSlider()\n"
        "other = comm.create_comm(target_name='plain.target')\n"
        "%config KernelCommManager.rate_budget = 20\n"
    )
    slider, layout = fe.eval("s.comm.comm_id"), fe.eval("s.layout.comm.comm_id")
    fe.run("for i in range(300): s.value = i")
    execution = fe.execute("%comm")
    [result] = [m for m in execution.iopub if m["msg_type"] == "execute_result"]
    data = result["content"]["data"]

    rows = comm_rows(data["text/plain"])
    assert rows[slider]["target"] == "IntSlider"
    assert rows[layout]["target"] == "Layout"
    assert rows[fe.eval("other.comm_id")]["target"] == "plain.target"
    assert "widget comms (target jupyter.widget) are named by their model" in data["text/plain"]
    # Flow control: the slider's updates merged, in total and on its own row.
    stats = fe.eval(
        "[(c.model, c.coalescible, c.merged) for c in"
        " get_ipython().kernel.comm_manager.delivery_stats().comms if c.comm_id == s.comm.comm_id]"
    )
    [(model, coalescible, merged)] = stats
    assert (model, coalescible) == ("IntSlider", "yes")
    assert merged > 0
    flow = data["text/plain"].split("\n\nFlow control\n", 1)[1]
    [slider_row] = [line for line in flow.splitlines() if line.startswith(slider)]
    assert slider_row.split()[1:4] == ["IntSlider", "yes", str(merged)]

    html = data["text/html"]
    assert html.startswith("<p>")
    assert "<table>" in html
    assert f'<td style="text-align:left">{slider}</td>' in html
    assert '<td style="text-align:left">IntSlider</td>' in html
    assert "<h4>Flow control</h4>" in html
    targets = fe.execute("%comm targets")
    [result] = [m for m in targets.iopub if m["msg_type"] == "execute_result"]
    assert "<table>" in result["content"]["data"]["text/html"]
