"""The full chain on the bundled demo data: every kind of drop shows, counts add up, outputs load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import openpairs
from openpairs.build import BuildResult
from openpairs.demo.miniweb import MiniWeb
from tests.e2e.chain import dataset_digests, run_demo_build

# The demo's funnel, as the README states it: the bundled WATs and the mini web are fixed, so are these.
EXTRACT_STATUSES = {"ok": 248, "no_alt": 125, "bad_extension": 15, "alt_too_short": 7}
UNIQUE = 243
DOWNLOAD_STATUSES = {
    "ok": 208,
    "decode_error": 10,
    "http_404": 10,
    "http_500": 7,
    "opted_out": 6,
    "too_small": 2,
}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildResult]:
    from openpairs.models.tiny import make_random_checkpoint

    root = tmp_path_factory.mktemp("e2e")
    checkpoint = make_random_checkpoint(root / "tiny.pt")
    with MiniWeb() as web:
        yield run_demo_build(str(root / "out"), web.url, checkpoint)


def test_the_demo_funnel_is_exactly_the_readmes(chain: BuildResult) -> None:
    stages = chain.totals
    assert not any(chain.failed.values())
    assert stages["extract"].rows_out == stages["dedup"].rows_in
    assert stages["download"].rows_in == stages["dedup"].rows_out == stages["filter"].rows_in
    assert dict(stages["extract"].statuses) == EXTRACT_STATUSES
    assert stages["extract"].rows_out == EXTRACT_STATUSES["ok"] and stages["dedup"].rows_out == UNIQUE
    assert dict(stages["download"].statuses) == DOWNLOAD_STATUSES
    assert stages["download"].rows_out == DOWNLOAD_STATUSES["ok"]
    assert stages["filter"].rows_out == DOWNLOAD_STATUSES["ok"]  # thresholds off: random weights
    kept = stages["filter"].rows_out
    assert {name: export.samples for name, export in chain.exports.items()} == {
        "laion400m": kept, "laion5b": kept, "webdataset": kept, "tfds": kept
    }  # fmt: skip
    # the 64-d tiny CLIP's embeddings do not fit TFDS's embeddings config (512-d): images config only
    assert chain.exports["tfds"].extra["tfds"] == {"num_shards": -(-kept // 64), "configs": ["images"]}
    assert sum(1 for _ in openpairs.load(chain.out, config="embeddings")) == kept


def test_report_and_card_exist(chain: BuildResult) -> None:
    assert chain.report is not None and chain.report.data is not None
    stages = chain.totals
    funnel = [step.count for step in chain.report.data.funnel]
    assert funnel == [
        stages["extract"].rows_out,
        stages["dedup"].rows_out,
        stages["download"].rows_out,
        stages["filter"].rows_out,
    ]
    html = Path(chain.report.html).read_text()
    assert "RANDOM weights" in html and "meaningless" in html
    assert dataset_digests(chain.out)
