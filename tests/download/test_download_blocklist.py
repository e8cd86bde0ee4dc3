"""Safety lists in the download stage, against a real server on 127.0.0.1 serving real image bytes: a
listed URL is never requested, a listed body (exact hash, or PDQ of a resized re-encoded copy) is never
stored; unrelated images pass."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.demo.generate import encode, make_image
from openpairs.safety.blocklist import load_cached
from openpairs.safety.pdq import pdq_of
from openpairs.safety.urlnorm import normalise_url
from tests.download.helpers import download, rows, write_input
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)

# name -> the status its row ends with
EXPECTED = {
    "url_given": "blocklisted_url",  # sha256 of the URL as given
    "url_normalised": "blocklisted_url",  # md5 of the normalised form of a URL given otherwise
    "body_sha1": "blocklisted_image",
    "body_md5": "blocklisted_image",  # in the parquet list
    "pdq_copy": "blocklisted_image",  # the list has the PDQ of a smaller WebP re-encode
    "unrelated_a": "ok",
    "unrelated_b": "ok",
    "redirect_to_listed": "blocklisted_url",  # a redirect to url_given: the target is never requested
}


def _hex(algorithm: str, data: str | bytes) -> str:
    return hashlib.new(algorithm, data.encode() if isinstance(data, str) else data).hexdigest()


def _serve(server: ImageServer) -> tuple[list[str], dict[str, bytes]]:
    """Serve one photo-like JPEG per case; the input URLs (one written unnormalised) and bodies."""
    bodies = {name: encode(make_image(40 + i, 480, 360), "jpg") for i, name in enumerate(EXPECTED)}
    urls = [server.serve(name, body, "image/jpeg") for name, body in bodies.items()]
    urls[1] = urls[1].replace("/bytes/", "/bytes/./")  # normalised: /bytes/url_normalised
    urls[-1] = urls[0].replace("/bytes/url_given", f"/redirect-to?url={quote(urls[0], safe='')}")
    return urls, bodies


def _lists(tmp: Path, urls: list[str], bodies: dict[str, bytes]) -> list[str]:
    """A text list (URL and body hashes, PDQ) and a parquet list (a body MD5)."""
    copy = Image.open(io.BytesIO(encode(make_image(44, 480, 360).resize((300, 225)), "webp")))
    text = tmp / "safety.txt"
    text.write_text(
        f"url-sha256:{_hex('sha256', urls[0])}\n"
        f"url-md5:{_hex('md5', normalise_url(urls[1]))}\n"
        f"sha1:{_hex('sha1', bodies['body_sha1'])}\n"
        f"pdq:{pdq_of(copy).hex}\n"
    )
    parquet = tmp / "more.parquet"
    pq.write_table(pa.table({"hash": [_hex("md5", bodies["body_md5"])], "kind": ["md5"]}), parquet)
    return [str(text), str(parquet)]


def test_listed_urls_are_never_requested_and_listed_bodies_never_stored(
    image_server: ImageServer, tmp_path: Path
) -> None:
    urls, bodies = _serve(image_server)
    lists = _lists(tmp_path, urls, bodies)
    inp = write_input(tmp_path / "in.parquet", list(urls))
    loads = load_cached.cache_info().misses
    result = download(inp, tmp_path / "out", blocklist=tuple(lists), shard_size=4)  # two shards
    assert load_cached.cache_info().misses == loads + 1  # once for this (in-test) worker process
    got = rows(tmp_path / "out", 0) + rows(tmp_path / "out", 1)
    assert {name: row["status"] for name, row in zip(EXPECTED, got, strict=True)} == EXPECTED
    assert image_server.count("/bytes/url_given") == image_server.count("/bytes/url_normalised") == 0
    assert all(image_server.count(f"/bytes/{name}") == 1 for name in list(EXPECTED)[2:-1])
    assert image_server.count("/redirect-to") == 1  # the redirect was followed up to its listed target
    errors = {name: row["error"] for name, row in zip(EXPECTED, got, strict=True)}
    assert errors["url_given"] == "on safety list safety.txt (url-sha256)"
    assert errors["url_normalised"] == "on safety list safety.txt (url-md5)"
    assert errors["body_sha1"] == "on safety list safety.txt (sha1)"
    assert errors["body_md5"] == "on safety list more.parquet (md5)"
    assert errors["pdq_copy"] == "on safety list safety.txt (pdq)"
    assert errors["redirect_to_listed"] == "redirect target on safety list safety.txt (url-sha256)"
    stored = set().union(*(_stored(tar) for tar in (tmp_path / "out" / "shards").glob("*.tar")))
    kept = {row["key"] for row in got if row["status"] == "ok"}
    assert stored == kept and len(kept) == 2
    listed = {row["key"] for row in got if row["status"].startswith("blocklisted")}
    assert not any(row["sha256"] or row["width"] for row in got if row["key"] in listed)
    assert result.total.is_balanced() and result.total.statuses["blocklisted_image"] == 3


def _stored(tar: Path) -> set[str]:
    """The keys with any member in a shard tar (their json records checked to say ok)."""
    with tarfile.open(tar) as archive:
        names = archive.getnames()
        for name in names:
            if name.endswith(".json"):
                member = archive.extractfile(name)
                assert member is not None and json.load(member)["status"] == "ok"
    return {name.rpartition(".")[0] for name in names}


@pytest.mark.parametrize("command", ["download", "build"])
def test_a_bad_list_stops_the_command_naming_file_and_line(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(f"sha1:{'0' * 40}\nnot-a-hash\n")
    inp = write_input(tmp_path / "in.parquet", ["http://127.0.0.1:9/x.jpg"])
    flags = [
        "--blocklist",
        str(bad),
        "--no-respect-c2pa",
        "--no-respect-xmp-data-mining",
    ]  # the flags parse on both
    args = [command, str(inp), "--out", str(tmp_path / "out"), *flags]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "bad.txt:2" in " ".join(result.output.split()) and not (tmp_path / "out").exists()
