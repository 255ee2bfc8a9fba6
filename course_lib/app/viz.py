"""Plots and players for the book (chapters 1 and 2)."""

from __future__ import annotations

import torch

from ..core.example import EXAMPLE
from ..core.text import VOCAB


def audio_player(wav: torch.Tensor, sample_rate: int = 16000):
    """An IPython audio player for a waveform (samples,)."""
    from IPython.display import Audio

    return Audio(wav.clamp(-1, 1).numpy(), rate=sample_rate, normalize=False)


def plot_spectrogram(feats: torch.Tensor, title: str = "", ax=None,
                     hop_ms: float = 10.0):
    """Show log-mel features (frames, n_mels) with time in seconds on the x axis."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 2.5))[1]
    seconds = feats.shape[0] * hop_ms / 1000
    im = ax.imshow(feats.t().numpy(), origin="lower", aspect="auto",
                   extent=(0, seconds, 0, feats.shape[1]), cmap="magma")
    ax.set(xlabel="time (s)", ylabel="mel band", title=title)
    ax.figure.colorbar(im, ax=ax, label="log energy")
    return ax


def plot_posteriors(log_probs: torch.Tensor, text: str = "", ax=None,
                    frame_ms: float = EXAMPLE.frame_ms):
    """CTC posteriors (T, V) as a heat map: symbols (blank on top) over time."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(10, 4.5))[1]
    probs = log_probs.exp().t().numpy()  # (V, T)
    seconds = probs.shape[1] * frame_ms / 1000
    ax.imshow(probs, aspect="auto", cmap="Greys", vmin=0, vmax=1,
              extent=(0, seconds, probs.shape[0] - 0.5, -0.5), interpolation="nearest")
    labels = ["∅"] + ["␣" if c == " " else c for c in VOCAB[1:]]
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set(xlabel="time (s)", ylabel="symbol",
           title=f"CTC posteriors: {text!r}" if text else "CTC posteriors")
    return ax


def plain_log_ticks(ax, axis: str = "y") -> None:
    """Label a log axis with plain numbers (4, 6, 10, 20) instead of 4×10⁰ (ch. 3.4)."""
    import matplotlib.ticker as mticker

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(mticker.LogFormatter())
    # minor ticks: plain numbers too, labelled only where there is room
    target.set_minor_formatter(mticker.LogFormatter(labelOnlyBase=False))
