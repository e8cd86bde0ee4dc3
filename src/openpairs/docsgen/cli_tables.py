"""Option tables of the `openpairs` commands, read from the typer app's own parameter definitions."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import typer
import typer.main

from openpairs.docsgen.markdown import cell, code, table

_TRAILER = re.compile(r"\s*\[(?:default: (?P<default>[^\]]*)|(?P<required>required))\]\s*$")


@dataclass(frozen=True)
class OptionRow:
    """One parameter of a command as the docs show it."""

    names: tuple[str, ...]  # --x and its aliases; an argument's upper-case name
    negations: tuple[str, ...]  # --no-x of a --x/--no-x flag
    kind: str  # type or choices, e.g. int, str, list[str], flag
    default: str  # "" when there is none
    required: bool
    help: str


def _root(app: typer.Typer | None) -> tuple[Any, typer.Context]:
    if app is None:
        return _openpairs_root()
    group = typer.main.get_command(app)
    return group, typer.Context(group, info_name="openpairs")


@functools.cache
def _openpairs_root() -> tuple[Any, typer.Context]:
    from openpairs.cli import app

    group = typer.main.get_command(app)
    return group, typer.Context(group, info_name="openpairs")


def command_names(app: typer.Typer | None = None) -> list[str]:
    """The commands `openpairs --help` lists (or `app`'s), in its order."""
    group, ctx = _root(app)
    return [name for name in group.list_commands(ctx) if not group.get_command(ctx, name).hidden]


def option_rows(name: str, app: typer.Typer | None = None) -> list[OptionRow]:
    """The visible parameters of command `name` of openpairs (or of `app`), in declaration order."""
    group, ctx = _root(app)
    command = group.get_command(ctx, name)
    if command is None:
        raise KeyError(f"openpairs has no command {name!r}")
    sub = typer.Context(command, info_name=name, parent=ctx)
    return [_row(param, sub) for param in command.params if not param.hidden]


def _row(param: Any, ctx: typer.Context) -> OptionRow:
    record = param.get_help_record(ctx)
    help_text = record[1] if record else ""
    trailer = _TRAILER.search(help_text)
    default = (trailer.group("default") or "") if trailer else ""
    help_text = help_text[: trailer.start()] if trailer else help_text
    kind = param.display_type(ctx).strip("<>")
    if param.param_type_name == "argument":
        suffix = "..." if param.nargs == -1 else ""
        names: tuple[str, ...] = (param.name.upper() + suffix,)
    else:
        names = tuple(param.opts)
    if getattr(param, "is_flag", False) and not getattr(param, "count", False):
        kind = "flag"
        default = _flag_default(param)
    negations = tuple(getattr(param, "secondary_opts", ()))
    return OptionRow(names, negations, kind, default, bool(param.required), help_text.strip())


def _flag_default(param: Any) -> str:
    if param.default is None:
        return ""
    if not param.secondary_opts:
        return "on" if param.default else "off"
    return str(param.opts[0] if param.default else param.secondary_opts[0])


def options_table(name: str, app: typer.Typer | None = None) -> str:
    """The Markdown table of command `name`'s options: spellings, type, default and help."""
    rows = []
    for row in option_rows(name, app):
        names = ", ".join(code(spelling) for spelling in row.names)
        if row.negations:
            names += " / " + ", ".join(code(spelling) for spelling in row.negations)
        default = "required" if row.required else _default_cell(row.default)
        rows.append((names, cell(row.kind), default, cell(row.help)))
    return table(("option", "type", "default", "what it does"), rows)


def _default_cell(default: str) -> str:
    if not default:
        return "—"
    return cell(default) if " " in default or default in ("on", "off") else code(default)
