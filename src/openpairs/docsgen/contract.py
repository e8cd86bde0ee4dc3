"""The data contract's tables: each output's columns and types, read from the schemas the stages write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from openpairs.docsgen.column_docs import describe
from openpairs.docsgen.markdown import cell, code, table


@dataclass(frozen=True)
class Output:
    """One output file kind: where it lives and how to get its schema."""

    path: str
    schema: Callable[[], pa.Schema]


def _candidates() -> pa.Schema:
    from openpairs.core.schemas import CANDIDATE_SCHEMA

    return CANDIDATE_SCHEMA


def _download() -> pa.Schema:
    from openpairs.core.schemas import DOWNLOAD_SCHEMA

    return DOWNLOAD_SCHEMA


def _clip() -> pa.Schema:
    from openpairs.stages.clip_table import output_schema

    return output_schema()  # type: ignore[no-any-return]


def _dup_groups() -> pa.Schema:
    from openpairs.stages.image_dedup_tasks import SLICE_SCHEMA

    return SLICE_SCHEMA


def _filter() -> pa.Schema:
    from openpairs.stages.filter import OUTPUT_SCHEMA

    return OUTPUT_SCHEMA


def _decontaminate() -> pa.Schema:
    from openpairs.stages.decontaminate import OUTPUT_SCHEMA

    return OUTPUT_SCHEMA


def _export_webdataset() -> pa.Schema:
    from openpairs.stages.export_join import META_SCHEMA

    return META_SCHEMA


def _export_laion400m() -> pa.Schema:
    from openpairs.stages.export import laion400m_table
    from openpairs.stages.export_join import META_SCHEMA

    return laion400m_table(META_SCHEMA.empty_table()).schema


def _export_laion5b() -> pa.Schema:
    from openpairs.stages.export import laion5b_table
    from openpairs.stages.export_join import META_SCHEMA

    return laion5b_table(META_SCHEMA.empty_table(), with_language=True).schema


OUTPUTS: dict[str, Output] = {
    "candidates": Output("candidates/<i>.parquet", _candidates),
    "download": Output("shards/<i>.parquet", _download),
    "clip": Output("clip/<i>.parquet", _clip),
    "dup_groups": Output("clip/dup_groups/<i>.parquet", _dup_groups),
    "filter": Output("filter/<i>.parquet", _filter),
    "decontaminate": Output("decontaminate/<i>.parquet", _decontaminate),
    "export-webdataset": Output("dataset/webdataset/<n>.parquet", _export_webdataset),
    "export-laion400m": Output("dataset/laion400m/part-<n>.parquet", _export_laion400m),
    "export-laion5b": Output("dataset/laion5b/<group>/part-<n>.parquet", _export_laion5b),
}


def columns_table(output: str) -> str:
    """The Markdown table of an output's columns: name, pyarrow type and meaning."""
    if output not in OUTPUTS:
        raise KeyError(f"no data-contract output {output!r}; known: {', '.join(OUTPUTS)}")
    rows = [
        (code(field.name), code(str(field.type)), cell(describe(output, field.name)))
        for field in OUTPUTS[output].schema()
    ]
    return f"`{OUTPUTS[output].path}`\n\n" + table(("column", "type", "meaning"), rows)
