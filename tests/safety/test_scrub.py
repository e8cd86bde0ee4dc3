"""`openpairs scrub` on a real pipeline build equals, byte for byte, the same build made with the lists.

One module fixture: lists made from the shared build's own rows (a URL in its normalised form, the URL of a
row that failed, a recorded body SHA256, the PDQ hash of a stored image); a second build of the same inputs
with the lists given to its download; and a copy of the first build scrubbed by `openpairs scrub`, killed
inside a shard's rewrite and between steps, then resumed. Both get image groups, two exports and an index
first. Every dataset file is compared.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from openpairs.demo.miniweb import Files, outcome
from openpairs.index.build import IndexConfig, build_index
from openpairs.safety.blocklist import BlocklistError
from openpairs.safety.pdq import pdq_of
from openpairs.safety.urlnorm import normalise_url
from openpairs.stages.export import ExportConfig, run_export
from openpairs.stages.image_dedup import ImageDedupConfig, run_image_dedup
from openpairs.stages.scrub import BUILD_TIME_ONLY, ScrubConfig, run_scrub
from openpairs.stages.scrub_steps import NotFinished
from tests.fault.harness import Frozen, run_killed_at, run_to_end
from tests.fixtures.pipeline_build import WORKERS, build_pipeline
from tests.fixtures.pipeline_output import PipelineOutput

NOT_COMPARED = ("config.json", "_versions/", "scrub/")  # how each run went (mirror port, mtimes), not data
MUST_COMPARE = (
    "shards/",
    ".tar",
    "clip/img_emb/",
    "clip/dup_groups/",
    "filter/",
    "dataset/",
    "index/",
)


@dataclass
class Case:
    """The lists; the scrubbed copy (a CLI scrub killed inside a shard, then between steps, then run to
    its end) and where the first kill landed; the build made with the lists; the source build."""

    lists: tuple[str, ...]
    scrubbed: Path
    rebuilt: Path
    source: PipelineOutput
    killed: Frozen
    statuses_at_kill: tuple[list[Any], list[Any]]  # the killed shard's parquet statuses before, at the kill
    pending_at_kill: list[Path]


def _image(built: PipelineOutput, key: str) -> bytes:
    with tarfile.open(built.root / "shards" / f"{built.shard_of[key]}.tar") as tar:
        member = next(
            m for m in tar.getmembers() if m.name.startswith(key) and m.name.endswith((".jpg", ".webp"))
        )
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read()


def _lists(built: PipelineOutput, root: Path) -> tuple[str, ...]:
    """A text list of URL hashes and a parquet list of image hashes, from the build's own rows."""
    rows = [row for shard in built.shards.values() for row in shard]
    ok = [row for row in rows if row["status"] == "ok"]
    # URLs the mini web answers without a redirect or a retry: a dataset does not record those per row, so
    # scrub cannot take them off the shard's `redirects` / `retries` counters (docs/safety.md)
    plain = [row for row in ok if outcome(row["url"]) == outcome(normalise_url(row["url"])) == "image"]
    # listed as its page wrote it (a raw space); the row holds it as requested (%20): one normalised form
    spaced = next(row["url"] for row in plain if "%20" in row["url"]).replace("%20", " ")
    failed = next(row["url"] for row in rows if row["status"] == "http_404")
    urls = root / "urls.txt"
    urls.write_text(
        "# URL hashes\n"
        f"url-sha256:{hashlib.sha256(normalise_url(spaced).encode()).hexdigest()}  # its normalised form\n"
        f"{hashlib.md5(failed.encode()).hexdigest()}\n"  # bare: a URL that answered with an error
    )
    listed = ok[0]["sha256"]  # every copy of that body goes
    other = next(row for row in ok if row["sha256"] != listed)
    pdq = pdq_of(Image.open(io.BytesIO(_image(built, other["key"])))).hex
    images = root / "images.parquet"
    pq.write_table(pa.table({"hash": [listed, pdq], "kind": [None, "pdq"]}), images)
    return str(urls), str(images)


def _add_outputs(out: Path) -> None:
    """Image groups, LAION-400M and webdataset exports and a kNN index, as a user would add them."""
    run_image_dedup(str(out), ImageDedupConfig(threshold=0.9), WORKERS)
    run_export(str(out), ExportConfig(format="laion400m", samples_per_shard=40), WORKERS)
    run_export(str(out), ExportConfig(format="webdataset", samples_per_shard=40), WORKERS)
    build_index(str(out), str(out / "index"), IndexConfig(executor=WORKERS, tune_queries=20))


def _statuses(out: Path, shard: int) -> list[Any]:
    return pq.read_table(out / "shards" / f"{shard:05d}.parquet", columns=["status"]).column(0).to_pylist()


@pytest.fixture(scope="module")
def case(built_pipeline: PipelineOutput, tmp_path_factory: pytest.TempPathFactory) -> Case:
    root = tmp_path_factory.mktemp("scrub")
    lists = _lists(built_pipeline, root)
    rebuilt = build_pipeline(root / "rebuilt", like=built_pipeline, blocklist=lists).root
    _add_outputs(rebuilt)
    scrubbed = built_pipeline.copy(root / "scrubbed" / "out").root
    _add_outputs(scrubbed)
    command = [sys.executable, "-m", "openpairs", "scrub", str(scrubbed), "--workers", "1"]
    for path in lists:
        command += ["--blocklist", path]
    shard = min(int(PipelineOutput(rebuilt).shard_of[key]) for key in _blocklisted(rebuilt))
    before = _statuses(scrubbed, shard)
    killed = run_killed_at(command, f"scrub.shard:{shard}", root)
    at_kill = (before, _statuses(scrubbed, shard))
    pending = list((scrubbed / "scrub").glob(f"*/shards/{shard:05d}.pending.jsonl"))
    run_killed_at(command, "scrub.step:3", root)  # shards and clip done, image groups not yet redone
    run_to_end(command, root)
    return Case(lists, scrubbed, rebuilt, built_pipeline, killed, at_kill, pending)


def _digests(out: Path) -> dict[str, str]:
    files = (p for p in sorted(out.rglob("*")) if p.is_file())
    named = ((str(p.relative_to(out)), p) for p in files)
    return {
        name: hashlib.sha256(p.read_bytes()).hexdigest()
        for name, p in named
        if not name.startswith(NOT_COMPARED)
    }


def _blocklisted(out: Path) -> dict[str, tuple[str, str]]:
    rows = [row for p in sorted((out / "shards").glob("*.parquet")) for row in pq.read_table(p).to_pylist()]
    return {r["key"]: (r["status"], r["error"]) for r in rows if r["status"].startswith("blocklisted")}


def _audit(out: Path) -> list[dict[str, Any]]:
    (path,) = (out / "scrub").glob("*/audit.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_scrub_killed_twice_then_resumed_equals_the_build_made_with_the_lists(case: Case) -> None:
    before, at_kill = case.statuses_at_kill
    assert at_kill == before and case.pending_at_kill  # the kill landed after the tar, before the parquet
    scrubbed, rebuilt = _digests(case.scrubbed), _digests(case.rebuilt)
    assert all(any(part in name for name in rebuilt) for part in MUST_COMPARE), sorted(rebuilt)
    differ = sorted(
        name for name in scrubbed.keys() | rebuilt.keys() if scrubbed.get(name) != rebuilt.get(name)
    )
    assert not differ, differ
    assert scrubbed != _digests(case.source.root)  # the scrub did change the dataset


def test_audit_names_every_removed_row_with_its_list_and_kind(case: Case) -> None:
    audit = _audit(case.scrubbed)
    blocked = _blocklisted(case.rebuilt)
    assert {a["key"]: (a["status"], a["fields"]["error"]) for a in audit} == blocked
    urls, images = case.lists
    kinds = {(a["list"], a["kind"], a["was"] == "ok") for a in audit}
    assert {(urls, "url-sha256", True), (urls, "url-md5", False), (images, "sha256", True)} <= kinds
    assert (images, "pdq", True) in kinds


def test_a_finished_scrub_rerun_changes_nothing(case: Case) -> None:
    before = _digests(case.scrubbed)
    again = run_scrub(str(case.scrubbed), ScrubConfig(case.lists), WORKERS)
    blocked = _blocklisted(case.rebuilt)
    assert again.removed == {
        s: sum(v == s for v, _ in blocked.values()) for s in ("blocklisted_image", "blocklisted_url")
    }
    assert again.steps == ["shards", "clip", "image_dedup", "filter", "export", "index"]
    assert _digests(case.scrubbed) == before


def test_md5_and_sha1_lists_of_original_bodies_miss_resized_images_and_scrub_says_so(
    pipeline: PipelineOutput, tmp_path: Path
) -> None:
    row = next(r for r in pipeline.downloads.values() if r["status"] == "ok" and outcome(r["url"]) == "image")
    _, body = Files().image_for(row["url"])  # what the mini web served: the original body
    assert hashlib.sha256(body).hexdigest() == row["sha256"]  # the recorded digest is of that body
    listed = tmp_path / "bodies.txt"
    listed.write_text(f"md5:{hashlib.md5(body).hexdigest()}\nsha1:{hashlib.sha1(body).hexdigest()}\n")
    before = pipeline.digest()
    result = run_scrub(str(pipeline.root), ScrubConfig((str(listed),)), WORKERS)
    assert result.removed == {} and result.steps == [] and result.notes == [BUILD_TIME_ONLY]
    assert {k: v for k, v in pipeline.digest().items() if not k.startswith("scrub/")} == before


def test_a_bad_list_or_an_unfinished_dataset_stops_scrub_before_it_writes(
    pipeline: PipelineOutput, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("# one good, one bad\n" + "0" * 32 + "\nsha1:" + "0" * 32 + "\n")
    with pytest.raises(BlocklistError, match=r"bad\.txt:3: a sha1 hash has 40 hex digits, not 32"):
        run_scrub(str(pipeline.root), ScrubConfig((str(bad),)), WORKERS)
    (pipeline.root / "shards" / "00001_stats.json").unlink()
    good = tmp_path / "good.txt"
    good.write_text("0" * 32 + "\n")
    with pytest.raises(NotFinished, match=r"download shard\(s\) \[1\]"):
        run_scrub(str(pipeline.root), ScrubConfig((str(good),)), WORKERS)
    assert not (pipeline.root / "scrub").exists()
