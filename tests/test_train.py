"""Training: it learns, it resumes, and it runs under torchrun with DDP (gloo)."""

import json
import os
import subprocess
import sys

import pytest
import torch

import course_lib as cl

from tinycfg import TINY

SMALL = cl.ModelConfig(conv_channels=32, rnn_hidden=32, rnn_layers=1)


def test_training_reduces_the_loss_and_resumes(tiny_corpus, tmp_path):
    cfg = cl.TrainConfig(epochs=2, batch_size=8, lr=3e-3, threads=1)
    first = cl.train(tmp_path, TINY, SMALL, cfg, eval_limit=4, progress=False)
    assert len(first.history) == 2
    assert first.history[1]["loss"] < first.history[0]["loss"]
    assert (tmp_path / "model.safetensors").exists()
    # The same run again loads the finished checkpoint and trains nothing more.
    again = cl.train(tmp_path, TINY, SMALL, cfg, eval_limit=4, progress=False)
    assert again.history == first.history
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and len(json.loads(state["history"])) == 2


def test_interrupted_training_resumes_where_it_stopped(tiny_corpus, tmp_path):
    cfg = cl.TrainConfig(epochs=3, batch_size=8, threads=1, max_minutes=0.0)
    stopped = cl.train(tmp_path, TINY, SMALL, cfg, eval_limit=4, progress=False)
    assert len(stopped.history) == 1  # the time cap stops it after one epoch
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1
    resumed = cl.train(tmp_path, TINY, SMALL, cfg, eval_limit=4, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]  # epoch 1 not redone
    assert resumed.history[0] == stopped.history[0]


def test_real_speakers_join_training_but_never_the_unseen_one(tiny_corpus, tmp_path):
    cfg = cl.TrainConfig(epochs=1, batch_size=64, threads=1)
    with pytest.raises(ValueError, match="unseen real speaker"):
        cl.train(tmp_path, TINY, SMALL, cfg, progress=False,
                 real_speakers=("jackson", cl.real.UNSEEN_SPEAKER))
    plain = cl.train(tmp_path / "plain", TINY, SMALL, cfg, eval_limit=4,
                     progress=False)
    mixed = cl.train(tmp_path / "mixed", TINY, SMALL, cfg, eval_limit=4,
                     progress=False, real_speakers=("jackson",))
    meta = cl.read_metadata(mixed.path)
    assert meta["real_speakers"] == ["jackson"]
    assert "real_speakers" not in cl.read_metadata(plain.path)
    assert not all(torch.equal(a, b) for a, b in zip(plain.model.parameters(),
                                                    mixed.model.parameters()))


def test_checkpoint_of_another_run_is_refused(tiny_corpus, tmp_path):
    cfg = cl.TrainConfig(epochs=1, batch_size=8, threads=1)
    cl.train(tmp_path, TINY, SMALL, cfg, eval_limit=4, progress=False)
    other = cl.TrainConfig(epochs=1, batch_size=8, threads=1, lr=1e-4)
    with pytest.raises(ValueError, match="checkpoint of a different run"):
        cl.train(tmp_path, TINY, SMALL, other, eval_limit=4, progress=False)


def test_torchrun_ddp_two_processes(tiny_corpus, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc_per_node", "2", "-m", "course_lib", "train", "--tiny",
         "--out", str(tmp_path)], env=env, capture_output=True, text=True,
        timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    meta = cl.read_metadata(tmp_path / "model.safetensors")
    assert meta["world_size"] == 2 and len(meta["history"]) == 2


def test_finetune_learns_calls_hooks_and_is_deterministic(tiny_corpus):
    examples = cl.featurize(tiny_corpus, "train", progress=False)
    cfg = cl.FinetuneConfig(steps=12, batch_size=8, lr=3e-3, threads=1)

    def run():
        torch.manual_seed(0)
        model, calls = cl.CTCModel(SMALL), []
        hist = cl.finetune(model, examples, cfg, after_step=calls.append,
                           evaluate=lambda step: {"train_mode": model.training},
                           eval_every=4, progress=False)
        return model, calls, hist

    model, calls, hist = run()
    assert calls == list(range(12)) and [h["step"] for h in hist] == [4, 8, 12]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert not any(h["train_mode"] for h in hist) and not model.training
    again, _, hist2 = run()
    assert hist2 == hist
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values()))


class _Interrupt(Exception):
    """Stands for a session that ends in the middle of a fine-tuning run."""


def test_interrupted_finetune_resumes_exactly_from_its_checkpoint(tiny_corpus,
                                                                  tmp_path):
    examples = cl.featurize(tiny_corpus, "train", progress=False)
    # SpecAugment and dropout on: the resumed run must continue both generators
    cfg = cl.FinetuneConfig(steps=10, batch_size=8, lr=3e-3, threads=1,
                            specaugment=True)
    fresh = lambda: (torch.manual_seed(0), cl.CTCModel(SMALL))[1]  # noqa: E731
    whole = fresh()
    hist = cl.finetune(whole, examples, cfg, eval_every=4, progress=False)

    def stop_at_7(step: int) -> None:
        if step == 6:  # after the 7th step; the checkpoint of step 6 is on disk
            raise _Interrupt

    ckpt, part = tmp_path / "checkpoint.pt", fresh()
    with pytest.raises(_Interrupt):
        cl.finetune(part, examples, cfg, after_step=stop_at_7, eval_every=4,
                    progress=False, checkpoint=ckpt, save_every=3)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 6 and cl.checkpoint_seconds(ckpt) > 0
    resumed = fresh()  # a new process would start from a fresh model
    hist2 = cl.finetune(resumed, examples, cfg, eval_every=4, progress=False,
                        checkpoint=ckpt, save_every=3)
    assert [h["step"] for h in hist2] == [4, 8, 10]
    assert [h["loss"] for h in hist2] == pytest.approx([h["loss"] for h in hist])
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(),
                                                 resumed.state_dict().values()))
    other = cl.FinetuneConfig(steps=10, batch_size=8, lr=1e-4, threads=1)
    with pytest.raises(ValueError, match="checkpoint of a different fine-tuning"):
        cl.finetune(fresh(), examples, other, progress=False, checkpoint=ckpt)


def test_finetune_control_measures_the_recipe_alone(tiny_corpus):
    examples = cl.featurize(tiny_corpus, "train", progress=False)
    dev = cl.featurize(tiny_corpus, "dev", progress=False)
    torch.manual_seed(0)
    model = cl.CTCModel(SMALL).eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    zero = cl.FinetuneConfig(steps=6, batch_size=8, lr=0.0, threads=1)
    out = cl.finetune_control(model, examples, dev, zero, progress=False)
    # a zero learning rate changes no weight: before == after, a zero interval
    assert out["before"] == out["after"] and out["delta"] == out["lo"] == out["hi"] == 0
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    cfg = cl.FinetuneConfig(steps=6, batch_size=8, lr=3e-3, threads=1)
    out = cl.finetune_control(model, examples, dev, cfg, progress=False)
    assert out["steps"] == 6 and out["lo"] <= out["delta"] <= out["hi"]
    assert out["delta"] == pytest.approx(out["after"] - out["before"])
    changed = out["model"].state_dict()
    assert any(not torch.equal(v, changed[k]) for k, v in weights.items())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
