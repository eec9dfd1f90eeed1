"""Memory after sessions close: does a server give back what a crowd took?

    python bench/memory_after_close.py [--sessions 5] [--train 30] [--rounds 2]

One session trains the nine default families on Compare and closes (the reference: every import made, the
classical references built); then `--rounds` times, `--sessions` sessions train together for `--train`
seconds and all close. Resident memory of the server and of its trainer workers is printed while they
train and 5, 30 and 90 s after they close; the verdict compares the last sample with the reference
(target: back within 10 %, and no growth from one round to the next).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.compare_throughput import ARGS, NINE, click, family_of, open_compare, rss_mb, wait_panels  # noqa: E402
from tests.e2e.conftest import kill_group, start_server  # noqa: E402


def memory(proc) -> tuple[float, float]:
    pids = family_of(proc.pid)
    return rss_mb(pids[:1]), rss_mb(pids[1:])


def one_round(b, url: str, proc, n: int, train: float, rows: list) -> None:
    pages = [open_compare(b, url, NINE, 60) for _ in range(n)]
    for _, pg in pages:
        wait_panels(pg, len(NINE) + 1, 600)
        click(pg, "Train")
    time.sleep(train)
    rows.append((f"{n} session(s) training", *memory(proc)))
    for ctx, _ in pages:
        ctx.close()
    waited = 0
    for t in (5, 30, 90):
        time.sleep(t - waited)
        waited = t
        rows.append((f"{t} s after they closed", *memory(proc)))


def main() -> None:
    from playwright.sync_api import sync_playwright

    p = argparse.ArgumentParser()
    p.add_argument("--sessions", type=int, default=5)
    p.add_argument("--train", type=float, default=30.0, help="seconds the sessions train before closing")
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    proc, url = start_server()
    rows: list[tuple[str, float, float]] = []
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            one_round(b, url, proc, 1, 10.0, rows)
            ref = rows[-1]
            ends = []
            for _ in range(a.rounds):
                one_round(b, url, proc, a.sessions, a.train, rows)
                ends.append(rows[-1])
            b.close()
    finally:
        kill_group(proc)
    print(f"\n# Memory after sessions close, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores\n")
    print("| moment | server MB | workers MB | total MB |")
    print("|---|---|---|---|")
    for label, s, w in rows:
        print(f"| {label} | {s:.0f} | {w:.0f} | {s + w:.0f} |")
    base = ref[1] + ref[2]
    growth = [(e[1] + e[2]) / base - 1 for e in ends]
    print(
        f"\nafter each round, against one session closed ({base:.0f} MB): "
        + ", ".join(f"{100 * g:+.1f} %" for g in growth)
        + f" (target within 10 %): {'met' if max(map(abs, growth)) <= 0.10 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
