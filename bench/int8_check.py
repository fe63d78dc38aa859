"""Int8 musicnn front ends (onnxruntime's quantisation) against the shipped float ones.

    python bench/int8_check.py OUT_DIR [--every 18] [--ops Conv,MatMul]

Writes into OUT_DIR, for each shipped network, two int8 copies made by onnxruntime's own
quantisation tools (`onnxruntime.quantization`, which needs the `onnx` package): `dynamic`
(int8 weights per channel, activations quantised at run time) and `static` (QDQ, uint8
activations with ranges calibrated by MinMax on the log-mel patches of the corpus tracks, never
on the 4Q clips that measure it), each of the op types in --ops. Then, on the log-mel patches
of every 18th clip of the 4Q labels, it prints per copy each output column's RMS difference
from the shipped network in units of that column's std (median, 90th percentile, worst over the
250 columns; `bench/lowrank_check.py`'s measure) and the largest change of a tag probability.
Time the copies with `python bench/lowrank_check.py cpu OUT_DIR/musicnn_msd_KIND.onnx
OUT_DIR/musicnn_mtt_KIND.onnx`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lowrank_check import SHARED, column_errors, rank_patches  # noqa: E402

from mertag.tagger import features  # noqa: E402
from mertag.tagger.embeddings import (  # noqa: E402
    FRONTENDS,
    MusicnnEmbedder,
    frontend_path,
    mel_patches,
)
from mertag.tagger.loudness import normalise_level  # noqa: E402

KINDS = ("dynamic", "static")


def corpus_patches() -> np.ndarray:
    """The log-mel patches a scan analyses of each corpus track (the calibration set)."""
    patches = []
    for path in sorted((SHARED / "corpus").iterdir()):
        if path.suffix != ".md":
            patches.append(mel_patches(normalise_level(features.decode_excerpt(path)[0])))
    return np.concatenate(patches)


def quantise(source: Path, target: Path, kind: str, ops: list[str], calib: np.ndarray) -> None:
    from onnxruntime import quantization as q

    prepared = target.with_suffix(".pre.onnx")
    q.shape_inference.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    if kind == "dynamic":
        q.quantize_dynamic(
            prepared,
            target,
            op_types_to_quantize=ops,
            per_channel=True,
            weight_type=q.QuantType.QInt8,
        )
    else:
        feeds = iter([{"mel_patches": calib[i : i + 1]} for i in range(len(calib))])

        class Reader(q.CalibrationDataReader):
            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(feeds, None)

        q.quantize_static(
            prepared,
            target,
            Reader(),
            quant_format=q.QuantFormat.QDQ,
            op_types_to_quantize=ops,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
        )
    prepared.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--every", type=int, default=18)
    parser.add_argument("--ops", default="Conv,MatMul")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    calib, patches = corpus_patches(), rank_patches(args.every)
    print(f"calibration: {len(calib)} corpus patches; ops {args.ops}")
    for name in FRONTENDS:
        exact = MusicnnEmbedder(frontend_path(name)).embed_patches(patches)
        for kind in KINDS:
            target = args.out_dir / f"{Path(name).stem}_{kind}.onnx"
            quantise(frontend_path(name), target, kind, args.ops.split(","), calib)
            approx = MusicnnEmbedder(target).embed_patches(patches)
            err = column_errors(exact, approx)
            dp = np.abs(approx[:, 200:] - exact[:, 200:]).max()
            print(
                f"{target.name:<28} column error median {np.median(err):.3f} p90 "
                f"{np.quantile(err, 0.9):.3f} worst {err.max():.3f}; max |d tag| {dp:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
