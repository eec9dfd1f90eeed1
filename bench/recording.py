"""Recording while training: steps with and without recording the panels, and what recording costs.

    python bench/recording.py [--seconds 20] [--repeats 2]

Six families train on one session of a worker pool (as on the Compare page) for `--seconds`, alternately
with and without recording, from the same start; the table gives the training steps of each and their ratio
(target: recording slows training by at most 10 %), the frames kept, and the page process's time per frame.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lab.data import make_dataset  # noqa: E402
from lab.live.pool import WorkerPool  # noqa: E402
from lab.live.session import LiveSession  # noqa: E402
from lab.spec import RunSpec  # noqa: E402

FAMILIES = ["flow", "ar", "vae", "gan", "ddpm", "gmm"]


def trial(pool: WorkerPool, seconds: float, record: bool) -> tuple[int, int, float]:
    """(training steps of every run, frames recorded, seconds spent recording) after `seconds` of training."""
    s = LiveSession(pool)
    ds = make_dataset("moons")
    for k in FAMILIES:
        s.add(k, RunSpec(k, ds, None, seed=0, views=False), many=True)
    while s.building:
        time.sleep(0.05)
    s.record(FAMILIES, record)
    spent = 0.0
    if record:  # time what the page process does per frame
        from lab.record import Recording

        add = Recording.add

        def timed(self, frame):
            nonlocal spent
            t0 = time.perf_counter()
            try:
                return add(self, frame)
            finally:
                spent += time.perf_counter() - t0

        Recording.add = timed
    s.play()
    time.sleep(seconds)
    s.pause()
    steps = sum(s.snapshot(k).step for k in FAMILIES)
    frames = sum(len(s.recording(k)) for k in FAMILIES) if record else 0
    if record:
        Recording.add = add
    s.close()
    return steps, frames, spent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    pool = WorkerPool(1)
    try:
        plain, recorded, frames, spent = [], [], [], []
        for _ in range(a.repeats):
            plain.append(trial(pool, a.seconds, False)[0])
            st, fr, sp = trial(pool, a.seconds, True)
            recorded.append(st)
            frames.append(fr)
            spent.append(sp)
    finally:
        pool.close()
    ratios = [r / p for r, p in zip(recorded, plain)]
    print(
        f"# recording while training, six families, one worker, {a.seconds:g} s a trial, "
        f"{time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    print("| measure | value | target |\n|---|---|---|")
    print(f"| training steps without recording (per trial) | {', '.join(map(str, plain))} | |")
    print(f"| training steps while recording (per trial) | {', '.join(map(str, recorded))} | |")
    print(f"| recorded / plain | mean {statistics.mean(ratios):.3f}, worst {min(ratios):.3f} | >= 0.90 |")
    print(f"| frames kept (per trial) | {', '.join(map(str, frames))} | |")
    per = 1e6 * sum(spent) / max(sum(frames), 1)
    print(f"| page process time per frame kept | {per:.0f} us | |")


if __name__ == "__main__":
    main()
