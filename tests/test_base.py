"""Weights files from strangers: every malformed file or metadata entry is one ConfigError sentence, before any model is built."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save

from lab import base
from lab.base import ConfigError, load_model, make_model, model_from_bytes, model_to_bytes, save_model


@pytest.fixture(scope="module")
def flow_file():
    """A real flow's tensors and metadata, the raw material of every hostile file below."""
    x = np.random.default_rng(0).standard_normal((200, 2)) * [2.0, 0.5] + [1.0, -3.0]
    model = make_model("flow", x, {"layers": 2, "hidden": 8}, seed=5)
    sd = model.state_dict()
    meta = {k: json.dumps(v) for k, v in sd.items() if k != "weights"}
    return model, {k: v.contiguous() for k, v in sd["weights"].items()}, meta


def build(tensors, meta, **edits):
    """The bytes of a weights file whose metadata has `edits` (raw JSON text; None removes the entry)."""
    meta = dict(meta)
    for k, v in edits.items():
        if v is None:
            meta.pop(k)
        else:
            meta[k] = v
    return save(tensors, metadata=meta)


def nested(depth):
    return "[" * depth + "]" * depth


HOSTILE_META = [
    (
        "deeply nested config",
        {"config": nested(30_000)},
        "The weights file's 'config' metadata is nested too deeply.",
    ),
    (
        "nested setting",
        {"config": '{"lr": ' + nested(5_000) + "}"},
        "The weights file's 'config' metadata is nested too deeply.",
    ),
    (
        "shallow nested setting",
        {"config": '{"lr": [[1]]}'},
        "setting lr must be a number, a word or true/false, got a list.",
    ),
    (
        "config a list",
        {"config": "[1, 2, 3]"},
        "The weights file's config must be a JSON object of settings, got a list.",
    ),
    ("config a string", {"config": '"lr=1"'}, "config must be a JSON object of settings, got a str."),
    ("config not JSON", {"config": "{lr: 1"}, "The weights file's 'config' metadata is not valid JSON."),
    (
        "config huge",
        {"config": '{"lr": "' + "x" * 100_000 + '"}'},
        "'config' metadata is not a short JSON text.",
    ),
    ("config out of range", {"config": '{"lr": 5.0}'}, "lr=5.0 is above its maximum 1.0."),
    ("config NaN", {"config": '{"lr": NaN}'}, "lr must be a finite number, got 'nan'."),
    (
        "config huge int",
        {"config": '{"layers": ' + "9" * 400 + "}"},
        "layers must be a whole number, got '99999",
    ),
    ("config unknown field", {"config": '{"colour": "red"}'}, "Unknown setting 'colour'"),
    (
        "config wrong choice",
        {"config": '{"variant": "magic"}'},
        "variant must be one of spline, affine, planar; got 'magic'.",
    ),
    ("3-column scaler", {"scaler_mean": "[0, 0, 0]"}, "scaler_mean must be 2 numbers (x, y), got [0, 0, 0]."),
    ("1-column scaler", {"scaler_std": "[1]"}, "scaler_std must be 2 numbers (x, y), got [1]."),
    ("scaler a string", {"scaler_std": '"1,1"'}, "scaler_std must be 2 numbers (x, y), got 1,1."),
    ("scaler of lists", {"scaler_mean": "[[0], [0]]"}, "scaler_mean must be 2 numbers"),
    (
        "scaler NaN",
        {"scaler_mean": "[NaN, 0]"},
        "scaler_mean must be finite numbers within +-1e+15, got [nan, 0].",
    ),
    ("scaler inf", {"scaler_std": "[Infinity, 1]"}, "scaler_std must be finite numbers within +-1e+15"),
    (
        "scaler 1e308",
        {"scaler_std": "[1e308, 1]"},
        "scaler_std must be finite numbers within +-1e+15, got [1e+308, 1].",
    ),
    ("scaler 1e400", {"scaler_mean": "[1e400, 0]"}, "scaler_mean must be finite numbers"),
    ("scaler std 0", {"scaler_std": "[0, 1]"}, "scaler_std must be above 1e-8, got [0, 1]."),
    ("scaler std negative", {"scaler_std": "[-1, 1]"}, "scaler_std must be above 1e-8"),
    (
        "seed 1e400",
        {"seed": "1e400"},
        "The weights file's seed must be a whole number from 0 to 2147483647, got inf.",
    ),
    ("seed -1", {"seed": "-1"}, "seed must be a whole number from 0 to 2147483647, got -1."),
    ("seed 2^40", {"seed": "1099511627776"}, "got 1099511627776."),
    ("seed 2.5", {"seed": "2.5"}, "got 2.5."),
    ("seed true", {"seed": "true"}, "got True."),
    ("seed a string", {"seed": '"7"'}, "got 7."),
    (
        "unknown family",
        {"model": '"transformer"'},
        "The weights file is for model transformer, which this lab does not have",
    ),
    ("family not a string", {"model": "[1]"}, "The weights file is for model [1]"),
    ("no model entry", {"model": None}, "The weights file is not a lab model (its metadata has no 'model')."),
    ("no seed entry", {"seed": None}, "its metadata has no 'seed'"),
    (
        "another family's metadata",
        {"model": '"gmm"', "config": "{}"},
        "The weights do not fit a gmm model with this config",
    ),
    (
        "another network's metadata",
        {"model": '"ar"', "config": "{}"},
        "The weights do not fit a ar model with this config (the file",
    ),
    (
        "a bigger network's config",
        {"config": '{"layers": 2, "hidden": 16}'},
        "The weights do not fit a flow model with this config (",
    ),
]


@pytest.mark.parametrize("edits, match", [c[1:] for c in HOSTILE_META], ids=[c[0] for c in HOSTILE_META])
def test_hostile_metadata_is_one_sentence(flow_file, edits, match, tmp_path):
    _, tensors, meta = flow_file
    raw = build(tensors, meta, **edits)
    for load in (lambda: model_from_bytes(raw), lambda: load_model(str(_write(tmp_path, raw)))):
        with pytest.raises(ConfigError) as e:
            load()
        msg = str(e.value)
        assert match in msg and "\n" not in msg and len(msg) < 300, msg


def _write(tmp_path, raw):
    p = tmp_path / "w.safetensors"
    p.write_bytes(raw)
    return p


def test_metadata_is_checked_before_any_model_is_built(flow_file, monkeypatch):
    """A bad scaler or seed must not reach a constructor (a 3-value scaler raised deep inside torch)."""
    _, tensors, meta = flow_file
    calls = []
    monkeypatch.setattr(base.GenerativeModel, "__init__", lambda *a, **k: calls.append(a))
    for edits in (
        {"scaler_mean": "[0, 0, 0]"},
        {"seed": "1e400"},
        {"config": "[1]"},
        {"scaler_std": "[NaN, 1]"},
    ):
        with pytest.raises(ConfigError):
            model_from_bytes(build(tensors, meta, **edits))
    assert calls == []


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda t: {**t, "__class__": torch.zeros(1)},
            "has a tensor named __class__, which no lab model has.",
        ),
        (lambda t: {**t, "fit": torch.zeros(1)}, "has an unknown tensor fit"),
        (
            lambda t: {k: v[..., :1].contiguous() if v.ndim == 2 else v for k, v in t.items()},
            "The weights do not fit a flow model",
        ),
        (lambda t: dict(list(t.items())[1:]), "(the file lacks "),
        (
            lambda t: {
                k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in t.items()
            },
            "holds NaN or infinity (a diverged model?).",
        ),
        (
            lambda t: {**t, "big": torch.zeros(60_000_000, dtype=torch.uint8)},
            "has type torch.uint8, which no lab model uses.",
        ),
    ],
    ids=["dunder name", "unknown name", "wrong shapes", "missing tensor", "NaN weights", "byte tensor"],
)
def test_hostile_tensors_are_one_sentence(flow_file, edit, match):
    _, tensors, meta = flow_file
    with pytest.raises(ConfigError) as e:
        model_from_bytes(save(edit(dict(tensors)), metadata=meta))
    assert match in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_too_many_numbers(flow_file, monkeypatch):
    _, tensors, meta = flow_file
    monkeypatch.setattr(base, "MAX_WEIGHT_ELEMENTS", 100)
    with pytest.raises(ConfigError, match="holds more than 100 numbers; no lab model is that big."):
        model_from_bytes(save(tensors, metadata=meta))


@pytest.mark.parametrize(
    "raw, match",
    [
        (b"", "too short"),
        (b"\x01\x02", "too short"),
        (np.random.default_rng(0).bytes(4096), "header length is impossible"),
        ((2**60).to_bytes(8, "little") + b"{}", "header length is impossible"),
        ((200).to_bytes(8, "little") + b"{" * 200, "not a safetensors weights file"),
        ((5).to_bytes(8, "little") + b"[1,2]", "not a safetensors weights file"),
        ((20_000).to_bytes(8, "little") + b"[" * 20_000, "not a safetensors weights file"),
        (b"\x80\x04\x95" + b"pickle" * 20, "not a safetensors weights file"),
        ((2).to_bytes(8, "little") + b"{}", "it has no metadata"),
    ],
    ids=[
        "empty",
        "two bytes",
        "random",
        "huge header length",
        "unclosed header",
        "list header",
        "deep header",
        "pickle",
        "no metadata",
    ],
)
def test_files_that_are_not_weights(raw, match, tmp_path):
    with pytest.raises(ConfigError) as e:
        model_from_bytes(raw)
    assert match in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError):
        load_model(str(_write(tmp_path, raw)))


def test_another_familys_file_is_refused_by_name(flow_file, tmp_path):
    model, _, _ = flow_file
    with pytest.raises(ConfigError, match="^The weights file holds a flow model, not a gmm model.$"):
        model_from_bytes(model_to_bytes(model), expect="gmm")
    save_model(model, str(tmp_path / "w.safetensors"))
    assert load_model(str(tmp_path / "w.safetensors"), expect="flow").key == "flow"


def test_a_good_file_still_round_trips(flow_file):
    """The checks refuse nothing a model writes: same scaler, seed, config and samples after a round trip."""
    model, _, _ = flow_file
    again = model_from_bytes(model_to_bytes(model))
    assert again.config == model.config and again.seed == model.seed
    assert np.allclose(again.scaler.std, model.scaler.std) and np.allclose(
        again.scaler.mean, model.scaler.mean
    )
    assert torch.equal(again.sample(50, 3), model.sample(50, 3))


def test_config_messages_cut_a_hostile_value():
    from lab.base import make_config
    from lab.flow import Flow

    with pytest.raises(ConfigError) as e:
        make_config(Flow.Config, {"lr": "1" * 10_000 + "x"})
    assert len(str(e.value)) < 120
    with pytest.raises(ConfigError) as e:
        make_config(Flow.Config, {"y" * 10_000: 1})
    assert len(str(e.value)) < 300


def test_check_seed():
    assert (
        base.check_seed(0) == 0
        and base.check_seed(2**31 - 1) == 2**31 - 1
        and base.check_seed(np.int64(4)) == 4
    )
    for bad in (-1, 2**31, 1.0, float("inf"), True, "3", None):
        with pytest.raises(ConfigError, match="seed must be a whole number from 0 to 2147483647"):
            base.check_seed(bad)
