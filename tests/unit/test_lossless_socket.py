"""LosslessSocket (iopub/socket.py) over a fake zmq socket that raises ``zmq.Again``."""

from __future__ import annotations

import logging
import threading
import time
import typing as t

import pytest
import zmq

from kernel_comm_ext.iopub.backlog import Backlog
from kernel_comm_ext.iopub.socket import LosslessSocket

LOG = logging.getLogger("kernel_comm_ext")


class FakeZmqSocket:
    """A PUB socket whose readers have ``room`` messages of room (None: always)."""

    def __init__(self) -> None:
        self.room: int | None = None
        self.sent: list[list[t.Any]] = []
        self.options: dict[int, int] = {}
        self.option_log: list[tuple[int, int]] = []
        self.closed = False
        self.hwm_name = "fake"

    def send_multipart(self, parts: t.Sequence[t.Any], flags: int = 0, **_: t.Any) -> None:
        assert flags & zmq.NOBLOCK, "a LosslessSocket never blocks in zmq"
        nodrop = self.options.get(zmq.XPUB_NODROP, 0)
        if self.room == 0:
            if nodrop:
                raise zmq.Again
            return  # zmq drops it for the reader without room
        if self.room is not None:
            self.room -= 1
        self.sent.append(list(parts))

    def setsockopt(self, option: int, value: int) -> None:
        self.options[option] = value
        self.option_log.append((option, value))

    def close(self, linger: int | None = None) -> None:
        self.closed = True


class FakeLoop:
    """The IOPub thread's tornado loop: timers run when the test says so."""

    def __init__(self) -> None:
        self.timers: list[t.Callable[[], None]] = []

    def call_later(self, delay: float, callback: t.Callable[[], None]) -> object:
        self.timers.append(callback)
        return callback

    def remove_timeout(self, timer: object) -> None:
        self.timers.remove(t.cast("t.Callable[[], None]", timer))

    def fire(self) -> None:
        timers, self.timers = self.timers, []
        for callback in timers:
            callback()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1024.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


@pytest.fixture
def zsocket() -> FakeZmqSocket:
    return FakeZmqSocket()


@pytest.fixture
def loop() -> FakeLoop:
    return FakeLoop()


@pytest.fixture
def backlog() -> Backlog:
    return Backlog(max_messages=0, max_bytes=0)


@pytest.fixture
def lossless(
    zsocket: FakeZmqSocket, loop: FakeLoop, backlog: Backlog, clock: FakeClock
) -> LosslessSocket:
    return LosslessSocket(
        t.cast("zmq.Socket[t.Any]", zsocket), loop, backlog, 10.0, LOG, "Stall.setting"
    )


def _message(i: int) -> list[bytes]:
    return [b"topic", f"message {i}".encode()]


def test_nodrop_is_set_and_sends_go_straight_through(
    lossless: LosslessSocket, zsocket: FakeZmqSocket
) -> None:
    assert zsocket.options[zmq.XPUB_NODROP] == 1
    lossless.send_multipart(_message(0))
    assert zsocket.sent == [_message(0)]
    assert lossless.waits == 0


def test_without_room_messages_wait_in_order_and_go_when_room_comes(
    lossless: LosslessSocket, zsocket: FakeZmqSocket, loop: FakeLoop, backlog: Backlog
) -> None:
    zsocket.room = 1
    for i in range(4):
        lossless.send_multipart(_message(i))
    assert zsocket.sent == [_message(0)]
    assert lossless.unsent_count == 3
    assert backlog.waiting_messages == 3
    loop.fire()  # still no room: nothing moves, a retry is armed
    assert lossless.unsent_count == 3
    assert len(loop.timers) == 1
    zsocket.room = None
    loop.fire()
    assert zsocket.sent == [_message(i) for i in range(4)]
    assert backlog.waiting_messages == 0
    assert (lossless.waits, lossless.waited_messages) == (1, 3)
    assert loop.timers == []


def test_a_message_after_waiting_ones_never_overtakes_them(
    lossless: LosslessSocket, zsocket: FakeZmqSocket, loop: FakeLoop
) -> None:
    zsocket.room = 0
    lossless.send_multipart(_message(0))
    zsocket.room = None
    lossless.send_multipart(_message(1))  # room now, but message 0 waits
    assert zsocket.sent == []
    loop.fire()
    assert zsocket.sent == [_message(0), _message(1)]


def test_a_stalled_reader_is_given_up_on_after_the_stall_timeout(
    lossless: LosslessSocket,
    zsocket: FakeZmqSocket,
    loop: FakeLoop,
    backlog: Backlog,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    zsocket.room = 0
    for i in range(3):
        lossless.send_multipart(_message(i))
    clock.now += 9.9
    loop.fire()
    assert lossless.fallbacks == 0
    clock.now += 0.2
    zsocket.option_log.clear()
    with caplog.at_level(logging.WARNING, logger="kernel_comm_ext"):
        loop.fire()
    # One send with NODROP off (zmq drops it for the stalled reader), then on again.
    assert zsocket.option_log[:2] == [(zmq.XPUB_NODROP, 0), (zmq.XPUB_NODROP, 1)]
    assert (lossless.fallbacks, lossless.dropped) == (1, 3)
    assert "Stall.setting" in caplog.text
    assert lossless.unsent_count == 2  # still lossless for readers that keep up
    assert backlog.waiting_messages == 2


def test_a_frame_zmq_cannot_send_is_refused_before_it_waits(
    lossless: LosslessSocket, zsocket: FakeZmqSocket
) -> None:
    zsocket.room = 0
    with pytest.raises(TypeError, match="buffer interface"):
        lossless.send_multipart([b"ok", t.cast("bytes", 42)])
    assert lossless.unsent_count == 0


def test_a_send_from_another_thread_never_waits(
    lossless: LosslessSocket, zsocket: FakeZmqSocket
) -> None:
    zsocket.room = 0
    zsocket.options[zmq.XPUB_NODROP] = 1
    sender = threading.Thread(target=lossless.send_multipart, args=(_message(0),))
    sender.start()
    sender.join()
    assert lossless.unsent_count == 0
    assert lossless.dropped == 1


def test_when_drained_waits_for_the_waiting_messages(
    lossless: LosslessSocket, zsocket: FakeZmqSocket, loop: FakeLoop
) -> None:
    drained: list[int] = []
    lossless.when_drained(lambda: drained.append(1))
    assert drained == [1]
    zsocket.room = 0
    lossless.send_multipart(_message(0))
    lossless.when_drained(lambda: drained.append(2))
    assert drained == [1]
    zsocket.room = None
    loop.fire()
    assert drained == [1, 2]


def test_close_sends_what_waits_to_readers_with_room(
    lossless: LosslessSocket, zsocket: FakeZmqSocket, loop: FakeLoop, backlog: Backlog
) -> None:
    zsocket.room = 0
    lossless.send_multipart(_message(0))
    lossless.close()
    assert zsocket.closed
    assert loop.timers == []
    assert backlog.waiting_messages == 0


def test_other_attributes_go_to_the_wrapped_socket(
    lossless: LosslessSocket, zsocket: FakeZmqSocket
) -> None:
    assert lossless.hwm_name == "fake"
    lossless.hwm_name = "changed"
    assert zsocket.hwm_name == "changed"
    assert lossless.wrapped is t.cast("t.Any", zsocket)
