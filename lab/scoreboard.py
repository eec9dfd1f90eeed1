"""The lecture's comparison table of generative families, measured: each claim beside the number, disagreements marked."""

from __future__ import annotations

import atexit
import math
import weakref
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# ---------------------------------------------------------------------------------------------
# The claims, as data. Each column is a measurement; each claim says what the lecture expects of
# a family in that column. `expect` is judged by RULES against the other families in the table.
# ---------------------------------------------------------------------------------------------

COLUMNS: dict[str, str] = {
    "sample_ms": "sampling ms / 1000",
    "train_ms": "training ms / step",
    "density": "density",
    "kl": "KL to truth (nats)",
    "energy": "energy distance",
    "blur": "blur gap (nats)",
    "modes": "modes found",
    "spread": "seed spread (std of energy)",
}

# what each column's number means, for the page
COLUMN_HELP: dict[str, str] = {
    "sample_ms": "wall time to draw 1000 samples (median over seeds); lower is faster",
    "train_ms": "wall time per training step (median over seeds)",
    "density": "what log_prob gives: exact, a bound (ELBO) or none",
    "kl": "KL(truth || model) = test NLL minus the true entropy (median over seeds); only with a density",
    "energy": "energy distance between model samples and fresh true samples (median over seeds); lower is better",
    "blur": "mean true log-density of data minus that of samples: large when samples fall between the data",
    "modes": "modes with at least one high-quality sample on the modes dataset (mean over seeds)",
    "spread": "std of the energy distance across seeds (a diverged seed counts as 1.0), plus runs that diverged: large means unstable",
}

FAMILY_TITLES: dict[str, str] = {
    "gan": "GAN",
    "vae": "VAE",
    "flow": "Flow",
    "ddpm": "Diffusion (DDPM)",
    "score": "Diffusion (score)",
    "ar": "Autoregressive",
    "ae": "Autoencoder",
    "gmm": "GMM (reference)",
    "kde": "KDE (reference)",
    "fm": "Flow matching",
}


@dataclass(frozen=True)
class Claim:
    text: str  # the lecture's words
    column: str
    expect: str  # a key of RULES


_DIFFUSION = [
    Claim("high quality", "energy", "low"),
    Claim("high quality", "blur", "low"),
    Claim("diverse", "modes", "all"),
    Claim("slow sampling", "sample_ms", "high"),
]

CLAIMS: dict[str, list[Claim]] = {
    "gan": [
        Claim("high quality", "energy", "low"),
        Claim("high quality", "blur", "low"),
        Claim("fast sampling", "sample_ms", "low"),
        Claim("unstable", "spread", "high"),
        Claim("mode collapse", "modes", "missed"),
        Claim("no density", "density", "none"),
    ],
    "vae": [
        Claim("fast sampling", "sample_ms", "low"),
        Claim("approximate density", "density", "bound"),
        Claim("blurry", "blur", "high"),
    ],
    "flow": [Claim("exact likelihood", "density", "exact"), Claim("costly", "train_ms", "high")],
    "ddpm": list(_DIFFUSION),
    "score": list(_DIFFUSION),
    "ar": [
        Claim("exact likelihood", "density", "exact"),
        Claim("stable", "spread", "low"),
        Claim("slow sequential sampling", "sample_ms", "high"),
    ],
    "fm": [
        Claim("exact likelihood", "density", "exact"),
        Claim("high quality", "energy", "low"),
        Claim("diverse", "modes", "all"),
    ],
}
LECTURE_KEYS = ["gan", "vae", "flow", "ddpm", "ar"]


def _median(values: list[float]) -> float:
    return float(np.median(values))


# RULES: expect -> (value, every family's value in that column, n_modes) -> agrees?
# "low"/"high" are relative to the table: at or below / at or above the median of the families
# measured, so "fast" means "among the faster half here", whatever the machine.
RULES: dict[str, Callable[[object, list, int | None], bool]] = {
    "low": lambda v, col, n_modes: v <= _median(col),
    "high": lambda v, col, n_modes: v >= _median(col),
    "exact": lambda v, col, n_modes: v == "exact",
    "bound": lambda v, col, n_modes: v == "bound",
    "none": lambda v, col, n_modes: v == "none",
    "all": lambda v, col, n_modes: n_modes is not None and v >= n_modes - 1e-9,
    "missed": lambda v, col, n_modes: n_modes is not None and v < n_modes - 1e-9,
}
RELATIVE = {"low", "high"}


def judge(claim: Claim, value, column_values: list, n_modes: int | None = None) -> bool | None:
    """Whether a measured value agrees with a claim (None when it was not measured)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    col = [v for v in column_values if v is not None and not (isinstance(v, float) and not math.isfinite(v))]
    if claim.expect in RELATIVE and len(col) < 2:
        return None  # "faster than the others" needs others
    return bool(RULES[claim.expect](value, col, n_modes))


# ---------------------------------------------------------------------------------------------
# Measuring: one run per (family, dataset, seed), with lab.runner.fit and lab.metrics.Evaluator
# ---------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    key: str
    dataset: str
    seed: int
    steps: int = 0
    train_seconds: float = 0.0
    status: str = ""
    diverged: bool = False
    metrics: dict = field(default_factory=dict)
    error: str = ""


def available(keys: list[str]) -> dict[str, str]:
    """key -> "" when its family imports, else the one-line reason it cannot be measured."""
    from lab.base import get_model_class

    out = {}
    for k in keys:
        try:
            get_model_class(k)
            out[k] = ""
        except Exception as e:  # a family not written yet: ModuleNotFoundError
            out[k] = f"not available ({type(e).__name__}: {e})"
    return out


def measure(
    key: str,
    dataset: str,
    seed: int,
    seconds: float,
    n_eval: int = 2000,
    n_train: int = 20_000,
    should_stop: Callable[[], bool] | None = None,
) -> Measurement:
    """Train `key` on `dataset` for `seconds` (lab.runner.fit) and evaluate it (lab.metrics.Evaluator)."""
    from lab.data import make_dataset
    from lab.metrics import Evaluator
    from lab.run import DIVERGED, RunSpec, fit

    meas = Measurement(key, dataset, seed)
    ds = make_dataset(dataset)

    def progress(run):
        if should_stop is not None and should_stop():
            raise _Cancelled()

    try:
        run = fit(RunSpec(key, ds, seed=seed, n_train=n_train, max_seconds=seconds), progress=progress)
    except _Cancelled:
        raise
    except Exception as e:
        meas.error = f"{type(e).__name__}: {e}"
        return meas
    meas.steps, meas.train_seconds, meas.status = run.step, run.train_seconds, run.message
    meas.diverged = run.status == DIVERGED
    if not meas.diverged:
        meas.metrics = Evaluator(ds, n=n_eval, seed=seed + 1000)(run.model)
    return meas


class _Cancelled(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# From measurements to the table
# ---------------------------------------------------------------------------------------------


def aggregate(
    measurements: list[Measurement], main: str = "moons", modes_dataset: str = "8gaussians"
) -> dict[str, dict]:
    """key -> {column: value}: medians over seeds on `main`, mode coverage on `modes_dataset`,
    and the spread of the energy distance across seeds (its std) as stability. The std, not std / mean:
    every family is scored against the same true sample, so the numbers are comparable, and a
    relative spread would call a near-perfect family "unstable" for its evaluation noise."""
    from lab.base import get_model_class

    out: dict[str, dict] = {}
    keys = list(dict.fromkeys(m.key for m in measurements))
    for k in keys:
        on_main = [m for m in measurements if m.key == k and m.dataset == main and not m.error]
        ok = [m for m in on_main if not m.diverged and m.metrics]
        row: dict = {c: None for c in COLUMNS}
        try:
            row["density"] = get_model_class(k).density_kind
        except Exception:
            row["density"] = None

        def med(name):
            v = [
                m.metrics[name]
                for m in ok
                if m.metrics.get(name) is not None and math.isfinite(m.metrics[name])
            ]
            return _median(v) if v else None

        row["sample_ms"] = (
            None if med("sample_seconds_per_1000") is None else 1000 * med("sample_seconds_per_1000")
        )
        tr = [1000 * m.train_seconds / m.steps for m in on_main if m.steps]
        row["train_ms"] = _median(tr) if tr else None
        row["kl"], row["energy"], row["blur"] = med("kl_to_truth"), med("energy_distance"), med("blur_gap")
        e = [m.metrics["energy_distance"] for m in ok]
        if len(e) >= 2:
            row["spread"] = float(np.std(e))
        row["diverged"] = sum(m.diverged for m in on_main)
        row["seeds"] = len(on_main)
        on_modes = [
            m for m in measurements if m.key == k and m.dataset == modes_dataset and not m.error and m.metrics
        ]
        if on_modes:
            row["modes"] = float(np.mean([m.metrics["modes"] for m in on_modes]))
            row["n_modes"] = int(on_modes[0].metrics["n_modes"])
        if any(m.diverged for m in measurements if m.key == k):
            row["spread"] = max(
                row["spread"] or 0.0, 1.0
            )  # a diverged seed is instability (1.0 is far above any trained model)
        row["errors"] = sorted({m.error for m in measurements if m.key == k and m.error})
        out[k] = row
    return out


def _fmt(column: str, v) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if column == "modes":
        return f"{v:.1f}".rstrip("0").rstrip(".")
    if column in ("sample_ms", "train_ms"):
        return f"{v:.3g}"
    return f"{v:.3g}"


def table(agg: dict[str, dict]) -> list[dict]:
    """One row per family: {"family", "key", column: {"value", "text", "claim", "agrees"}}.

    `text` is the measured value, then the claim in brackets, then ✗ where the measurement
    disagrees with it (✓ where it agrees)."""
    rows = []
    for k, vals in agg.items():
        row: dict = {"family": FAMILY_TITLES.get(k, k), "key": k}
        claims = {c.column: c for c in CLAIMS.get(k, [])}
        for col in COLUMNS:
            v = vals.get(col)
            text = _fmt(col, v)
            if col == "modes" and v is not None and vals.get("n_modes"):
                text = f"{text}/{vals['n_modes']}"
            if col == "spread" and vals.get("diverged"):
                text += f", {vals['diverged']}/{vals['seeds']} diverged"
            cell = {"value": v, "text": text, "claim": "", "agrees": None}
            if col in claims:
                cl = claims[col]
                # judged against the families the lecture talks about, not the reference rows
                peers = [a.get(col) for kk, a in agg.items() if kk in CLAIMS]
                cell["claim"] = cl.text
                cell["agrees"] = judge(cl, v, peers, vals.get("n_modes"))
                mark = "" if cell["agrees"] is None else (" ✓" if cell["agrees"] else " ✗")
                cell["text"] = f"{text} ({cl.text}){mark}"
            row[col] = cell
        rows.append(row)
    return rows


def disagreements(rows: list[dict]) -> list[str]:
    """Sentences for every cell where the measurement disagrees with the lecture."""
    out = []
    for r in rows:
        for col in COLUMNS:
            c = r[col]
            if c["agrees"] is False:
                out.append(
                    f'{r["family"]}: the lecture says "{c["claim"]}", measured {COLUMNS[col]} = {_fmt(col, c["value"])}.'
                )
    return out


def markdown(rows: list[dict]) -> str:
    """The table as markdown (the bench prints it)."""
    head = "| family | " + " | ".join(COLUMNS.values()) + " |"
    sep = "|---" * (len(COLUMNS) + 1) + "|"
    body = ["| " + r["family"] + " | " + " | ".join(r[c]["text"] for c in COLUMNS) + " |" for r in rows]
    return "\n".join([head, sep, *body])


# ---------------------------------------------------------------------------------------------
# A background job so a page never waits: the measurements train on the trainer workers
# ---------------------------------------------------------------------------------------------


_LIVE_JOBS: "weakref.WeakSet[ScoreboardJob]" = weakref.WeakSet()


@atexit.register
def _stop_all_jobs() -> None:
    for job in list(_LIVE_JOBS):
        job.cancel(wait=2.0)


# Members whose evaluation costs most go first (a VAE's importance-weighted NLL, a diffusion chain's
# samples), so the cheap ones fill the sweep's tail and no core idles at the end.
MODES_N_EVAL = 300
COSTLIEST_FIRST = ["vae", "ddpm", "score", "fm", "flow", "ar", "gan", "ae", "kde", "gmm"]


class ScoreboardJob:
    """Measures every (dataset, family, seed) as the members of one sweep per dataset (lab.sweep.SweepJob),
    on one trainer per core, in a background thread: the table fills in run by run and the page stays usable.
    Read `progress`, `current`, `rows()`; `cancel()` drops the members still training."""

    def __init__(
        self,
        keys: list[str],
        seconds: float = 3.0,
        seeds: int = 5,
        main: str = "moons",
        modes_dataset: str = "8gaussians",
        n_eval: int = 1000,
        n_train: int = 10_000,
        pool=None,
    ):
        from lab.sweep import SweepJob, make_sweep

        self.keys, self.seconds, self.seeds = list(keys), float(seconds), int(seeds)
        self.main, self.modes_dataset, self.n_eval, self.n_train = main, modes_dataset, n_eval, n_train
        self.skipped = {k: why for k, why in available(self.keys).items() if why}
        ok = [k for k in self.keys if k not in self.skipped]
        datasets = [main] + ([modes_dataset] if modes_dataset and modes_dataset != main else [])
        self.plan = [(k, d, s) for d in datasets for k in ok for s in range(self.seeds)]
        # on the modes dataset only the mode count is read, and it draws its own 2500 samples: the rest of
        # that evaluation (a VAE's importance-weighted NLL, energy distances) is cut to a few hundred points
        n_evals = [n_eval, min(n_eval, MODES_N_EVAL)]
        seeds = f"0-{self.seeds - 1}"
        sweeps = [
            make_sweep(",".join(ok), seeds, data=d, seconds=self.seconds, n_train=n_train, n_eval=ne)
            for d, ne in zip(datasets if ok else [], n_evals)
        ]
        rank = {k: i for i, k in enumerate(COSTLIEST_FIRST)}
        self.job = SweepJob(
            sweeps,
            pool=pool,
            name="scoreboard",
            order=lambda sw, m: (rank.get(m.key, 4), m.seed, sw.data_name),
        )

    def start(self) -> ScoreboardJob:
        self.job.start()
        _LIVE_JOBS.add(self)
        return self

    @property
    def measurements(self) -> list[Measurement]:
        return [measurement_of(row) for _, row in self.job.pairs()]

    @property
    def current(self) -> str:
        return ", ".join(
            f"{FAMILY_TITLES.get(m.key, m.key)} on {d}, seed {m.seed}" for d, m in self.job.in_flight()
        )

    @property
    def error(self) -> str:
        return self.job.error

    def cancel(self, wait: float = 0.0) -> None:
        self.job.cancel(wait)

    @property
    def done(self) -> bool:
        return self.job.done

    @property
    def elapsed(self) -> float:
        return self.job.elapsed

    @property
    def n_done(self) -> int:
        return self.job.done_count

    @property
    def progress(self) -> float:
        return self.job.done_count / len(self.plan) if self.plan else 1.0

    def rows(self) -> list[dict]:
        ms = self.measurements
        return table(aggregate(ms, self.main, self.modes_dataset)) if ms else []


def measurement_of(row: dict) -> Measurement:
    """A sweep member's row (lab.sweep.row_of) as a Measurement; a failed member keeps its error."""
    from lab.sweep import METRICS

    m = Measurement(row["model"], row["data"], int(row["seed"]))
    if row["status"] == "failed":
        m.error = row["error"] or "failed"
        return m
    m.steps, m.train_seconds = row["steps"] or 0, row["train_seconds"] or 0.0
    m.status, m.diverged = row["message"], bool(row["diverged"])
    m.metrics = {k: row[k] for k in METRICS if row.get(k) is not None}
    return m
