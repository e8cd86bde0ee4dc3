"""`openpairs decontaminate` on a copy of the pipeline build: planted near-duplicates of the dataset's own images
(an evaluation folder and an evaluation webdataset) end as `eval_duplicate`, nothing else changes, and the
export and report re-run to match.

The build's CLIP is the tiny RANDOM-weight model, whose embeddings of unrelated demo images reach cosine 0.999
(benchmarks/decontaminate_threshold.py): the folder set is matched by PDQ (resized, re-encoded and
colour-jittered copies), the webdataset set by CLIP at 0.9999 (byte-identical and lossless PNG copies).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.executors import ExecutorConfig
from openpairs.report import build_report
from openpairs.safety.pdq import MIN_QUALITY
from openpairs.stages.decontaminate import DecontaminateConfig
from openpairs.stages.decontaminate_eval import EvalSet, image_pdq
from openpairs.stages.decontaminate_run import recorded_clip_config, run_decontaminate
from openpairs.stages.export import ExportConfig, run_export
from tests.fixtures.images import photo
from tests.fixtures.near_duplicates import jittered, reencoded, resized
from tests.fixtures.pipeline_output import PipelineOutput


def _groups(built: PipelineOutput) -> list[list[str]]:
    """Downloaded keys grouped by image (sha256), groups with a kept key and a PDQ-usable image first."""
    by_sha: dict[str, list[str]] = defaultdict(list)
    for key, row in built.downloads.items():
        if row["status"] == "ok" and built.clip[key]["status"] == "ok":
            by_sha[row["sha256"]].append(key)
    kept = set(built.kept)

    def usable(keys: list[str]) -> bool:
        pdq = image_pdq(_image_bytes(built, keys[0]))
        return bool(kept & set(keys)) and pdq is not None and pdq.quality >= MIN_QUALITY

    return sorted((sorted(keys) for keys in by_sha.values() if usable(keys)), key=lambda k: k[0])


def _image_bytes(built: PipelineOutput, key: str) -> bytes:
    return next(data for name, data in built.stored(key).items() if name != "txt" and name != "json")


def _unrelated(seed: int) -> bytes:
    buffer = io.BytesIO()
    photo(320, 240, seed=seed).save(buffer, "PNG")
    return buffer.getvalue()


def _eval_folder(root: Path, built: PipelineOutput, groups: list[list[str]]) -> Path:
    folder = root / "coco-val"
    (folder / "sub").mkdir(parents=True)
    for number, keys in enumerate(groups):
        image = Image.open(io.BytesIO(_image_bytes(built, keys[0]))).convert("RGB")
        for name, make in (("resized", resized), ("reencoded", reencoded), ("jittered", jittered)):
            (folder / "sub" / f"{number}-{name}.jpg").write_bytes(make(image))
    for seed in (901, 902):
        (folder / f"unrelated-{seed}.png").write_bytes(_unrelated(seed))
    return folder


def _eval_webdataset(root: Path, built: PipelineOutput, groups: list[list[str]]) -> Path:
    shards = root / "imagenet-wds"
    shards.mkdir()
    members: list[tuple[str, bytes]] = []
    for number, keys in enumerate(groups):
        stored = _image_bytes(built, keys[0])
        lossless = io.BytesIO()
        Image.open(io.BytesIO(stored)).save(lossless, "PNG")
        members += [(f"{number}-copy.jpg", stored), (f"{number}-png.png", lossless.getvalue())]
    members += [(f"unrelated-{seed}.png", _unrelated(seed)) for seed in (903, 904)]
    for part in range(2):
        with tarfile.open(shards / f"{part:05d}.tar", "w") as tar:
            for name, data in members[part::2]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return shards


@pytest.fixture(scope="module")
def decontaminated(built_pipeline: PipelineOutput, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the build, exported and reported, then decontaminated against a folder and a webdataset."""
    root = tmp_path_factory.mktemp("decontaminate")
    built = built_pipeline.copy(root / "run")
    groups = _groups(built)
    assert len(groups) >= 4, "the fixture build needs four kept images of usable PDQ quality"
    folder, shards = _eval_folder(root, built, groups[:2]), _eval_webdataset(root, built, groups[2:4])
    executor = ExecutorConfig(kind="local", workers=1)
    run_export(str(built.root), ExportConfig(format="laion400m", embeddings=False), executor)
    before = dict(built.statuses)
    args = ["decontaminate", str(built.root), "--against", str(folder), "--against", str(shards)]
    result = CliRunner().invoke(
        app, [*args, "--name", "coco", "--min-similarity", "0.9999", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    build_report(str(built.root), executor=executor)
    sets = (EvalSet("coco", str(folder)), EvalSet("imagenet-wds", str(shards)))
    return {
        "built": PipelineOutput(built.root),
        "groups": groups,
        "before": before,
        "output": result.output,
        "sets": sets,
    }


def _matches(out: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted((out / "decontaminate").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            found[row["eval_set"]].add(row["key"])
    return found


def test_planted_near_duplicates_are_found_and_nothing_else(decontaminated: dict) -> None:
    built, groups, before = decontaminated["built"], decontaminated["groups"], decontaminated["before"]
    found = _matches(built.root)
    assert found["coco"] == set(groups[0] + groups[1])  # named by --name
    assert found["imagenet-wds"] == set(groups[2] + groups[3])  # named by its folder
    planted = found["coco"] | found["imagenet-wds"]
    after = built.statuses
    assert {after[key] for key in planted} == {"eval_duplicate"}
    assert {k: s for k, s in after.items() if k not in planted} == {
        k: s for k, s in before.items() if k not in planted
    }
    assert "eval duplicates of coco: " + str(len(found["coco"])) in decontaminated["output"]


def test_export_follows_and_the_report_counts_each_set(decontaminated: dict) -> None:
    built = decontaminated["built"]
    manifest = json.loads((built.root / "dataset" / "laion400m" / "_manifest.json").read_text())
    assert manifest["samples"] == len(built.kept)
    exported = {
        str(key).zfill(len(built.kept[0]))
        for part in sorted((built.root / "dataset" / "laion400m").glob("*.parquet"))
        for key in pq.read_table(part, columns=["SAMPLE_ID"]).column("SAMPLE_ID").to_pylist()
    }
    assert exported == set(built.kept)
    html = (built.root / "report" / "index.html").read_text()
    found = _matches(built.root)
    assert f"<td>eval_duplicate of coco</td><td class=n>{len(found['coco']):,}</td>" in html


def test_a_rerun_with_the_same_settings_skips_every_done_task(decontaminated: dict) -> None:
    root = decontaminated["built"].root
    before = {p.name: p.read_bytes() for p in (root / "decontaminate").glob("*.parquet")}
    config = DecontaminateConfig(("coco", "imagenet-wds"), 0.9999)
    executor = ExecutorConfig(kind="local", workers=1)
    clip = recorded_clip_config(str(root))
    result = run_decontaminate(str(root), decontaminated["sets"], config, clip, executor)
    assert result.ok and result.shards is not None
    assert (result.eval_sets.skipped, result.shards.skipped) == (2, len(before))
    assert {p.name: p.read_bytes() for p in (root / "decontaminate").glob("*.parquet")} == before
    assert (root / "decontaminate" / "_done.json").exists()
