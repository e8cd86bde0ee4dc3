"""Bad input: each case gives a clear message and a counted status; other records and files go on."""

from __future__ import annotations

import gzip
import json

from tests.extract.conftest import extracted
from tests.extract.watfiles import DERIVED, FRAGMENT_0, corrupt, member, payload_member, real_payloads


def _wat(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_missing_file_fails_only_that_input(run, tmp_path) -> None:
    outcome = run(
        [tmp_path / "nope.warc.wat.gz", DERIVED], language="off", english_only=False, drop_extensions=()
    )
    assert [f["shard"] for f in outcome.extract.failed] == [0]
    assert "cannot open" in outcome.extract.failed[0]["error"]
    assert outcome.extract.total.statuses["ok"] == 890  # the good file is still extracted
    assert outcome.dedup is not None and outcome.dedup.rows_in == 890
    assert outcome.unreadable_inputs()[0].startswith(str(tmp_path / "nope.warc.wat.gz"))


def test_empty_and_non_warc_files_are_unreadable_inputs(run, tmp_path) -> None:
    empty = _wat(tmp_path, "empty.wat.gz", b"")
    text = _wat(tmp_path, "notes.txt", b"hello, this is not a WARC file\n")
    outcome = run([empty, text, DERIVED], language="off", english_only=False, drop_extensions=())
    errors = {f["shard"]: f["error"] for f in outcome.extract.failed}
    assert "empty file" in errors[0] and "not a WARC/WAT file" in errors[1]
    assert outcome.extract.total.statuses["ok"] == 890


def test_corrupt_member_in_the_middle_keeps_records_before_and_after(run, tmp_path) -> None:
    payloads = real_payloads()
    members = [payload_member(p) for p in payloads]
    damaged = [*members[:3], corrupt(members[3]), *members[4:]]
    good = run([_wat(tmp_path, "good.wat.gz", b"".join(members))], out=str(tmp_path / "g"), language="off")
    bad = run([_wat(tmp_path, "bad.wat.gz", b"".join(damaged))], out=str(tmp_path / "b"), language="off")
    lost = len(
        payloads[3]["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]["Links"]
    )
    assert bad.extract.total.counters["corrupt_gzip_members"] == 1
    assert bad.extract.total.counters["html_pages"] == good.extract.total.counters["html_pages"] - 1
    assert bad.extract.total.counters["links"] == good.extract.total.counters["links"] - lost
    good_pages = set(extracted(str(tmp_path / "g"))["page_url"].to_pylist())
    bad_pages = set(extracted(str(tmp_path / "b"))["page_url"].to_pylist())
    assert bad_pages == good_pages - {payloads[3]["Envelope"]["WARC-Header-Metadata"]["WARC-Target-URI"]}
    assert not bad.extract.failed


def test_truncated_gzip_keeps_the_complete_records(run, tmp_path) -> None:
    members = [payload_member(p) for p in real_payloads()[:5]]
    data = b"".join(members)
    outcome = run([_wat(tmp_path, "cut.wat.gz", data[: len(data) - len(members[-1]) // 2])], language="off")
    total = outcome.extract.total
    assert total.counters["html_pages"] == 4
    assert total.counters["corrupt_gzip_members"] == 1
    assert any("truncated" in m or "corrupt" in m for m in total.errors)


def test_invalid_json_and_unexpected_types_are_counted(run, tmp_path) -> None:
    good = real_payloads()[0]
    links_not_list = json.loads(json.dumps(good))
    links_not_list["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]["Links"] = (
        "oops"
    )
    alt_number = json.loads(json.dumps(good))
    html = alt_number["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]
    html["Links"] = [
        {"path": "IMG@/src", "url": "http://a.example/x.jpg", "alt": 12345},
        {"path": "IMG@/src", "url": "http://a.example/y.jpg", "alt": 0},  # falsy, yet not a missing alt
        {"path": "IMG@/src", "url": 7},  # no alt, but the URL is not a string: invalid first
        {"path": "IMG@/src", "url": "http://a.example/z.jpg", "alt": ""},
    ]
    invalid = member(b'{"Envelope": {"WARC-Header-Metadata": {"WARC-Type":"response"}, "Payload')
    data = payload_member(good) + invalid + payload_member(links_not_list) + payload_member(alt_number)
    data += payload_member(good)
    outcome = run([_wat(tmp_path, "types.wat.gz", data)], language="off", english_only=False, dedup="none")
    total = outcome.extract.total
    assert total.counters["bad_records"] == 2
    assert total.statuses["no_alt"] >= 1
    assert any("invalid JSON" in m for m in total.errors)
    assert any("Links is str" in m for m in total.errors)
    assert any("alt int" in m for m in total.errors)
    assert any("url int, alt NoneType" in m for m in total.errors)
    assert total.statuses["invalid_link"] == 3  # the real records have none
    assert total.counters["html_pages"] == 3  # the good record before and after, and the alt-number one
    assert total.is_balanced()


def test_damaged_fragment_without_responses_is_readable_but_empty(run) -> None:
    outcome = run([FRAGMENT_0], language="off")
    assert not outcome.extract.failed
    assert outcome.extract.total.counters["records_recovered_by_line_scan"] == 2
    assert outcome.extract.total.rows_in == 0


def test_garbage_gzip_member_is_skipped(run, tmp_path) -> None:
    members = [payload_member(p) for p in real_payloads()[:3]]
    junk = gzip.compress(b"\x00\x01 not a warc record at all \xff" * 50, mtime=0)
    outcome = run(
        [_wat(tmp_path, "junk.wat.gz", members[0] + junk + members[1] + members[2])], language="off"
    )
    total = outcome.extract.total
    assert total.counters["html_pages"] == 3
    assert total.counters["unreadable_members"] == 1


def test_page_url_falls_back_to_the_warc_header_when_the_json_lacks_it(run, tmp_path) -> None:
    payload = json.loads(json.dumps(real_payloads()[0]))
    del payload["Envelope"]["WARC-Header-Metadata"]["WARC-Target-URI"]
    html = payload["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]
    html["Links"] = [{"path": "IMG@/src", "url": "photos/cat.jpg", "alt": "a cat asleep on a sofa"}]
    data = member(json.dumps(payload).encode(), target="http://from-the-header.example/page")
    outcome = run([_wat(tmp_path, "no-uri.wat.gz", data)], language="off", english_only=False, dedup="none")
    assert outcome.extract.total.counters["html_pages"] == 1
    table = extracted(str(tmp_path / "out"))
    assert table.column("page_url").to_pylist() == ["http://from-the-header.example/page"]
    assert table.column("url").to_pylist() == ["http://from-the-header.example/photos/cat.jpg"]
