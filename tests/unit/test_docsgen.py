"""The docs' generated tables: every command's options and every output's columns reach a page, correctly."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from openpairs.docsgen import render
from openpairs.docsgen.cli_tables import command_names, option_rows, options_table
from openpairs.docsgen.contract import OUTPUTS, columns_table
from openpairs.docsgen.markdown import cell
from openpairs.docsgen.render import markers

DOCS = Path(__file__).resolve().parents[2] / "docs"


def marked_pages(kind: str) -> dict[str, list[Path]]:
    """name -> the docs pages holding a `<!-- kind: name -->` marker."""
    found: dict[str, list[Path]] = {}
    for page in sorted(DOCS.glob("*.md")):
        for marker_kind, name in markers(page.read_text(encoding="utf-8")):
            if marker_kind == kind:
                found.setdefault(name, []).append(page)
    return found


def test_every_command_has_its_options_table_on_exactly_one_page() -> None:
    pages = marked_pages("cli-options")
    assert sorted(pages) == sorted(command_names()), "a command without a page, or a marker without a command"
    assert {name: len(found) for name, found in pages.items() if len(found) > 1} == {}


@pytest.mark.parametrize("command", command_names())
def test_every_option_of_a_command_appears_on_its_rendered_page(command: str) -> None:
    (page,) = marked_pages("cli-options")[command]
    rendered = render(page.read_text(encoding="utf-8"))
    assert "<!-- cli-options" not in rendered
    spellings = [name for row in option_rows(command) for name in (*row.names, *row.negations)]
    assert spellings, f"{command} has no options?"
    missing = [name for name in spellings if f"`{name}`" not in rendered]
    assert not missing, f"{page.name} does not show {command}'s {missing}"


def test_every_output_of_the_contract_has_its_table_and_every_column_its_meaning() -> None:
    assert sorted(marked_pages("contract")) == sorted(OUTPUTS)
    for output, spec in OUTPUTS.items():
        table = columns_table(output)
        for field in spec.schema():
            assert f"| `{field.name}` | `{field.type}` |" in table


def test_an_unknown_marker_fails_the_render() -> None:
    with pytest.raises(KeyError):
        render("<!-- cli-options: no-such-command -->\n")
    with pytest.raises(KeyError):
        render("<!-- contract: no-such-output -->\n")


def _tiny_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def go(
        out: str = typer.Argument(..., help="where it goes"),
        workers: int = typer.Option(2, "--workers", "--processes", help="worker processes"),
        upscale: bool = typer.Option(False, "--upscale/--no-upscale", help="also enlarge"),
        fast: bool = typer.Option(False, "--fast", help="a <b>|c</b> choice"),
        secret: str = typer.Option("", "--secret", hidden=True),
    ) -> None:
        """Go somewhere."""

    @app.command()
    def other() -> None:
        """Another command, so the app is a group."""

    return app


def test_rows_carry_every_spelling_type_default_and_help() -> None:
    rows = {row.names[0]: row for row in option_rows("go", _tiny_app())}
    assert list(rows) == ["OUT", "--workers", "--upscale", "--fast"]  # hidden options are left out
    assert rows["OUT"].required and rows["OUT"].help == "where it goes"
    assert rows["--workers"].names == ("--workers", "--processes") and rows["--workers"].kind == "int"
    assert rows["--workers"].default == "2" and rows["--workers"].help == "worker processes"
    assert rows["--upscale"].negations == ("--no-upscale",) and rows["--upscale"].default == "--no-upscale"
    assert rows["--fast"].kind == "flag" and rows["--fast"].default == "off"


def test_the_table_escapes_what_markdown_would_eat() -> None:
    table = options_table("go", _tiny_app())
    assert "| `--workers`, `--processes` | int | `2` | worker processes |" in table
    assert "| `--upscale` / `--no-upscale` | flag | `--no-upscale` | also enlarge |" in table
    assert "a &lt;b&gt;\\|c&lt;/b&gt; choice" in table
    assert cell("keep `a|b` and a_b*c") == "keep `a\\|b` and a\\_b\\*c"
