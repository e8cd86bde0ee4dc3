"""Safety lists generated in the test: URL, body and PDQ hashes in text and parquet lists, bad lines, lookup."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from openpairs.core.status import Status
from openpairs.demo.generate import encode, make_image
from openpairs.safety.blocklist import BlocklistError, Blocklists
from openpairs.safety.pdq import hamming, pdq_of
from openpairs.safety.urlnorm import normalise_url


def _hex(algorithm: str, data: str | bytes) -> str:
    return hashlib.new(algorithm, data.encode() if isinstance(data, str) else data).hexdigest()


def test_url_normal_form() -> None:
    cases = {
        "  HTTP://User@Example.COM.:80/a/./b/../c/%7euser/%e2%82%ac x?q=%41%2f#frag": (
            "http://User@example.com/a/c/~user/%E2%82%AC%20x?q=A%2F"
        ),
        "https://bücher.example:443": "https://xn--bcher-kva.example/",
        "https://example.com:8443/../../a/..": "https://example.com:8443/",
        "http://[2001:DB8::1]:80/p%": "http://[2001:db8::1]/p%25",
    }
    for given, expected in cases.items():
        assert normalise_url(given) == expected, given
    with pytest.raises(ValueError):
        normalise_url("http://example.com:port/")


def test_text_and_parquet_lists_match_urls_bodies_and_digests(tmp_path: Path) -> None:
    body = b"\x89PNG pretend image body"
    text = tmp_path / "list.txt"
    text.write_text(
        "# a generated list\n\n"
        f"url-sha256:{_hex('sha256', 'https://xn--bcher-kva.example/a%20b.jpg')}  # the normalised form\n"
        f"{_hex('md5', 'http://given.example/x.jpg').upper()}\n"  # bare: URLs and bodies
        f"sha1:{_hex('sha1', body)}\n"
    )
    table = pa.table(
        {
            "hash": [_hex("sha1", "http://p.example/1.png"), _hex("sha256", b"other")],
            "kind": ["url-sha1", None],
        }
    )
    parquet = tmp_path / "list.parquet"
    pq.write_table(table, parquet)
    lists = Blocklists.load([str(text), str(parquet)])
    assert lists.has_url_hashes and lists.has_body_hashes and not lists.has_pdq

    normalised = lists.match_url("HTTPS://Bücher.example:443/a b.jpg#top")
    assert normalised is not None and (normalised.list_file, normalised.kind) == (str(text), "url-sha256")
    assert normalised.status is Status.BLOCKLISTED_URL
    given = lists.match_url("http://given.example/x.jpg")
    assert given is not None and given.kind == "url-md5"
    by_parquet = lists.match_url("http://p.example/1.png")
    assert by_parquet is not None and (by_parquet.list_file, by_parquet.kind) == (str(parquet), "url-sha1")
    image = lists.match_body(body)
    assert image is not None and (image.kind, image.status) == ("sha1", Status.BLOCKLISTED_IMAGE)
    bare_body = lists.match_body(b"http://given.example/x.jpg")  # a bare hash also applies to bodies
    assert bare_body is not None and bare_body.kind == "md5"
    recorded = lists.match_digest("sha256", _hex("sha256", b"other"))
    assert recorded is not None and recorded.list_file == str(parquet)
    assert lists.match_url("http://given.example/y.jpg") is None
    assert lists.match_body(b"unrelated") is None
    assert lists.match_digest("sha256", _hex("sha256", b"unrelated")) is None


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("abc", "32, 40 or 64"),
        ("md4:" + "0" * 32, "unknown hash kind"),
        ("sha1:" + "0" * 32, "40 hex digits"),
        ("pdq:" + "z" * 64, "not a hex hash"),
        ("0" * 32 + " 0" * 3, "not a hex hash"),
    ],
)
def test_a_malformed_line_names_file_and_line(tmp_path: Path, line: str, says: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(f"# header\n{'0' * 40}\n{line}\n")
    with pytest.raises(BlocklistError, match=f"bad.txt:3: .*{says}"):
        Blocklists.load([str(path)])


def test_a_parquet_list_without_a_hash_column_or_with_a_null_is_an_error(tmp_path: Path) -> None:
    pq.write_table(pa.table({"md5": ["0" * 32]}), tmp_path / "a.parquet")
    with pytest.raises(BlocklistError, match="needs a 'hash' column"):
        Blocklists.load([str(tmp_path / "a.parquet")])
    pq.write_table(pa.table({"hash": ["0" * 32, None]}), tmp_path / "b.parquet")
    with pytest.raises(BlocklistError, match=r"b\.parquet:row 2: the hash is null"):
        Blocklists.load([str(tmp_path / "b.parquet")])


def _flip(value: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return value


def test_pdq_index_finds_exactly_the_hashes_within_the_threshold(tmp_path: Path) -> None:
    rng = random.Random(16)
    listed = [rng.getrandbits(256) for _ in range(3000)]
    path = tmp_path / "pdq.txt"
    path.write_text("".join(f"pdq:{value:064x}\n" for value in listed))
    lists = Blocklists.load([str(path)], pdq_threshold=31)
    for distance in (0, 1, 15, 16, 17, 31, 32, 33, 40):
        for target in rng.sample(listed, 5):
            query = f"{_flip(target, distance, rng):064x}"
            expected = min(hamming(query, value) for value in listed)  # the brute-force answer
            found = lists.match_pdq(query)
            if expected <= 31:
                assert (
                    found is not None
                    and found.distance == expected
                    and hamming(query, found.hash) == expected
                )
            else:
                assert found is None, (distance, found)


def test_pdq_matches_a_resized_reencoded_image_and_not_unrelated_ones(tmp_path: Path) -> None:
    original = make_image(3, 640, 480)
    path = tmp_path / "pdq.txt"
    path.write_text(f"pdq:{pdq_of(original).hex}\n")
    lists = Blocklists.load([str(path)])
    variant = Image.open(io.BytesIO(encode(original.resize((320, 240)), "webp")))
    hit = lists.match_pdq(pdq_of(variant).hex)
    assert hit is not None and hit.kind == "pdq" and hit.status is Status.BLOCKLISTED_IMAGE
    assert all(lists.match_pdq(pdq_of(make_image(i, 640, 480)).hex) is None for i in range(20, 26))


def test_threshold_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 63"):
        Blocklists.load([], pdq_threshold=64)
    assert not Blocklists.load([])
