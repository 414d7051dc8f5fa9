"""RateBudget (delivery/rate_budget.py) against a fake clock."""

from __future__ import annotations

import time

import pytest

from kernel_comm_ext.delivery.rate_budget import BURST_SECONDS, DEBT_SECONDS, RateBudget


class FakeClock:
    """``time.monotonic`` that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1024.0  # a power of two: sums of the steps below stay exact

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def _take_all(budget: RateBudget) -> int:
    taken = 0
    while budget.take():
        taken += 1
    return taken


def test_a_new_budget_holds_half_a_second_of_tokens(clock: FakeClock) -> None:
    budget = RateBudget(100)
    assert _take_all(budget) == int(100 * BURST_SECONDS)
    assert not budget.take()


def test_tokens_come_back_at_the_rate(clock: FakeClock) -> None:
    budget = RateBudget(100)
    _take_all(budget)
    clock.advance(0.25)
    assert _take_all(budget) == 25


def test_savings_are_capped_at_the_burst(clock: FakeClock) -> None:
    budget = RateBudget(100)
    clock.advance(60)
    assert _take_all(budget) == int(100 * BURST_SECONDS)


def test_a_tiny_rate_still_allows_one_message(clock: FakeClock) -> None:
    budget = RateBudget(0.5)
    assert budget.take()
    assert not budget.take()
    assert budget.wait_time() == pytest.approx(2.0)


def test_a_failed_take_spends_nothing(clock: FakeClock) -> None:
    budget = RateBudget(10)
    _take_all(budget)
    assert not budget.take()
    assert not budget.take()
    clock.advance(0.125)
    assert budget.take()


def test_owing_runs_into_debt_that_the_refill_pays_back(clock: FakeClock) -> None:
    budget = RateBudget(64)
    _take_all(budget)
    for _ in range(32):
        budget.owe()
    assert budget.wait_time() == 33 / 64
    clock.advance(0.5)
    assert not budget.take()
    clock.advance(1 / 64)
    assert budget.take()


def test_debt_stops_at_the_window(clock: FakeClock) -> None:
    budget = RateBudget(100)
    _take_all(budget)
    for _ in range(10_000):
        budget.owe()
    assert budget.wait_time() == pytest.approx(DEBT_SECONDS + 0.01)


def test_wait_time_is_zero_with_a_token_left(clock: FakeClock) -> None:
    budget = RateBudget(100)
    assert budget.wait_time() == 0.0
    _take_all(budget)
    assert budget.wait_time() == pytest.approx(0.01)


@pytest.mark.parametrize("rate", [0, -1.0])
def test_a_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="positive rate"):
        RateBudget(rate)
