"""One contract test over every registered family: shapes, finite losses, gradients, seeds, save/load."""

import math

import numpy as np
import pytest
import torch

from lab.base import (
    REGISTRY,
    get_model_class,
    load_model,
    make_model,
    model_from_bytes,
    model_to_bytes,
    save_model,
)

KEYS = list(REGISTRY)


def _train(model, steps=3):
    z = model.train_z
    g = torch.Generator().manual_seed(0)
    out = {}
    for _ in range(steps):
        idx = torch.randint(0, len(z), (min(64, len(z)),), generator=g)
        out = model.train_step(z[idx])
    return out


@pytest.fixture(scope="module", params=KEYS)
def trained(request):
    from lab.data import make_dataset

    x = make_dataset("moons").sample(512, seed=0)
    model = make_model(request.param, x, seed=3)
    losses = _train(model)
    return request.param, x, model, losses


def test_class_attributes(trained):
    key, _, model, _ = trained
    cls = get_model_class(key)
    assert cls.key == key and cls.title
    assert cls.density_kind in ("exact", "bound", "none")
    assert cls.has_log_prob == (cls.density_kind != "none")


def test_losses_are_finite_floats(trained):
    _, _, _, losses = trained
    assert losses and all(isinstance(v, float) and math.isfinite(v) for v in losses.values())


def test_every_parameter_gets_a_gradient(trained):
    key, _, model, _ = trained
    params = model.parameters()
    if not params:  # classical estimators (EM, KDE) fit without gradients
        assert model.net is None and key in ("gmm", "kde"), f"{key} has no trainable parameters"
        return
    for p in params:
        p.grad = None
    _train(model, steps=1)
    missing = [
        i
        for i, p in enumerate(params)
        if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
    ]
    assert not missing, f"{key}: parameters {missing} got no finite gradient"


def test_sample_shape_and_seed(trained):
    _, _, model, _ = trained
    a = model.sample(100, 7)
    b = model.sample(100, 7)
    c = model.sample(100, 8)
    assert a.shape == (100, 2) and a.dtype == torch.float32
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_log_prob_or_clear_error(trained):
    key, x, model, _ = trained
    if model.has_log_prob:
        lp = model.log_prob(x[:50])
        assert lp.shape == (50,) and torch.isfinite(lp).all()
    else:
        with pytest.raises(NotImplementedError, match="no density"):
            model.log_prob(x[:5])


def test_same_seed_same_model(trained):
    key, x, model, _ = trained
    m1 = make_model(key, x, seed=11)
    m2 = make_model(key, x, seed=11)
    _train(m1, 2), _train(m2, 2)
    assert torch.allclose(m1.sample(50, 1), m2.sample(50, 1))


def test_views_are_plain_data(trained):
    _, _, model, _ = trained
    v = model.views()
    assert isinstance(v, dict)

    def plain(o):
        if isinstance(o, dict):
            return all(isinstance(k, (str, int, float)) and plain(w) for k, w in o.items())
        if isinstance(o, (list, tuple)):
            return all(plain(w) for w in o)
        return isinstance(o, (np.ndarray, float, int, str, bool, np.floating, np.integer, type(None)))

    assert plain(v), "views() must hold only numpy arrays, numbers, strings, lists and dicts (no tensors)"


def test_save_load_round_trip(trained, tmp_path):
    key, x, model, _ = trained
    path = tmp_path / "model.safetensors"
    save_model(model, str(path))
    loaded = load_model(str(path))
    assert type(loaded) is type(model) and loaded.config == model.config
    assert torch.allclose(loaded.sample(64, 5), model.sample(64, 5), atol=1e-5)
    if model.has_log_prob:
        assert torch.allclose(loaded.log_prob(x[:64]), model.log_prob(x[:64]), atol=1e-4)
    again = model_from_bytes(model_to_bytes(model))
    assert torch.allclose(again.sample(64, 5), model.sample(64, 5), atol=1e-5)
