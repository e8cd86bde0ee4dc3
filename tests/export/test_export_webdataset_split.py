"""webdataset export: the `sizes.json` open_clip sizes a dataset by, and the held-out eval split
(`--split-eval`) in clip_benchmark's layout. Expected values come from the pipeline's own outputs."""

from __future__ import annotations

import json
import tarfile
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.stages.export import ExportConfig
from tests.fixtures.pipeline_output import PipelineOutput


def _samples(tar_path: Path) -> dict[str, dict[str, bytes]]:
    """The tar's samples: key -> {extension: bytes}, as a webdataset reader groups members."""
    samples: dict[str, dict[str, bytes]] = defaultdict(dict)
    with tarfile.open(tar_path) as tar:
        for member in tar:
            key, _, ext = member.name.partition(".")
            samples[key][ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return samples


def _sized_shards(directory: Path) -> dict[str, dict[str, dict[str, bytes]]]:
    """The shards of a folder, checked against its sizes.json: every tar listed, with its sample count."""
    shards = {p.name: _samples(p) for p in directory.glob("*.tar")}
    sizes = json.loads((directory / "sizes.json").read_text())
    assert sizes == {name: len(samples) for name, samples in shards.items()}
    return shards


def _keys(directory: Path) -> list[str]:
    """The sample keys of a folder's sized shards, sorted."""
    return sorted(key for samples in _sized_shards(directory).values() for key in samples)


def _export(root: Path, *options: str) -> None:
    run = CliRunner().invoke(app, ["export", str(root), "--format", "webdataset", *options])
    assert run.exit_code == 0, run.output


def test_eval_split_is_held_out_by_key_in_clip_benchmarks_layout(pipeline: PipelineOutput) -> None:
    directory = pipeline.root / "dataset" / "webdataset"
    _export(pipeline.root, "--samples-per-shard", "25", "--split-eval", "0.25")
    train = {k: s for shard in _sized_shards(directory).values() for k, s in shard.items()}
    evaluation = _sized_shards(directory / "eval" / "test")
    held_out = {k: s for shard in evaluation.values() for k, s in shard.items()}
    assert sorted(evaluation) == [f"{i}.tar" for i in range(len(evaluation))]  # clip_benchmark's {0..n-1}
    assert (directory / "eval" / "test" / "nshards.txt").read_text().strip() == str(len(evaluation))
    assert (directory / "eval" / "dataset_type.txt").read_text().strip() == "retrieval"
    assert 0 < len(held_out) < len(train) and not set(held_out) & set(train)
    assert sorted([*held_out, *train]) == sorted(pipeline.kept)
    for key, sample in held_out.items():
        assert sample["txt"].decode() == pipeline.downloads[key]["caption"]
        assert {"jpg", "png", "webp"} & set(sample)
    _export(pipeline.root, "--samples-per-shard", "100", "--split-eval", "0.25")  # other part sizes
    assert _keys(directory / "eval" / "test") == sorted(held_out)
    _export(pipeline.root, "--samples-per-shard", "100")  # no split: every sample in sized shards
    assert _keys(directory) == sorted(pipeline.kept)
    assert not (directory / "eval").exists()  # and the old split is gone


def test_bad_split_values_are_clear_errors(built_pipeline: PipelineOutput) -> None:
    for fraction in (1.5, -0.1):
        with pytest.raises(ValueError, match=r"split_eval must be in \[0, 1\)"):
            ExportConfig(format="webdataset", split_eval=fraction)
    with pytest.raises(ValueError, match="only by the webdataset format"):
        ExportConfig(format="laion400m", split_eval=0.1)
    run = CliRunner().invoke(
        app, ["export", str(built_pipeline.root), "--format", "webdataset", "--split-eval", "1"]
    )
    assert run.exit_code == 2 and not (built_pipeline.root / "dataset" / "webdataset" / "eval").exists()
