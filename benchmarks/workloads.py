"""The workloads W1-W7: kernel-side code plus what the frontend measures.

Each workload runs the same code in every kernel; only the comm layer under it
differs. ``setup`` and ``teardown`` are not timed. ``run`` returns the figures
of one repetition, keyed by the names in ``metrics``. In-kernel times come from
``time.perf_counter`` inside the cell; delivery times run from the loop's start
(``time.time()`` in the kernel) to the arrival of the last message at the
frontend, on the same machine and clock.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
import typing as t
import uuid

from kernel_comm_ext.testing.widget_frontend import WidgetFrontend

from .frontend import Arrival, BenchError, BenchKernel


@dataclasses.dataclass(frozen=True)
class Metric:
    """One figure of a workload: how it is shown and which way is better."""

    key: str
    label: str
    unit: str
    better: str | None = "lower"  # "lower", "higher", or None (a count or a check)
    scale: float = 1.0  # shown value = raw value * scale


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each workload is; ``QUICK`` only proves the harness works end to end."""

    w1_messages: int = 20_000
    w2_messages: int = 500
    w2_buffer_bytes: int = 1 << 20
    w3_comms: int = 10_000
    w4_burst: int = 5_000
    w4_round_trips: int = 200
    w6_updates: int = 20_000
    w7_edits: int = 2_000


FULL = Sizes()
QUICK = Sizes(
    w1_messages=500,
    w2_messages=10,
    w2_buffer_bytes=1 << 16,
    w3_comms=200,
    w4_burst=100,
    w4_round_trips=20,
    w6_updates=500,
    w7_edits=100,
)

Figures = dict[str, t.Any]


class Workload:
    """A benchmark workload; subclasses fill in the three steps."""

    key: str = ""
    title: str = ""
    metrics: tuple[Metric, ...] = ()

    def setup(self, kernel: BenchKernel, sizes: Sizes) -> None:
        """Prepare the kernel (not timed)."""

    def run(self, kernel: BenchKernel, sizes: Sizes) -> Figures:
        """One timed repetition."""
        raise NotImplementedError

    def teardown(self, kernel: BenchKernel, sizes: Sizes) -> None:
        """Undo ``setup`` (not timed)."""


# Kernel-side helpers, defined once per kernel by ``PRELUDE``.
PRELUDE = """
import comm as _comm, gc as _gc, json as _json, threading, time as _time
_B = {}

def _bench_drain(timeout=60.0):
    # Wait until ipykernel's IOPub thread has sent everything queued before this
    # call, so tracemalloc does not count messages in flight as memory of the comms.
    _flush = getattr(getattr(_comm.get_comm_manager(), "sender", None), "flush", None)
    if _flush is not None:
        _flush()
    _done = threading.Event()
    get_ipython().kernel.iopub_thread.schedule(_done.set)
    _done.wait(timeout)
"""


def comm_messages(arrivals: list[Arrival], comm_id: str) -> list[Arrival]:
    """The ``comm_msg`` arrivals of one comm."""
    return [a for a in arrivals if a.msg_type == "comm_msg" and a.comm_id == comm_id]


def _last_index_arrival(msgs: list[Arrival], key: str, value: int) -> Arrival | None:
    for arrival in reversed(msgs):
        if arrival.content.get("data", {}).get(key) == value:
            return arrival
    return None


class SendLoop(Workload):
    """W1: many small ``comm.send`` calls from one cell."""

    key = "W1"
    title = "20,000 small comm.send from one cell"
    metrics = (
        Metric("loop_s", "in-kernel loop", "ms", scale=1e3),
        Metric("delivered_s", "until the frontend has the last", "ms", scale=1e3),
        Metric("per_msg_s", "in-kernel per message", "us", scale=1e6),
        Metric("received", "messages received", "", better=None),
    )
    cell = """
_c = _B["c"]
_t0 = _time.time(); _p0 = _time.perf_counter()
for _i in range(N):
    _c.send({"i": _i})
_B["r"] = {"t0": _t0, "loop": _time.perf_counter() - _p0}
"""

    def count(self, sizes: Sizes) -> int:
        return sizes.w1_messages

    def setup(self, kernel: BenchKernel, sizes: Sizes) -> None:
        kernel.execute(
            '_B["c"] = _comm.create_comm(target_name="bench_sink", data={}); _gc.collect()'
        )
        kernel.state[self.key] = kernel.execute("", result='_B["c"].comm_id').result

    def run(self, kernel: BenchKernel, sizes: Sizes) -> Figures:
        n = self.count(sizes)
        done = kernel.execute(self.cell.replace("range(N)", f"range({n})"), result='_B["r"]')
        msgs = comm_messages(kernel.iopub.since(done.mark), kernel.state[self.key])
        last = _last_index_arrival(msgs, "i", n - 1)
        arrived = last.time if last is not None else (msgs[-1].time if msgs else float("nan"))
        loop = done.result["loop"]
        return {
            "loop_s": loop,
            "delivered_s": arrived - done.result["t0"],
            "per_msg_s": loop / n,
            "received": len(msgs),
            "expected": n,
        }

    def teardown(self, kernel: BenchKernel, sizes: Sizes) -> None:
        kernel.execute('_B.pop("c").close(); _gc.collect()')


class SessionSendLoop(SendLoop):
    """W5: W1's loop on ``kernel.session.send`` directly: the floor without a comm layer."""

    key = "W5"
    title = "W1's loop on kernel.session.send directly (the floor)"
    cell = """
_k = get_ipython().kernel
_cid = _B["c"].comm_id; _topic = _B["c"].topic
_t0 = _time.time(); _p0 = _time.perf_counter()
for _i in range(N):
    _k.session.send(_k.iopub_socket, "comm_msg", {"data": {"i": _i}, "comm_id": _cid},
                    parent=_k.get_parent(), ident=_topic, metadata={})
_B["r"] = {"t0": _t0, "loop": _time.perf_counter() - _p0}
"""


class BufferThroughput(Workload):
    """W2: messages with a large binary buffer each."""

    key = "W2"
    title = "500 messages with a 1 MiB buffer each"
    metrics = (
        Metric("throughput_Bps", "throughput at the frontend", "MiB/s", "higher", 1 / (1 << 20)),
        Metric("loop_s", "in-kernel loop", "ms", scale=1e3),
        Metric("received", "messages received", "", better=None),
    )

    def setup(self, kernel: BenchKernel, sizes: Sizes) -> None:
        kernel.execute(
            '_B["c"] = _comm.create_comm(target_name="bench_sink", data={})\n'
            f'_B["buf"] = bytes(range(256)) * ({sizes.w2_buffer_bytes} // 256); _gc.collect()'
        )
        kernel.state[self.key] = kernel.execute("", result='_B["c"].comm_id').result

    def run(self, kernel: BenchKernel, sizes: Sizes) -> Figures:
        n = sizes.w2_messages
        cell = f"""
_c = _B["c"]; _buf = _B["buf"]
_t0 = _time.time(); _p0 = _time.perf_counter()
for _i in range({n}):
    _c.send({{"i": _i}}, buffers=[_buf])
_B["r"] = {{"t0": _t0, "loop": _time.perf_counter() - _p0}}
del _buf
"""
        done = kernel.execute(cell, result='_B["r"]')
        msgs = comm_messages(kernel.iopub.since(done.mark), kernel.state[self.key])
        received_bytes = sum(sum(a.buffer_sizes) for a in msgs)
        last = msgs[-1].time if msgs else float("nan")
        return {
            "throughput_Bps": received_bytes / (last - done.result["t0"]),
            "loop_s": done.result["loop"],
            "received": len(msgs),
            "expected": n,
            "received_bytes": received_bytes,
        }

    def teardown(self, kernel: BenchKernel, sizes: Sizes) -> None:
        kernel.execute('_B.pop("c").close(); _B.pop("buf"); _gc.collect()')


class ManyComms(Workload):
    """W3: open many comms from the kernel, then close them all."""

    key = "W3"
    title = "open 10,000 comms from the kernel"
    metrics = (
        Metric("open_per_comm_s", "open, per comm", "us", scale=1e6),
        Metric("close_per_comm_s", "close, per comm", "us", scale=1e6),
        Metric("bytes_per_comm", "memory per open comm", "B"),
        Metric("retained_bytes", "retained after close + gc", "B"),
        Metric("duplicates", "comms with a 2nd comm_open/comm_close", "", better=None),
        Metric("missing", "comm_open/comm_close missing at the frontend", "", better=None),
    )

    def run(self, kernel: BenchKernel, sizes: Sizes) -> Figures:
        n = sizes.w3_comms
        timed = f"""
_gc.collect()
_cs = [None] * {n}
_p0 = _time.perf_counter()
for _i in range({n}):
    _cs[_i] = _comm.create_comm(target_name="bench_many", data={{}})
_p1 = _time.perf_counter()
for _x in _cs:
    _x.close()
_p2 = _time.perf_counter()
del _cs, _x
_B["r"] = {{"open": _p1 - _p0, "close": _p2 - _p1}}
"""
        done = kernel.execute(timed, result='_B["r"]')
        arrivals = kernel.iopub.since(done.mark)
        memory = f"""
import tracemalloc as _tm
_bench_drain(); _gc.collect()
_tm.start()
_cs = [None] * {n}
_m0 = _tm.get_traced_memory()[0]
for _i in range({n}):
    _cs[_i] = _comm.create_comm(target_name="bench_many", data={{}})
_bench_drain()
_m1 = _tm.get_traced_memory()[0]
for _x in _cs:
    _x.close()
del _x
_cs = [None] * {n}
_bench_drain(); _gc.collect()
_m2 = _tm.get_traced_memory()[0]
_tm.stop()
del _cs
_B["r"] = {{"open": _m1 - _m0, "retained": _m2 - _m0}}
"""
        mem = kernel.execute(memory, result='_B["r"]')
        arrivals += kernel.iopub.since(mem.mark)
        opens: dict[str, int] = {}
        closes: dict[str, int] = {}
        for a in arrivals:
            if a.msg_type == "comm_open" and a.content.get("target_name") == "bench_many":
                opens[a.content["comm_id"]] = opens.get(a.content["comm_id"], 0) + 1
            elif a.msg_type == "comm_close":
                closes[a.content["comm_id"]] = closes.get(a.content["comm_id"], 0) + 1
        seen = sum(opens.values()) + sum(closes.get(k, 0) for k in opens)
        return {
            "open_per_comm_s": done.result["open"] / n,
            "close_per_comm_s": done.result["close"] / n,
            "bytes_per_comm": mem.result["open"] / n,
            "retained_bytes": mem.result["retained"],
            # A protocol error: some comm opened or closed twice, or closed unopened.
            "duplicates": sum(v > 1 for v in opens.values())
            + sum(v > 1 or k not in opens for k, v in closes.items()),
            # Not the comm layer's doing: what ipykernel's IOPub socket dropped.
            "missing": 4 * n - seen,
            "comms": 2 * n,
        }


class EchoFromFrontend(Workload):
    """W4: the frontend sends, an echo target in the kernel answers."""

    key = "W4"
    title = "frontend -> kernel comm_msg to an echo target"
    metrics = (
        Metric("burst_rate", "back-to-back: echoes/s", "msg/s", "higher"),
        Metric("rtt_median_s", "round trip, median", "ms", scale=1e3),
        Metric("rtt_p95_s", "round trip, p95", "ms", scale=1e3),
        Metric("handler_s", "comm layer: comm_msg handler per message", "us", scale=1e6),
        Metric("received", "echoes received", "", better=None),
    )
    # The kernel's comm_msg handler (the comm layer's part of each message: find the
    # comm, run on_msg, send the echo), timed in the kernel by a wrapper both get.
    timed_handler = """
def _bench_time_handler(handler, spent):
    def timed(*args):
        start = _time.perf_counter()
        try:
            return handler(*args)
        finally:
            spent[0] += _time.perf_counter() - start
            spent[1] += 1
    timed.__wrapped__ = handler
    return timed
_bench_handler_spent = [0.0, 0]
_bench_handlers = get_ipython().kernel.shell_handlers
_bench_handlers["comm_msg"] = _bench_time_handler(_bench_handlers["comm_msg"], _bench_handler_spent)
"""

    def setup(self, kernel: BenchKernel, sizes: Sizes) -> None:
        kernel.execute(
            "def _bench_echo(c, msg):\n"
            '    c.on_msg(lambda m: c.send(m["content"]["data"]))\n'
            '_comm.get_comm_manager().register_target("bench_echo", _bench_echo)'
        )
        kernel.execute(self.timed_handler)
        comm_id = kernel.state[self.key] = uuid.uuid4().hex
        mark = kernel.iopub.mark()
        msg_id = kernel.send_shell(
            "comm_open", {"comm_id": comm_id, "target_name": "bench_echo", "data": {}}
        )
        if kernel.wait_idle(msg_id, since=mark, timeout=30) is None:
            raise BenchError(f"{kernel.name}: no idle after opening the echo comm")

    @staticmethod
    def _echo_of(comm_id: str, key: str, value: int) -> t.Callable[[Arrival], bool]:
        return lambda a: (
            a.msg_type == "comm_msg"
            and a.comm_id == comm_id
            and a.content.get("data", {}).get(key) == value
        )

    def run(self, kernel: BenchKernel, sizes: Sizes) -> Figures:
        n, comm_id = sizes.w4_burst, kernel.state[self.key]
        kernel.execute("_bench_handler_spent[:] = [0.0, 0]")
        mark = kernel.iopub.mark()
        t0 = time.time()
        for i in range(n):
            kernel.send_shell("comm_msg", {"comm_id": comm_id, "data": {"i": i}})
        last = kernel.iopub.wait(self._echo_of(comm_id, "i", n - 1), since=mark, timeout=120)
        echoes = comm_messages(kernel.iopub.since(mark), comm_id)
        if not echoes:
            raise BenchError(f"{kernel.name}: no echo came back\n{kernel.kernel_log()}")
        end = last.time if last is not None else echoes[-1].time
        # Let the kernel finish publishing the burst's status messages.
        kernel.iopub.quiet(0.2, timeout=30)
        latencies = []
        for k in range(sizes.w4_round_trips):
            mark = kernel.iopub.mark()
            start = time.perf_counter()
            kernel.send_shell("comm_msg", {"comm_id": comm_id, "data": {"rt": k}})
            if kernel.iopub.wait(self._echo_of(comm_id, "rt", k), since=mark, timeout=30) is None:
                raise BenchError(f"{kernel.name}: round trip {k} got no echo")
            latencies.append(time.perf_counter() - start)
        latencies.sort()
        spent, handled = kernel.execute("", result="_bench_handler_spent").result
        return {
            "burst_rate": len(echoes) / (end - t0),
            "rtt_median_s": statistics.median(latencies),
            "rtt_p95_s": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))],
            "handler_s": spent / max(handled, 1),
            "received": len(echoes),
            "expected": n,
        }

    def teardown(self, kernel: BenchKernel, sizes: Sizes) -> None:
        mark = kernel.iopub.mark()
        comm_id = kernel.state[self.key]
        msg_id = kernel.send_shell("comm_close", {"comm_id": comm_id, "data": {}})
        kernel.wait_idle(msg_id, since=mark, timeout=30)
        kernel.execute(
            '_bench_handlers["comm_msg"] = _bench_handlers["comm_msg"].__wrapped__\n'
            '_comm.get_comm_manager().unregister_target("bench_echo", _bench_echo)'
        )


class SliderLoop(Workload):
    """W6: an ipywidgets IntSlider set in a tight loop."""

    key = "W6"
    title = "20,000 x slider.value = i on an IntSlider"
    metrics = (
        Metric("loop_s", "in-kernel loop", "ms", scale=1e3),
        Metric("updates", "update messages at the frontend", "", better=None),
        Metric("saved", "messages saved by coalescing", "", better=None),
        Metric("lost", "updates lost on the way", "", better=None),
        Metric("last_value", "last value at the frontend", "", better=None),
    )
    # Widget updates the kernel's comm layer merged so far (0 where it does not).
    coalesced = (
        "getattr(getattr(_comm.get_comm_manager(), 'delivery_stats', lambda: None)(),"
        " 'coalesced', 0)"
    )

    def setup(self, kernel: BenchKernel, sizes: Sizes) -> None:
        kernel.execute(
            "import ipywidgets as _ipw\n"
            f'_B["s"] = _ipw.IntSlider(min=-1, max={sizes.w6_updates}); _gc.collect()'
        )
        kernel.state[self.key] = kernel.execute("", result='_B["s"].comm.comm_id').result

    def run(self, kernel: BenchKernel, sizes: Sizes) -> Figures:
        n = sizes.w6_updates
        # -1 first, so that the loop's first value is a change.
        before = kernel.execute('_B["s"].value = -1', result=self.coalesced).result
        cell = f"""
_s = _B["s"]
_t0 = _time.time(); _p0 = _time.perf_counter()
for _i in range({n}):
    _s.value = _i
_B["r"] = {{"t0": _t0, "loop": _time.perf_counter() - _p0}}
del _s
"""
        done = kernel.execute(cell, result=f'dict(_B["r"], coalesced={self.coalesced})')
        updates = [
            a
            for a in comm_messages(kernel.iopub.since(done.mark), kernel.state[self.key])
            if a.content.get("data", {}).get("method") == "update"
            and "value" in a.content["data"].get("state", {})
        ]
        last_value = updates[-1].content["data"]["state"]["value"] if updates else None
        saved = done.result["coalesced"] - before
        return {
            "loop_s": done.result["loop"],
            "updates": len(updates),
            "saved": saved,
            "lost": n - saved - len(updates),
            "last_value": last_value,
            "expected": n,
        }

    def teardown(self, kernel: BenchKernel, sizes: Sizes) -> None:
        kernel.execute('_B.pop("s").close(); _gc.collect()')


class PlotlyLoop(Workload):
    """W7: a plotly FigureWidget's trace edited in a tight loop (one restyle per edit).

    Each edit sends four updates of the figure's comm (two edit counters, the
    restyle, and its reset to None). The frontend applies every message it
    receives as a widget manager and plotly's JavaScript do
    (``kernel_comm_ext.testing.widget_frontend``) and counts the restyles it
    draws; the figures say whether it ends on the kernel's trace.
    """

    key = "W7"
    title = "2,000 x fig.data[0].y = [i, i+1, i+2] on a plotly FigureWidget"
    metrics = (
        Metric("loop_s", "in-kernel loop", "ms", scale=1e3),
        Metric("delivered_s", "until the frontend has the last message", "ms", scale=1e3),
        Metric("messages", "comm messages at the frontend", "", better=None),
        Metric("received", "restyles drawn at the frontend", "", better=None),
        Metric("final_ok", "frontend ends on the kernel's trace", "", better=None),
    )

    def setup(self, kernel: BenchKernel, sizes: Sizes) -> None:
        mark = kernel.iopub.mark()
        kernel.execute(
            "import plotly.graph_objects as _go\n"
            '_B["f"] = _go.FigureWidget(data=[_go.Scatter(y=[0, 0, 0])])'
        )
        kernel.iopub.quiet(0.5, timeout=30)
        page = WidgetFrontend()
        page.apply_all(_as_messages(kernel.iopub.since(mark)))
        figure = page.figures()[-1]
        kernel.state[self.key] = (page, figure)

    def run(self, kernel: BenchKernel, sizes: Sizes) -> Figures:
        n = sizes.w7_edits
        page, figure = kernel.state[self.key]
        drawn_before = len(figure.restyles)
        cell = f"""
_f = _B["f"]
_t0 = _time.time(); _p0 = _time.perf_counter()
for _i in range({n}):
    _f.data[0].y = [_i, _i + 1, _i + 2]
_B["r"] = {{"t0": _t0, "loop": _time.perf_counter() - _p0, "y": list(_f.data[0].y)}}
del _f
"""
        mark = kernel.iopub.mark()
        done = kernel.execute(cell, result='_B["r"]')
        # Over the rate budget, what waits in the kernel may still be on its way after idle.
        kernel.iopub.quiet(0.5, timeout=120)
        arrivals = [a for a in kernel.iopub.since(mark) if a.comm_id == figure.comm_id]
        page.apply_all(_as_messages(arrivals))
        drawn = [r["restyle_data"]["y"][0] for r in figure.restyles[drawn_before:]]
        return {
            "loop_s": done.result["loop"],
            "delivered_s": (arrivals[-1].time - done.result["t0"]) if arrivals else math.nan,
            "messages": len(arrivals),
            "received": len(drawn),
            "expected": n,
            "in_order": drawn == sorted(drawn),
            "final_ok": figure.traces[0]["y"] == done.result["y"],
        }

    def teardown(self, kernel: BenchKernel, sizes: Sizes) -> None:
        kernel.execute('_B.pop("f").close(); _gc.collect()')
        kernel.state.pop(self.key, None)


def _as_messages(arrivals: t.Iterable[Arrival]) -> t.Iterator[dict[str, t.Any]]:
    """Arrivals in the shape ``WidgetFrontend.apply_all`` takes (their buffers are not kept)."""
    for arrival in arrivals:
        yield {"msg_type": arrival.msg_type, "content": arrival.content}


WORKLOADS: tuple[Workload, ...] = (
    SendLoop(),
    BufferThroughput(),
    ManyComms(),
    EchoFromFrontend(),
    SessionSendLoop(),
    SliderLoop(),
    PlotlyLoop(),
)
