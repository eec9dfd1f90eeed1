"""Picture pacing and speed limits: pure policies driven by a fake clock (no sleeps, no wall time)."""

import pytest

from lab.live.pacing import LiveRun, PictureCost, PicturePacer, SpeedLimit


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def draw(pacer, order, step, total=0.004, density=None, views=None, per=1e-5):
    pacer.paid(
        order,
        PictureCost(total, density if order.density else None, views if order.views else None, per),
        step,
    )


def test_no_credit_no_picture_and_training_buys_it():
    clock = FakeClock()
    p = PicturePacer(clock, overhead=0.1)
    p.paid(p.still("a"), PictureCost(0.004), 25, live=False)  # past its first steps
    clock.advance(1.0)
    runs = [LiveRun("a", step=30)]
    assert p.next_live(runs) is None  # nothing earned yet
    p.earn(0.05, n_running=1)  # 50 ms of training buys 5 ms of pictures
    order = p.next_live(runs)
    assert order is not None and order.run_id == "a"
    draw(p, order, 30, total=0.004)
    assert p.credit == pytest.approx(0.001)


def test_a_run_past_its_first_steps_is_drawn_first_without_credit_once():
    clock = FakeClock()
    p = PicturePacer(clock, interval_many=0.15)
    crowd = [LiveRun(f"c{i}", step=500, many=True) for i in range(40)]
    for r in crowd:
        p.paid(p.still(r.run_id, many=True), PictureCost(0.004), 400, live=False)
    p.paid(p.still("new", many=True), PictureCost(0.004), 0, live=False)
    clock.advance(1.0)
    assert p.next_live([*crowd, LiveRun("new", step=19, many=True)]) is None  # before step 20 it waits too
    p.earn(0.01, n_running=41)  # credit for one cheap picture, and forty panels are due
    order = p.next_live([*crowd, LiveRun("new", step=20, many=True)])
    assert order is not None and order.run_id == "new" and not order.metrics
    draw(p, order, 20)
    clock.advance(0.2)
    p.credit = 0.0  # once it shows its first steps it waits for credit like the others
    assert p.next_live([*crowd, LiveRun("new", step=40, many=True)]) is None


def test_pictures_spend_at_most_the_overhead_of_training():
    clock = FakeClock()
    p = PicturePacer(clock, overhead=0.08, interval=0.0)
    spent = trained = 0.0
    step = 0
    for _ in range(2000):  # 30 ms slices, 10 ms pictures whenever allowed
        p.earn(0.03, n_running=1)
        trained += 0.03
        step += 5
        clock.advance(0.03)
        order = p.next_live([LiveRun("a", step=step)])
        if order is not None:
            draw(p, order, step, total=0.01, density=0.0, views=0.0)
            spent += 0.01
    assert spent <= 0.08 * trained + p.credit_cap
    assert spent >= 0.07 * trained  # and the budget is used, not wasted


def test_a_run_that_did_not_move_is_not_redrawn_and_the_stalest_goes_first():
    clock = FakeClock()
    p = PicturePacer(clock, interval=0.1)
    p.earn(1.0, n_running=2, idle=True)
    first = p.next_live([LiveRun("a", 5), LiveRun("b", 5)])
    draw(p, first, 5)
    other = "b" if first.run_id == "a" else "a"
    second = p.next_live([LiveRun("a", 5), LiveRun("b", 5)])
    assert second.run_id == other
    draw(p, second, 5)
    clock.advance(1.0)
    assert p.next_live([LiveRun("a", 5), LiveRun("b", 5)]) is None  # neither moved
    assert p.next_live([LiveRun("a", 6), LiveRun("b", 5)]).run_id == "a"


def test_the_interval_between_pictures_of_one_run():
    clock = FakeClock()
    p = PicturePacer(clock, interval=0.1, interval_many=0.15)
    p.earn(1.0, 1, idle=True)
    draw(p, p.next_live([LiveRun("a", 1)]), 1)
    clock.advance(0.05)
    assert p.next_live([LiveRun("a", 2)]) is None
    clock.advance(0.06)
    draw(p, p.next_live([LiveRun("a", 2)]), 2)
    clock.advance(0.11)
    assert p.next_live([LiveRun("a", 3, many=True)]) is None  # small panels: every 0.15 s
    clock.advance(0.05)
    assert p.next_live([LiveRun("a", 3, many=True)]) is not None
    # slow motion: every step is worth a picture
    draw(p, p.next_live([LiveRun("a", 3, many=True)]), 3)
    clock.advance(0.06)
    assert p.next_live([LiveRun("a", 4, many=True)]) is None
    assert (
        p.next_live([LiveRun("a", 4, many=True, speed=10.0)]) is not None
    )  # 10 steps/s: a picture every 0.05 s


def test_the_density_grid_is_redrawn_at_most_every_interval_and_samples_every_picture():
    clock = FakeClock()
    p = PicturePacer(clock, interval=0.0, density_interval=1.0, overhead=1.0)
    p.earn(1.0, 1, idle=True)
    fresh = []
    for step in range(1, 31):
        clock.advance(0.1)
        p.earn(0.1, 1)
        order = p.next_live([LiveRun("a", step)])
        fresh.append(order.density)
        draw(p, order, step, total=0.001, density=0.0005)
    assert fresh[0] and 2 <= sum(fresh) <= 4  # 3 s of pictures every 0.1 s: the grid about once a second


def test_a_costly_density_grid_takes_at_most_half_of_the_pictures_budget():
    clock = FakeClock()
    p = PicturePacer(clock, interval=0.0, overhead=0.08, density_interval=1.0)
    order = p.still("a")
    draw(p, order, 0, total=0.07, density=0.065)
    # 65 ms a grid within half of 8 %: one grid per 65 / 0.04 ms = 1.6 s at least
    p.earn(1.0, 1, idle=True)
    clock.advance(1.2)
    assert not p.next_live([LiveRun("a", 1)]).density
    clock.advance(0.5)
    assert p.next_live([LiveRun("a", 1)]).density


def test_a_costly_family_picture_comes_with_the_density_and_a_cheap_one_every_time():
    clock = FakeClock()
    p = PicturePacer(clock, interval=0.0, picture_seconds=0.008)
    p.earn(1.0, 1, idle=True)
    draw(p, p.still("cheap"), 0, views=0.001, density=0.001)
    draw(p, p.still("costly"), 0, views=0.03, density=0.001)
    clock.advance(0.2)
    assert p.next_live([LiveRun("cheap", 1)]).views
    costly = p.next_live([LiveRun("costly", 1)])
    assert not costly.views and not costly.density


def test_many_panels_make_a_slow_sampler_draw_fewer_points():
    clock = FakeClock()
    p = PicturePacer(clock, interval=0.0, picture_seconds=0.008, n_samples=1000)
    p.earn(1.0, 1, idle=True)
    draw(p, p.still("slow", many=True), 0, per=1e-3)  # 1 ms a point (a 50-step sampler)
    clock.advance(0.5)
    few = p.next_live([LiveRun("slow", 1, many=True)])
    assert few.n_samples == 64  # at least 64 points, about 8 ms
    draw(p, p.still("slow"), 0, per=1e-3)
    assert p.next_live([LiveRun("slow", 2)]).n_samples == 250  # a family's own page: at least 250


def test_metrics_come_after_a_first_picture_and_then_every_interval():
    clock = FakeClock()
    p = PicturePacer(clock, interval=0.0, metrics_interval=4.0)
    p.earn(1.0, 1, idle=True)
    o = p.next_live([LiveRun("a", 1)])
    assert not o.metrics  # the first live picture is a picture only, so every panel moves soon after Train
    draw(p, o, 1)
    clock.advance(0.1)
    o = p.next_live([LiveRun("a", 2)])
    assert o.metrics
    draw(p, o, 2)
    for step in range(3, 10):
        clock.advance(0.4)
        p.earn(1.0, 1, idle=True)
        o = p.next_live([LiveRun("a", step)])
        assert not o.metrics
        draw(p, o, step)
    clock.advance(1.5)  # 4.3 s after the last metrics
    assert p.next_live([LiveRun("a", 10)]).metrics
    # a still picture (paused, stepped) always has its numbers
    assert p.still("a").metrics


def test_a_speed_limit_allows_rate_steps_per_second_and_catches_up_at_most_a_quarter_second():
    s = SpeedLimit(10.0)
    assert s.allowed(0.0, 0) == (1, 0.0)
    assert s.allowed(0.05, 1) == (0, pytest.approx(0.05))
    n, _ = s.allowed(0.3, 1)
    assert n == 3  # steps 1, 2, 3 are due by t = 0.3
    # fall 10 s behind (a slow family): no burst of 100 steps, at most 0.25 s worth
    n, _ = s.allowed(10.5, 6)
    assert n == 3
    s.restart()
    assert s.allowed(20.0, 9) == (1, 0.0)
    with pytest.raises(ValueError):
        SpeedLimit(float("nan"))


def test_metrics_are_charged_in_full_for_one_run_and_as_a_picture_with_many():
    clock = FakeClock()
    one, many = PicturePacer(clock), PicturePacer(clock)
    for p, is_many in ((one, False), (many, True)):
        draw(p, p.still("a", many=is_many), 0)
        order = p._order("a", p.record("a"), clock(), metrics=False, live=True, many=is_many)
        p.paid(order, PictureCost(0.004), 1, many=is_many)
        p.credit = 0.05
        order = p._order("a", p.record("a"), clock(), metrics=True, live=True, many=is_many)
        p.paid(order, PictureCost(0.2), 2, many=is_many)
    assert one.credit == pytest.approx(0.05 - 0.2)
    assert many.credit == pytest.approx(0.05 - 0.004)


def test_costly_views_that_come_with_the_grid_slow_the_grid_down():
    clock = FakeClock()
    p = PicturePacer(clock, interval=0.0, overhead=0.08, density_interval=1.0, picture_seconds=0.008)
    draw(p, p.still("a"), 0, total=0.09, density=0.02, views=0.06)  # a flow: warped grid 60 ms, density 20 ms
    p.earn(1.0, 1, idle=True)
    clock.advance(1.5)
    assert not p.next_live([LiveRun("a", 1)]).density  # (20 + 60) ms within half of 8 %: every 2 s at most
    clock.advance(0.6)
    assert p.next_live([LiveRun("a", 1)]).density


def test_cheap_panels_move_more_often_than_costly_ones_for_the_same_budget():
    """Many panels share one budget: an AE's 1 ms picture comes at its interval while a diffusion chain's
    80 ms one saves up for its own, instead of both waiting at the pace the costly one sets."""
    clock = FakeClock()
    p = PicturePacer(clock, overhead_many=0.3, interval_many=0.15)
    cost = {"cheap": 0.001, "costly": 0.08}
    drawn = {"cheap": 0, "costly": 0}
    step = 0
    for _ in range(2000):  # 20 s of 10 ms training slices
        clock.advance(0.01)
        step += 1
        p.earn(0.01, n_running=3)
        order = p.next_live([LiveRun(k, step=step, many=True, peers=2) for k in cost])
        if order is not None:
            draw(p, order, step, total=cost[order.run_id])
            drawn[order.run_id] += 1
    assert drawn["costly"] >= 10  # not starved: it takes what the cheap one leaves
    assert 0.95 * 20 / 0.15 <= drawn["cheap"] <= 20 / 0.15 + 1, drawn  # at its interval, not the costly pace
    spent = sum(cost[k] * n for k, n in drawn.items())
    assert spent <= 0.3 * 20 + p.credit_cap  # within the budget


def test_evaluations_take_at_most_their_share_of_a_crowded_workers_time():
    """Fifty runs of ten sessions in one worker, each due for metrics every 18 s at 0.3 s an evaluation: by
    their intervals alone evaluations would take 0.83 s a second; the budget holds them to 10 % of training."""
    clock = FakeClock()
    p = PicturePacer(clock, metrics_share=0.1)
    runs = [f"s{i // 5}/r{i % 5}" for i in range(50)]
    evals, evaluated, trained, step = 0.0, set(), 0.0, 0
    for _ in range(6000):  # 60 s of 10 ms slices
        clock.advance(0.01)
        step += 1
        trained += 0.01
        p.earn(0.01, n_running=50)
        order = p.next_live([LiveRun(r, step=step, many=True, peers=9) for r in runs])
        if order is not None:
            cost = 0.3 if order.metrics else 0.002
            draw(p, order, step, total=cost)
            if order.metrics:
                evals += cost
                evaluated.add(order.run_id)
            clock.advance(cost)  # what the worker spends is wall time too
    assert evals <= 0.1 * trained + 0.3 + 1e-9, evals  # earned, plus the one evaluation it may owe
    assert evals >= 0.07 * trained  # the budget is used: the scoreboard still moves
    assert len(evaluated) >= 15  # spread over the runs, not one run measured over and over


def test_one_costly_evaluation_is_not_starved_by_cheap_ones():
    clock = FakeClock()
    p = PicturePacer(clock, metrics_share=0.1, interval_many=0.0)
    cost = {"vae": 1.0, "ae": 0.05, "gan": 0.05}
    measured = dict.fromkeys(cost, 0)
    for step in range(1, 6001):
        clock.advance(0.01)
        p.earn(0.01, n_running=3)
        order = p.next_live([LiveRun(k, step=step, many=True, peers=3) for k in cost])
        if order is not None:
            total = cost[order.run_id] if order.metrics else 0.002
            draw(p, order, step, total=total)
            measured[order.run_id] += order.metrics
            clock.advance(total)
    assert measured["vae"] >= 3, measured


def crowd(p, clock, cost: dict[str, float], seconds: float) -> dict[str, int]:
    """Pictures of runs that all move every 10 ms slice, each picture costing cost[run]: how many each got."""
    drawn = dict.fromkeys(cost, 0)
    for step in range(1, int(seconds / 0.01) + 1):
        clock.advance(0.01)
        p.earn(0.01, n_running=len(cost))
        for _ in cost:  # as the worker after a slice: pictures while there is credit
            order = p.next_live([LiveRun(k, step=step, many=True, peers=9) for k in cost])
            if order is None:
                break
            draw(p, order, step, total=cost[order.run_id])
            drawn[order.run_id] += 1
            clock.advance(cost[order.run_id])
    return drawn


def test_costly_panels_of_a_crowded_worker_are_not_starved_by_cheap_ones():
    """Forty 2 ms panels are always due somewhere, so a credit they spend as soon as it covers 2 ms never grows
    to a diffusion chain's 40 ms: the stalest panel gets half of what training earns put by for it."""
    clock = FakeClock()
    p = PicturePacer(clock, overhead_many=0.3, interval_many=0.15)
    cost = {f"cheap{i}": 0.002 for i in range(40)} | {f"costly{i}": 0.04 for i in range(4)}
    drawn = crowd(p, clock, cost, 60.0)
    assert min(drawn[f"costly{i}"] for i in range(4)) >= 20, drawn  # each moves every few seconds
    assert min(drawn[f"cheap{i}"] for i in range(40)) >= 60, drawn  # and the cheap ones still move
    spent = sum(cost[k] * n for k, n in drawn.items())
    assert spent <= 0.3 * 60 + 2 * p.credit_cap  # within the budget (plus what was saved and not yet spent)
