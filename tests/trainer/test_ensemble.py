"""The seed ensemble: averages its members, exports to one ONNX graph that matches torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mertag.tagger.features import FEATURE_DIM  # noqa: E402
from mertag.tagger.model import MoodModel  # noqa: E402
from mertag.trainer.ensemble import MoodEnsemble, ensemble_name, fit_model  # noqa: E402
from mertag.trainer.export import export_onnx, weights_digest  # noqa: E402
from mertag.trainer.fit import FitConfig, fit_net, predict_net  # noqa: E402
from mertag.trainer.nets import MoodNet  # noqa: E402
from tests.trainer.test_fit import toy  # noqa: E402

CONFIG = FitConfig(arch="lstm", epochs=2, hidden=8, seed=3, ensemble=3, linear_weight=0)


def test_members_differ_and_the_ensemble_averages_them():
    seqs, labels = toy(n_per_class=4)
    ens = fit_model(seqs, labels, CONFIG)
    assert isinstance(ens, MoodEnsemble) and len(ens.members) == 3
    assert ens.arch == "lstm-x3" == ensemble_name("lstm", 3)
    assert len({weights_digest(m) for m in ens.members}) == 3
    x = torch.from_numpy(np.stack([s[:1] for s in seqs[:4]]))  # toy lengths vary
    with torch.no_grad():
        expected = torch.stack([m(x) for m in ens.members]).mean(dim=0)
        assert torch.allclose(ens(x), expected)
    assert weights_digest(fit_model(seqs, labels, CONFIG)) == weights_digest(ens)


def test_one_member_is_a_plain_net():
    seqs, labels = toy(n_per_class=3)
    net = fit_model(
        seqs, labels, FitConfig(arch="rnn", epochs=1, hidden=8, ensemble=1, linear_weight=0)
    )
    assert isinstance(net, MoodNet) and net.arch == "rnn"


def test_members_must_agree():
    seqs, labels = toy(n_per_class=3)
    a = fit_net(seqs, labels, FitConfig(arch="rnn", epochs=1, hidden=8))
    b = fit_net(seqs, labels, FitConfig(arch="lstm", epochs=1, hidden=8))
    with pytest.raises(ValueError):
        MoodEnsemble([a, b])
    with pytest.raises(ValueError):
        MoodEnsemble([])


@pytest.mark.parametrize("arch", ["lstm", "birnn"])
def test_onnx_matches_torch(arch: str, tmp_path: Path):
    seqs, labels = toy(n_per_class=4)
    config = FitConfig(arch=arch, epochs=2, hidden=8, ensemble=3, linear_weight=0)
    ens = fit_model(seqs, labels, config)
    path = tmp_path / "ens.onnx"
    mid = export_onnx(ens, path, {"arch": arch, "ensemble": 3})
    model = MoodModel(path)
    assert mid == model.model_id and mid.startswith(f"mertag-{arch}-x3-")
    rng = np.random.default_rng(5)
    for batch, length in [(1, 1), (3, 4), (2, 11)]:
        x = (rng.normal(size=(batch, length, FEATURE_DIM)) * 50).astype(np.float32)
        expected = predict_net(ens, list(x))
        got = model.probabilities(list(x))
        assert np.max(np.abs(got - expected)) <= 1e-5


def test_pooled_head_is_the_logreg_baseline(tmp_path: Path):
    from mertag.trainer.baselines import make_baseline, pooled
    from mertag.trainer.linear import fit_linear

    seqs, labels = toy(n_per_class=5)
    head = fit_linear(seqs, labels, "both")
    x = np.stack([pooled([s], "both") for s in seqs])
    expected = make_baseline("logreg", 0).fit(x, labels).predict_proba(x)
    got = predict_net(head, seqs)
    assert np.max(np.abs(got - expected)) <= 1e-4


def test_ensemble_with_pooled_head_exports(tmp_path: Path):
    seqs, labels = toy(n_per_class=4)
    config = FitConfig(arch="lstm", epochs=2, hidden=8, ensemble=2, linear_weight=0.25)
    ens = fit_model(seqs, labels, config)
    assert ens.arch == "lstm-x2-lin" and ens.linear is not None
    x = torch.from_numpy(seqs[0][None])
    with torch.no_grad():
        nets = (ens.members[0](x) + ens.members[1](x)) / 2
        assert torch.allclose(ens(x), 0.75 * nets + 0.25 * ens.linear(x))
    path = tmp_path / "ens.onnx"
    export_onnx(ens, path, {})
    model = MoodModel(path)
    rng = np.random.default_rng(6)
    for batch, length in [(1, 1), (2, 3), (3, 12)]:
        xs = (rng.normal(size=(batch, length, FEATURE_DIM)) * 50 + 7).astype(np.float32)
        assert np.max(np.abs(model.probabilities(list(xs)) - predict_net(ens, list(xs)))) <= 1e-5
