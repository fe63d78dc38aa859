"""A torch port of the pretrained musicnn taggers, and their export to the shipped ONNX front ends.

musicnn (Pons & Serra 2019) ships only TensorFlow 1 checkpoints; this module rebuilds the network
in torch from the checkpoint's tensors (an ``.npz`` keyed by TensorFlow variable name, as
``mertag.trainer.tf_checkpoint`` writes it) so that the runtime can use it through onnxruntime,
without
TensorFlow. MSD_musicnn and MTT_musicnn share the architecture; only the weights differ. Layer
order follows the upstream graph exactly: every convolution and the penultimate dense layer
apply ReLU *before* their batch normalisation, and the back end's batch norm sees max and mean
pools interleaved feature by feature, as TensorFlow's flatten of a (753, 2) map leaves them.

Run ``python -m mertag.trainer.musicnn_port WEIGHTS_NPZ OUT.onnx --frontend musicnn-msd`` to write
the
ONNX file (the model card gives the commands for both shipped front ends). The export computes
the two timbral convolutions through a DFT along the mel axis (`mertag.trainer.musicnn_meldft`:
the same values to float32 rounding, a quarter of the multiply-adds); this module's `Musicnn`
stays the plain convolutional reference the tests hold it to.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mertag.tagger.audio import SAMPLE_RATE
from mertag.tagger.embeddings import MUSICNN_HOP, MUSICNN_N_FFT, MUSICNN_N_MELS, PATCH_FRAMES
from mertag.trainer.musicnn_meldft import TIMBRAL_KEY, MelDftTimbral
from mertag.trainer.musicnn_temporal import TEMPORAL_KEY, MaxFirstTemporal

BN_EPS = 1e-3
"""TensorFlow's default batch-normalisation epsilon, which the checkpoint was trained with."""

OPSET = 18

FRONTEND_SOURCES = {
    "musicnn-msd": "MSD_musicnn weights (Pons & Serra 2019), ISC licence",
    "musicnn-mtt": "MTT_musicnn weights (Pons & Serra 2019), ISC licence",
}
"""Front-end name -> where its weights come from, as the ONNX metadata records it."""

ONNX_METADATA = {
    "sample_rate": str(SAMPLE_RATE),
    "n_fft": str(MUSICNN_N_FFT),
    "hop": str(MUSICNN_HOP),
    "n_mels": str(MUSICNN_N_MELS),
    "patch_frames": str(PATCH_FRAMES),
}
"""What the ONNX file carries so the runtime can check it computes the input the same way."""


def _same_pad(kernel: int) -> tuple[int, int]:
    """TensorFlow 'same' padding for stride 1: the odd extra row goes after, not before."""
    total = kernel - 1
    return total // 2, total - total // 2


class _FreqPooledConv(nn.Module):
    """Conv over the (time, mel) plane, ReLU, batch norm, then max over the whole mel axis.

    ``time_pad`` is the (before, after) zero padding on time; the mel axis is never padded
    because the max over it follows (upstream pads the timbral branch the same way).
    """

    def __init__(self, out_ch: int, kernel: tuple[int, int], time_pad: tuple[int, int]) -> None:
        super().__init__()
        self.time_pad = time_pad
        self.conv = nn.Conv2d(1, out_ch, kernel)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, T, mel) -> (N, out_ch, T)."""
        x = F.pad(x, (0, 0, *self.time_pad))
        x = self.bn(F.relu(self.conv(x)))
        return x.amax(dim=3)


class _TimeConv(nn.Module):
    """Mid-end 1-D conv over time with kernel 7 ('same'), ReLU, then batch norm."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, 7, padding=3)
        self.bn = nn.BatchNorm1d(out_ch, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, T) -> (N, out_ch, T)."""
        return self.bn(F.relu(self.conv(x)))


class Musicnn(nn.Module):
    """MSD_musicnn in inference mode: (N, 187, 96) log-mel patches -> penultimate and tags.

    ``forward`` returns ``(penultimate, tags)``, the pair exported to ONNX; ``features`` returns
    every intermediate the upstream extractor exposes, laid out as upstream does, for parity tests.
    """

    def __init__(self, n_mels: int = MUSICNN_N_MELS, n_tags: int = 50) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        # Timbral branches: 7 frames by 40% / 70% of the mel bands, 1.6 * 128 filters.
        self.timbral = nn.ModuleList(
            _FreqPooledConv(204, (7, int(frac * n_mels)), (3, 3)) for frac in (0.4, 0.7)
        )
        # Temporal branches: 128 / 64 / 32 frames by one band, 1.6 * 32 filters.
        self.temporal = nn.ModuleList(
            _FreqPooledConv(51, (k, 1), _same_pad(k)) for k in (128, 64, 32)
        )
        front_ch = 2 * 204 + 3 * 51
        self.mid = nn.ModuleList([_TimeConv(front_ch, 64), _TimeConv(64, 64), _TimeConv(64, 64)])
        pooled = front_ch + 3 * 64
        self.pool_bn = nn.BatchNorm1d(2 * pooled, eps=BN_EPS)
        self.dense = nn.Linear(2 * pooled, 200)
        self.dense_bn = nn.BatchNorm1d(200, eps=BN_EPS)
        self.out = nn.Linear(200, n_tags)

    def features(self, mel_patches: torch.Tensor) -> dict[str, torch.Tensor]:
        """All upstream outputs by upstream name: timbral, temporal, cnn1..3, pools, tags."""
        x = self.input_bn(mel_patches.unsqueeze(1))
        timbral = torch.cat([branch(x) for branch in self.timbral], dim=1)
        temporal = torch.cat([branch(x) for branch in self.temporal], dim=1)
        front = torch.cat([timbral, temporal], dim=1)
        cnn1 = self.mid[0](front)
        cnn2 = self.mid[1](cnn1) + cnn1
        cnn3 = self.mid[2](cnn2) + cnn2
        stacked = torch.cat([front, cnn1, cnn2, cnn3], dim=1)
        max_pool = stacked.amax(dim=2)
        mean_pool = stacked.mean(dim=2)
        # TF flattens a (features, 2) map of [max, mean]: the two pools alternate per feature.
        flat = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(flat))))
        tags = torch.sigmoid(self.out(penultimate))
        return {
            "timbral": timbral.transpose(1, 2),
            "temporal": temporal.transpose(1, 2),
            "cnn1": cnn1.transpose(1, 2).unsqueeze(3),
            "cnn2": cnn2.transpose(1, 2).unsqueeze(3),
            "cnn3": cnn3.transpose(1, 2).unsqueeze(3),
            "mean_pool": mean_pool,
            "max_pool": max_pool,
            "penultimate": penultimate,
            "tags": tags,
        }

    def forward(self, mel_patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 187, 96) -> penultimate (N, 200), after the dense layer's ReLU and BN, and tags."""
        out = self.features(mel_patches)
        return out["penultimate"], out["tags"]


def _bn_names(model: Musicnn) -> list[tuple[nn.Module, str]]:
    """Each batch norm with its TF name; TF numbered layers in the order the graph built them."""
    blocks = [*model.timbral, *model.temporal, *model.mid]
    bns: list[nn.Module] = [model.input_bn]
    bns += [cast(nn.Module, b.bn) for b in blocks] + [model.pool_bn, model.dense_bn]
    return [(bn, "batch_normalization" + (f"_{i}" if i else "")) for i, bn in enumerate(bns)]


def _conv_names(model: Musicnn) -> list[tuple[nn.Module, str]]:
    """Each convolution with its TF name, in graph-building order like the batch norms."""
    blocks = [*model.timbral, *model.temporal, *model.mid]
    convs = [cast(nn.Module, b.conv) for b in blocks]
    return [(conv, "conv2d" + (f"_{i}" if i else "")) for i, conv in enumerate(convs)]


def load_musicnn(weights_npz: Path) -> Musicnn:
    """Build Musicnn from the checkpoint's tensors, in eval mode; fails on any shape mismatch."""
    with np.load(weights_npz) as npz:
        w = {k: torch.from_numpy(np.asarray(npz[k], dtype=np.float32)) for k in npz.files}
    model = Musicnn()
    state: dict[str, torch.Tensor] = {}
    names = {module: prefix for prefix, module in model.named_modules()}
    for bn, tf in _bn_names(model):
        p = names[bn]
        state[f"{p}.weight"] = w.pop(f"{tf}/gamma")
        state[f"{p}.bias"] = w.pop(f"{tf}/beta")
        state[f"{p}.running_mean"] = w.pop(f"{tf}/moving_mean")
        state[f"{p}.running_var"] = w.pop(f"{tf}/moving_variance")
    for conv, tf in _conv_names(model):
        p = names[conv]
        kernel = w.pop(f"{tf}/kernel")  # [height, width, in, out]
        if isinstance(conv, nn.Conv1d):
            # The mid-end convs span the whole feature axis as TF's width: it is torch's channel.
            state[f"{p}.weight"] = kernel[:, :, 0, :].permute(2, 1, 0)
        else:
            state[f"{p}.weight"] = kernel.permute(3, 2, 0, 1)
        state[f"{p}.bias"] = w.pop(f"{tf}/bias")
    for lin, tf in ((model.dense, "dense"), (model.out, "dense_1")):
        p = names[lin]
        state[f"{p}.weight"] = w.pop(f"{tf}/kernel").T
        state[f"{p}.bias"] = w.pop(f"{tf}/bias")
    if w:
        raise ValueError(f"{weights_npz}: tensors the port does not use: {sorted(w)}")
    for key, value in state.items():
        state[key] = value.contiguous()
    model.load_state_dict(state, strict=False)
    missing = set(model.state_dict()) - set(state)
    if any(not k.endswith("num_batches_tracked") for k in missing):
        raise ValueError(f"{weights_npz}: no tensor for {sorted(missing)}")
    return model.eval()


def with_mel_dft_timbral(model: Musicnn) -> Musicnn:
    """A copy of `model` whose timbral branches run through the mel-axis DFT, for export."""
    out = copy.deepcopy(model).eval()
    branches = [cast(_FreqPooledConv, b) for b in out.timbral]
    out.timbral = nn.ModuleList(
        MelDftTimbral(b.conv, b.bn, b.time_pad, out.n_mels) for b in branches
    )
    return out


def with_max_first_temporal(model: Musicnn) -> Musicnn:
    """A copy of `model` whose temporal branches take the max over mel first, for export."""
    out = copy.deepcopy(model).eval()
    branches = [cast(_FreqPooledConv, b) for b in out.temporal]
    out.temporal = nn.ModuleList(MaxFirstTemporal(b.conv, b.bn, b.time_pad) for b in branches)
    return out


EXPORT_FORMS = {TIMBRAL_KEY: "mel-dft", TEMPORAL_KEY: "max-first"}
"""How the exported networks compute their branches, recorded in each file's metadata."""


def export_musicnn_onnx(weights_npz: Path, out: Path, frontend: str = "musicnn-msd") -> None:
    """Export the port to ONNX (dynamic batch) with the front-end metadata the runtime checks;
    the timbral convolutions go through the mel-axis DFT (`with_mel_dft_timbral`) and the
    temporal branches take the max over mel first (`with_max_first_temporal`)."""
    model = with_max_first_temporal(with_mel_dft_timbral(load_musicnn(weights_npz)))
    export_model_onnx(model, out, frontend, EXPORT_FORMS)


def export_model_onnx(
    model: Musicnn, out: Path, frontend: str, extra_metadata: dict[str, str] | None = None
) -> None:
    """Export a built Musicnn (the port, or a variant of it) to ONNX as the runtime reads it."""
    import onnx

    example = torch.zeros(2, PATCH_FRAMES, MUSICNN_N_MELS)
    batch = torch.export.Dim("batch")
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (example,),
            input_names=["mel_patches"],
            output_names=["penultimate", "tags"],
            opset_version=OPSET,
            dynamic_shapes={"mel_patches": {0: batch}},
            dynamo=True,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    proto = program.model_proto
    del proto.metadata_props[:]
    metadata = {"mertag_frontend": frontend, "source": FRONTEND_SOURCES[frontend], **ONNX_METADATA}
    metadata.update(extra_metadata or {})
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(out))


def main(argv: list[str] | None = None) -> None:
    """CLI: python -m mertag.trainer.musicnn_port WEIGHTS_NPZ OUT.onnx [--frontend NAME]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights_npz", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frontend", choices=sorted(FRONTEND_SOURCES), default="musicnn-msd")
    args = parser.parse_args(argv)
    export_musicnn_onnx(args.weights_npz, args.out, args.frontend)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
