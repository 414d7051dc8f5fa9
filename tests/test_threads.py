"""Comms from many threads at once.

Kernel threads create, send on and close comms concurrently; every message
arrives, each thread's in the order it sent them, and the registry stays
consistent. The kernel threads are paced by the test frontend (see
``helpers.Pacer``): ipykernel's IOPub socket drops messages past its
high-water mark when a burst outruns the frontend, which is not what these
tests are about.
"""

from __future__ import annotations

import collections
import time

import pytest

from .frontend import Frontend
from .helpers import Pacer, our_unexpected_tracebacks, report

THREADS = 8
MESSAGES = 1_000
COMMS = 500

SENDERS = """
import threading, comm
shared = comm.create_comm(target_name="shared")
own = [comm.create_comm(target_name=f"own-{{i}}") for i in range({threads})]
send_errors = []

def sender(i):
    try:
        for n in range({messages}):
            pace()
            # Alternate between the thread's own comm and the shared one.
            (shared if n % 2 else own[i]).send({{"thread": i, "n": n}})
    except Exception as e:
        send_errors.append(repr(e))

senders = [threading.Thread(target=sender, args=(i,)) for i in range({threads})]
for t in senders:
    t.start()
"""


def test_threads_sending_keep_their_order(
    ext_kernel: Frontend, capsys: pytest.CaptureFixture[str]
) -> None:
    fe = ext_kernel
    pacer = Pacer(fe)
    mark = fe.mark()
    started = time.perf_counter()
    fe.run(SENDERS.format(threads=THREADS, messages=MESSAGES))
    got = pacer.collect(
        THREADS * MESSAGES,
        lambda m: m["msg_type"] == "comm_msg" and "thread" in m["content"]["data"],
        since=mark,
    )
    elapsed = time.perf_counter() - started
    fe.run("for t in senders: t.join()")
    assert fe.eval("send_errors") == []
    report(capsys, f"threads: {len(got)} messages from {THREADS} threads in {elapsed:.1f} s")

    shared_id = fe.eval("shared.comm_id")
    own_ids = fe.eval("[c.comm_id for c in own]")
    per_thread: dict[int, list[int]] = collections.defaultdict(list)
    for m in got:
        data = m["content"]["data"]
        thread, n = data["thread"], data["n"]
        expected_comm = shared_id if n % 2 else own_ids[thread]
        assert m["content"]["comm_id"] == expected_comm
        per_thread[thread].append(n)
    assert len(got) == THREADS * MESSAGES
    for thread in range(THREADS):
        assert per_thread[thread] == list(range(MESSAGES)), f"thread {thread} out of order"
    assert our_unexpected_tracebacks(fe.kernel_log()) == []


CHURN = """
import threading, comm
manager = get_ipython().kernel.comm_manager
baseline = sorted(manager.comms)
created = [[] for _ in range({threads})]
churn_errors = []

def churn(i):
    try:
        held = []
        for n in range({comms}):
            pace()
            c = comm.create_comm(target_name="churn", data={{"thread": i, "n": n}})
            created[i].append(c.comm_id)
            held.append(c)
            # Close in small bursts so open and close interleave across threads.
            if len(held) == 5 or n == {comms} - 1:
                for h in held:
                    pace()
                    h.close()
                held.clear()
    except Exception as e:
        churn_errors.append(repr(e))

churners = [threading.Thread(target=churn, args=(i,)) for i in range({threads})]
for t in churners:
    t.start()
"""


def test_threads_opening_and_closing_keep_the_registry_consistent(
    ext_kernel: Frontend, capsys: pytest.CaptureFixture[str]
) -> None:
    fe = ext_kernel
    pacer = Pacer(fe)
    mark = fe.mark()
    started = time.perf_counter()
    fe.run(CHURN.format(threads=THREADS, comms=COMMS))
    got = pacer.collect(
        2 * THREADS * COMMS,
        lambda m: (
            m["msg_type"] in ("comm_open", "comm_close")
            and m["content"].get("target_name", "churn") == "churn"
        ),
        since=mark,
    )
    elapsed = time.perf_counter() - started
    fe.run("for t in churners: t.join()")
    assert fe.eval("churn_errors") == []
    report(capsys, f"threads: {THREADS * COMMS} comms opened and closed in {elapsed:.1f} s")

    created = {c for per_thread in fe.eval("created") for c in per_thread}
    assert len(created) == THREADS * COMMS
    opens = collections.Counter(
        m["content"]["comm_id"] for m in got if m["msg_type"] == "comm_open"
    )
    closes = collections.Counter(
        m["content"]["comm_id"] for m in got if m["msg_type"] == "comm_close"
    )
    assert set(opens) == created
    assert set(closes) == created
    assert set(opens.values()) == {1}
    assert set(closes.values()) == {1}
    position = {(m["msg_type"], m["content"]["comm_id"]): i for i, m in enumerate(got)}
    assert all(position["comm_open", c] < position["comm_close", c] for c in created)
    assert fe.eval("sorted(manager.comms) == baseline")
    assert fe.eval("manager._frontend_comms") == 1  # the pacer's comm
    assert our_unexpected_tracebacks(fe.kernel_log()) == []
