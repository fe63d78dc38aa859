"""librosa's eagerly typed numba ufuncs, built on first call in a scan's processes: the loop a
call gets is the one numpy would pick from the full list, so the features stay the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mertag.tagger.kernels import LAZY_ENV, _DeferredUfunc
from tests.tagger.fault_helpers import REPO

SIGNATURES = [
    "void(int16[:], float64[:])",
    "void(float32[:], float64[:])",
    "void(float64[:], float64[:])",
]


def _twice(x, y):  # type: ignore[no-untyped-def]
    for i in range(x.shape[0]):
        y[i] = 2 * x[i]


@pytest.fixture(scope="module")
def deferred() -> _DeferredUfunc:
    import numba

    return _DeferredUfunc(_twice, numba.guvectorize, SIGNATURES, ("(n)->(n)",), {})


@pytest.mark.parametrize(
    ("dtype", "loop"),
    [("int16", 0), ("float32", 1), ("float64", 2), ("int32", None), ("float16", None)],
)
def test_a_call_gets_the_loop_of_its_dtype_or_every_loop(
    deferred: _DeferredUfunc, dtype: str, loop: int | None
) -> None:
    x = np.arange(5).astype(dtype)
    y = np.empty(5)
    assert deferred._loop((x, y)) == loop
    deferred(x, y)
    np.testing.assert_array_equal(y, 2 * x.astype(np.float64))
    assert loop in deferred._built


def test_an_attribute_is_the_ufunc_of_every_loop(deferred: _DeferredUfunc) -> None:
    assert deferred.ntypes == len(SIGNATURES)
    assert deferred.__name__ == "_twice"


_CHILD = """
import sys
import numpy as np
import mertag.tagger
from mertag.tagger.features import cache_filters, frame_features
from librosa.util import utils
cache_filters()
np.save(sys.argv[1], frame_features(np.load(sys.argv[2])))
built = getattr(utils._localmax, "_built", None)
print(type(utils._localmax).__name__, "" if built is None else sorted(built))
"""


def _child_features(tmp_path: Path, audio: Path, lazy: bool) -> tuple[np.ndarray, str]:
    env = {k: v for k, v in os.environ.items() if k != LAZY_ENV}
    if lazy:
        env[LAZY_ENV] = "1"
    out = tmp_path / f"features-{lazy}.npy"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(out), str(audio)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return np.load(out), done.stdout.strip()


def test_a_scan_process_computes_the_same_features_with_one_loop_each(tmp_path: Path) -> None:
    t = np.arange(5 * 16000) / 16000
    rng = np.random.default_rng(0)
    y = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    np.save(tmp_path / "y.npy", y)
    deferred, said = _child_features(tmp_path, tmp_path / "y.npy", lazy=True)
    assert said == "_DeferredUfunc [3]"  # the float32 loop alone
    eager, said = _child_features(tmp_path, tmp_path / "y.npy", lazy=False)
    assert said.startswith("GUFunc")  # numba's own, every loop built at import
    np.testing.assert_array_equal(deferred, eager)
