"""Classifier-free guidance for the conditional fm and ddpm: label dropout, the guided combination, w = 0, labels
through a run and the headless contract, the model contract for the conditional variants, the measures."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from lab.base import ConfigError, load_model, make_model, model_from_bytes, model_to_bytes, save_model
from lab.data import DataError, make_dataset
from lab.guidance import (
    MAX_CLASSES,
    NULL_LABEL,
    LabelledPoints,
    drop_labels,
    guidance_sweep,
    guide,
    guided_call,
    knn_precision_recall,
    labelled_points,
    sample_labelled,
)
from lab.run import Run, RunSpec

SMALL = {"conditional": True, "hidden": 32, "layers": 2, "warmup": 10}


def _conditional(key: str, data: str = "8gaussians", steps: int = 30, seed: int = 3, batch: int = 64, **kw):
    x, y, _ = sample_labelled(make_dataset(data), 512, 0)
    model = make_model(key, x, SMALL | kw, seed=seed)
    model.set_labels(y)
    for _ in range(steps):  # the size of the batch only: a conditional model draws its own labelled batch
        model.train_step(model.train_z[:batch])
    return model


@pytest.fixture(scope="module", params=["fm", "ddpm"])
def trained(request):
    return request.param, _conditional(request.param)


# -- label dropout and the guided combination ------------------------------------------------------------


@pytest.mark.parametrize("p", [0.0, 0.1, 0.2, 0.5])
def test_label_dropout_rate(p):
    n = 200_000
    y = torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(0))
    out = drop_labels(y, p, torch.Generator().manual_seed(1))
    dropped = out == NULL_LABEL
    assert abs(float(dropped.double().mean()) - p) < 5 * math.sqrt(p * (1 - p) / n) + 1e-9
    assert torch.equal(out[~dropped], y[~dropped])  # the rest keep their label


def test_guide_is_ho_and_salimans_combination():
    cond, uncond = torch.randn(5, 2), torch.randn(5, 2)
    for w in (0.0, 1.0, 3.5):
        assert torch.allclose(guide(cond, uncond, w), cond + w * (cond - uncond))
    assert torch.equal(guide(cond, uncond, 0.0), cond)


def test_guided_call_batches_both_halves_and_skips_the_null_half_at_w0():
    rows = []

    def net(x, c, y):  # distinct outputs per label, so a mixed-up half would show
        rows.append(len(x))
        return x * (y[:, None].double() + 1) + c

    x, labels = torch.randn(6, 2, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    c = torch.tensor(0.3, dtype=torch.float64)
    want = 3.0 * net(x, c, labels) - 2.0 * net(x, c, torch.full_like(labels, NULL_LABEL))
    rows.clear()
    assert torch.allclose(guided_call(net, x, c, labels, 2.0), want) and rows == [12]
    rows.clear()
    assert torch.equal(guided_call(net, x, c, labels, 0.0), net(x, c, labels)) and rows == [6, 6]


def test_w0_is_the_conditional_network_and_w_combines_cond_and_null(trained):
    key, model = trained
    x = model.train_z[:40]
    labels = model.train_y[:40]
    net = model.net["ema"]
    if key == "fm":
        from lab.fm import TIME_SCALE

        t = 0.37
        c = torch.tensor(TIME_SCALE * t)
        assert torch.equal(model.velocity(x, t, labels=labels, guidance=0.0), net(x, c, labels))
        cond, null = model.velocity(x, t, labels=labels, guidance=0.0), model.velocity(x, t)
        got = model.velocity(x, t, labels=labels, guidance=2.5)
    else:
        t = 400
        cond = model.eps_theta(x, t, labels=labels, guidance=0.0)
        null = model.eps_theta(x, t)
        got = model.eps_theta(x, t, labels=labels, guidance=2.5)  # v-prediction: guided on v, the same on eps
        ab = float(model.alphas_cumprod[t])
        assert torch.allclose(cond, (1 - ab) ** 0.5 * x + ab**0.5 * net(x, torch.tensor(float(t)), labels))
    assert torch.allclose(got, 3.5 * cond - 2.5 * null, atol=1e-5)
    # sampling at w = 0 is the conditional model: the same as its own config's guidance = 0
    a = model.sample_class(64, 1, 0.0, generator=5)
    model.apply_live({"guidance": 0.0})
    assert torch.equal(a, model.sample_class(64, 1, generator=5))


def test_guidance_is_live_and_changes_samples(trained):
    _, model = trained
    before = model.sample(100, 2)
    model.apply_live({"guidance": 4.0})
    try:
        assert not torch.allclose(before, model.sample(100, 2))
    finally:
        model.apply_live({"guidance": 0.0})
    assert torch.equal(before, model.sample(100, 2))


def test_fm_density_of_the_guided_flow_is_the_class_mixture_and_integrates_to_one():
    model = _conditional("fm", "moons", steps=200, guidance=2.0)
    x = model.to_x(model.train_z[:30])
    prior = model.net.class_counts[:2] / model.net.class_counts.sum()
    z = model.to_z(x)
    per = torch.stack([model.log_prob_z(z, labels=torch.full((30,), c)) for c in range(2)])
    want = torch.logsumexp(per + prior.log()[:, None], 0) + model.scaler.log_det
    assert torch.allclose(model.log_prob(x), want, atol=1e-4)
    lo, hi = model.scaler.mean - 6 * model.scaler.std, model.scaler.mean + 6 * model.scaler.std
    gx, gy = np.linspace(lo[0], hi[0], 101), np.linspace(lo[1], hi[1], 101)
    xx, yy = np.meshgrid(gx, gy)
    p = model.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).double().exp().numpy()
    assert abs(p.sum() * (gx[1] - gx[0]) * (gy[1] - gy[0]) - 1.0) < 0.03


# -- labels reach the model: runs, CSVs, the headless contract ---------------------------------------------


def test_built_in_labels_match_the_datasets_own_samples():
    for name in ("moons", "circles", "8gaussians", "25gaussians"):
        ds = make_dataset(name)
        x, y, classes = sample_labelled(ds, 300, 4)
        assert np.array_equal(x, ds.sample(300, 4)) and len(classes) == 2 and set(np.unique(y)) == {0, 1}


def test_a_run_hands_the_labels_of_its_training_points_to_the_model():
    from lab.fm import FMConfig

    ds = make_dataset("moons")
    run = Run(RunSpec("fm", ds, FMConfig(conditional=True), seed=2, n_train=400))
    x, y, _ = sample_labelled(ds, 400, 2)
    n_val = len(run.val_x)
    assert np.allclose(run.train_x, x[n_val:])
    assert torch.equal(run.model.train_y, torch.as_tensor(y[n_val:]))
    assert run.model.net.class_counts[:2].tolist() == np.bincount(y[n_val:]).tolist()
    run.advance(3)
    assert run.step == 3 and not run.finished


def test_a_family_whose_conditional_is_a_word_trains_on_unlabelled_data():
    """The autoregressive family's `conditional` is its 1D conditional's kind ("mog"): no labels are asked for."""
    run = Run(RunSpec("ar", make_dataset("checkerboard"), None, seed=0, n_train=300))
    assert run.model.config.conditional == "mog" and not hasattr(run.model, "train_y")
    run.advance(2)
    assert run.step == 2


def test_labelled_points_shuffle_with_their_labels():
    pts = labelled_points(np.arange(40.0).reshape(20, 2), np.arange(20) % 3, ["a", "b", "c"])
    x, y, classes = sample_labelled(pts, 20, 7)
    assert classes == ["a", "b", "c"] and np.array_equal((x[:, 0] / 2).astype(int) % 3, y)
    assert np.array_equal(x, pts.sample(20, 7))  # the same shuffle as a PointsDataset


def test_unlabelled_data_is_one_sentence():
    from lab.diffusion import DDPMConfig

    with pytest.raises(DataError, match="needs labelled data.*'checkerboard' has no labels"):
        Run(RunSpec("ddpm", make_dataset("checkerboard"), DDPMConfig(conditional=True)))
    model = make_model("fm", make_dataset("moons").sample(100, 0), {"conditional": True})
    with pytest.raises(ConfigError, match="needs labelled data"):
        model.train_step(model.train_z[:8])
    with pytest.raises(DataError, match="1 to 8 classes"):
        labelled_points(np.zeros((4, 2)) + np.arange(4)[:, None], [0, 1, 9, 0], ["a", "b"])


def test_labelled_csv(tmp_path):
    from lab.guidance import load_labelled_points

    f = tmp_path / "l.csv"
    f.write_text("x,y,label\n0,0,cat\n1,0,dog\n0,1,cat\n1,1,dog\n2,2,cat\n")
    d = load_labelled_points(str(f))
    assert (
        isinstance(d, LabelledPoints) and d.classes == ("cat", "dog") and d.labels.tolist() == [0, 1, 0, 1, 0]
    )


def test_headless_conditional_train(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lab", "train", "--model", "ddpm", "--data", "moons", "--steps", "20"]
    cmd += ["--samples", "100", "--set", "conditional=true", "--set", "guidance=2", "--set", "p_uncond=0.1"]
    assert subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True).returncode == 0
    model = load_model(str(out / "model.safetensors"))
    assert model.config.conditional and model.config.guidance == 2.0 and model.config.p_uncond == 0.1
    assert model.n_classes == 2 and len((out / "samples.csv").read_text().splitlines()) == 101
    bad = subprocess.run(
        cmd[:5]
        + ["ddpm", "--data", "checkerboard", "--set", "conditional=true", "--out", str(tmp_path / "b")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "needs labelled data" in bad.stderr and "Traceback" not in bad.stderr
    f = tmp_path / "labelled.csv"  # --data-file with a label column: x, y, label rows
    f.write_text(
        "x,y,label\n" + "".join(f"{i % 7},{i % 5 + 0.5 * (i % 2)},{'ab'[i % 2]}\n" for i in range(60))
    )
    base = cmd[:5] + ["ddpm", "--data-file", str(f), "--steps", "5", "--samples", "20"]
    ok = subprocess.run(
        base + ["--set", "conditional=true", "--out", str(tmp_path / "c")], capture_output=True
    )
    assert ok.returncode == 0 and load_model(str(tmp_path / "c" / "model.safetensors")).n_classes == 2
    plain = subprocess.run(base + ["--out", str(tmp_path / "d")], capture_output=True, text=True)
    assert (
        plain.returncode == 2 and "needs exactly 2" in plain.stderr
    )  # unconditional: two columns, as before


# -- the model contract for the conditional variants --------------------------------------------------------


def test_contract_shapes_losses_gradients_seeds(trained):
    key, model = trained
    for p in model.parameters():
        p.grad = None
    losses = model.train_step(model.train_z[:64])
    assert losses and all(isinstance(v, float) and math.isfinite(v) for v in losses.values())
    missing = [i for i, p in enumerate(model.parameters()) if p.requires_grad and p.grad is None]
    assert not missing
    a, b, c = model.sample(100, 7), model.sample(100, 7), model.sample(100, 8)
    assert a.shape == (100, 2) and torch.isfinite(a).all() and torch.equal(a, b) and not torch.equal(a, c)
    m1, m2 = _conditional(key, steps=2, seed=11), _conditional(key, steps=2, seed=11)
    assert torch.allclose(m1.sample(50, 1), m2.sample(50, 1))


def test_contract_save_load_round_trip(trained, tmp_path):
    key, model = trained
    path = tmp_path / "model.safetensors"
    save_model(model, str(path))
    loaded = load_model(str(path))
    assert loaded.config == model.config and loaded.n_classes == model.n_classes == 2
    assert torch.allclose(loaded.sample(64, 5), model.sample(64, 5), atol=1e-5)
    assert torch.allclose(loaded.sample_class(64, 1, 3.0, 5), model.sample_class(64, 1, 3.0, 5), atol=1e-5)
    if model.has_log_prob:
        x = model.to_x(model.train_z[:20])
        assert torch.allclose(loaded.log_prob(x), model.log_prob(x), atol=1e-4)
    again = model_from_bytes(model_to_bytes(model))
    assert torch.allclose(again.sample(64, 5), model.sample(64, 5), atol=1e-5)


def test_unconditional_default_is_unchanged():
    for key in ("fm", "ddpm"):
        model = make_model(key, make_dataset("moons").sample(200, 0))
        assert not model.config.conditional and model.n_classes == 0
        assert not any("label" in k or "class" in k for k in model.weights())
        assert model.draw_labels(5, torch.Generator()) is None


def test_views_hold_guided_class_samples_and_the_sweep(trained):
    key, model = trained
    g = model.views()["guidance"]
    assert g["samples"].shape == (2 * 200, 2) and np.array_equal(np.unique(g["labels"]), [0, 1])
    assert len(g["sweep"]["w"]) == 5 and np.asarray(g["sweep"]["precision"]).shape == (2, 5)
    from lab.viz import paths as pv

    v = {"guidance": g}
    fig = pv.guided_samples_figure(v, ["a", "b"])
    assert [t.name for t in fig.data] == ["a", "b"] and "w = 0" in fig.layout.title.text
    assert len(pv.guidance_sweep_figure(v).data) == 3 * 2  # precision, recall, energy per class
    for empty in ({}, {"guidance": {}}):  # an unconditional model: a sentence, never an exception
        assert (
            pv.guided_samples_figure(empty).layout.title.text
            and pv.guidance_sweep_figure(empty).layout.title.text
        )


# -- learning and measuring ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["fm", "ddpm"])
def test_a_conditional_model_samples_its_class(key):
    """8 Gaussians, component k in class k mod 2: samples of class c sit at class c's modes."""
    model = _conditional(key, steps=800, seed=0, batch=256, hidden=128, layers=3, ema_decay=0.0)
    modes = make_dataset("8gaussians").modes
    for c in range(2):
        x = model.sample_class(300, c, 0.0, generator=1).numpy()
        nearest = ((x[:, None] - modes[None]) ** 2).sum(-1).argmin(1)
        assert (nearest % 2 == c).mean() > 0.85  # 0.5 by chance; 0.92-1.0 measured at 800 steps


def test_knn_precision_recall_against_by_hand_cases():
    ref = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2)  # unit grid, radius 1
    assert knn_precision_recall(ref + 0.1, ref) == (1.0, 1.0)
    far = ref + 100
    assert knn_precision_recall(far, ref) == (0.0, 0.0)
    half = ref[ref[:, 0] < 5]  # samples on half the support: all precise, half the recall
    prec, rec = knn_precision_recall(half, ref)
    assert prec == 1.0 and 0.5 <= rec <= 0.6  # the boundary column is within one sample radius


def test_guidance_sweep_shape(trained):
    _, model = trained
    refs = [model.to_x(model.train_z[model.train_y == c][:50]) for c in range(2)]
    ds = make_dataset("8gaussians")
    from lab.guidance import class_modes

    out = guidance_sweep(model, refs, (0.0, 2.0), n=50, modes=class_modes(ds, 2), mode_std=ds.mode_std)
    assert np.asarray(out["energy"]).shape == (2, 2) and out["n_modes"] == [4, 4]
    assert all(0 <= m <= 4 for row in out["modes"] for m in row)
    assert MAX_CLASSES == 8


# -- the pages -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page, prefix, rid",
    [("pages/flow_matching.py", "fm", "fm/fm"), ("pages/diffusion.py", "diffusion.ddpm", "diffusion/ddpm")],
)
def test_a_family_page_draws_the_classes_under_guidance(page, prefix, rid):
    """?<prefix>.conditional=true&<prefix>.guidance=2: the run is conditional, its samples are drawn by class."""
    from tests.conftest import built
    from tests.test_pages import _app, _chart_titles, wait_for

    at = _app(page)
    at.query_params[f"{prefix}.conditional"] = "true"
    at.query_params[f"{prefix}.guidance"] = "2"
    at.run()
    runner = at.session_state["runner"]
    assert wait_for(lambda: built(runner, rid))
    runner.step([rid], 3)
    assert wait_for(lambda: runner.snapshot(rid).step == 3 and "guidance" in runner.snapshot(rid).views)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    titles = _chart_titles(at)
    assert any(t.startswith("Samples by class, guidance w = 2") for t in titles), titles
    assert any(t.startswith("Guidance weight w") for t in titles), titles
