"""The valence/arousal regression head: graded targets from mood words (fold-safe), trained
beside the quadrant, exported as a second output, and used by the tagger when a model has it."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mertag.tagger.cli import command_line  # noqa: E402
from mertag.tagger.features import FEATURE_DIM  # noqa: E402
from mertag.tagger.model import VA_OUTPUT_NAME, ModelError, MoodModel  # noqa: E402
from mertag.trainer.ensemble import fit_model  # noqa: E402
from mertag.trainer.export import export_onnx, weights_digest  # noqa: E402
from mertag.trainer.fit import FitConfig, fit_net, predict_net, predict_va  # noqa: E402
from mertag.trainer.valence_arousal import va_targets, word_positions  # noqa: E402

from .test_fit import toy  # noqa: E402

CORNERS = np.array([(1, 1), (-1, 1), (-1, -1), (1, -1)], dtype=np.float32)


def test_a_word_sits_at_the_mean_corner_of_its_training_clips():
    words = [("Calm", "Sad"), ("Calm",), ("Sad",), ("Joyous",), ("Calm", "Joyous"), ("Sad",)]
    labels = np.array([2, 3, 2, 0, 0, 2])  # Q3, Q4, Q3, Q1, Q1, Q3
    train = np.array([0, 1, 2, 3])
    positions = word_positions(words, labels, train, min_clips=1)
    assert positions == {"Calm": (0.0, -1.0), "Sad": (-1.0, -1.0), "Joyous": (1.0, 1.0)}
    assert "Joyous" not in word_positions(words, labels, train, min_clips=2)
    targets = va_targets(words, labels, train, min_clips=2)
    np.testing.assert_allclose(targets[0], [-0.5, -1.0])  # the mean of Calm and Sad
    np.testing.assert_allclose(targets[4], [0.0, -1.0])  # Joyous has too few training clips
    assert np.isnan(targets[3]).all()  # no positioned word: no target
    # Test clips' quadrants never move a position: relabelling them changes nothing.
    relabelled = labels.copy()
    relabelled[4:] = 1
    np.testing.assert_array_equal(va_targets(words, relabelled, train, 2), targets)


def test_without_a_weight_training_is_exactly_as_before():
    seqs, labels = toy(6)
    va = CORNERS[labels] * 0.5
    config = FitConfig(arch="lstm", epochs=2, hidden=8, seed=2, ensemble=2, linear_weight=0.3)
    plain = fit_model(seqs, labels, config)
    assert weights_digest(fit_model(seqs, labels, config, va=va)) == weights_digest(plain)
    assert not plain.has_valence_arousal


def test_the_head_learns_graded_targets_beside_the_quadrant():
    seqs, labels = toy(8)
    va = CORNERS[labels] * 0.5  # graded: halfway to the corners
    va[::5] = np.nan  # clips without a target are left out of the loss
    config = FitConfig(arch="lstm", epochs=25, hidden=16, seed=0, va_weight=1.0)
    net = fit_net(seqs, labels, config, va=va)
    assert net.has_valence_arousal
    got = predict_va(net, seqs)
    assert got.shape == (len(seqs), 2) and np.all(np.abs(got) < 1)
    known = ~np.isnan(va[:, 0])
    assert np.abs(got[known] - va[known]).mean() < 0.2
    assert (predict_net(net, seqs).argmax(axis=1) == labels).mean() >= 0.9
    with_head = {name for name, _ in net.named_parameters()}
    plain = fit_net(seqs, labels, replace(config, epochs=1, va_weight=0.0), va=va)
    assert with_head - {name for name, _ in plain.named_parameters()} == {
        "va_head.weight",
        "va_head.bias",
    }


def test_an_exported_head_is_a_second_output_the_tagger_uses(tmp_path: Path):
    seqs, labels = toy(6)
    config = FitConfig(
        arch="lstm", epochs=3, hidden=8, seed=1, ensemble=2, linear_weight=0.3, va_weight=1.0
    )
    net = fit_model(seqs, labels, config, va=CORNERS[labels] * 0.5)
    path = tmp_path / "va.onnx"
    export_onnx(net, path, {}, calibration={"temperature": 2.0})
    model = MoodModel(path)
    assert model.info.valence_arousal
    assert VA_OUTPUT_NAME in [o.name for o in model.session.get_outputs()]
    x = list(np.random.default_rng(4).normal(size=(3, 5, FEATURE_DIM)).astype(np.float32))
    x.append(x[0][:2].copy())  # a track of several sequences of two lengths
    expected = predict_va(net, x)  # the mean of the nets' heads
    point = model.track_valence_arousal(x)
    assert point is not None
    np.testing.assert_allclose(point, expected.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(model.raw_probabilities(x), predict_net(net, x), atol=1e-5)
    p = model.predict(x)
    assert (p.valence, p.arousal) == pytest.approx(point)
    # The quadrant still comes from the calibrated probabilities.
    assert p.probabilities == pytest.approx(tuple(model.track_probabilities(x)))
    # A model without the head: corner expectations, as before.
    plain_path = tmp_path / "plain.onnx"
    export_onnx(fit_model(seqs, labels, replace(config, va_weight=0.0)), plain_path, {})
    plain = MoodModel(plain_path)
    assert not plain.info.valence_arousal and plain.track_valence_arousal(x) is None
    q = plain.predict(x)
    pr = q.probabilities
    assert q.arousal == pytest.approx(pr[0] + pr[1] - pr[2] - pr[3])


def test_metadata_promising_a_head_the_graph_lacks_is_refused(tmp_path: Path):
    import onnx

    seqs, labels = toy(4)
    net = fit_net(seqs, labels, FitConfig(arch="lstm", epochs=1, hidden=8))
    path = tmp_path / "m.onnx"
    export_onnx(net, path, {})
    proto = onnx.load(str(path))
    proto.metadata_props.add(key="valence_arousal", value="regression head, mean over the nets")
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match="valence_arousal"):
        MoodModel(path)


def _with_moods(data: Path, root: Path) -> Path:
    """A copy of the tiny dataset whose clips carry mood words that cross the quadrants, so
    the targets are graded."""
    shutil.copytree(data, root)
    words = {"Q1": "Bright; Intense", "Q2": "Dark; Intense", "Q3": "Dark; Mellow"}
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        row["moods"] = words.get(row["quadrant"], "Bright; Mellow") + ("; Rare" if i % 2 else "")
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0].keys()])
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.mark.usefixtures("need_frontend")
def test_train_keeps_the_head_and_a_scan_writes_its_values(
    tiny_data: Path, shared_cache: Path, tmp_path: Path
):
    import soundfile as sf
    from mutagen.flac import FLAC
    from typer.testing import CliRunner

    from mertag.tagger.features import extract_track
    from mertag.trainer.train import train

    from .conftest import SR, synth

    data = _with_moods(tiny_data, tmp_path / "data")
    config = FitConfig(epochs=2, ensemble=2, va_weight=1.0, va_min=2, mood_words_min=2)
    model_path = tmp_path / "va.onnx"
    result = train(
        data / "labels.csv",
        model_path,
        config,
        folds=2,
        augment=False,
        cache_dir=shared_cache,
        n_jobs=1,
        fold_models=tmp_path / "folds",
    )
    assert result.chosen is not None and result.chosen.valence_arousal is not None
    folds = json.loads((tmp_path / "folds" / "folds.json").read_text())
    assert len(folds["oof_valence_arousal"]) == len(folds["oof_va_targets"]) == 16
    assert all(abs(v) <= 1 for row in folds["oof_valence_arousal"] for v in row)
    assert MoodModel(tmp_path / "folds" / "fold0.onnx").info.valence_arousal
    model = MoodModel(model_path)
    assert model.info.valence_arousal
    assert model.info.training_summary["hyperparameters"]["va_weight"] == 1.0

    library = tmp_path / "library"
    library.mkdir()
    track = library / "swell.flac"
    sf.write(track, synth("Q4", 1), SR)
    scan = CliRunner().invoke(
        command_line(),
        [
            "scan",
            str(library),
            "--model",
            str(model_path),
            "--index",
            str(tmp_path / "i.db"),
            "--jobs",
            "1",
        ],
        catch_exceptions=False,
    )
    assert scan.exit_code == 0, scan.output
    expected = model.predict(extract_track(track, columns=model.columns).sequences)
    tags = FLAC(track)
    assert tags["MERTAG_VALENCE"] == [f"{expected.valence:.3f}"]
    assert tags["MERTAG_AROUSAL"] == [f"{expected.arousal:.3f}"]
    assert tags["MERTAG_QUADRANT"] == [expected.quadrant]
    # `mertag write` puts the head's values back from the index, not the corner expectations.
    del tags["MERTAG_VALENCE"]
    tags.save()
    write = CliRunner().invoke(
        command_line(), ["write", "--index", str(tmp_path / "i.db")], catch_exceptions=False
    )
    assert write.exit_code == 0, write.output
    assert FLAC(track)["MERTAG_VALENCE"] == [f"{expected.valence:.3f}"]
