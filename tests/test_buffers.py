"""Binary buffers arrive byte-exact; a non-contiguous one is refused before sending."""

from __future__ import annotations

import hashlib
import os

import pytest

from .frontend import Frontend
from .helpers import ECHO_TARGETS, REGISTRY

KERNEL_BUFFERS = """
import comm, hashlib
import numpy as np
rng = np.random.default_rng(7)
arrays = {
    "float64": rng.standard_normal(1000),
    "int16_2d": rng.integers(-30000, 30000, size=(64, 33), dtype=np.int16),
    "uint8_3d": rng.integers(0, 256, size=(4, 5, 6), dtype=np.uint8),
    "fortran": np.asfortranarray(rng.standard_normal((17, 9))),
    "structured": np.array([(1, 2.5), (3, -1.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
    "empty": np.zeros(0),
}
raw = bytes(range(256)) * 17
buffers = {
    "bytes": raw,
    "bytearray": bytearray(raw[::-1]),
    "memoryview": memoryview(raw)[3:700],
    **arrays,
}
# What each must look like on the wire: its memory, in the order it is laid out.
expected = {k: (v.tobytes(order="A") if isinstance(v, np.ndarray) else bytes(v))
            for k, v in buffers.items()}
names = list(buffers)
c = comm.create_comm(target_name="buffers", data={"names": names}, buffers=list(buffers.values()))
"""


def test_kernel_buffers_arrive_byte_exact(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    mark = fe.mark()
    fe.run(KERNEL_BUFFERS)
    comm_id = fe.eval("c.comm_id")
    names = fe.eval("names")
    expected = {name: fe.eval(f"expected[{name!r}]") for name in names}

    opened = fe.wait_for("comm_open", comm_id=comm_id, since=mark)[0]
    assert dict(zip(names, map(bytes, opened["buffers"]), strict=True)) == expected

    mark = fe.mark()
    fe.run("c.send({'names': names}, buffers=list(buffers.values()))")
    sent = fe.wait_for("comm_msg", comm_id=comm_id, since=mark)[0]
    assert dict(zip(names, map(bytes, sent["buffers"]), strict=True)) == expected

    mark = fe.mark()
    fe.run("c.close({'bye': 1}, buffers=[arrays['int16_2d'], raw])")
    closed = fe.wait_for("comm_close", comm_id=comm_id, since=mark)[0]
    assert [bytes(b) for b in closed["buffers"]] == [expected["int16_2d"], expected["bytes"]]


def test_frontend_buffers_arrive_byte_exact_and_echo(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    fe.run(
        ECHO_TARGETS + "import hashlib\nseen = []\n"
        "def digest(c, m):\n"
        "    seen.append([hashlib.sha256(b).hexdigest() for b in m['buffers']])\n"
        "    echo(c, m)\n"
        "comm.get_comm_manager().register_target('digest', digest)\n"
    )
    payloads = [b"", b"\x00", bytes(range(256)), os.urandom(3_000_000)]
    comm_id = fe.open_comm("digest", buffers=payloads)
    assert fe.eval("seen") == [[hashlib.sha256(p).hexdigest() for p in payloads]]
    mark = fe.mark()
    fe.send_comm(comm_id, {"n": 1}, buffers=payloads)
    echoed = fe.wait_for("comm_msg", comm_id=comm_id, since=mark)[0]
    assert [bytes(b) for b in echoed["buffers"]] == payloads


REFUSALS = """
import comm, numpy as np
c = comm.create_comm(target_name="strided")
strided = np.arange(100)[::2]
def attempt(action):
    try:
        action()
    except (TypeError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return "sent"
"""


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (
            "c.send({}, buffers=[strided])",
            "ValueError: comm buffer 0 is not contiguous (shape (50,), strides (16,));"
            " send a contiguous copy, e.g. numpy.ascontiguousarray(a)",
        ),
        (
            "c.send({}, buffers=[b'fine', memoryview(b'abcdef')[::2]])",
            "ValueError: comm buffer 1 is not contiguous",
        ),
        (
            "c.send({}, buffers=['text'])",
            "TypeError: comm buffer 0 (str) does not support the buffer protocol",
        ),
        ("c.close({}, buffers=[strided])", "ValueError: comm buffer 0 is not contiguous"),
    ],
)
def test_unsendable_buffers_are_refused_before_sending(
    ext_kernel: Frontend, action: str, error: str
) -> None:
    fe = ext_kernel
    fe.run(REFUSALS)
    comm_id = fe.eval("c.comm_id")
    mark = fe.mark()
    assert fe.eval(f"attempt(lambda: {action})").startswith(error)
    fe.run("pass")
    assert fe.iopub(comm_id=comm_id, since=mark) == []
    # Nothing was sent, so nothing changed: the comm is still open and usable.
    assert comm_id in fe.eval(REGISTRY)
    fe.run("c.send({'after': 'refusal'}, buffers=[np.ascontiguousarray(strided)])")
    sent = fe.wait_for("comm_msg", comm_id=comm_id, since=mark)[0]
    assert bytes(sent["buffers"][0]) == fe.eval("np.ascontiguousarray(strided).tobytes()")


def test_open_with_unsendable_buffers_registers_nothing(ext_kernel: Frontend) -> None:
    fe = ext_kernel
    mark = fe.mark()
    before = fe.eval(REGISTRY)
    fe.run("import comm, numpy as np")
    result = fe.execute(
        "comm.create_comm(target_name='never', buffers=[np.eye(4)[:, 1]])", allow_error=True
    )
    assert result.reply["content"]["ename"] == "ValueError"
    assert "not contiguous" in result.reply["content"]["evalue"]
    assert fe.iopub("comm_open", since=mark) == []
    assert fe.eval(REGISTRY) == before
