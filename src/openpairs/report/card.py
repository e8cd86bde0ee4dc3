"""The dataset card: DIR/README.md with a Hugging Face YAML header."""

from __future__ import annotations

import json
import re

from openpairs.io import fs as ofs
from openpairs.report.data import ReportData, size_table, top_counts

SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)
ISO_CODE = re.compile(r"^[a-z]{2,3}$")


def size_category(n: int) -> str:
    """Hugging Face `size_categories` value for `n` samples."""
    for limit, label in SIZE_CATEGORIES:
        if n < limit:
            return label
    return "1B<n<10B"


def _data_files(out: str) -> list[tuple[str, str]]:
    """(config name, glob) of the exports present, relative to DIR, for the card's `configs`."""
    found = []
    for name, pattern in (
        ("laion400m", "dataset/laion400m/*.parquet"),
        ("laion2B-en", "dataset/laion5b/laion2B-en/*.parquet"),
        ("laion2B-multi", "dataset/laion5b/laion2B-multi/*.parquet"),
        ("laion1B-nolang", "dataset/laion5b/laion1B-nolang/*.parquet"),
        ("webdataset", "dataset/webdataset/*.tar"),
    ):
        directory, _, suffix = pattern.rpartition("/*")
        if ofs.list_files(ofs.join(out, directory), suffix):
            found.append((name, pattern))
    # `datasets` picks one file format for a whole repository: tars only when there is no parquet export.
    parquet = [(name, pattern) for name, pattern in found if pattern.endswith(".parquet")]
    return parquet or found


def _yaml(data: ReportData, title: str, kept: int, languages: list[str]) -> str:
    lines = [
        "---",
        f"pretty_name: {json.dumps(title)}",
        "license: other",
        "license_name: common-crawl-terms-of-use",
        "license_link: https://commoncrawl.org/terms-of-use",
        "task_categories:",
        "- text-to-image",
        "- image-to-text",
        "- zero-shot-image-classification",
        "size_categories:",
        f"- {size_category(kept)}",
        "tags:",
        "- image-text-pairs",
        "- common-crawl",
        "- laion",
        "- openpairs",
    ]
    if languages:
        lines += ["language:", *[f"- {code}" for code in languages]]
    files = _data_files(data.out)
    if files:
        lines.append("configs:")
        for index, (name, pattern) in enumerate(files):
            lines += [f"- config_name: {name}", "  data_files:", "  - split: train", f"    path: {pattern}"]
            if index == 0:
                lines.append("  default: true")
    return "\n".join([*lines, "---", ""])


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(out)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}%"


def render_card(data: ReportData, title: str, warnings: tuple[str, ...]) -> str:
    """The README.md dataset card."""
    kept = data.aggregates.kept if data.aggregates is not None else 0
    language_counts = top_counts(data.aggregates.languages, 100) if data.aggregates is not None else []
    languages = sorted(code for code, _ in language_counts if ISO_CODE.match(code))
    funnel_rows = [
        [s.name, "no data" if s.count is None else f"{s.count:,}", _pct(s.of_candidates), _pct(s.of_previous)]
        for s in data.funnel
    ]
    sizes = size_table(data.aggregates)
    opt_outs = data.opt_outs()
    parts = [
        _yaml(data, title, kept, languages),
        f"# {title}",
        "",
        *[f"> **Warning:** {w}\n" for w in warnings],
        f"An image-text pair dataset built with openpairs from Common Crawl: {kept:,} kept samples.",
        "The full report with plots is in [report/index.html](report/index.html).",
        "",
        "## Funnel",
        "",
        _md_table(["step", "samples", "% of candidates", "% of previous step"], funnel_rows),
        "",
        "## Image sizes (LAION-400M Table 1 on the original sizes)",
        "",
        _md_table(["", "samples"], [[label, f"{n:,}"] for label, n in sizes]) if sizes else "no data",
        "",
        "## Opt-out signals honoured",
        "",
        _md_table(["stage", "signal", "rows"], [[st, sig, f"{n:,}"] for st, sig, n in opt_outs])
        if opt_outs
        else "No row was refused by an opt-out signal.",
        "",
        "## Languages",
        "",
        _md_table(["language", "samples"], [[c or "(none)", f"{n:,}"] for c, n in language_counts[:15]])
        if language_counts
        else "no data",
        "",
        USAGE,
    ]
    return "\n".join(parts)


USAGE = """## Loading

```python
import openpairs

for sample in openpairs.load("."):  # TFDS laion400m features: caption, image, nsfw, similarity, url, ...
    print(sample["caption"], sample["image"].shape)
```

The `dataset/` folder holds the export (`openpairs export DIR --format laion400m|laion5b|webdataset`).
In the LAION-400M layout, `WIDTH` and `HEIGHT` are the original width and height, each in its own column
(LAION's own release swapped them).

## Licensing and provenance

The captions and URLs come from Common Crawl (Common Crawl Terms of Use). The images belong to their
owners and are linked, not licensed: the `LICENSE` column only records a Creative Commons license the
page declared, or `?`. Samples that an opt-out signal refused (robots.txt and its AI usage lines, TDMRep,
ai.txt, `X-Robots-Tag`, `Content-Usage`, the page's meta tags; the table above) were never stored.
"""
