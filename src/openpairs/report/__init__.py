"""Report: funnel, LAION-400M Table 1, plots (DIR/report/index.html) and the dataset card (DIR/README.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openpairs.executors import ExecutorConfig
    from openpairs.report.data import ReportData


@dataclass
class ReportResult:
    """Where the report went and the numbers it shows."""

    html: str
    card: str
    plots: list[str] = field(default_factory=list)
    data: ReportData | None = None

    def summary_lines(self) -> list[str]:
        """The funnel as short lines for a terminal."""
        if self.data is None:
            return []
        lines = []
        for step in self.data.funnel:
            count = "no data" if step.count is None else f"{step.count:,}"
            share = "" if step.of_candidates is None else f" ({step.of_candidates:.1f}% of candidates)"
            lines.append(f"{step.name:>11}: {count}{share}")
        return lines


def build_report(
    out: str,
    warnings: tuple[str, ...] = (),
    title: str | None = None,
    executor: ExecutorConfig | None = None,
) -> ReportResult:
    """Write DIR/report/index.html with its PNG plots, and DIR/README.md; returns their paths. The
    aggregates the filter did not write and the top-domain reduce run as tasks of `executor` (local by
    default)."""
    from openpairs.io import commit
    from openpairs.io import fs as ofs
    from openpairs.report.card import render_card
    from openpairs.report.data import read_report_data
    from openpairs.report.html import render_html
    from openpairs.report.plots import render_plots

    name = title or ofs.join(out).rstrip("/").rsplit("/", 1)[-1] or "openpairs dataset"
    data = read_report_data(out, executor)
    plots = render_plots(data)
    directory = ofs.join(out, "report")
    for plot in plots:
        commit.write_bytes_atomic(ofs.join(directory, "plots", plot.name), plot.png)
    html = ofs.join(directory, "index.html")
    commit.write_bytes_atomic(html, render_html(data, plots, name, warnings).encode("utf-8"))
    card = ofs.join(out, "README.md")
    commit.write_bytes_atomic(card, render_card(data, name, warnings).encode("utf-8"))
    return ReportResult(html, card, [p.name for p in plots], data)
