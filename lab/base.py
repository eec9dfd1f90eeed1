"""The GenerativeModel contract every family implements, its config dataclasses, and the registry."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import threading
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import torch


class ConfigError(ValueError):
    """A config value a person typed is wrong. The message is one sentence."""


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def option(
    default, help: str = "", *, choices=None, min=None, max=None, log: bool = False, live: bool = False
):
    """A config field with the metadata a widget, `--set` and a link need.

    choices: allowed values; min/max: numeric range; log: a log-scale slider; live: may change
    while training runs (the learning rate) instead of needing a reset.
    """
    meta = {"help": help, "choices": choices, "min": min, "max": max, "log": log, "live": live}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Config:
    """Fields shared by every family. Subclasses add their own (all with defaults)."""

    lr: float = option(1e-3, "learning rate", min=1e-5, max=1.0, log=True, live=True)
    batch_size: int = option(256, "points per training step", min=8, max=4096)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_fields(cls: type[Config]) -> list[dataclasses.Field]:
    return list(fields(cls))


def _cast(f: dataclasses.Field, value: Any) -> Any:
    """Turn a string (or a JSON value) into the field's type, with one-sentence errors."""
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    name = f.name
    if t == "bool":
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got '{_short(value)}'.")
    if t == "int":
        try:
            fv = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{name} must be a whole number, got '{_short(value)}'.") from None
        if not math.isfinite(fv) or fv != int(fv):
            raise ConfigError(f"{name} must be a whole number, got '{_short(value)}'.")
        return int(fv)
    if t == "float":
        try:
            fv = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{name} must be a number, got '{_short(value)}'.") from None
        if not math.isfinite(fv):
            raise ConfigError(f"{name} must be a finite number, got '{_short(value)}'.")
        return fv
    return str(value)


def validate_value(f: dataclasses.Field, value: Any) -> Any:
    """Cast and range/choice-check one field value."""
    v = _cast(f, value)
    m = f.metadata
    if m.get("choices") is not None and v not in m["choices"]:
        raise ConfigError(
            f"{f.name} must be one of {', '.join(map(str, m['choices']))}; got '{_short(value)}'."
        )
    if m.get("min") is not None and v < m["min"]:
        raise ConfigError(f"{f.name}={v} is below its minimum {m['min']}.")
    if m.get("max") is not None and v > m["max"]:
        raise ConfigError(f"{f.name}={v} is above its maximum {m['max']}.")
    return v


def make_config(cls: type[Config], values: dict[str, Any] | None = None) -> Config:
    """Build a config from name -> value (strings allowed), checking names, types and ranges."""
    values = values or {}
    known = {f.name: f for f in fields(cls)}
    clean = {}
    for k, v in values.items():
        if k not in known:
            raise ConfigError(f"Unknown setting '{_short(k)}'; this model has {', '.join(known)}.")
        clean[k] = validate_value(known[k], v)
    return cls(**clean)


def parse_sets(cls: type[Config], items: list[str]) -> Config:
    """`--set field=value` items into a config."""
    values = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set needs field=value, got '{item}'.")
        k, v = item.split("=", 1)
        values[k.strip()] = v.strip()
    return make_config(cls, values)


# ---------------------------------------------------------------------------------------------
# Standardisation: models see z = (x - mean) / std; everything shown is in x.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standardizer:
    mean: np.ndarray
    std: np.ndarray

    @staticmethod
    def fit(x: np.ndarray) -> Standardizer:
        x = np.asarray(x, dtype=np.float64)
        std = np.nanstd(x, 0)  # NaN: a missing coordinate (families with learns_from_incomplete)
        return Standardizer(mean=np.nanmean(x, 0), std=np.where(std > 1e-8, std, 1.0))

    @property
    def log_det(self) -> float:
        """log |dz/dx| = -sum log std: add it to log p(z) to get log p(x)."""
        return float(-np.log(self.std).sum())

    def to_z(self, x: torch.Tensor) -> torch.Tensor:
        return (x - torch.as_tensor(self.mean, dtype=x.dtype, device=x.device)) / torch.as_tensor(
            self.std, dtype=x.dtype, device=x.device
        )

    def to_x(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.as_tensor(self.std, dtype=z.dtype, device=z.device) + torch.as_tensor(
            self.mean, dtype=z.dtype, device=z.device
        )


# ---------------------------------------------------------------------------------------------
# The contract
# ---------------------------------------------------------------------------------------------

# nn.Linear and friends initialise from torch's global RNG; constructing under a lock with a fixed
# seed makes "same seed, same model" hold even with several sessions training at once.
_INIT_LOCK = threading.Lock()


class GenerativeModel:
    """One generative family. Subclasses set the class attributes and implement the `_..._z` hooks.

    Class attributes:
      key            registry key ("flow")
      title          human name ("Normalizing flow")
      Config         the family's frozen config dataclass
      has_log_prob   whether log_prob works
      density_kind   "exact" | "bound" | "none"

    Subclasses implement, all in standardised coordinates z:
      _build()                        create networks/optimisers (called under a seeded lock)
      train_step(batch_z) -> dict     one optimisation step, its losses as floats
      _sample_z(n, generator)         samples [n, 2]
      _log_prob_z(z)                  log-density [n] (only if has_log_prob)
      views(**kw) -> dict             the family's own pictures as plain numpy arrays (in x)
    and keep their torch modules in `self.net` (one nn.Module or nn.ModuleDict) and optimisers in
    `self.optimizers` so that weights, devices and live learning-rate changes work for free.
    """

    key: ClassVar[str] = ""
    title: ClassVar[str] = ""
    Config: ClassVar[type[Config]] = Config
    has_log_prob: ClassVar[bool] = False
    density_kind: ClassVar[str] = "none"
    early_stopping: ClassVar[bool] = True  # the runner may keep the best weights on a validation split
    learns_from_incomplete: ClassVar[bool] = False  # train_z may hold rows with one NaN (missing) coordinate
    unused_fields: ClassVar[
        tuple[str, ...]
    ] = ()  # shared Config fields this family ignores (no widget, not listed)

    def __init__(self, config: Config | None, data: np.ndarray, seed: int = 0, device: str = "cpu"):
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise ConfigError(f"{self.key} needs a {self.Config.__name__}, got {type(self.config).__name__}.")
        data = np.asarray(data, dtype=np.float64)
        self.scaler = Standardizer.fit(data)
        self.seed = int(seed)
        self.device = torch.device(device)
        # training data in z, for families that need all of it (EM, KDE, a fitted latent Gaussian)
        self.train_z = self.scaler.to_z(torch.as_tensor(data, dtype=torch.float32)).to(self.device)
        # every random draw inside train_step comes from this generator: reproducible per run
        self.gen = torch.Generator(device=self.device).manual_seed(self.seed)
        self.net: torch.nn.Module | None = None
        self.optimizers: list[torch.optim.Optimizer] = []
        self.converged = False  # a family sets it when more steps change nothing (EM, KDE)
        with _INIT_LOCK:
            torch.manual_seed(self.seed)
            np.random.seed(self.seed % 2**32)
            self._build()
        if self.net is not None:
            self.net.to(self.device)

    # -- hooks ------------------------------------------------------------------------------------
    def _build(self) -> None:
        raise NotImplementedError

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def _sample_z(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _log_prob_z(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.title or self.key} has no density (has_log_prob is False).")

    def views(self, **kw) -> dict[str, Any]:
        return {}

    # -- public, in data coordinates --------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """n samples [n, 2] in data coordinates. `generator` may be a seed."""
        if generator is None or isinstance(generator, int):
            generator = torch.Generator(device=self.device).manual_seed(
                self.seed if generator is None else generator
            )
        with torch.no_grad():
            z = self._sample_z(int(n), generator)
        return self.scaler.to_x(z.detach().float().cpu())

    def log_prob(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """log p(x) [n] in data coordinates: log p(z) + log|dz/dx|."""
        if not self.has_log_prob:
            raise NotImplementedError(f"{self.title or self.key} has no density (has_log_prob is False).")
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32).reshape(-1, 2)
        out = []
        with torch.no_grad():
            for chunk in torch.split(x, 8192):
                out.append(self._log_prob_z(self.scaler.to_z(chunk).to(self.device)).float().cpu())
        return torch.cat(out) + self.scaler.log_det

    def display_log_prob(self, x: np.ndarray) -> torch.Tensor:
        """log p(x) for the live density heatmap (thousands of grid points a few times a second).
        Exact families return log_prob; a costly bound may use a cheaper, looser estimate."""
        return self.log_prob(x)

    def validation_log_prob(self, x: np.ndarray) -> torch.Tensor:
        """log p(x) for early stopping's held-out checks, which rank checkpoints of one model: exact families
        return log_prob; a costly bound may use a cheaper estimate that ranks them the same."""
        return self.log_prob(x)

    def to_z(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Data coordinates -> the model's standardised coordinates, on its device."""
        return self.scaler.to_z(torch.as_tensor(np.asarray(x), dtype=torch.float32)).to(self.device)

    def to_x(self, z: torch.Tensor) -> np.ndarray:
        """Standardised coordinates -> data coordinates, as numpy (for views)."""
        return self.scaler.to_x(z.detach().float().cpu()).numpy()

    def set_lr(self, lr: float) -> None:
        """Change the learning rate live (every optimiser, every param group)."""
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = float(lr)
        self.config = dataclasses.replace(self.config, lr=float(lr))

    def apply_live(self, values: dict[str, Any]) -> None:
        """Change fields marked live=True while training runs (no rebuild): the learning rate goes to
        the optimisers, the rest (sampler settings...) into the config the family reads."""
        if "lr" in values:
            self.set_lr(values["lr"])
        rest = {k: v for k, v in values.items() if k != "lr"}
        if rest:
            self.config = dataclasses.replace(self.config, **rest)

    def parameters(self):
        return [] if self.net is None else list(self.net.parameters())

    # -- weights only ----------------------------------------------------------------------------
    def weights(self) -> dict[str, torch.Tensor]:
        """Tensors that define the fitted model (no optimiser state)."""
        return {} if self.net is None else {k: v.detach().cpu() for k, v in self.net.state_dict().items()}

    def load_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        if self.net is not None:
            self.net.load_state_dict({k: v.to(self.device) for k, v in tensors.items()})

    def state_dict(self) -> dict[str, Any]:
        """Config, scaler and weights: everything needed to rebuild the model, nothing executable."""
        return {
            "model": self.key,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "scaler_mean": self.scaler.mean.tolist(),
            "scaler_std": self.scaler.std.tolist(),
            "weights": self.weights(),
        }


# ---------------------------------------------------------------------------------------------
# Weights files: safetensors (tensors) + JSON metadata. Never pickle.
# ---------------------------------------------------------------------------------------------


def save_model(model: GenerativeModel, path: str) -> None:
    from safetensors.torch import save_file

    sd = model.state_dict()
    meta = {k: json.dumps(v) for k, v in sd.items() if k != "weights"}
    tensors = {k: v.contiguous() for k, v in sd["weights"].items()}
    save_file(tensors, path, metadata=meta)


def model_to_bytes(model: GenerativeModel) -> bytes:
    from safetensors.torch import save

    sd = model.state_dict()
    meta = {k: json.dumps(v) for k, v in sd.items() if k != "weights"}
    return save({k: v.contiguous() for k, v in sd["weights"].items()}, metadata=meta)


MAX_SEED = 2**31 - 1  # seeds are 0..2^31-1 everywhere (the app's widget, the CLI, weights files)
MAX_META_CHARS = 65_536  # one metadata entry of a weights file; a real config is a few hundred characters
MAX_WEIGHT_ELEMENTS = 50_000_000  # numbers in one weights file (the largest in-range network has ~10M)
MAX_ABS_COORD = 1e15  # a saved scaler beyond this is not from data the lab accepts


def check_seed(seed: Any, what: str = "seed") -> int:
    """A seed as an int in [0, MAX_SEED], else a one-sentence ConfigError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{what} must be a whole number from 0 to {MAX_SEED}, got {_short(seed)}.")
    return int(seed)


def _short(value: Any, limit: int = 40) -> str:
    """A value for an error message: its repr cut to `limit` characters (a hostile value can be huge or deep)."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except RecursionError:
        text = f"a deeply nested {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _meta_value(meta: dict[str, str], key: str) -> Any:
    """One JSON metadata entry of a weights file, with every way it can be malformed as a ConfigError."""
    if key not in meta:
        raise ConfigError(f"The weights file is not a lab model (its metadata has no '{key}').")
    raw = meta[key]
    if not isinstance(raw, str) or len(raw) > MAX_META_CHARS:
        raise ConfigError(f"The weights file's '{key}' metadata is not a short JSON text.")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ConfigError(f"The weights file's '{key}' metadata is nested too deeply.") from None
    except ValueError:
        raise ConfigError(f"The weights file's '{key}' metadata is not valid JSON.") from None


def _scaler_part(meta: dict[str, str], key: str, positive: bool) -> np.ndarray:
    v = _meta_value(meta, key)
    ok = (
        isinstance(v, list)
        and len(v) == 2
        and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in v)
    )
    if not ok:
        raise ConfigError(f"The weights file's {key} must be 2 numbers (x, y), got {_short(v)}.")
    arr = np.asarray(v, dtype=np.float64)
    if not np.isfinite(arr).all() or (np.abs(arr) > MAX_ABS_COORD).any():
        raise ConfigError(
            f"The weights file's {key} must be finite numbers within +-{MAX_ABS_COORD:g}, got {_short(v)}."
        )
    if positive and (arr <= 1e-8).any():
        raise ConfigError(f"The weights file's {key} must be above 1e-8, got {_short(v)}.")
    return arr


def _check_tensors(tensors: dict[str, torch.Tensor]) -> None:
    """Plain names, floating-point numbers, finite, and a sane total size."""
    total = 0
    for name, t in tensors.items():
        if not name or name.startswith("_") or not all(c.isalnum() or c in "._" for c in name):
            raise ConfigError(f"The weights file has a tensor named {_short(name)}, which no lab model has.")
        if not (t.is_floating_point() or t.dtype in (torch.int64, torch.int32, torch.bool)):
            raise ConfigError(
                f"The weights file's tensor {_short(name)} has type {t.dtype}, which no lab model uses."
            )
        total += t.numel()
        if total > MAX_WEIGHT_ELEMENTS:
            raise ConfigError(
                f"The weights file holds more than {MAX_WEIGHT_ELEMENTS:,} numbers; no lab model is that big."
            )
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ConfigError(
                f"The weights file's tensor {_short(name)} holds NaN or infinity (a diverged model?)."
            )


def read_metadata(
    meta: Any, expect: str | None = None
) -> tuple[type[GenerativeModel], Config, np.ndarray, np.ndarray, int]:
    """Validate a weights file's metadata before anything is built: (class, config, mean, std, seed).

    Every field's shape, type and range is checked; each problem is a one-sentence ConfigError."""
    if not isinstance(meta, dict) or not meta:
        raise ConfigError("The weights file is not a lab model (it has no metadata).")
    key = _meta_value(meta, "model")
    if not isinstance(key, str) or key not in REGISTRY:
        raise ConfigError(
            f"The weights file is for model {_short(key)}, which this lab does not have "
            f"({', '.join(REGISTRY)})."
        )
    if expect is not None and key != expect:
        raise ConfigError(f"The weights file holds a {key} model, not a {expect} model.")
    cls = get_model_class(key)
    values = _meta_value(meta, "config")
    if not isinstance(values, dict):
        raise ConfigError(
            f"The weights file's config must be a JSON object of settings, got a {type(values).__name__}."
        )
    for k, v in values.items():
        if v is not None and not isinstance(v, (bool, int, float, str)):
            raise ConfigError(
                f"The weights file's setting {_short(k)} must be a number, a word or true/false, "
                f"got a {type(v).__name__}."
            )
    cfg = make_config(cls.Config, values)
    mean = _scaler_part(meta, "scaler_mean", positive=False)
    std = _scaler_part(meta, "scaler_std", positive=True)
    seed = check_seed(_meta_value(meta, "seed"), "The weights file's seed")
    return cls, cfg, mean, std, seed


def _rebuild(
    meta: Any, tensors: dict[str, torch.Tensor], device: str, expect: str | None = None
) -> GenerativeModel:
    cls, cfg, mean, std, seed = read_metadata(meta, expect)
    _check_tensors(tensors)
    # two points whose mean and std are the saved ones rebuild the same standardisation
    fake = np.stack([mean - std, mean + std])
    model = cls(cfg, fake, seed=seed, device=device)
    if model.net is not None:  # a network's tensors are known before loading: names and shapes must match
        want = model.weights()
        missing, extra = sorted(set(want) - set(tensors)), sorted(set(tensors) - set(want))
        if missing or extra:
            what = f"lacks {_short(missing[0])}" if missing else f"has an unknown tensor {_short(extra[0])}"
            raise ConfigError(f"The weights do not fit a {cls.key} model with this config (the file {what}).")
        for k, t in want.items():
            if tuple(tensors[k].shape) != tuple(t.shape):
                raise ConfigError(
                    f"The weights do not fit a {cls.key} model with this config "
                    f"({k} is {tuple(tensors[k].shape)}, not {tuple(t.shape)})."
                )
    try:
        model.load_weights(tensors)
    except Exception as e:  # noqa: BLE001  (a family's own loader, GMM or KDE: any failure means a misfit)
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ConfigError(
            f"The weights do not fit a {cls.key} model with this config ({_short(first, 120)})."
        ) from None
    return model


def load_model(path: str, device: str = "cpu", expect: str | None = None) -> GenerativeModel:
    """A model from a weights file; `expect` a family key to refuse another family's file."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open is not iterable)
    except Exception as e:  # noqa: BLE001  (safetensors raises its own error types for corrupt headers)
        raise ConfigError(
            f"The file {path} is not a safetensors weights file ({type(e).__name__})."
        ) from None
    return _rebuild(meta, tensors, device, expect)


def model_from_bytes(raw: bytes, device: str = "cpu", expect: str | None = None) -> GenerativeModel:
    """A model from the bytes of a weights file (an upload); `expect` as in load_model."""
    from safetensors.torch import load

    if not isinstance(raw, (bytes, bytearray)) or len(raw) < 8:
        raise ConfigError("That upload is not a safetensors weights file (it is too short).")
    n = int.from_bytes(raw[:8], "little")
    if n > min(len(raw) - 8, 100 * 2**20):
        raise ConfigError("That upload is not a safetensors weights file (its header length is impossible).")
    try:
        # the format: 8-byte little-endian header length, then a JSON header holding __metadata__
        header = json.loads(raw[8 : 8 + n])
        meta = header.get("__metadata__", {}) or {}
        tensors = load(bytes(raw))
    except RecursionError:
        raise ConfigError(
            "That upload is not a safetensors weights file (its header is nested too deeply)."
        ) from None
    except Exception as e:  # noqa: BLE001  (safetensors' own error types, a header that is not an object)
        raise ConfigError(f"That upload is not a safetensors weights file ({type(e).__name__}).") from None
    return _rebuild(meta, tensors, device, expect)


# ---------------------------------------------------------------------------------------------
# Registry: key -> "module:Class", imported on first use so `python -m lab list` stays fast.
# ---------------------------------------------------------------------------------------------

REGISTRY: dict[str, str | type] = {
    "gmm": "lab.classical:GMM",
    "kde": "lab.classical:KDE",
    "ae": "lab.ae:Autoencoder",
    "vae": "lab.vae:VAE",
    "gan": "lab.gan:GAN",
    "flow": "lab.flow:Flow",
    "ar": "lab.autoregressive:Autoregressive",
    "ddpm": "lab.diffusion:DDPM",
    "score": "lab.score:ScoreModel",
    "fm": "lab.fm:FlowMatching",
}


def model_keys() -> list[str]:
    return list(REGISTRY)


def get_model_class(key: str) -> type[GenerativeModel]:
    if key not in REGISTRY:
        raise ConfigError(f"Unknown model '{key}'; choose one of {', '.join(REGISTRY)}.")
    target = REGISTRY[key]
    if isinstance(target, type):  # a class registered directly (tests, plug-ins)
        return target
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def make_model(
    key: str, data: np.ndarray, config: Config | dict | None = None, seed: int = 0, device: str = "cpu"
):
    cls = get_model_class(key)
    if isinstance(config, dict):
        config = make_config(cls.Config, config)
    return cls(config, data, seed=seed, device=device)
