"""PNG plots for the report (matplotlib, Agg backend). A plot without data is a "no data" image."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from openpairs.report.aggregates import edges
from openpairs.report.data import ReportData, top_counts

SCORES = (
    ("similarity", "CLIP image-text cosine similarity"),
    ("punsafe", "punsafe (probability the image is unsafe)"),
    ("pwatermark", "pwatermark (probability of a watermark)"),
    ("aesthetic", "aesthetic score"),
)


@dataclass(frozen=True)
class Plot:
    """One rendered plot: file name, title, PNG bytes and whether it had data."""

    name: str
    title: str
    png: bytes
    has_data: bool


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=90)
    return fig, ax


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _render(name: str, title: str, draw: Callable[[Any], bool]) -> Plot:
    """Run `draw(ax)`; when it returns False the figure says "no data"."""
    fig, ax = _figure()
    has_data = draw(ax)
    if not has_data:
        ax.clear()
        ax.axis("off")
        ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=16, color="#888888")
    ax.set_title(title, fontsize=10)
    return Plot(name, title, _png(fig), has_data)


def _histogram(data: ReportData, name: str, xlabel: str = "") -> Callable[[Any], bool]:
    def draw(ax: Any) -> bool:
        """The fixed-bin histogram of all downloaded samples with the kept ones on top, drawn over the
        bins that hold samples."""
        counts = data.histogram(name)
        if counts is None:
            return False
        bins = edges(name)
        filled = np.flatnonzero(sum(counts.values()))
        first, last = int(filled[0]), int(filled[-1]) + 1
        for part, color, label in (("all", "#9db4d3", "downloaded"), ("kept", "#2f5d95", "kept")):
            if part in counts:
                ax.stairs(
                    counts[part][first:last], bins[first : last + 1], fill=True, color=color, label=label
                )
        if xlabel:
            ax.set_xlabel(xlabel)
        ax.set_ylabel("samples")
        if len(counts) > 1:
            ax.legend(fontsize=8)
        return True

    return draw


def _bars(pairs: list[tuple[str, int]] | None, horizontal: bool = False) -> Callable[[Any], bool]:
    def draw(ax: Any) -> bool:
        """Bars of (label, count) pairs."""
        if not pairs:
            return False
        labels = [label or "(none)" for label, _ in pairs]
        counts = [count for _, count in pairs]
        if horizontal:
            ax.barh(labels[::-1], counts[::-1], color="#2f5d95")
            ax.tick_params(axis="y", labelsize=7)
            ax.set_xlabel("samples")
        else:
            ax.bar(labels, counts, color="#2f5d95")
            ax.tick_params(axis="x", labelsize=8, rotation=45)
            ax.set_ylabel("samples")
        return True

    return draw


def render_plots(data: ReportData) -> list[Plot]:
    """Every plot of the report, in page order."""
    steps = [(s.name, s.count) for s in data.funnel if s.count is not None]
    languages = top_counts(data.aggregates.languages) if data.aggregates is not None else []
    plots = [_render("funnel.png", "funnel: samples left after each stage", _bars(steps))]
    plots += [_render(f"{column}.png", title, _histogram(data, column)) for column, title in SCORES]
    plots.append(_render("language.png", "language of kept samples", _bars(languages)))
    caption = _histogram(data, "caption_length", "characters")
    plots.append(_render("caption_length.png", "caption length of kept samples", caption))
    domains = _bars(data.domains, horizontal=True)
    plots.append(_render("domains.png", "top image domains of kept samples", domains))
    return plots
