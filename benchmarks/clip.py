"""Benchmark: `openpairs clip` vs clip-retrieval 2.45.0 inference on the same webdataset shards, on CPU.

Both use the same random-weight ViT-B-32 (no CLIP weights can be downloaded here: the cost is the same as
with real weights, the scores are meaningless). clip-retrieval runs through
../shared/bench/run_clip_retrieval.py in its own venv (batch 32, 1 preprocessing worker, image + text
embeddings); openpairs runs `openpairs clip` (batch 32, image + text embeddings, similarity, NSFW tag) in
fp32 and with --cpu-int8. Each run is timed with
/usr/bin/time -v and sampled by monitor.py (summed PSS of the process tree). The shards (real JPEGs made with
Pillow, 256 px like the download stage's output, download-stage layout) are generated once.

    .venv/bin/python benchmarks/clip.py --samples 2000

With `--device cpu|cuda` it measures instead the clip stage's own code path in-process (random ViT-B-32 and
ViT-L-14, decode / preprocess / model split, beside clip-retrieval's published GPU figures): see
clip_throughput.py and clip_gpu_check.sh.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(os.environ.get("BENCH", Path(__file__).resolve().parents[2] / "shared" / "bench"))
DATA = Path(os.environ.get("DATA", Path.home() / ".cache/openpairs-bench/data")) / "clip_bench"
PEERS = Path(os.environ.get("PEERS", Path.home() / ".cache/openpairs-bench/peers"))
CLIP_RETRIEVAL_PY = PEERS / "clip-retrieval-venv" / "bin" / "python"
BENCH_PY = PEERS / "bench-venv" / "bin" / "python"
OPENPAIRS = Path(sys.executable).parent / "openpairs"
WORDS = tuple(
    [
        "red",
        "blue",
        "small",
        "old",
        "new",
        "house",
        "car",
        "dog",
        "cat",
        "tree",
        "river",
        "city",
        "street",
        "beach",
        "cup",
        "chair",
    ]
)


def make_shards(samples: int, per_shard: int) -> Path:
    """DATA/<samples>/shards/<i>.tar + .parquet in the download-stage layout (made once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from clip_throughput import photo_like_jpeg

    from openpairs.core.keys import mint_key
    from openpairs.core.schemas import DOWNLOAD_SCHEMA

    root = DATA / str(samples)
    shards = root / "shards"
    if (root / "ready").exists():
        return root
    shards.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range((samples + per_shard - 1) // per_shard):
        count = min(per_shard, samples - index * per_shard)
        rows: dict[str, list[Any]] = {name: [] for name in DOWNLOAD_SCHEMA.names}
        with tarfile.open(shards / f"{index:05d}.tar", "w") as tar:
            for row in range(count):
                key = mint_key(index, row)
                jpeg = photo_like_jpeg(rng)
                caption = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 14))))
                record = {
                    "key": key,
                    "caption": caption,
                    "status": "ok",
                    "language": "en",
                    "url": f"http://x/{key}",
                }
                for name, data in (
                    (".jpg", jpeg),
                    (".txt", caption.encode()),
                    (".json", json.dumps(record).encode()),
                ):
                    info = tarfile.TarInfo(key + name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                for name in DOWNLOAD_SCHEMA.names:
                    rows[name].append(record.get(name))
        pq.write_table(pa.table(rows, schema=DOWNLOAD_SCHEMA), shards / f"{index:05d}.parquet")
    (root / "ready").touch()
    return root


def random_checkpoint() -> Path:
    """ViT-B-32 with random weights (seed 0, open_clip defaults), saved as a user's checkpoint file."""
    import open_clip
    import torch

    path = DATA / "vit-b-32-random.pt"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), path)
    return path


def timed(cmd: list[str], run: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd` under /usr/bin/time -v, sampled by monitor.py; wall, CPU and peak summed PSS."""
    started = time.perf_counter()
    log = (run / "log.txt").open("w")
    process = subprocess.Popen(
        ["/usr/bin/time", "-v", "-o", str(run / "time.txt"), *cmd], stdout=log, stderr=log, env=env
    )
    monitor = subprocess.Popen(
        [
            str(BENCH_PY),
            str(BENCH / "monitor.py"),
            "--pid",
            str(process.pid),
            "--out",
            str(run / "monitor.json"),
        ]
    )
    process.wait()
    wall = time.perf_counter() - started
    monitor.wait()
    log.close()
    if process.returncode:
        raise RuntimeError(f"{cmd[0]} exited with {process.returncode}; see {run / 'log.txt'}")
    values = dict(line.strip().rpartition(": ")[::2] for line in (run / "time.txt").read_text().splitlines())
    cpu = float(values["User time (seconds)"]) + float(values["System time (seconds)"])
    peak = json.loads((run / "monitor.json").read_text())["peak_pss_sum_mb"]
    return {"wall_s": wall, "cpu_s": cpu, "peak_pss_mb": peak}


def fresh(name: str, samples: int) -> Path:
    """An empty run directory."""
    run = DATA / "runs" / f"{name}_{samples}"
    subprocess.run(["rm", "-rf", str(run)], check=True)
    run.mkdir(parents=True)
    return run


def run_clip_retrieval(root: Path, samples: int) -> dict[str, Any]:
    """clip-retrieval inference over the tars (random ViT-B-32, batch 32, 1 worker)."""
    run = fresh("clip_retrieval", samples)
    tars = sorted((root / "shards").glob("*.tar"))
    source = str(tars[0]) if len(tars) == 1 else f"{root}/shards/{{{tars[0].stem}..{tars[-1].stem}}}.tar"
    cmd = [
        str(CLIP_RETRIEVAL_PY),
        str(BENCH / "run_clip_retrieval.py"),
        "inference",
        source,
        str(run / "out"),
    ]
    result = timed([*cmd, "--model", "ViT-B-32", "--batch-size", "32", "--workers", "1"], run)
    result["samples"] = sum(len(np.load(p)) for p in (run / "out" / "img_emb").glob("*.npy"))
    return result


def run_openpairs(root: Path, samples: int, checkpoint: Path, int8: bool) -> dict[str, Any]:
    """`openpairs clip` over the same shards with the random ViT-B-32 checkpoint."""
    run = fresh("openpairs_int8" if int8 else "openpairs_fp32", samples)
    (run / "shards").symlink_to(root / "shards")
    cmd = [str(OPENPAIRS), "clip", str(run), "--clip-model", "ViT-B-32", "--clip-checkpoint", str(checkpoint)]
    cmd += ["--clip-pretrained", "none", "--batch-size", "32", "--device", "cpu"] + (
        ["--cpu-int8"] if int8 else []
    )
    result = timed(cmd, run)
    result["samples"] = sum(len(np.load(p)) for p in (run / "clip" / "img_emb").glob("*.npy"))
    result["run"] = str(run)
    return result


def agreement(fp32_run: str, int8_run: str) -> dict[str, float]:
    """Cosine between fp32 and int8 embeddings, row by row."""
    out: dict[str, float] = {}
    for kind in ("img_emb", "text_emb"):
        a = np.concatenate(
            [np.load(p).astype(np.float32) for p in sorted(Path(fp32_run, "clip", kind).glob("*.npy"))]
        )
        b = np.concatenate(
            [np.load(p).astype(np.float32) for p in sorted(Path(int8_run, "clip", kind).glob("*.npy"))]
        )
        cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
        out[f"{kind}_cos_mean"], out[f"{kind}_cos_min"] = float(cos.mean()), float(cos.min())
    return out


def throughput(args: argparse.Namespace) -> None:
    """`--device`: samples/s of the clip stage's code path, split into decode, preprocess and model."""
    import clip_throughput

    on_gpu = args.device.startswith("cuda")
    models = args.models.split(",") if args.models else (["ViT-B-32", "ViT-L-14"] if on_gpu else ["ViT-B-32"])
    images = args.images or (4096 if on_gpu else 128)
    batch = args.batch_size or (256 if on_gpu else 32)
    decoder = args.decoder or ("tensor" if on_gpu else "pil")
    blobs = clip_throughput.synthetic_jpegs(images)
    results = {m: clip_throughput.measure(m, args.device, blobs, batch, decoder) for m in models}
    clip_throughput.print_table(args.device, results, images, batch, decoder)


def main() -> None:
    """Generate the shards, run the three configurations, print one table (or `--device`: throughput)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--per-shard", type=int, default=1000)
    parser.add_argument("--device", help="cpu or cuda[:N]: in-process throughput (clip_throughput.py)")
    parser.add_argument("--models", help="with --device: comma-separated open_clip names")
    parser.add_argument("--images", type=int, default=0, help="with --device (0: 4096 on CUDA, 128 on CPU)")
    parser.add_argument("--batch-size", type=int, default=0, help="with --device (0: 256 on CUDA, 32 on CPU)")
    parser.add_argument(
        "--decoder", choices=("tensor", "pil"), help="with --device (default: tensor on CUDA)"
    )
    args = parser.parse_args()
    if args.device:
        throughput(args)
        return
    root = make_shards(args.samples, args.per_shard)
    checkpoint = random_checkpoint()
    results = {
        "clip-retrieval 2.45.0": run_clip_retrieval(root, args.samples),
        "openpairs clip (fp32)": run_openpairs(root, args.samples, checkpoint, int8=False),
        "openpairs clip --cpu-int8": run_openpairs(root, args.samples, checkpoint, int8=True),
    }
    base = results["clip-retrieval 2.45.0"]["samples"] / results["clip-retrieval 2.45.0"]["wall_s"]
    print(f"\n{args.samples} samples, random ViT-B-32, CPU ({os.cpu_count()} cores, shared machine: noisy)")
    header = ("tool", "samples", "wall s", "samples/s", "CPU s", "peak PSS MB", "ratio")
    print(f"{header[0]:28}" + "".join(f"{h:>12}" for h in header[1:]))
    for name, r in results.items():
        rate = r["samples"] / r["wall_s"]
        cells = (
            r["samples"],
            f"{r['wall_s']:.1f}",
            f"{rate:.2f}",
            f"{r['cpu_s']:.1f}",
            f"{r['peak_pss_mb']:.0f}",
        )
        print(f"{name:28}" + "".join(f"{c:>12}" for c in (*cells, f"{rate / base:.2f}")))
    agree = agreement(results["openpairs clip (fp32)"]["run"], results["openpairs clip --cpu-int8"]["run"])
    print("int8 vs fp32 cosine: " + ", ".join(f"{k} {v:.4f}" for k, v in agree.items()))
    (DATA / f"results_{args.samples}.json").write_text(
        json.dumps({"runs": results, "int8_agreement": agree}, indent=1)
    )


if __name__ == "__main__":
    main()
