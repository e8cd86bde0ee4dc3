"""Opt-out signals inside image bytes, through the download stage against a real server on 127.0.0.1:
XMP plus:DataMining written by Pillow (JPEG APP1, PNG iTXt, WebP `XMP `), C2PA manifests signed by
c2pa-python with an untrusted test certificate; unrelated or malformed metadata never opts out."""

from __future__ import annotations

import io
import random
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import PngImagePlugin

from openpairs.demo.generate import make_image
from openpairs.safety.containers import MAX_XMP_BYTES
from openpairs.safety.embedded import embedded_opt_out
from tests.download.helpers import download, rows, write_input
from tests.fixtures.c2pa_signed import MIME, make_signer, signed
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)

VOCAB = "http://ns.useplus.org/ldf/vocab/"
DESCRIPTION = (
    '<rdf:Description rdf:about="" xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" {}>{}</rdf:Description>'
)
PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">{}</rdf:RDF></x:xmpmeta>'
    '<?xpacket end="w"?>'
)


def xmp(attribute: str = "", element: str = "") -> str:
    """An XMP packet whose rdf:Description has `attribute` and child `element`."""
    return PACKET.format(DESCRIPTION.format(attribute, element))


def with_xmp(index: int, fmt: str, packet: str) -> bytes:
    """A photo-like image saved by Pillow with `packet` as its XMP (PNG: a compressed iTXt chunk)."""
    image, out = make_image(index, 320, 240), io.BytesIO()
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet, zip=True)
        image.save(out, "PNG", pnginfo=info)
    else:
        image.save(out, {"jpg": "JPEG", "webp": "WEBP"}[fmt], xmp=packet.encode("utf-8"))
    return out.getvalue()


def plain(index: int, fmt: str) -> bytes:
    """A photo-like image without metadata."""
    out = io.BytesIO()
    make_image(index, 320, 240).save(out, {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt])
    return out.getvalue()


def broken_box(body: bytes) -> bytes:
    """A signed JPEG whose JUMBF superbox type is overwritten: the manifest store is unreadable."""
    at = body.index(b"jumb")
    return body[:at] + b"xxxx" + body[at + 4 :]


# name -> (format, bytes factory given the signer, expected status, expected opt_out_signal)
Case = tuple[str, Callable[[Any], bytes], str, str | None]
DTD = '<!DOCTYPE x [<!ENTITY v "' + VOCAB + 'DMI-PROHIBITED">]>'
CASES: dict[str, Case] = {
    "xmp_jpg_attribute": ("jpg", lambda s: with_xmp(1, "jpg", xmp(f'plus:DataMining="{VOCAB}DMI-PROHIBITED-AIMLTRAINING"')),
                          "opted_out", "xmp plus:datamining: dmi-prohibited-aimltraining"),
    "xmp_png_element": ("png", lambda s: with_xmp(2, "png", xmp(element=f"<plus:DataMining>{VOCAB}DMI-PROHIBITED-GENAIMLTRAINING</plus:DataMining>")),
                        "opted_out", "xmp plus:datamining: dmi-prohibited-genaimltraining"),
    "xmp_webp_resource": ("webp", lambda s: with_xmp(3, "webp", xmp(element=f'<plus:DataMining rdf:resource="{VOCAB}DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"/>')),
                          "opted_out", "xmp plus:datamining: dmi-prohibited-exceptsearchengineindexing"),
    "xmp_allowed": ("jpg", lambda s: with_xmp(4, "jpg", xmp(f'plus:DataMining="{VOCAB}DMI-ALLOWED"')), "ok", None),
    "xmp_unrelated": ("jpg", lambda s: with_xmp(5, "jpg", xmp('xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/jpeg"')), "ok", None),
    "xmp_malformed": ("jpg", lambda s: with_xmp(6, "jpg", xmp(f'plus:DataMining="{VOCAB}DMI-PROHIBITED"')[:200]), "ok", None),
    "xmp_entity": ("jpg", lambda s: with_xmp(7, "jpg", DTD + xmp('plus:DataMining="&v;"')), "ok", None),
    "c2pa_jpg_training": ("jpg", lambda s: signed(plain(8, "jpg"), "jpg", s, "cawg.training-mining", {"cawg.ai_training": "notAllowed", "cawg.ai_inference": "allowed"}),
                          "opted_out", "c2pa cawg.ai_training: notallowed"),
    "c2pa_png_older_label": ("png", lambda s: signed(plain(9, "png"), "png", s, "c2pa.training-mining", {"c2pa.data_mining": "notAllowed"}),
                             "opted_out", "c2pa c2pa.data_mining: notallowed"),
    "c2pa_webp_constrained": ("webp", lambda s: signed(plain(10, "webp"), "webp", s, "cawg.training-mining", {"cawg.ai_generative_training": "constrained"}),
                              "opted_out", "c2pa cawg.ai_generative_training: constrained"),
    "c2pa_inference": ("jpg", lambda s: signed(plain(11, "jpg"), "jpg", s, "cawg.training-mining", {"cawg.ai_inference": "notAllowed"}),
                       "opted_out", "c2pa cawg.ai_inference: notallowed"),
    "c2pa_allowed": ("jpg", lambda s: signed(plain(12, "jpg"), "jpg", s, "cawg.training-mining", dict.fromkeys(("cawg.ai_training", "cawg.ai_generative_training", "cawg.ai_inference", "cawg.data_mining"), "allowed")),
                     "ok", None),
    "c2pa_broken": ("jpg", lambda s: broken_box(signed(plain(13, "jpg"), "jpg", s, "cawg.training-mining", {"cawg.ai_training": "notAllowed"})),
                    "ok", None),
}  # fmt: skip


@pytest.fixture(scope="module")
def bodies() -> dict[str, bytes]:
    """Every case's bytes (C2PA ones signed now, with a fresh untrusted certificate)."""
    signer = make_signer()
    return {name: make(signer) for name, (_, make, _, _) in CASES.items()}


@pytest.fixture(scope="module")
def urls(image_server: ImageServer, bodies: dict[str, bytes]) -> list[str]:
    """Every case served by the module's server."""
    return [image_server.serve(name, bodies[name], MIME[CASES[name][0]]) for name in CASES]


def test_each_signal_opts_its_image_out_and_nothing_else(urls: list[str], tmp_path: Path) -> None:
    result = download(write_input(tmp_path / "in.parquet", urls), tmp_path / "out")
    got = rows(tmp_path / "out")
    outcome = {name: (row["status"], row["opt_out_signal"]) for name, row in zip(CASES, got, strict=True)}
    assert outcome == {name: (case[2], case[3]) for name, case in CASES.items()}
    with tarfile.open(tmp_path / "out" / "shards" / "00000.tar") as tar:
        stored = {name.rpartition(".")[0] for name in tar.getnames()}
    assert stored == {row["key"] for row in got if row["status"] == "ok"}
    signals = [case[3] for case in CASES.values() if case[3]]
    assert {k: v for k, v in result.total.counters.items() if k.startswith("opt_out.")} == {
        f"opt_out.{signal}": 1 for signal in signals
    }


@pytest.mark.parametrize("off", ["xmp_data_mining", "c2pa"])
def test_each_flag_off_lets_its_rows_through(urls: list[str], tmp_path: Path, off: str) -> None:
    download(write_input(tmp_path / "in.parquet", urls), tmp_path / "out", **{off: False})
    prefix = "xmp_" if off == "xmp_data_mining" else "c2pa_"
    got = {name: row["status"] for name, row in zip(CASES, rows(tmp_path / "out"), strict=True)}
    assert got == {name: "ok" if name.startswith(prefix) else case[2] for name, case in CASES.items()}


def test_hostile_bytes_are_no_signal_and_never_raise(bodies: dict[str, bytes]) -> None:
    rng = random.Random(16)
    for name, body in bodies.items():
        for _ in range(25):
            cut = body[: rng.randrange(len(body))]
            flipped = bytearray(body)
            for _ in range(8):
                flipped[rng.randrange(min(len(body), 4096))] = rng.randrange(256)
            for mutated in (cut, bytes(flipped)):
                assert embedded_opt_out(mutated) in (None, CASES[name][3]), name
    padding = " " * (MAX_XMP_BYTES + 1)  # a prohibition past the bound of one packet is not read
    oversized = with_xmp(
        14,
        "png",
        xmp(f'plus:DataMining="{VOCAB}DMI-PROHIBITED"').replace("</x:xmpmeta>", padding + "</x:xmpmeta>"),
    )
    assert embedded_opt_out(oversized) is None
    assert (
        embedded_opt_out(with_xmp(14, "png", xmp(f'plus:DataMining="{VOCAB}DMI-PROHIBITED"')))
        == "xmp plus:datamining: dmi-prohibited"
    )
    assert all(embedded_opt_out(body, xmp=False, c2pa=False) is None for body in bodies.values())
