"""The report page: DIR/report/index.html, self-contained but for its PNG plots in plots/."""

from __future__ import annotations

from html import escape

from openpairs.core.stats import ShardStats
from openpairs.report.data import OPTIONAL_STAGES, STAGES, ReportData, size_table
from openpairs.report.plots import Plot

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.warning { background: #fff3cd; border: 1px solid #e0b000; padding: 0.8rem 1rem; margin: 1rem 0;
  font-weight: 600; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1rem; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #eee; }
.nodata { color: #888; }
"""


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _num(value: int | None) -> str:
    return "no data" if value is None else f"{value:,}"


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{escape(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _funnel(data: ReportData) -> str:
    rows = [[s.name, _num(s.count), _pct(s.of_candidates), _pct(s.of_previous)] for s in data.funnel]
    return _table(["step", "samples", "% of candidates", "% of previous step"], rows, {1, 2, 3})


def _stage(stage_dir: str, label: str, what: str, stats: ShardStats | None) -> str:
    if stats is None:
        return f'<h3>{escape(label)} <small>({escape(what)})</small></h3><p class="nodata">no data</p>'
    rows = [
        [status, f"{count:,}", f"{100 * count / max(stats.rows_in, 1):.1f}%"]
        for status, count in sorted(stats.statuses.items(), key=lambda item: (-item[1], item[0]))
    ]
    rows += [  # decontaminate: the eval duplicates of each evaluation set (a row may match several)
        [f"{name.replace(':', ' of ', 1)}", f"{count:,}", f"{100 * count / max(stats.rows_in, 1):.1f}%"]
        for name, count in sorted(stats.counters.items())
        if name.startswith("eval_duplicate:")
    ]
    title = f"{label} ({what}): {stats.rows_in:,} rows in, {stats.rows_out:,} out"
    return f"<h3>{escape(title)}</h3>" + _table(["status", "rows", "%"], rows, {1, 2})


def _sizes(data: ReportData) -> str:
    rows = size_table(data.aggregates)
    if rows is None:
        return '<p class="nodata">no data</p>'
    return _table(["", "samples"], [[label, f"{n:,}"] for label, n in rows], {1})


def _errors(data: ReportData) -> str:
    errors = data.errors()
    if not errors:
        return '<p class="nodata">no data</p>'
    return _table(["stage", "message", "count"], [[s, m, f"{n:,}"] for s, m, n in errors], {2})


def _opt_outs(data: ReportData) -> str:
    rows = data.opt_outs()
    if not rows:
        return '<p class="nodata">no row was refused by an opt-out signal</p>'
    return _table(["stage", "signal", "rows"], [[s, m, f"{n:,}"] for s, m, n in rows], {2})


def _plots(plots: list[Plot]) -> str:
    figures = []
    for plot in plots:
        note = "" if plot.has_data else ' <span class="nodata">(no data)</span>'
        figures.append(
            f'<figure><img src="plots/{escape(plot.name)}" alt="{escape(plot.title)}">'
            f"<figcaption>{escape(plot.title)}{note}</figcaption></figure>"
        )
    return '<div class="plots">' + "".join(figures) + "</div>"


def render_html(data: ReportData, plots: list[Plot], title: str, warnings: tuple[str, ...]) -> str:
    """The whole report page."""
    banners = "".join(f'<div class="warning">⚠ {escape(w)}</div>' for w in warnings)
    stages = "".join(_stage(d, label, what, data.stages.get(d)) for d, label, what in STAGES)
    stages += "".join(
        _stage(d, label, what, data.stages[d]) for d, label, what in OPTIONAL_STAGES if d in data.stages
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}: openpairs report</title>
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1><p>openpairs report for <code>{escape(data.out)}</code></p>
{banners}
<h2>Funnel</h2>{_funnel(data)}
<h2>Image sizes (LAION-400M paper, Table 1, on the kept samples' original sizes)</h2>{_sizes(data)}
<h2>Plots</h2>{_plots(plots)}
<h2>Stages and statuses</h2>{stages}
<h2>Opt-out signals honoured</h2>{_opt_outs(data)}
<h2>Top error messages</h2>{_errors(data)}
</body></html>
"""
