"""The zoo: the course's trained results, cached by configuration and shipped.

Layer 3 of the package (above `core`, `techniques` and `combined`). Each recipe
here (the baseline, chapter 3.1's pruned model, chapter 3.2's QAT and k-means
models, chapter 3.3's students, 3.4's neuron-pruned model, chapter 4's compressed
models, chapter 5's low-rank model) loads what it starts from, runs the
technique functions on it and saves the result, through one helper,
`cached_result`: the file in the cache if it is there, else the copy the package
ships if it was made by exactly this configuration, else trained now and saved.
`SHIPPED` lists every file the package carries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from ..core.example import EXAMPLE
from ..core.model import CTCModel
from ..core.modelfile import load_model, read_metadata
from ..core.utils import atomic_copy, cache_dir

T = TypeVar("T")

# The shipped files of the running example (`core.example`): v2's at the top of
# `artifacts/`, v3's in `artifacts/v3/` (v1's baseline, for chapter 1, in `v1/`).
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / EXAMPLE.artifacts

# Every file the package carries: name -> file in `ARTIFACTS`. A shipped file is
# used only when the key it records equals the key of the configuration asked for.
SHIPPED: dict[str, str] = {
    "baseline": "baseline.safetensors",  # chapter 1
    "pruned90": "pruned90.sparse",  # chapter 3.1's long run
    "student-ctc": "student-ctc.safetensors",  # chapter 3.3's four students
    "student-frame": "student-frame.safetensors",
    "student-sequence": "student-sequence.safetensors",
    "student-frame-sequence": "student-frame-sequence.safetensors",
    "student-ctc-2000": "student-ctc-2000.safetensors",  # and with 2,000 transcripts
    "student-sequence-2000": "student-sequence-2000.safetensors",
    "neurons": "neurons.safetensors",  # chapter 3.4
    "deepcomp": "deepcomp.dc",  # chapter 4's two routes
    "student-deep": "student-deep.dc",
    "lowrank": "lowrank.safetensors",  # chapter 5
}


def shipped_file(name: str) -> Path:
    """The path of the shipped file `name` (a key of `SHIPPED`)."""
    if name not in SHIPPED:
        raise KeyError(f"no shipped result {name!r}; the package ships {list(SHIPPED)}")
    return ARTIFACTS / SHIPPED[name]


def shipped_fits(name: str, key: str, match: str = "result_key",
                 plain: tuple[str, ...] = ("format",)) -> bool:
    """True if the shipped file `name` exists and records `key` under `match`
    (False for a name the package does not ship, such as a student of a method
    trained on a number of transcripts that no shipped run used)."""
    if name not in SHIPPED:
        return False
    path = shipped_file(name)
    return path.exists() and read_metadata(path, plain).get(match) == key


def cached_result(kind: str, key: str, filename: str, make: Callable[[Path], object],
                  load: Callable[[Path], T], shipped: str | None = None,
                  plain: tuple[str, ...] = ("format",), match: str = "result_key"
                  ) -> T:
    """A trained result by configuration: cached, else shipped, else made now.

    The file is `<cache>/models/<kind>-<key>/<filename>`. If it is missing, the
    shipped file `shipped` is copied there when it records `key` under `match` (a
    stale shipped result is never used for a changed configuration); otherwise
    `make(path)` trains the result and saves it to `path`. Returns `load(path)`.
    """
    path = cache_dir() / "models" / f"{kind}-{key}" / filename
    if not path.exists() and shipped is not None and shipped_fits(shipped, key, match,
                                                                  plain):
        atomic_copy(shipped_file(shipped), path)
    if not path.exists():
        make(path)
    return load(path)


def load_with_history(path: Path) -> tuple[CTCModel, Path, list[dict]]:
    """(model, path, the training history in its metadata) of a saved model file."""
    return load_model(path), path, read_metadata(path)["history"]
