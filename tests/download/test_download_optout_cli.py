"""`--opt-out-directives` (img2dataset's `--disallowed_header_directives`): which X-Robots-Tag directives
opt an image out, from the CLI, against a real server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from openpairs.cli import app
from tests.download.helpers import rows, write_input
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)


def statuses(server: ImageServer, tmp: Path, *flags: str) -> dict[str, str]:
    """Download /noai and an image tagged `noindex` with `flags`; their statuses by tag."""
    urls = [server.url("/noai?image=jpeg_baseline"), server.url("/x-robots-tag?value=noindex&image=png_rgb")]
    inp = write_input(tmp / "in.parquet", list(urls))
    args = ["download", str(inp), "--out", str(tmp / "out"), "--allow-address", "127.0.0.1", "--workers", "1"]
    result = CliRunner().invoke(app, [*args, *flags])
    assert result.exit_code == 0, result.output
    got = [row["status"] for row in rows(tmp / "out")]
    return {"noai": got[0], "noindex": got[1]}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((), {"noai": "opted_out", "noindex": "opted_out"}),
        (("--opt-out-directives", "NOAI"), {"noai": "opted_out", "noindex": "ok"}),
        (("--opt-out-directives", "noimageai,noindex"), {"noai": "ok", "noindex": "opted_out"}),
        (("--opt-out-directives", ""), {"noai": "ok", "noindex": "ok"}),
        (("--no-respect-x-robots-tag", "--respect-robots-txt"), {"noai": "ok", "noindex": "ok"}),
    ],
)
def test_the_directives_given_are_the_ones_honoured(
    image_server: ImageServer, tmp_path: Path, flags: tuple[str, ...], expected: dict[str, str]
) -> None:
    assert statuses(image_server, tmp_path, *flags) == expected
