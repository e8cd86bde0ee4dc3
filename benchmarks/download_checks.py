"""The CPU cost of the download stage's byte checks, per image, on the download benchmark's corpus.

For every "ok" body of the corpus (or --limit of them, spread over it), single thread, best of --repeat,
thread CPU time (so other load on the machine inflates it little):
    convert      process_bounded: header checks, decode, resize, pad, jpg q95 encode, sha256 (no check)
    scan         embedded_opt_out on the body as served: the container walk (the corpus has no XMP/C2PA)
    xmp          the same JPEG with an XMP packet naming plus:DataMining (DMI-ALLOWED): walk + XML parse
    c2pa         the body signed by c2pa-python (training-mining entries all allowed): walk + store read
    hash lists   match_url + match_body (MD5, SHA1, SHA256) against --list-size hashes of every kind
    pdq          the stage's PDQ hook on the decoded image (reduced to <= 512 px, pdq_of, match_pdq
                 against --list-size PDQ hashes)

    .venv/bin/python benchmarks/download_checks.py --limit 2000
    (or: benchmarks/download.py --byte-checks)
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DATA = Path.home() / ".cache/openpairs-bench/data"
XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
    b'xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-ALLOWED" dc:format="image/jpeg"/>'
    b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
ALLOWED = dict.fromkeys(("cawg.ai_training", "cawg.ai_generative_training", "cawg.data_mining"), "allowed")


def cpu_ms(work: Callable[[], Any], repeat: int) -> float:
    """Best-of-`repeat` thread CPU milliseconds of `work()` (a rejection counts as done work)."""
    from openpairs.image import ImageRejected

    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time_ns()
        with contextlib.suppress(ImageRejected):
            work()
        best = min(best, (time.thread_time_ns() - started) / 1e6)
    return best


def with_xmp(jpeg: bytes) -> bytes:
    """A JPEG with an APP1 XMP segment right after SOI."""
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + XMP
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def make_lists(folder: Path, size: int) -> Any:
    """A text list of `size` random hashes of every kind, loaded as the download stage loads it."""
    from openpairs.safety.blocklist import HEX_LENGTHS, KINDS, Blocklists

    rng = random.Random(0)
    path = folder / "bench-list.txt"
    with path.open("w") as handle:
        for kind in KINDS:
            digits = HEX_LENGTHS[kind.removeprefix("url-")]
            for _ in range(size):
                handle.write(f"{kind}:{rng.getrandbits(4 * digits):0{digits}x}\n")
    return Blocklists.load([str(path)])


def measure(limit: int, repeat: int, list_size: int, signed_limit: int) -> dict[str, list[float]]:
    """Per check, the CPU-ms of each body measured."""
    sys.path.insert(0, str(ROOT))
    from openpairs.image import ImageConfig
    from openpairs.safety.embedded import embedded_opt_out
    from openpairs.stages.download_checks import pdq_check
    from openpairs.stages.download_memory import process_bounded, tune_malloc
    from tests.fixtures.c2pa_signed import make_signer, signed

    tune_malloc()
    rows = [
        r for r in pq.read_table(DATA / "corpus" / "manifest_10000.parquet").to_pylist() if r["kind"] == "ok"
    ]
    config, signer = ImageConfig(upscale=True, min_bytes=0), make_signer()
    samples: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        lists = make_lists(Path(tmp), list_size)
        check = pdq_check(lists)
        for n, row in enumerate(rows[:: max(1, len(rows) // limit)]):
            body = (DATA / "corpus" / "files" / row["file"]).read_bytes()
            samples["convert"].append(cpu_ms(lambda b=body: process_bounded(b, config), repeat))
            samples["scan"].append(cpu_ms(lambda b=body: embedded_opt_out(b), repeat))
            samples["hash lists"].append(
                cpu_ms(lambda b=body, u=row["url"]: (lists.match_url(u), lists.match_body(b)), repeat)
            )
            spent: list[float] = []

            def pdq_hook(image: Any, spent: list[float] = spent) -> None:  # the stage's hook, timed
                started = time.thread_time_ns()
                check(image)
                spent.append((time.thread_time_ns() - started) / 1e6)

            with contextlib.suppress(Exception):
                process_bounded(body, config, None, pdq_hook)
            samples["pdq"].extend(spent[-1:])
            if row["format"] == "jpeg":
                marked = with_xmp(body)
                samples["xmp"].append(cpu_ms(lambda b=marked: embedded_opt_out(b), repeat))
            if n < signed_limit:
                fmt = {"jpeg": "jpg", "png": "png", "webp": "webp"}[row["format"]]
                with contextlib.suppress(Exception):  # c2pa refuses a few odd corpus files
                    carrying = signed(body, fmt, signer, "cawg.training-mining", ALLOWED)
                    samples["c2pa"].append(cpu_ms(lambda b=carrying: embedded_opt_out(b), repeat))
    return samples


def table(samples: dict[str, list[float]]) -> str:
    """Mean and p95 CPU-ms per check (markdown)."""
    lines = ["| check | bodies | CPU-ms mean | CPU-ms p95 |", "|---|---:|---:|---:|"]
    for name in ("convert", "scan", "xmp", "c2pa", "hash lists", "pdq"):
        values = sorted(samples.get(name, []))
        if values:
            p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
            lines.append(f"| {name} | {len(values)} | {statistics.fmean(values):.3f} | {p95:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=2000, help="bodies to measure, spread over the corpus")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--list-size", type=int, default=100_000, help="hashes of each kind in the list")
    parser.add_argument("--signed", type=int, default=200, help="bodies also measured with a C2PA manifest")
    args = parser.parse_args(argv)
    samples = measure(args.limit, args.repeat, args.list_size, args.signed)
    print(table(samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
