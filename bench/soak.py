"""Soak: one browser session trains the Compare page for a long time; the server's and workers' memory must
stay flat (histories, recordings, caches and the feed are bounded).

    python bench/soak.py [--minutes 60] [--every 30] [--families ae,vae,gan,flow,ar,ddpm,score]

Resident memory of the server and of its workers is sampled every `--every` seconds while the runs train
without a budget (compare.seconds=0); the verdict compares the last sample with the one taken after the
first five minutes (warm-up: imports, the first pictures, the first evaluations) and must be within 10 %.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.compare_throughput import ARGS, family_of, open_compare, rss_mb, steps_on, wait_panels  # noqa: E402
from tests.e2e.conftest import kill_group, start_server  # noqa: E402


def main() -> None:
    from playwright.sync_api import sync_playwright

    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--every", type=float, default=30.0, help="seconds between memory samples")
    p.add_argument("--families", default="ae,vae,gan,flow,ar,ddpm,score")
    p.add_argument("--warm-up", type=float, default=5.0, help="minutes before the reference sample")
    a = p.parse_args()
    families = a.families.split(",")
    # a plain kill (SIGTERM) ends the soak through `finally`, which stops the server's process group
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    proc, url = start_server()
    rows = []
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            ctx, pg = open_compare(b, url, families, 0)
            wait_panels(pg, len(families) + 1, 600)
            box = pg.get_by_role("button", name=re.compile("Train")).bounding_box()
            pg.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            t0 = time.perf_counter()
            while (elapsed := time.perf_counter() - t0) < a.minutes * 60:
                time.sleep(min(a.every, max(0.0, a.minutes * 60 - elapsed)))
                pids = family_of(proc.pid)
                steps = steps_on(pg)
                rows.append(
                    (
                        (time.perf_counter() - t0) / 60,
                        rss_mb(pids[:1]),
                        rss_mb(pids[1:]),
                        sum(steps.values()),
                    )
                )
                print(
                    f"{rows[-1][0]:6.1f} min  server {rows[-1][1]:6.0f} MB  workers {rows[-1][2]:6.0f} MB  "
                    f"steps {rows[-1][3]:,}",
                    flush=True,
                )
            ctx.close()
            b.close()
    finally:
        kill_group(proc)
    print(
        f"\n# Soak: {', '.join(families)} on Compare, {a.minutes:g} min, {time.strftime('%Y-%m-%d %H:%M')}\n"
    )
    print("| minutes | server MB | workers MB | total MB | steps (all panels) |")
    print("|---|---|---|---|---|")
    for m, s, w, n in rows[:: max(1, len(rows) // 12)] + rows[-1:]:
        print(f"| {m:.1f} | {s:.0f} | {w:.0f} | {s + w:.0f} | {n:,} |")
    after = [r for r in rows if r[0] >= a.warm_up] or rows
    if after:
        totals = [s + w for _, s, w, _ in after]
        ref, last = totals[0], totals[-1]
        growth = last / ref - 1
        spread = (max(totals) - min(totals)) / ref
        # A least-squares slope over the samples after warm-up: a leak shows as a steady rise, a peak does not.
        ts = [r[0] for r in after]
        mt, mv = sum(ts) / len(ts), sum(totals) / len(totals)
        den = sum((t - mt) ** 2 for t in ts) or 1.0
        slope = sum((t - mt) * (v - mv) for t, v in zip(ts, totals)) / den
        print(
            f"\nresident memory after {after[-1][0]:.0f} min vs after {after[0][0]:.0f} min: {100 * growth:+.1f} %; "
            f"highest vs lowest after warm-up: {100 * spread:.1f} % of the first; trend {slope * 60:+.0f} MB/hour "
            f"(target within 10 %): {'met' if max(abs(growth), spread) <= 0.10 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
