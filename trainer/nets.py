"""The seed paper's sequence models: (bi)RNN and (bi)LSTM over the per-patch feature sequence.

One module is both the trained model and the exported graph: it takes RAW features (batch, seq,
FEATURE_DIM) as `mertag.tagger.features` computes them, selects its columns, normalises them with
the
training statistics held as buffers, runs the recurrent layer, averages its outputs over time
(mean pooling: every patch counts equally, and it is the same for both directions), and maps that
to four logits; `forward` gives softmax probabilities, `logits` what the loss is computed on.
A net trained with a valence/arousal head (mertag.trainer.valence_arousal) keeps it as `va_head`:
`valence_arousal` gives tanh of it on the same pooled representation, `outputs` both at once.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mertag.trainer.choices import ARCHS, FEATURE_SETS

MIN_STD = 1e-6


class MoodNet(nn.Module):
    """Raw features -> column selection -> normalisation -> RNN/LSTM -> time mean -> linear."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        arch: str,
        features: str,
        mean: np.ndarray,
        std: np.ndarray,
        hidden: int = 64,
        dropout: float = 0.3,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        cell, bidirectional = ARCHS[arch]
        self.arch = arch
        self.features = features
        self.lo, self.hi = FEATURE_SETS[features]
        width = self.hi - self.lo
        if mean.shape != (width,) or std.shape != (width,):
            raise ValueError(f"normalisation must have {width} columns for {features!r}")
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone())
        self.register_buffer(
            "std", torch.as_tensor(np.maximum(std, MIN_STD), dtype=torch.float32).clone()
        )
        rnn_class = nn.RNN if cell == "rnn" else nn.LSTM
        self.rnn = rnn_class(width, hidden, batch_first=True, bidirectional=bidirectional)
        self.input_dropout = nn.Dropout(input_dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 4)
        self.va_head: nn.Linear | None = None  # set by fit_net when trained with one

    def _recur(self, z: torch.Tensor) -> torch.Tensor:
        """Recurrent outputs (batch, seq, directions * hidden)."""
        if torch.onnx.is_in_onnx_export():
            return self._onnx_recurrent(z)
        out, _ = self.rnn(z)
        return out

    def _onnx_recurrent(self, z: torch.Tensor) -> torch.Tensor:
        # torch.export unrolls nn.RNN over the example's length, and its dynamic-length LSTM
        # decomposition works only for the first export in a process; so during export the layer
        # is emitted as ONNX's own RNN or LSTM operator (same equations, same weights), which
        # keeps the time axis dynamic.
        rnn = self.rnn
        lstm = isinstance(rnn, nn.LSTM)
        suffixes = ["", "_reverse"] if rnn.bidirectional else [""]

        def gates(t: torch.Tensor) -> torch.Tensor:
            if not lstm:
                return t
            h = rnn.hidden_size  # torch's gate order (i, f, g, o) -> ONNX's (i, o, f, c)
            return torch.cat([t[:h], t[3 * h :], t[h : 2 * h], t[2 * h : 3 * h]])

        w = torch.stack([gates(getattr(rnn, f"weight_ih_l0{s}")) for s in suffixes])
        r = torch.stack([gates(getattr(rnn, f"weight_hh_l0{s}")) for s in suffixes])
        b = torch.stack(
            [
                torch.cat(
                    [gates(getattr(rnn, f"bias_ih_l0{s}")), gates(getattr(rnn, f"bias_hh_l0{s}"))]
                )
                for s in suffixes
            ]
        )
        x = z.transpose(0, 1)  # ONNX recurrences are time-major
        y = torch.onnx.ops.symbolic(
            "LSTM" if lstm else "RNN",
            [x, w, r, b],
            {
                "hidden_size": rnn.hidden_size,
                "direction": "bidirectional" if rnn.bidirectional else "forward",
            },
            dtype=z.dtype,
            shape=[x.shape[0], len(suffixes), x.shape[1], rnn.hidden_size],
            version=14,
        )  # (seq, directions, batch, hidden)
        return y.permute(2, 0, 1, 3).reshape(z.shape[0], z.shape[1], -1)

    @property
    def pooled_width(self) -> int:
        return self.head.in_features

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The time mean of the recurrent outputs, after dropout: what the head reads."""
        z = self.input_dropout((x[:, :, self.lo : self.hi] - self.mean) / self.std)
        return self.dropout(self._recur(z).mean(dim=1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)

    @property
    def has_valence_arousal(self) -> bool:
        return self.va_head is not None

    def valence_arousal(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 2) valence and arousal in [-1, 1] from the regression head."""
        return self.outputs(x)[1]

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities and (valence, arousal) from one pass over the recurrent layer."""
        if self.va_head is None:
            raise ValueError("this net was trained without a valence/arousal head")
        pooled = self.pooled(x)
        return torch.softmax(self.head(pooled), dim=-1), torch.tanh(self.va_head(pooled))
