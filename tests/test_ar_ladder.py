"""The recurrent (GRU, PixelRNN-style) conditioner beside MADE, and the D-dimensional model of the ladder."""

import numpy as np
import pytest
import torch

from lab.autoregressive import ARDensity, load_ladder
from lab.base import get_model_class, load_model, make_model, parse_sets, save_model
from lab.data import make_dataset
from lab.viz.autoregressive import ladder_figure


@pytest.mark.parametrize("conditioner", ["made", "gru"])
def test_block_d_depends_only_on_the_dimensions_before_it(conditioner):
    """d params_d / d x_j = 0 for every j >= d, and not for every j < d."""
    torch.manual_seed(0)
    model = ARDensity(5, conditioner, components=3, hidden=16)
    x = torch.randn(8, 5, requires_grad=True)
    p = model.net(x)  # [n, D, P]
    for d in range(5):
        (g,) = torch.autograd.grad((p[:, d] * torch.randn_like(p[:, d])).sum(), x, retain_graph=True)
        assert torch.count_nonzero(g[:, d:]) == 0
        if d:
            assert torch.count_nonzero(g[:, :d]) > 0


@pytest.mark.parametrize("conditioner", ["made", "gru"])
def test_d2_density_integrates_to_one_and_samples_follow_it(conditioner):
    torch.manual_seed(1)
    model = ARDensity(2, conditioner, components=4, hidden=16)
    x = torch.as_tensor(make_dataset("moons").sample(512, 0), dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = -model.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    h = 0.02
    z = torch.arange(-6, 6, h) + h / 2
    zz = torch.stack(torch.meshgrid(z, z, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        p = model.log_prob(zz).double().exp()
        s = model.sample(20_000, torch.Generator().manual_seed(0)).double()
    assert abs(float(p.sum()) * h * h - 1) < 2e-3
    mean = (p[:, None] * zz.double()).sum(0) / p.sum()
    assert torch.allclose(s.mean(0), mean, atol=0.03), (s.mean(0), mean)


def test_the_family_takes_conditioner_gru():
    cfg = parse_sets(get_model_class("ar").Config, ["conditioner=gru"])
    x = make_dataset("moons").sample(400, 0)
    model = make_model("ar", x, cfg, seed=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        losses = model.train_step(model.train_z[torch.randint(0, 400, (128,), generator=g)])
    assert np.isfinite(losses["nll"])
    assert any(k.startswith("gru.gru.") for k in model.weights())
    assert model.sample(50, 3).shape == (50, 2)
    xs = model.sample_conditional(0.5, 20, 0)
    assert torch.all(xs[:, 0] == 0.5)


def test_gru_weights_round_trip(tmp_path):
    x = make_dataset("moons").sample(300, 0)
    model = make_model("ar", x, {"conditioner": "gru", "hidden": 16}, seed=0)
    model.train_step(model.train_z[:128])
    save_model(model, str(tmp_path / "m.safetensors"))
    back = load_model(str(tmp_path / "m.safetensors"))
    pts = make_dataset("moons").sample(20, 1)
    assert torch.allclose(back.log_prob(pts), model.log_prob(pts), atol=1e-5)


def test_ladder_file_and_figure(tmp_path):
    assert load_ladder(str(tmp_path / "none.json")) is None
    rows = [
        {"d": d, "model": m, "seed": 0, "train_step_s": 0.01 * d, "sample_1000_s": 0.001 * d}
        for d in (2, 4)
        for m in ("made", "gru", "flow")
    ]
    fig = ladder_figure({"rows": rows})
    assert len(fig.data) == 3 and list(fig.data[0].x) == [2, 4]
    assert fig.data[0].y[1] == pytest.approx(4.0)  # ms
    assert "no measurement" in str(ladder_figure(None).layout)
