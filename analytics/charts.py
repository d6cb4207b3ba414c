"""A chart as the pages draw it: the data static/js/charts.js gives Chart.js, and the same numbers as a table.

`{% include "analytics/_chart.html" with chart=chart %}` renders a canvas, the chart's data as JSON (json_script:
no inline script, so the Content-Security-Policy holds) and an accessible table of the same numbers (a caption, a
header row, a row per label) in a <details> under it. Money series carry the program's currency and are written
with format_money in the table; points and counts with the reader's digit grouping.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.formats import number_format

from loyalty.common.formatting import format_money

KINDS = ("bar", "line")


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int | Decimal | None]


@dataclass(frozen=True)
class Chart:
    """`id` names the canvas and its JSON (unique on the page); `labels` are the x axis (already in words: months
    written with the page's date format); `currency`: the series are money in it ("" for points or counts);
    `percent`: they are percentages."""

    id: str
    title: str
    labels: Sequence[str]
    series: Sequence[Series]
    kind: str = "bar"
    currency: str = ""
    percent: bool = False
    stacked: bool = False
    label_heading: str = ""
    summary: str = ""  # a sentence under the title saying what the chart shows

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"A chart is one of {KINDS}, not {self.kind!r}.")

    @property
    def data_id(self) -> str:
        """The id of the <script type="application/json"> holding `data`, which the canvas names."""
        return f"{self.id}-data"

    @property
    def data(self) -> dict:
        """What charts.js reads (numbers as strings: Decimal stays exact through JSON; Chart.js parses them)."""
        return {
            "type": self.kind,
            "labels": list(self.labels),
            "datasets": [
                {"label": series.label, "data": [None if v is None else str(v) for v in series.values]}
                for series in self.series
            ],
            "currency": self.currency,
            "percent": self.percent,
            "stacked": self.stacked,
        }

    @property
    def columns(self) -> list[str]:
        return [series.label for series in self.series]

    @property
    def rows(self) -> list[tuple[str, list[str]]]:
        """The table: per label, each series' value as the reader writes it."""
        return [
            (label, [self.cell(series.values[index]) for series in self.series])
            for index, label in enumerate(self.labels)
        ]

    def cell(self, value) -> str:
        if value is None:
            return "—"
        if self.currency:
            return format_money(Decimal(value), self.currency)
        text = number_format(value, use_l10n=True, force_grouping=True)
        return f"{text} %" if self.percent else text
