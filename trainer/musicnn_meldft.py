"""musicnn's timbral convolutions computed through a DFT along the mel axis, for the ONNX export.

Each timbral branch of musicnn (`mertag.trainer.musicnn_port`) is a single-channel conv of 204
filters of 7 x 38 or 7 x 67 over the 187 x 96 (time x mel) patch, 'same' in time and valid over
mel (59 / 30 offsets), then ReLU, batch norm and a max over the offsets. onnxruntime runs the
conv as a GEMM at this CPU's fp32 peak (1.135 G multiply-adds per patch for both), so only fewer
operations make it cheaper. Along mel the conv is a correlation, and a circular one of length 96
gives the same values at every valid offset (an offset m reads bands m .. m + K - 1 <= 95: no
wrap-around), so per patch:

1. the real DFT of each frame's 96 bands, a (96 x 2 * 49) matmul;
2. per frequency bin, the sum over the 7 time taps of the frame's spectrum times the filter's
   conjugate spectrum: one small real GEMM per bin (complex products as 2 x 2 real blocks);
3. the inverse DFT at the valid offsets only. The filter spectra are phase-shifted so that the
   offsets sit symmetrically about 0 (u = -29 .. 29, or -14.5 .. 14.5 for the wide filters):
   then y(u) = E(u) + D(u) and y(-u) = E(u) - D(u), where E (cosines of the real parts) is even
   in u and D (sines of the imaginary parts) odd, so the max over both is max_u E(u) + |D(u)|:
   half the offsets, each from half the coefficients;
4. the max over the offsets *before* the bias, ReLU and batch norm (they are monotone per
   filter; a filter whose batch-norm scale is negative is negated so its max is still a max).

About 0.28 G multiply-adds per patch instead of 1.135. The filters are processed a quarter at a
time so the per-bin products (~15 MB for all 204 filters) stay in cache between steps, and the
max over the offsets is a tree of elementwise maxima, which onnxruntime runs faster than a
ReduceMax over the leading axis. The values equal the conv's to float32 rounding (~1e-6 of the
branch's magnitude); tests/trainer/test_musicnn_meldft.py checks the module against the conv
branch and the exported network against the port.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TIMBRAL_KEY = "musicnn_timbral"
"""ONNX metadata key naming how the timbral convolutions are computed ("mel-dft" here)."""

FILTER_CHUNKS = 4
"""The filters of a branch are processed in this many groups: onnxruntime, one thread, CPU per
patch of both branches 18.3 / 16.9 / 12.9 / 10.2 / 10.7 / 10.7 ms for 1 / 2 / 3 / 4 / 6 / 8
groups (the conv: 24.1 ms); docs/PERFORMANCE.md."""


def _max_rows(z: torch.Tensor) -> torch.Tensor:
    """Max over axis 0 as a tree of elementwise maxima of two (overlapping) halves."""
    rows = z.shape[0]
    while rows > 1:
        half = (rows + 1) // 2
        z = torch.maximum(z[:half], z[rows - half : rows])
        rows = half
    return z.reshape(-1)


class MelDftTimbral(nn.Module):
    """A timbral branch (conv, ReLU, batch norm, max over mel) through a mel-axis DFT.

    Built from the branch's conv and batch norm (eval mode); maps (N, 1, T, mel) to (N, filters,
    T) as the branch does. The DFT matrices and filter spectra are computed in float64 and stored
    as float32 buffers.
    """

    forward_dft: torch.Tensor
    inverse_even: torch.Tensor
    inverse_odd: torch.Tensor
    sign: torch.Tensor
    bias: torch.Tensor

    def __init__(
        self,
        conv: nn.Conv2d,
        bn: nn.BatchNorm2d,
        time_pad: tuple[int, int],
        n_mels: int,
        chunks: int = FILTER_CHUNKS,
    ) -> None:
        super().__init__()
        w = conv.weight.detach().double().numpy()
        filters, in_ch, k_time, k_mel = w.shape
        if in_ch != 1 or conv.stride != (1, 1) or conv.padding != (0, 0):
            raise ValueError(f"not a timbral conv: weight {w.shape}, stride {conv.stride}")
        self.time_pad = time_pad
        self.k_time = k_time
        self.bn = bn
        n = n_mels  # the circular length: valid offsets never wrap
        bins = n // 2 + 1
        self.bins = bins
        offsets = n_mels - k_mel + 1
        centre = (offsets - 1) / 2
        self.half_offsets = math.ceil(offsets / 2)
        u = np.arange(self.half_offsets) + (0.0 if offsets % 2 else 0.5)
        f = np.arange(bins)

        bands = np.arange(n_mels)
        angle = 2 * np.pi * np.outer(bands, f) / n
        # columns: real parts of bins 0..48, then imaginary parts (X_f = sum x e^{-i..})
        forward = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
        self.register_buffer("forward_dft", torch.tensor(forward, dtype=torch.float32))

        if bn.running_var is None:
            raise ValueError("the batch norm keeps no running statistics")
        scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().double().numpy()
        sign = np.where(scale >= 0, 1.0, -1.0)
        w = w[:, 0] * sign[:, None, None]  # (filters, time, mel)
        # V_f = conj(W_f) e^{i 2 pi f centre / n}: the product X_f V_f is the spectrum of the
        # correlation shifted so that offset `centre` lands on 0.
        angle = 2 * np.pi * np.outer(np.arange(k_mel) + centre, f) / n
        vr = np.einsum("otk,kf->fot", w, np.cos(angle))
        vi = np.einsum("otk,kf->fot", w, np.sin(angle))
        # (out re/im, bin, filter, in re/im, tap): Re = Xr Vr - Xi Vi, Im = Xr Vi + Xi Vr
        spectra = np.zeros((2, bins, filters, 2, k_time))
        spectra[0, :, :, 0], spectra[0, :, :, 1] = vr, -vi
        spectra[1, :, :, 0], spectra[1, :, :, 1] = vi, vr
        bounds = np.linspace(0, filters, chunks + 1).astype(int)
        self.filter_chunks = len(bounds) - 1
        for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            part = spectra[:, :, lo:hi].reshape(2, bins, hi - lo, 2 * k_time)
            for j, name in enumerate(("real", "imag")):
                tensor = torch.tensor(part[j], dtype=torch.float32)
                self.register_buffer(f"spectra_{name}_{i}", tensor)

        weight = np.full(bins, 2.0 / n)
        weight[0] = 1.0 / n
        if n % 2 == 0:
            weight[-1] = 1.0 / n
        angle = 2 * np.pi * np.outer(u, f) / n
        # E(u) from the real parts, D(u) from the imaginary ones
        self.register_buffer("inverse_even", torch.tensor(np.cos(angle) * weight).float())
        self.register_buffer("inverse_odd", torch.tensor(-np.sin(angle) * weight).float())
        self.register_buffer("sign", torch.tensor(sign, dtype=torch.float32).view(-1, 1, 1))
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(filters)
        self.register_buffer("bias", bias.float().reshape(-1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, T, mel) -> (N, filters, T)."""
        n, _, frames, _ = x.shape
        x = F.pad(x[:, 0], (0, 0, *self.time_pad))  # (N, T + k_time - 1, mel)
        padded = x.shape[1]
        spectrum = (x @ self.forward_dft).reshape(n, padded, 2, self.bins)
        spectrum = spectrum.permute(3, 2, 0, 1)  # (bin, re/im, N, padded)
        taps = [spectrum[..., d : d + frames] for d in range(self.k_time)]
        stacked = torch.stack(taps, dim=2).reshape(self.bins, 2 * self.k_time, n * frames)
        peaks = []
        for i in range(self.filter_chunks):
            # (bin, filters * N * T) per part; two matmuls, so that no slice copies a product
            real = (getattr(self, f"spectra_real_{i}") @ stacked).reshape(self.bins, -1)
            imag = (getattr(self, f"spectra_imag_{i}") @ stacked).reshape(self.bins, -1)
            even = self.inverse_even @ real  # (half_offsets, filters * N * T)
            odd = self.inverse_odd @ imag
            peaks.append(_max_rows(even + odd.abs()))
        y = torch.cat(peaks).reshape(-1, n, frames) * self.sign + self.bias  # (filters, N, T)
        y = F.relu(y).permute(1, 0, 2).unsqueeze(3)
        return self.bn(y).squeeze(3)
