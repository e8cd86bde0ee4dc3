"""What every atheris harness shares: its seed corpus on disk, instrumentation, and libFuzzer's options.

A harness is `python fuzz/<target>.py [libFuzzer options] [INPUT ...]`: it writes its seeds (real files:
the Common Crawl samples, the image fixtures) into the corpus folder, then fuzzes `one_input` with
coverage guidance from our code and the pure-Python parsers it drives. An exception that `one_input` does
not expect is a crash: libFuzzer saves the input under fuzz/crashes/<target>/ and exits non-zero; give that
file as INPUT to run it again.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the seeds come from tests/ (fixtures) and shared/ (Common Crawl samples)

CORPUS = ROOT / ".fuzz-corpus"
CRASHES = ROOT / "fuzz" / "crashes"
INSTRUMENTED = ["openpairs", "PIL", "urllib.parse", "json", "csv", "gzip", "msgspec", "ftfy"]


def write_seeds(target: str, seeds: Iterable[tuple[str, bytes]]) -> Path:
    """The target's corpus folder with every seed in it (kept across runs, so coverage accumulates)."""
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds:
        (folder / f"seed-{hashlib.sha1(name.encode()).hexdigest()[:12]}").write_bytes(data)
    return folder


def fuzz(
    target: str,
    one_input: Callable[[bytes], None],
    seeds: Iterable[tuple[str, bytes]],
    max_len: int = 1 << 18,
) -> None:
    """Run libFuzzer on `one_input` over the seeded corpus (inputs up to `max_len` bytes); extra
    command-line options pass through."""
    import atheris

    crashes = CRASHES / target
    crashes.mkdir(parents=True, exist_ok=True)
    options = [a for a in sys.argv[1:] if a.startswith("-")]
    files = [a for a in sys.argv[1:] if not a.startswith("-")]  # given inputs: run just those (reproduce)
    inputs = files or [str(write_seeds(target, seeds))]
    args = [
        sys.argv[0],
        *options,
        f"-artifact_prefix={crashes}/",
        "-timeout=30",
        "-rss_limit_mb=4096",
        *inputs,
    ]
    atheris.Setup(args, one_input)
    atheris.Fuzz()


def instrumented() -> object:
    """A context in which imported modules are instrumented for coverage (our code and its parsers)."""
    import atheris

    return atheris.instrument_imports(include=INSTRUMENTED)
