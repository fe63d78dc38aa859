"""A cheaper musicnn: each timbral filter replaced by a rank-r separable sum from its SVD.

The two timbral convolutions of musicnn (204 filters of 7 x 38 and of 7 x 67 over the 187 x 96
log-mel patch) are most of a patch's CPU. Each filter W_f (time x mel) is replaced by its best
rank-r approximation, W_f ~ sum over k < r of s_k u_k v_k^T (u over the 7 frames, v over the mel
bands), computed per term k as a mel convolution (204 kernels of 1 x 38 or 1 x 67 over the
padded patch) then a depthwise time convolution (7 x 1, one kernel per filter), the r terms
added. ReLU, batch norm and the max over mel stay as in the port
(`mertag.trainer.musicnn_port`), as do every other layer and weight: no training.
This is the fastest of the layouts measured in onnxruntime (one thread, the tagger's options;
docs/PERFORMANCE.md): mel first (the time kernels run over 59 / 30 mel offsets, not 96), and
one depthwise conv per term rather than one grouped conv of r channels per group or a
depthwise conv over r * 204 channels and a sum, which onnxruntime runs several times slower.

    python -m mertag.trainer.musicnn_lowrank WEIGHTS_NPZ OUT.onnx --frontend musicnn-msd --rank R

writes the ONNX file with the port's metadata plus ``musicnn_timbral_rank`` = R. Not shipped:
musicnn's filters are far from low rank, so no rank up to 4 keeps the embeddings within the
pre-registered 2 % (docs/PERFORMANCE.md, "Issue 14: low-rank timbral filters"); the shipped
networks are the exact port's. The tool stays for a fine-tuned or distilled front end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from mertag.trainer.musicnn_port import (
    FRONTEND_SOURCES,
    Musicnn,
    export_model_onnx,
    load_musicnn,
)

RANK_KEY = "musicnn_timbral_rank"
"""ONNX metadata key: the rank of the timbral filters (absent in the exact port's files)."""


class SeparableConv(nn.Module):
    """A single-channel (time x mel) Conv2d as a sum of `rank` separable terms, one per singular
    value of each filter: term k is a mel conv (1 -> filters, the v_k scaled by sqrt(s_k)) then a
    depthwise time conv (the u_k scaled by sqrt(s_k)); the terms are added, the bias once.

    Maps the same input to the same output shape as the conv; equals it when `rank` is the
    kernel's full rank (its time size, 7).
    """

    def __init__(self, conv: nn.Conv2d, rank: int) -> None:
        super().__init__()
        filters, in_ch, k_time, k_mel = conv.weight.shape
        if in_ch != 1 or not 1 <= rank <= min(k_time, k_mel):
            raise ValueError(f"rank {rank} for a conv of weight shape {tuple(conv.weight.shape)}")
        w = conv.weight.detach().double()[:, 0]  # (filters, time, mel)
        u, s, vh = torch.linalg.svd(w, full_matrices=False)  # (F, t, t), (F, t), (F, t, mel)
        root = s.sqrt()
        self.mel = nn.ModuleList()
        self.time = nn.ModuleList()
        for k in range(rank):
            mel = nn.Conv2d(1, filters, (1, k_mel), bias=False)
            bias = k == 0 and conv.bias is not None
            time = nn.Conv2d(filters, filters, (k_time, 1), groups=filters, bias=bias)
            with torch.no_grad():
                mel.weight.copy_((vh[:, k, :] * root[:, k, None]).float()[:, None, None, :])
                time.weight.copy_((u[:, :, k] * root[:, k, None]).float()[:, None, :, None])
                if time.bias is not None and conv.bias is not None:
                    time.bias.copy_(conv.bias.detach())
            self.mel.append(mel)
            self.time.append(time)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, T + k_time - 1, mel) -> (N, filters, T, mel - k_mel + 1), as the conv."""
        out = self.time[0](self.mel[0](x))
        for mel, time in zip(self.mel[1:], self.time[1:], strict=True):
            out = out + time(mel(x))
        return out


def lowrank_musicnn(model: Musicnn, rank: int) -> Musicnn:
    """`model` with both timbral convolutions replaced by rank-`rank` separable sums, in place."""
    for branch in model.timbral:
        conv = branch.conv
        assert isinstance(conv, nn.Conv2d)
        branch.conv = SeparableConv(conv, rank)
    return model.eval()


def export_lowrank_onnx(weights_npz: Path, out: Path, frontend: str, rank: int) -> None:
    """The port of `weights_npz`, rank-`rank` timbral filters, exported as the runtime reads it."""
    model = lowrank_musicnn(load_musicnn(weights_npz), rank)
    export_model_onnx(model, out, frontend, {RANK_KEY: str(rank)})


def main(argv: list[str] | None = None) -> None:
    """CLI: python -m mertag.trainer.musicnn_lowrank WEIGHTS_NPZ OUT.onnx --frontend F --rank R."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("weights_npz", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frontend", choices=sorted(FRONTEND_SOURCES), default="musicnn-msd")
    parser.add_argument("--rank", type=int, required=True, help="terms per timbral filter (1-7)")
    args = parser.parse_args(argv)
    export_lowrank_onnx(args.weights_npz, args.out, args.frontend, args.rank)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), timbral rank {args.rank}")


if __name__ == "__main__":
    main()
