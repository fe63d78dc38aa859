"""musicnn's temporal branches with the max over mel taken first, for the ONNX export.

Each temporal branch of musicnn (`mertag.trainer.musicnn_port`) is a conv of 51 filters of
128, 64 or 32 frames by one band, 'same' in time, over every one of the 96 mel bands, then the
filter's bias, ReLU, batch norm and the max over the bands. Bias, ReLU and batch norm (in eval
mode, an affine map a x + c per filter) are monotone per filter: increasing where the scale a is
positive, decreasing where it is negative. So the max over the bands can go first, before them,
on the raw conv output, once each negative-scale filter is negated (its max is then the
negated min it needs):

    max_b a relu(z_b + bias) + c  =  a relu(s max_b (s w * x)_b + bias) + c,   s = sign(a)

The conv itself is unchanged; what goes is the ReLU and batch norm over the full (51, 187, 96)
maps of each branch, and their copies between onnxruntime's blocked and plain layouts: ~9 % of
a network's CPU per patch. The values equal the branch's to float32 rounding (the same
products and sums; only the order of the max and the affine map differs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TEMPORAL_KEY = "musicnn_temporal"
"""ONNX metadata key naming how the temporal branches are computed ("max-first" here)."""


class MaxFirstTemporal(nn.Module):
    """A temporal branch (conv, ReLU, batch norm, max over mel) with the max over mel first.

    Built from the branch's conv (filters x 1 x time x 1) and batch norm (eval mode); maps
    (N, 1, T, mel) to (N, filters, T) as the branch does.
    """

    weight: torch.Tensor
    sign: torch.Tensor
    bias: torch.Tensor

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, time_pad: tuple[int, int]) -> None:
        super().__init__()
        filters, in_ch, _, k_mel = conv.weight.shape
        if in_ch != 1 or k_mel != 1 or conv.stride != (1, 1) or conv.padding != (0, 0):
            raise ValueError(f"not a temporal conv: weight {tuple(conv.weight.shape)}")
        if bn.running_var is None:
            raise ValueError("the batch norm keeps no running statistics")
        self.time_pad = time_pad
        self.bn = bn
        scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach()
        sign = torch.where(scale >= 0, 1.0, -1.0)
        self.register_buffer("weight", (conv.weight.detach() * sign.view(-1, 1, 1, 1)).clone())
        self.register_buffer("sign", sign.view(1, -1, 1).clone())
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(filters)
        self.register_buffer("bias", bias.reshape(1, -1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, T, mel) -> (N, filters, T)."""
        peaks = F.conv2d(F.pad(x, (0, 0, *self.time_pad)), self.weight).amax(dim=3)
        y = F.relu(peaks * self.sign + self.bias)
        return self.bn(y.unsqueeze(3)).squeeze(3)
