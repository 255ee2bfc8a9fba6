"""Splitting across processes: a sharded model run as a pipeline (chapter 3.5).

Each process (rank) loads only the parts of its own stages. Rank 0 runs the first
stages on the input and sends the activations to rank 1 through
`torch.distributed` (gloo, on the loopback interface), which runs the next stages,
and so on; the last rank sends the log-probabilities back to rank 0. The processes
are started by `torch.multiprocessing.spawn`, the same machinery `torchrun` uses:
with real addresses instead of 127.0.0.1 the ranks could be separate machines, the
path for a model that outgrows one machine's memory.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from .shards import OnDemand, meta_model, read_index

_DTYPES = [torch.float32, torch.int64]


def split_stages(stages: list[str], world: int) -> list[list[str]]:
    """Contiguous groups of stages, one per rank, as equal in count as possible."""
    if not 1 <= world <= len(stages):
        raise ValueError(f"world size must be in 1..{len(stages)} (one stage or more "
                         f"per process), got {world}")
    q, r = divmod(len(stages), world)
    out, i = [], 0
    for rank in range(world):
        n = q + (rank < r)
        out.append(stages[i:i + n])
        i += n
    return out


def send_tensor(t: torch.Tensor, dst: int) -> None:
    """Send a float32 or int64 tensor of any shape: a header (dtype, ndim, shape),
    then the data."""
    t = t.contiguous()
    header = torch.tensor([_DTYPES.index(t.dtype), t.dim(), *t.shape],
                          dtype=torch.int64)
    dist.send(torch.tensor([header.numel()], dtype=torch.int64), dst)
    dist.send(header, dst)
    dist.send(t, dst)


def recv_tensor(src: int) -> torch.Tensor:
    """Receive a tensor sent by `send_tensor`."""
    size = torch.empty(1, dtype=torch.int64)
    dist.recv(size, src)
    header = torch.empty(int(size), dtype=torch.int64)
    dist.recv(header, src)
    dtype, ndim = _DTYPES[int(header[0])], int(header[1])
    t = torch.empty([int(s) for s in header[2:2 + ndim]], dtype=dtype)
    dist.recv(t, src)
    return t


def _worker(rank: int, world: int, folder: str, port: int, work: str) -> None:
    """One pipeline process: receive, run my stages, send on (spawned by `run`)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        runner = OnDemand(folder)
        mine = split_stages(list(runner.stages), world)[rank]
        if rank == 0:
            inputs = load_file(os.path.join(work, "inputs.safetensors"))
            x, lengths = inputs["feats"], inputs["lengths"]
        else:
            x, lengths = recv_tensor(rank - 1), recv_tensor(rank - 1)
        with torch.no_grad():
            x, lengths = runner.run_stages(mine, x, lengths)
        if rank < world - 1:
            send_tensor(x, rank + 1)
            send_tensor(lengths, rank + 1)
        elif world > 1:
            send_tensor(x, 0)
            send_tensor(lengths, 0)
        if rank == 0:
            if world > 1:
                x, lengths = recv_tensor(world - 1), recv_tensor(world - 1)
            save_file({"log_probs": x, "lengths": lengths},
                      os.path.join(work, "outputs.safetensors"))
        loaded = sorted({p for what, p in runner.events if what == "load"})
        Path(work, f"rank{rank}.json").write_text(json.dumps(
            dict(rank=rank, pid=os.getpid(), stages=mine, loaded_parts=loaded)))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_pipeline(folder: str | os.PathLike, feats: torch.Tensor,
                 lengths: torch.Tensor, world: int = 2
                 ) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Run a sharded model as a pipeline of `world` processes (chapter 3.5).

    Returns the log-probs and lengths (as the unsplit model's forward) and, per
    rank, its process id, its stages and the parts it loaded.
    """
    # Refuse a bad world size early, before any process starts.
    split_stages(meta_model(read_index(folder)).stages(), world)
    with tempfile.TemporaryDirectory(prefix="pipeline-") as work:
        save_file({"feats": feats.contiguous(), "lengths": lengths.contiguous()},
                  os.path.join(work, "inputs.safetensors"))
        mp.spawn(_worker, args=(world, str(folder), _free_port(), work), nprocs=world,
                 join=True)
        out = load_file(os.path.join(work, "outputs.safetensors"))
        ranks = [json.loads(Path(work, f"rank{r}.json").read_text())
                 for r in range(world)]
    return out["log_probs"], out["lengths"], ranks
