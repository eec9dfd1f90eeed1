"""The headless contract: python -m lab list | train | sample | score (see DESIGN.md)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input on the command line: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + message; we print one line
        raise UsageError(f"{self.prog}: {message}" + ("" if message.endswith((".", ")")) else "."))


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m lab", description="Train, sample and score 2D generative models headlessly.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="models, their settings, and datasets")

    t = sub.add_parser(
        "train", help="train a model and write DIR/metrics.json, samples.csv, config.json, model.safetensors"
    )
    t.add_argument("--model", required=True, help="model key (see `list`)")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="built-in dataset name")
    src.add_argument("--data-file", help="CSV with two numeric columns, header optional")
    t.add_argument(
        "--data-set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="dataset parameter, e.g. noise=0.1",
    )
    budget = t.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=float, help="wall-clock training budget (default 15)")
    budget.add_argument("--steps", type=int, help="number of training steps")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--samples", type=int, default=2000, help="rows in samples.csv")
    t.add_argument("--n-train", type=int, default=20000, help="training points drawn from a built-in dataset")
    t.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="model setting, e.g. loss=wgan-gp"
    )
    t.add_argument(
        "--missing",
        choices=["use", "drop"],
        default="use",
        help="rows of --data-file with an empty cell (a missing coordinate): use them (gmm, ar; the other "
        "families refuse them) or drop them",
    )
    t.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    t.add_argument("--out", required=True, help="output directory")

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("--run", required=True, help="a directory written by `train`")
    s.add_argument("-n", type=int, required=True, help="number of samples")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="CSV file to write (header x,y)")

    c = sub.add_parser("score", help="log-density of points under a trained run")
    c.add_argument("--run", required=True, help="a directory written by `train`")
    c.add_argument("--points", required=True, help="CSV with two numeric columns")
    c.add_argument("--out", required=True, help="CSV file to write (header log_prob)")

    from lab import sweep

    sweep.add_parser(sub)  # models x seeds x settings on every core or on Ray (lab/sweep.py; light, no torch)
    return p


# ---------------------------------------------------------------------------------------------
# Progress bar (terminal only, and only for runs longer than a second)
# ---------------------------------------------------------------------------------------------


class Progress:
    def __init__(self, stream=None, width: int = 30, after: float = 1.0):
        self.stream = stream if stream is not None else sys.stderr
        self.width, self.after = width, after
        self.t0 = time.monotonic()
        self.drawn = False
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, run) -> None:
        if not self.enabled or time.monotonic() - self.t0 < self.after:
            return
        f = run.progress
        bar = "#" * int(f * self.width) + "-" * (self.width - int(f * self.width))
        loss = run.losses.last()
        first = next(iter(loss.items()), None)
        tail = f" {first[0]} {first[1]:.4g}" if first else ""
        self.stream.write(f"\r[{bar}] {100 * f:5.1f}%  step {run.step}  {run.train_seconds:.1f}s{tail}   ")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def cmd_list(args) -> int:
    from lab.base import REGISTRY, get_model_class
    from lab.data import DATASETS

    print("models:")
    for key in REGISTRY:
        try:
            cls = get_model_class(key)
        except ImportError as e:
            print(f"  {key:6s} (not available: {e})")
            continue
        print(f"  {key:6s} {cls.title} — density: {cls.density_kind}")
        for f in dataclasses.fields(cls.Config):
            if f.name in cls.unused_fields:
                continue
            m = f.metadata
            extra = f" one of {'|'.join(map(str, m['choices']))}" if m.get("choices") else ""
            if m.get("min") is not None or m.get("max") is not None:
                extra += f" in [{m.get('min')}, {m.get('max')}]"
            print(f"         --set {f.name}={f.default}{extra}  {m.get('help', '')}")
    print("datasets:")
    for name, cls in DATASETS.items():
        params = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls))
        print(f"  {name:13s} {cls.title} ({params})")
    return 0


def _positive(name: str, v, limit: float) -> None:
    if v is None:
        return
    if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 < v <= limit):
        raise UsageError(f"{name} must be a positive number up to {limit:g}, got {v}.")


def _seed(v: int) -> int:
    from lab.base import MAX_SEED

    if not 0 <= v <= MAX_SEED:
        raise UsageError(f"--seed must be a whole number from 0 to {MAX_SEED}, got {v}.")
    return v


def _device(name: str) -> str:
    import torch

    if name == "cpu":
        return name
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for, but no CUDA GPU is available here.")
        try:
            torch.device(name)
        except RuntimeError:
            raise UsageError(f"--device must be cpu, cuda or cuda:N, got '{name[:40]}'.") from None
        index = torch.device(name).index
        if index is not None and index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {name} names GPU {index}, but this machine has {torch.cuda.device_count()}."
            )
        return name
    raise UsageError(f"--device must be cpu or cuda, got '{name[:40]}'.")


def check_run_options(
    seconds: float | None = None, steps: int | None = None, n_train: int | None = None, device: str = "cpu"
) -> str:
    """The checks `train` and `sweep` share (budgets, --n-train, --device), one sentence each; returns the device."""
    _positive("--seconds", seconds, 86_400)
    _positive("--steps", steps, 10**8)
    _positive("--n-train", n_train, 10**6)
    return _device(device)


def _out_dir(path: str) -> str:
    """Create the output directory and prove it writable before any training time is spent."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out {path} is a file, not a directory.")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".lab-write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UsageError(f"--out {path} cannot be written ({e.strerror or e}).") from None
    return path


def _out_file(path: str) -> str:
    """A CSV output path: not a directory, its folder creatable and writable (checked before the work)."""
    if os.path.isdir(path):
        raise UsageError(
            f"--out {path} is a directory; give a file name such as {os.path.join(path, 'out.csv')}."
        )
    folder = os.path.dirname(os.path.abspath(path))
    above = folder
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise UsageError(f"--out {path} cannot be written ({above} is not a directory).")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {path} cannot be written ({e.strerror or e}).") from None
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"--out {path} cannot be written (permission denied).")
    return path


def _write_csv(path: str, header: str, rows) -> None:
    import numpy as np

    try:
        np.savetxt(path, np.asarray(rows), delimiter=",", header=header, comments="", fmt="%.8g")
    except OSError as e:
        raise UsageError(f"--out {path} cannot be written ({e.strerror or e}).") from None


def _write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(_finite(obj), f, indent=2)


# A run directory's config.json carries its state: "running" while train works on it, then "done",
# "diverged" or "failed". `sample` and `score` use only a run whose state is "done" or "diverged".
RUNNING, DONE_STATE, DIVERGED_STATE, FAILED = "running", "done", "diverged", "failed"


def cmd_train(args) -> int:
    import torch

    from lab.base import get_model_class, parse_sets, save_model
    from lab.data import FAMILIES_WITH_MISSING, load_points_csv, make_dataset
    from lab.metrics import Evaluator
    from lab.run import DIVERGED, RunSpec, fit

    # every check before any file is written or any training time is spent
    _positive("--samples", args.samples, 10**7)
    _seed(args.seed)
    device = check_run_options(args.seconds, args.steps, args.n_train, args.device)
    cls = get_model_class(args.model)
    config = parse_sets(cls.Config, args.set)
    if args.data_file:
        if args.data_set:
            raise UsageError("--data-set applies to built-in datasets, not to --data-file.")
        policy = "drop" if args.missing == "drop" else "use" if cls.learns_from_incomplete else "error"
        why = f"{args.model} cannot learn from incomplete points ({FAMILIES_WITH_MISSING} can): add --missing drop"
        # a class-conditional fm / ddpm reads x, y, label rows (`is True`: ar's conditional is "mog" or "softmax")
        if getattr(config, "conditional", False) is True:
            from lab.guidance import load_labelled_points

            ds = load_labelled_points(args.data_file)
        else:
            ds = load_points_csv(args.data_file, missing=policy, cannot=why)
        data_desc = {"file": os.path.abspath(args.data_file), "rows": len(ds.points)}
        if len(ds.incomplete):
            data_desc["incomplete_rows"] = len(ds.incomplete)
    else:
        params = dict(s.split("=", 1) if "=" in s else (s, "") for s in args.data_set)
        ds = make_dataset(args.data, **params)
        data_desc = {"name": ds.name, **ds.params()}
    seconds = args.seconds if args.seconds is not None or args.steps is not None else 15.0
    spec = RunSpec(
        args.model,
        ds,
        config,
        seed=args.seed,
        n_train=args.n_train,
        max_steps=args.steps,
        max_seconds=seconds,
        device=device,
    )
    out = _out_dir(args.out)
    run_info = {
        "model": args.model,
        "config": config.to_dict(),
        "data": data_desc,
        "seed": args.seed,
        "max_steps": args.steps,
        "max_seconds": seconds,
        "n_train": args.n_train,
        "device": device,
    }
    _write_json(os.path.join(out, "config.json"), {**run_info, "status": RUNNING})
    try:
        torch.manual_seed(args.seed)
        torch.set_num_threads(1)  # small networks train fastest on one intra-op thread, as in the app
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # and scikit-learn's OpenMP/BLAS must not oversubscribe the cores
        bar = Progress()
        run = fit(spec, progress=bar)
        bar.close()

        model = run.model
        diverged = run.status == DIVERGED
        ev = Evaluator(
            ds, n=2000, seed=args.seed + 1000, test_points=None if ds.has_density else run.test_points
        )
        m = ev(model)
        state = DIVERGED_STATE if diverged else DONE_STATE
        metrics = {
            "model": args.model,
            "data": data_desc,
            "seed": args.seed,
            "steps": run.step,
            "train_seconds": round(run.train_seconds, 4),
            "sample_seconds_per_1000": m["sample_seconds_per_1000"],
            "energy_distance": m["energy_distance"],
            "energy_distance_floor": m["energy_distance_floor"],
            "diverged": diverged,
            "status": state,
            "message": run.message,
        }
        for k in ("test_nll", "entropy", "kl_to_truth", "blur_gap", "modes", "n_modes", "high_quality"):
            if k in m and m[k] is not None:
                metrics[k] = m[k]
        if "test_nll" in metrics and not ds.has_density:
            metrics["test_nll_points"] = len(ev.truth)  # held-out rows of the data file
        save_model(model, os.path.join(out, "model.safetensors"))
        _write_csv(os.path.join(out, "samples.csv"), "x,y", model.sample(args.samples, args.seed).numpy())
        _write_json(os.path.join(out, "metrics.json"), metrics)
        # last: the run is usable only once every other file is complete
        _write_json(
            os.path.join(out, "config.json"),
            {**run_info, "config": model.config.to_dict(), "status": state, "message": run.message},
        )
    except BaseException as e:
        reason = (
            "interrupted" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {_first_line(e)}"
        )
        failed = {**run_info, "status": FAILED, "message": f"training failed ({reason})"}
        try:
            _write_json(os.path.join(out, "config.json"), failed)
            _write_json(
                os.path.join(out, "metrics.json"),
                {"model": args.model, "data": data_desc, "seed": args.seed, "diverged": False, **failed},
            )
        except OSError:
            pass  # the directory went away: nothing there can be mistaken for a good run
        raise
    line = (
        f"{args.model} on {data_desc.get('name', os.path.basename(args.data_file or ''))}: "
        f"{run.step} steps in {run.train_seconds:.1f} s"
    )
    if "kl_to_truth" in metrics:
        line += f", test NLL {_num(metrics['test_nll'])}, KL to truth {_num(metrics['kl_to_truth'])}"
    elif "test_nll" in metrics:
        line += f", held-out NLL {_num(metrics['test_nll'])}"
    floor = metrics["energy_distance_floor"]
    line += f", energy distance {_num(metrics['energy_distance'], '.4g')}"
    line += f" (floor {_num(floor, '.2g')})" if floor is not None else ""
    print(line + (f" — {run.message}" if diverged else ""))
    return 0


def _num(v, fmt: str = ".4f") -> str:
    return "n/a" if v is None else format(v, fmt)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else "no message"


def _finite(d):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(d, dict):
        return {k: _finite(v) for k, v in d.items()}
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def _load_run(run_dir: str):
    """The model of a finished run directory; a missing, unfinished or failed run is a UsageError."""
    from lab.base import load_model

    if not os.path.isdir(run_dir):
        raise UsageError(f"--run {run_dir} is not a directory.")
    cfg_path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(cfg_path):
        raise UsageError(f"--run {run_dir} has no config.json, so it is not a run written by `train`.")
    try:
        with open(cfg_path, "rb") as f:
            info = json.loads(f.read(1_000_000))
    except (OSError, ValueError, RecursionError):
        raise UsageError(f"--run {run_dir} has a config.json that is not readable JSON.") from None
    if not isinstance(info, dict):
        raise UsageError(f"--run {run_dir} has a config.json that is not a run's description.")
    state = info.get(
        "status", DONE_STATE
    )  # runs written before the status existed finished or never wrote one
    if state == RUNNING:
        raise UsageError(f"--run {run_dir} is still training, or its training was killed before it finished.")
    if state == FAILED:
        why = str(info.get("message", "training failed"))[:200]
        raise UsageError(f"--run {run_dir} is a failed run ({why}); train it again.")
    if state not in (DONE_STATE, DIVERGED_STATE):
        raise UsageError(f"--run {run_dir} has an unknown status '{str(state)[:40]}' in its config.json.")
    path = os.path.join(run_dir, "model.safetensors")
    if not os.path.isfile(path):
        raise UsageError(f"--run {run_dir} has no model.safetensors; train into it first.")
    return load_model(path, expect=info.get("model") if isinstance(info.get("model"), str) else None)


def cmd_sample(args) -> int:
    _positive("-n", args.n, 10**7)
    _seed(args.seed)
    out = _out_file(args.out)
    model = _load_run(args.run)
    x = model.sample(args.n, args.seed).numpy()
    _write_csv(out, "x,y", x)
    print(f"wrote {args.n} samples to {out}")
    return 0


def cmd_score(args) -> int:
    from lab.base import REGISTRY, get_model_class
    from lab.data import load_points_csv

    out = _out_file(args.out)
    model = _load_run(args.run)
    if not model.has_log_prob:
        with_density = ", ".join(k for k in REGISTRY if get_model_class(k).has_log_prob)
        raise UsageError(
            f"The {model.key} model has no density, so it cannot score points (models with one: {with_density})."
        )
    pts = load_points_csv(args.points, training=False).points
    lp = model.log_prob(pts).double().numpy()
    _write_csv(out, "log_prob", lp.reshape(-1, 1))
    print(f"wrote {len(lp)} log-densities to {out} (mean {lp.mean():.4f})")
    return 0


def main(argv: list[str] | None = None) -> int:
    from lab.base import ConfigError
    from lab.data import DataError

    try:
        args = _parser().parse_args(argv)
        from lab.sweep import command as cmd_sweep

        commands = {
            "list": cmd_list,
            "train": cmd_train,
            "sample": cmd_sample,
            "score": cmd_score,
            "sweep": cmd_sweep,
        }
        return commands[args.command](args)
    except (UsageError, ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except BrokenPipeError:  # `python -m lab list | head`
        return 0
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"error: {e.strerror or e} ({e.filename})" if e.filename else f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # a bug: still one line, never a traceback (LAB_DEBUG=1 shows it)
        if os.environ.get("LAB_DEBUG"):
            raise
        print(
            f"error: internal error ({type(e).__name__}: {e}); rerun with LAB_DEBUG=1 for details.",
            file=sys.stderr,
        )
        return 1
