"""Score model against references: the sigma ladder, the DSM loss, annealed Langevin with an exact Gaussian score."""

import math

import torch

from lab.score import ScoreConfig, ScoreModel

MU, S = torch.tensor([0.5, -0.3]), 0.4  # "data" N(MU, S^2 I) in z: p_sigma = N(MU, (S^2 + sigma^2) I)


def _model(x, **kw) -> ScoreModel:
    return ScoreModel(ScoreConfig(hidden=32, layers=2, time_dim=16, x_embedding=4, **kw), x, seed=0)


def _oracle(x, sigma, ema=True):
    return -(x - MU) / (S**2 + sigma.float()[:, None] ** 2)


def _use_oracle(m: ScoreModel, monkeypatch) -> None:
    """Langevin asks score_at_levels for its levels' score: the exact one, here."""
    monkeypatch.setattr(m, "score", _oracle)
    monkeypatch.setattr(
        m, "score_at_levels", lambda: lambda x, i: _oracle(x, torch.full((len(x),), float(m.sigmas[i])))
    )


def test_langevin_steps_are_the_score(moons_points):
    m = _model(moons_points, n_levels=5)
    score_at = m.score_at_levels()
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    for i, sigma in enumerate(m.sigmas.tolist()):
        assert torch.allclose(score_at(x, i), m.score(x, torch.full((40,), sigma)), rtol=1e-4, atol=1e-4)


def test_geometric_ladder(moons_points):
    m = _model(moons_points, sigma_max=2.0, sigma_min=0.02, n_levels=7)
    s = m.sigmas
    assert len(s) == 7 and math.isclose(float(s[0]), 2.0) and math.isclose(float(s[-1]), 0.02)
    ratios = s[1:] / s[:-1]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios))
    single = _model(moons_points, noise_levels="single", sigma_min=0.05)
    assert single.sigmas.tolist() == [0.05]


def test_dsm_loss_and_output_scaling(moons_points):
    m = _model(moons_points)
    x = m.train_z[:32]
    sigma = torch.full((32,), 0.3)
    with torch.no_grad():
        f = m.net["ema"](x, m._condition(sigma))
    assert torch.allclose(m.score(x, sigma), f / 0.3, atol=1e-6)  # s = f / sigma (NCSNv2)
    # the training loss is 1/2 E |sigma s(x + sigma eps) + eps|^2: recompute it with the same draws
    batch = m.train_z[:64]
    g = m.gen.get_state()
    loss = m.train_step(batch)["loss"]  # noqa
    m2 = _model(moons_points)
    m2.gen.set_state(g)
    idx = torch.randint(0, len(m2.sigmas), (64,), generator=m2.gen)
    sig = m2.sigmas[idx].float()
    eps = torch.randn(64, 2, generator=m2.gen)
    with torch.no_grad():
        s = m2.score(batch + sig[:, None] * eps, sig, ema=False)
    ref = 0.5 * ((sig[:, None] * s + eps) ** 2).sum(1).mean()
    assert math.isclose(loss, float(ref), rel_tol=1e-5)


def test_annealed_langevin_with_the_exact_score_reproduces_the_gaussian(moons_points, monkeypatch):
    m = _model(moons_points, n_levels=10, steps_per_level=20, sigma_min=0.01, sigma_max=3.0)
    _use_oracle(m, monkeypatch)
    x, path = m.langevin(5000, torch.Generator().manual_seed(0), record=True)
    assert len(path) == 10 + 2  # start, one per level, the denoising step
    assert torch.allclose(x.mean(0), MU, atol=0.03)
    assert torch.allclose(x.std(0), torch.full((2,), S), atol=0.03)


def test_inpaint_fixes_the_known_coordinate(moons_points, monkeypatch):
    m = _model(moons_points, n_levels=10, steps_per_level=20)
    _use_oracle(m, monkeypatch)
    v = 0.2 * m.scaler.std[1] + m.scaler.mean[1]
    x = m.inpaint(1, v, 3000, 0)
    assert torch.all(x[:, 1] == torch.tensor(v, dtype=torch.float32))
    z0 = (x[:, 0] - m.scaler.mean[0]) / m.scaler.std[0]
    assert abs(float(z0.mean()) - float(MU[0])) < 0.04 and abs(float(z0.std()) - S) < 0.04


def test_views_shapes(moons_points):
    m = _model(moons_points, n_levels=6, steps_per_level=2)
    v = m.views(n_forward=50, n_particles=5, grid=4)
    assert v["forward"]["points"].shape == (7, 50, 2)
    assert v["trajectories"]["paths"].shape == (5, 8, 2)
    assert v["score_field"]["true"].shape[1:] == (4, 4, 2)
    single = _model(moons_points, noise_levels="single", n_levels=3, steps_per_level=2)
    x = single.sample(20, 0)
    assert x.shape == (20, 2) and torch.isfinite(x).all()
