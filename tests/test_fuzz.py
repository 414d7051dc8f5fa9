"""Property-based test: thousands of generated comm messages, well-formed or not.

Hypothesis generates batches of ``comm_open``/``comm_msg``/``comm_close``
messages (valid ones on open, closed and unknown comms, and every malformed
shape), sent through the frontend's jupyter_client Session on the shell channel
without waiting for each. A model tracks which comms must be open. After every
batch the kernel must answer and its registry must equal the model; at the end
the comms opened before still echo and no traceback from this package (other
than deliberately raised test errors) is in the kernel's log.
"""

from __future__ import annotations

import dataclasses
import json
import time
import typing as t
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .conftest import AUTOLOAD_OFF
from .frontend import Frontend, start_frontend
from .helpers import (
    DEFINE_DELIBERATE,
    ECHO_TARGETS,
    REGISTRY,
    Recorder,
    assert_echoes,
    barrier,
    our_unexpected_tracebacks,
    report,
    settle_iopub,
)

MIN_MESSAGES = 2_000
BATCHES = 50
BATCH = (40, 60)

# Targets of the fuzzed kernel, and whether a comm_open on them leaves the comm open.
FUZZ_TARGETS = """
async def async_raising(c, msg):
    await asyncio.sleep(0)
    raise DeliberateError("async target refused")

def raising(c, msg):
    raise DeliberateError("target refused")

def closing(c, msg):
    c.close({"closed": "by target"})

def flaky(c, msg):
    def on_msg(m):
        if "boom" in m["content"]["data"]:
            raise DeliberateError("on_msg boom")
        c.send({"echo": m["content"]["data"]})
    def on_close(m):
        if "boom" in m["content"]["data"]:
            raise DeliberateError("on_close boom")
    c.on_msg(on_msg)
    c.on_close(on_close)

for _f in (async_raising, raising, closing, flaky):
    comm.get_comm_manager().register_target(_f.__name__, _f)
"""
STAYS_OPEN = {"echo": True, "async_echo": True, "flaky": True}
TARGETS = ["echo", "async_echo", "flaky", "raising", "async_raising", "closing", "unregistered"]


@dataclasses.dataclass
class Model:
    """The comms that must be open in the kernel, and the ids a message may refer to."""

    anchors: list[str]
    open: list[str] = dataclasses.field(default_factory=list)
    closed: list[str] = dataclasses.field(default_factory=list)
    sent: int = 0
    #: Ids opened on the async_raising target. Their close back comes later, on the
    #: kernel's loop, so whether a message soon after still finds them open is a race:
    #: they are never referred to again.
    racy: set[str] = dataclasses.field(default_factory=set)
    #: What was sent about each id, to explain a mismatch.
    history: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def note(self, comm_id: object, what: str) -> None:
        if isinstance(comm_id, str):
            self.history.setdefault(comm_id, []).append(what)

    def explain(self, ids: set[str]) -> str:
        return "\n".join(f"{i!r}: {self.history.get(i)}" for i in ids)

    def expected_registry(self) -> list[str]:
        return sorted({*self.anchors, *self.open})

    def resolve(self, ref: tuple[str, t.Any]) -> str:
        kind, value = ref
        pool = {"open": self.open, "closed": self.closed, "anchor": self.anchors}.get(kind)
        if pool:
            return str(pool[value % len(pool)])
        if kind == "text" and value not in self.racy:
            return str(value)
        return uuid.uuid4().hex

    def is_open(self, comm_id: str) -> bool:
        return comm_id in self.anchors or comm_id in self.open

    def opened(self, comm_id: str, target: str) -> None:
        if comm_id in self.closed:
            self.closed.remove(comm_id)
        if STAYS_OPEN.get(target):
            self.open.append(comm_id)
        elif target == "async_raising":
            self.racy.add(comm_id)
        else:
            self.closed.append(comm_id)

    def closed_now(self, comm_id: str) -> None:
        self.open.remove(comm_id)
        self.closed.append(comm_id)


# strategies

# Stands for a string longer than any id may be; expanded when sent (keeps reprs short).
LONG = "<long string>"
SURROGATES: tuple[t.Literal["Cs"]] = ("Cs",)
text = st.text(st.characters(blacklist_categories=SURROGATES), max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=6,
)
json_objects = st.dictionaries(text, json_values, max_size=5)
junk = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(""),
    st.lists(text, max_size=3),
    st.dictionaries(text, text, max_size=2),
    st.just(LONG),
    st.just("\ud800"),
)
non_objects = junk.filter(lambda v: not isinstance(v, dict))
# A null ``data`` or ``metadata`` means "none": only other non-objects are flaws there.
non_null_non_objects = non_objects.filter(lambda v: v is not None)
# Metadata is packed by the Session itself, which cannot pack lone surrogates.
packable_non_objects = non_null_non_objects.filter(lambda v: v != "\ud800")
id_refs = st.one_of(
    st.tuples(st.just("open"), st.integers(0, 1000)),
    st.tuples(st.just("closed"), st.integers(0, 1000)),
    st.tuples(st.just("anchor"), st.integers(0, 10)),
    st.tuples(st.just("fresh"), st.none()),
    st.tuples(st.just("text"), text.filter(bool)),
)
buffers = st.lists(st.binary(max_size=32), max_size=2)

Op = tuple[str, dict[str, t.Any]]


@st.composite
def valid_ops(draw: st.DrawFn) -> Op:
    kind = draw(st.sampled_from(["comm_open", "comm_msg", "comm_msg", "comm_close"]))
    op: dict[str, t.Any] = {"id": draw(id_refs), "data": draw(json_objects)}
    if kind == "comm_open":
        op["target"] = draw(st.sampled_from(TARGETS))
        op["module"] = draw(st.booleans())
    if kind in ("comm_msg", "comm_close") and draw(st.integers(0, 5)) == 0:
        op["data"]["boom"] = True
    if kind == "comm_msg":
        op["buffers"] = draw(buffers)
    return kind, op


@st.composite
def malformed_ops(draw: st.DrawFn) -> Op:
    kind = draw(st.sampled_from(["comm_open", "comm_msg", "comm_close"]))
    flaw = draw(
        st.sampled_from(
            ["content", "comm_id", "no_comm_id", "data", "metadata"]
            + (["target_name", "no_target_name"] if kind == "comm_open" else [])
        )
    )
    return kind, {
        "id": draw(id_refs),
        "flaw": flaw,
        "junk": draw(
            packable_non_objects
            if flaw == "metadata"
            else non_null_non_objects
            if flaw == "data"
            else non_objects
            if flaw == "content"
            else junk
        ),
    }


ops = st.lists(
    st.one_of(valid_ops(), valid_ops(), malformed_ops()), min_size=BATCH[0], max_size=BATCH[1]
)


def _apply(fe: Frontend, model: Model, module: str, kind: str, op: dict[str, t.Any]) -> None:
    """Send one generated message and update the model with what it must do."""
    comm_id = model.resolve(op["id"])
    model.note(comm_id, f"{kind} {op.get('flaw') or op.get('target') or ''}")
    if "flaw" in op:
        _send_malformed(fe, kind, comm_id, op)
        return
    content: dict[str, t.Any] = {"comm_id": comm_id, "data": op["data"]}
    if kind == "comm_open":
        content["target_name"] = op["target"]
        if op["module"]:
            content["target_module"] = module
        fe.send_shell(kind, content, wait=False)
        if not model.is_open(comm_id):
            model.opened(comm_id, op["target"])
        return
    if kind == "comm_close" and comm_id in model.anchors:
        comm_id = uuid.uuid4().hex  # the anchors must survive
        content["comm_id"] = comm_id
    fe.send_shell(kind, content, buffers=op.get("buffers"), wait=False)
    if kind == "comm_close" and comm_id in model.open:
        model.closed_now(comm_id)


def _send_malformed(fe: Frontend, kind: str, comm_id: str, op: dict[str, t.Any]) -> None:
    flaw, junk_value = op["flaw"], op["junk"]
    if junk_value == LONG:
        junk_value = "x" * 5000
    content: dict[str, t.Any] = {"comm_id": comm_id, "data": {}}
    if kind == "comm_open":
        content["target_name"] = "echo"
    metadata = None
    if flaw == "content":
        fe.send_shell(kind, json.dumps(junk_value), wait=False)
        return
    if flaw == "comm_id":
        content["comm_id"] = junk_value
    elif flaw == "no_comm_id":
        del content["comm_id"]
    elif flaw == "target_name":
        content["target_name"] = junk_value
    elif flaw == "no_target_name":
        del content["target_name"]
    elif flaw == "data":
        content["data"] = junk_value
    elif flaw == "metadata":
        metadata = junk_value
    # Lone surrogates cannot be packed by the Session; send them JSON-escaped.
    fe.send_shell(kind, json.dumps(content), metadata=metadata, wait=False)


@pytest.fixture
def fuzz_kernel(tmp_path: Path) -> t.Iterator[tuple[Frontend, Recorder]]:
    recorder = Recorder(tmp_path)
    fe = start_frontend(tmp_path, env={**AUTOLOAD_OFF, **recorder.env()})
    try:
        fe.run("%load_ext kernel_comm_ext")
        fe.run(ECHO_TARGETS + DEFINE_DELIBERATE + FUZZ_TARGETS)
        yield fe, recorder
    finally:
        fe.shutdown()


def test_generated_comm_messages(
    fuzz_kernel: tuple[Frontend, Recorder], capsys: pytest.CaptureFixture[str]
) -> None:
    fe, recorder = fuzz_kernel
    anchors = [fe.open_comm("echo"), fe.open_comm("async_echo")]
    fe.run("import comm; kernel_side = comm.create_comm(target_name='kernel-side')")
    kernel_side = fe.eval("kernel_side.comm_id")
    model = Model(anchors=[*anchors, kernel_side])
    started = time.perf_counter()

    @settings(
        max_examples=BATCHES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        # The kernel keeps its state from batch to batch: replaying or shrinking
        # a batch would not reproduce it. The failing batch is printed instead.
        phases=[Phase.generate],
    )
    @given(batch=ops)
    def run_batch(batch: list[Op]) -> None:
        for kind, op in batch:
            _apply(fe, model, recorder.name, kind, op)
        model.sent += len(batch)
        barrier(fe)
        settle_iopub(fe)
        registry, expected = set(fe.eval(REGISTRY)), set(model.expected_registry())
        assert registry == expected, (
            f"open but not expected: {registry - expected}; "
            f"expected but not open: {expected - registry}\n" + model.explain(registry ^ expected)
        )

    run_batch()
    elapsed = time.perf_counter() - started
    report(capsys, f"fuzz: {model.sent} generated comm messages in {elapsed:.1f} s")
    assert model.sent >= MIN_MESSAGES

    assert fe.kernel_info()["status"] == "ok"
    assert fe.run("print(sum(range(10)))") == "45\n"
    for comm_id in anchors:
        assert_echoes(fe, comm_id)
    mark = fe.mark()
    fe.run("kernel_side.send({'still': 'open'})")
    assert fe.wait_for("comm_msg", comm_id=kernel_side, since=mark)
    assert fe.eval(REGISTRY) == model.expected_registry()
    assert not recorder.marker.exists()
    log = fe.kernel_log()
    assert "Exception in message handler" not in log
    assert our_unexpected_tracebacks(log) == []
