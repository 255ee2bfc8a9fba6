"""Lab 3.5's checks: writing shards with an index, loading them lazily.

Each check runs the student's function on small hand-made cases (`run_cases`) and
raises `CheckFailed` with the first failing case (spec §5).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file

from ...core.checking import run_cases
from ...core.utils import sha256_file


def _lab_state() -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """A hand-made 'model': four named tensors in three parts."""
    state = {"enc.weight": torch.arange(12, dtype=torch.float32).view(3, 4),
             "enc.bias": torch.tensor([0.5, -1.0, 2.0]),
             "dec.weight": torch.full((2, 3), 0.25),
             "head.bias": torch.tensor([7.0, 8.0])}
    parts = {"enc": ["enc.weight", "enc.bias"], "dec": ["dec.weight"],
             "head": ["head.bias"]}
    return state, parts


def _shard_problems(folder: Any, index: Any, state: dict, parts: dict) -> list[str]:
    """What is wrong with a written shard folder and its index (empty: nothing)."""
    folder = Path(folder)
    if not isinstance(index, dict) or not isinstance(index.get("parts"), list):
        return [f"write_shards must return the index, a dict with a 'parts' list; "
                f"got {index!r}"]
    if not (folder / "index.json").exists():
        return ["no index.json in the folder"]
    if json.loads((folder / "index.json").read_text()) != index:
        return ["index.json differs from the index you returned"]
    names = [p.get("name") for p in index["parts"]]
    if names != list(parts):
        return [f"parts {names}, expected {list(parts)} in that order"]
    problems = []
    for part in index["parts"]:
        path = folder / str(part.get("file"))
        if not path.is_file():
            problems.append(f"part {part['name']!r}: file {part.get('file')!r} missing")
            continue
        if part.get("sha256") != sha256_file(path):
            problems.append(f"part {part['name']!r}: 'sha256' is not the sha256 of "
                            "the file's bytes")
        tensors = load_file(str(path))
        if sorted(tensors) != sorted(parts[part["name"]]):
            problems.append(f"part {part['name']!r} holds {sorted(tensors)}, expected "
                            f"{sorted(parts[part['name']])}")
            continue
        for k, t in tensors.items():
            if not torch.equal(t, state[k]):
                problems.append(f"tensor {k!r} changed on the way to disk")
            info = part.get("tensors", {}).get(k, {})
            shape = list(state[k].shape)
            if info.get("shape") != shape or info.get("dtype") != "float32":
                problems.append(f"index entry of {k!r} is {info}, expected shape "
                                f"{shape} and dtype 'float32'")
    return problems


def check_write_shards(write_shards: Callable[[dict, dict, Any], dict]) -> None:
    """Lab 3.5: `write_shards(state, parts, folder) -> index`, files + manifest."""
    state, parts = _lab_state()

    def trial(order: list[str]) -> str:
        chosen = {p: parts[p] for p in order}
        with tempfile.TemporaryDirectory() as folder:
            index = write_shards(state, chosen, folder)
            problems = _shard_problems(folder, index, state, chosen)
        return problems[0] if problems else "ok"

    cases = [("three parts: files, checksums, tensors and index",
              (["enc", "dec", "head"],), "ok"),
             ("the index keeps the parts in the given order",
              (["head", "enc", "dec"],), "ok")]
    run_cases("write_shards", trial, cases)


def reference_write_shards(state: dict, parts: dict, folder: Any) -> dict:
    """Lab 3.5's shard writer, the reference: the format `check_write_shards` and
    `check_lazy_shards` expect (one safetensors file per part, `index.json`)."""
    folder = Path(folder)
    index = {"parts": []}
    for name, keys in parts.items():
        save_file({k: state[k] for k in keys}, str(folder / f"{name}.safetensors"))
        index["parts"].append({
            "name": name, "file": f"{name}.safetensors",
            "sha256": sha256_file(folder / f"{name}.safetensors"),
            "tensors": {k: {"shape": list(state[k].shape), "dtype": "float32"}
                        for k in keys}})
    (folder / "index.json").write_text(json.dumps(index))
    return index


def check_lazy_shards(lazy_shards: Callable[[Any], Any]) -> None:
    """Lab 3.5: `lazy_shards(folder)` -> an object whose `.load(name)` reads one part,
    after checking its sha256, only when asked."""
    state, parts = _lab_state()

    def trial(case: str) -> str:
        with tempfile.TemporaryDirectory() as folder:
            reference_write_shards(state, parts, folder)
            shards = lazy_shards(folder)
            # Damage one part *after* opening: a lazy loader has not read it yet.
            f = Path(folder, "dec.safetensors")
            data = bytearray(f.read_bytes())
            data[-1] ^= 0x01  # one flipped bit in the last weight
            f.write_bytes(bytes(data))
            if case == "good":
                got = shards.load("enc")
                if sorted(got) != sorted(parts["enc"]) or not all(
                        torch.equal(got[k], state[k]) for k in parts["enc"]):
                    return f"load('enc') gave {got!r}"
                return "ok"
            if case == "tampered":
                try:
                    shards.load("dec")
                except ValueError:
                    return "ok"
                return "load('dec') of a tampered file did not raise ValueError"
            Path(folder, "head.safetensors").unlink()
            try:
                shards.load("head")
            except (ValueError, FileNotFoundError):
                return "ok"
            return "load('head') of a missing file did not raise"

    cases = [("opening reads only the index; load('enc') gives its tensors",
              ("good",), "ok"),
             ("a tampered byte is caught by the checksum (ValueError)",
              ("tampered",), "ok"),
             ("a missing shard is refused", ("missing",), "ok")]
    run_cases("lazy_shards", trial, cases)
