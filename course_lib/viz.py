"""Plots and players for the book (chapters 1 and 2)."""

from __future__ import annotations

import torch

from .text import VOCAB


def audio_player(wav: torch.Tensor, sample_rate: int = 16000):
    """An IPython audio player for a waveform (samples,)."""
    from IPython.display import Audio

    return Audio(wav.clamp(-1, 1).numpy(), rate=sample_rate, normalize=False)


def plot_spectrogram(feats: torch.Tensor, title: str = "", ax=None, hop_ms: float = 10.0):
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
                    frame_ms: float = 40.0, top: int = 8):
    """CTC posteriors over time (T, V): the blank and the `top` likeliest characters."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(9, 3))[1]
    probs = log_probs.exp()
    t = torch.arange(probs.shape[0]) * frame_ms / 1000
    ax.plot(t, probs[:, 0], color="0.6", lw=2, label="blank")
    best = probs[:, 1:].max(0).values.argsort(descending=True)[:top] + 1
    for v in best.tolist():
        ax.plot(t, probs[:, v], lw=1.2, label=repr(VOCAB[v]))
    ax.set(xlabel="time (s)", ylabel="posterior", ylim=(0, 1.02),
           title=f"CTC posteriors: {text!r}" if text else "CTC posteriors")
    ax.legend(ncol=5, fontsize=8, loc="upper right")
    return ax
