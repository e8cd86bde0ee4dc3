"""Object-storage faults: `openpairs extract` and `openpairs download` write to s3:// through a proxy
(tests/fixtures/s3_faults.py) that answers 500 InternalError, 503 SlowDown or nothing at all, on a
schedule. Each fault is retried by botocore (the proxy sees the next attempt of the same request) and
the outputs equal a fault-free run byte for byte; a lasting failure fails its shard, listed in
failed_shards.jsonl, with a non-zero exit and never a hang, and a rerun completes it.

The runs are child processes, tuned through the product's settings (OPENPAIRS_S3_*, io/fs.py): few
attempts and short timeouts keep each test quick. This process reads the results from moto directly."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pytest

from openpairs.io import fs as ofs
from openpairs.io.commit import VERSIONS_DIR
from openpairs.io.fs import ObjectStoreConfig
from tests.download.helpers import write_input
from tests.extract.watfiles import DERIVED, FRAGMENT_1, WAT_2014
from tests.fixtures.images import OK_NAMES
from tests.fixtures.s3_faults import INTERNAL_ERROR, SLOW_DOWN, STALL, FaultProxy, Rule, Seen
from tests.fixtures.s3_server import child_environment, moto_endpoint, using_endpoint
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)

WATS = [DERIVED, WAT_2014, FRAGMENT_1]
ATTEMPTS, TRIES, SHARD_RUNS = 3, 1, 2  # botocore attempts, s3fs tries, the runner's tries of a shard
SETTINGS = {
    "OPENPAIRS_S3_MAX_ATTEMPTS": str(ATTEMPTS),
    "OPENPAIRS_S3_TRIES": str(TRIES),
    "OPENPAIRS_S3_CONNECT_TIMEOUT": "2",
    "OPENPAIRS_S3_READ_TIMEOUT": "2",  # a stall costs this; moto answers in milliseconds
}


@dataclass
class Store:
    """A moto bucket behind a fault proxy; the children talk to the proxy, this process to moto."""

    bucket: str
    proxy: FaultProxy

    def run(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        """`openpairs ARGS` in a child process whose s3 is the proxy (the timeout only guards a hang)."""
        env = child_environment(self.proxy.endpoint) | SETTINGS | settings
        command = [sys.executable, "-m", "openpairs", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    def files(self, prefix: str) -> dict[str, bytes]:
        """Every output object under `prefix` by relative name (DIR/_versions/ records the run's own
        input paths and stamps: it is state, not output)."""
        fs = fsspec.filesystem("s3")
        root = f"{self.bucket}/{prefix}".removeprefix("s3://")
        fs.invalidate_cache()
        found = {path[len(root) + 1 :]: path for path in fs.find(root)}
        return {name: fs.cat(path) for name, path in found.items() if not name.startswith(f"{VERSIONS_DIR}/")}


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    """moto, a fault proxy in front of it, a fresh bucket."""
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    with moto_endpoint() as moto, FaultProxy(moto) as proxy, using_endpoint(moto):
        fsspec.filesystem("s3").mkdir(bucket)
        yield Store(f"s3://{bucket}", proxy)


def extract(store: Store, prefix: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`openpairs extract` of the real WAT samples into s3://bucket/prefix."""
    out = f"{store.bucket}/{prefix}"
    wats = [str(path) for path in WATS]
    return store.run("extract", *wats, "--out", out, "--preset", "laion5b", "--workers", "1", **settings)


def download(store: Store, inp: Path, prefix: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`openpairs download` of `inp` into s3://bucket/prefix, 3 rows a shard."""
    out = f"{store.bucket}/{prefix}"
    options = ["--allow-address", "127.0.0.1", "--min-bytes", "0", "--timeout", "10", "--shard-size", "3"]
    return store.run("download", str(inp), "--out", out, "--workers", "1", *options, **settings)


@pytest.fixture(scope="module")
def clean_extract(store: Store) -> dict[str, bytes]:
    """A fault-free extract run's files."""
    store.proxy.inject()
    finished = extract(store, "extract-clean")
    assert finished.returncode == 0, finished.stderr
    return store.files("extract-clean")


@pytest.fixture(scope="module")
def images(image_server: ImageServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A parquet file of 6 image URLs (2 download shards)."""
    urls = [image_server.url(f"/img/{OK_NAMES[i % len(OK_NAMES)]}") for i in range(6)]
    return write_input(tmp_path_factory.mktemp("s3_download") / "images.parquet", list(urls))


@pytest.fixture(scope="module")
def clean_download(store: Store, images: Path) -> dict[str, bytes]:
    """A fault-free download run's files."""
    store.proxy.inject()
    finished = download(store, images, "download-clean")
    assert finished.returncode == 0, finished.stderr
    return store.files("download-clean")


def assert_each_fault_retried(log: list[Seen]) -> None:
    """Every injected fault is followed by botocore's next attempt of the same request."""
    for i, seen in enumerate(log):
        if seen.fault:
            retry = [
                s
                for s in log[i + 1 :]
                if (s.method, s.path, s.attempt) == (seen.method, seen.path, seen.attempt + 1)
            ]
            assert retry, f"{seen} was never retried"


def test_extract_to_s3_through_errors_throttling_and_a_stall_equals_a_clean_run(
    store: Store, clean_extract: dict[str, bytes]
) -> None:
    store.proxy.inject(
        Rule(STALL, "HEAD", first=1), Rule(SLOW_DOWN, "PUT", every=5), Rule(INTERNAL_ERROR, "GET", every=6)
    )
    finished = extract(store, "extract-faulty")
    log = store.proxy.log()
    assert finished.returncode == 0, finished.stderr
    assert {s.fault for s in log if s.fault} == {STALL, SLOW_DOWN, INTERNAL_ERROR}
    assert_each_fault_retried(log)
    faulty = store.files("extract-faulty")
    assert faulty == clean_extract
    assert "candidates/00000.parquet" in faulty and not [name for name in faulty if ".tmp-" in name]


def test_download_to_s3_through_errors_throttling_and_a_stall_equals_a_clean_run(
    store: Store, images: Path, clean_download: dict[str, bytes]
) -> None:
    store.proxy.inject(
        Rule(STALL, "PUT", first=1), Rule(SLOW_DOWN, "PUT", every=4), Rule(INTERNAL_ERROR, "GET", every=5)
    )
    finished = download(store, images, "download-faulty")
    log = store.proxy.log()
    assert finished.returncode == 0, finished.stderr
    assert {s.fault for s in log if s.fault} == {STALL, SLOW_DOWN, INTERNAL_ERROR}
    assert_each_fault_retried(log)
    faulty = store.files("download-faulty")
    assert faulty == clean_download
    assert len([name for name in faulty if name.endswith(".tar")]) == 2


def test_a_lasting_error_fails_its_shard_then_a_rerun_completes_it(
    store: Store, clean_extract: dict[str, bytes]
) -> None:
    store.proxy.inject(Rule(INTERNAL_ERROR, "PUT", path="/extract-lasting/extract/00001.parquet"))
    failed = extract(store, "extract-lasting")
    attempts = [s.attempt for s in store.proxy.injected()]
    assert failed.returncode == 1 and "extract-lasting/extract/failed_shards.jsonl" in failed.stderr
    assert attempts == list(range(1, ATTEMPTS + 1)) * TRIES * SHARD_RUNS  # then it gave up
    files = store.files("extract-lasting")
    failures = [json.loads(line) for line in files["extract/failed_shards.jsonl"].decode().splitlines()]
    assert [f["shard"] for f in failures] == [1]
    assert (
        "internal error" in failures[0]["error"]
        and "/extract-lasting/extract/00001.parquet" in failures[0]["error"]
    )
    assert "extract/00001_stats.json" not in files and "extract/00001.parquet" not in files
    assert {"extract/00000_stats.json", "extract/00002_stats.json"} <= set(files)
    assert not [name for name in files if ".tmp-" in name]

    store.proxy.inject()
    resumed = extract(store, "extract-lasting")
    assert resumed.returncode == 0, resumed.stderr
    assert store.files("extract-lasting") == clean_extract


def test_a_store_that_stops_answering_fails_the_shard_instead_of_hanging(
    store: Store, images: Path, clean_download: dict[str, bytes]
) -> None:
    store.proxy.inject(Rule(STALL, "PUT", path="/download-stalled/shards/00001.tar"))
    failed = download(store, images, "download-stalled", OPENPAIRS_S3_READ_TIMEOUT="1")
    stalls = store.proxy.injected(STALL)
    assert failed.returncode == 1
    assert [s.attempt for s in stalls] == list(range(1, ATTEMPTS + 1)) * TRIES * SHARD_RUNS
    files = store.files("download-stalled")
    failures = [json.loads(line) for line in files["shards/failed_shards.jsonl"].decode().splitlines()]
    assert [f["shard"] for f in failures] == [1], failures
    assert (
        "timeout" in failures[0]["error"].lower()
        and "/download-stalled/shards/00001.tar" in failures[0]["error"]
    )
    assert "shards/00001_stats.json" not in files and "shards/00001.tar" not in files

    store.proxy.inject()
    resumed = download(store, images, "download-stalled")
    assert resumed.returncode == 0, resumed.stderr
    assert store.files("download-stalled") == clean_download


def test_the_settings_reach_the_s3_client_and_fsspec_configuration_wins(store: Store) -> None:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OPENPAIRS_S3_MAX_ATTEMPTS", "7")
        env.setenv("OPENPAIRS_S3_READ_TIMEOUT", "4.5")
        env.setitem(fsspec.config.conf["s3"], "config_kwargs", {"connect_timeout": 3})
        fs, _ = ofs.filesystem(f"{store.bucket}/anything")
        config = fs.s3.meta.config
        assert config.retries == {"mode": "standard", "total_max_attempts": 7}
        assert (config.read_timeout, config.connect_timeout, fs.retries) == (4.5, 3, ObjectStoreConfig.tries)
        env.setenv("OPENPAIRS_S3_TRIES", "many")
        with pytest.raises(ValueError, match="OPENPAIRS_S3_TRIES must be an integer, not 'many'"):
            ofs.filesystem(f"{store.bucket}/anything")
