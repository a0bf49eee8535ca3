"""Chart geometry (app/console/charts.py): axes people can read."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from app.console import charts
from tests.support.helpers import patient_record, sync


@pytest.mark.parametrize("top", [0, 1, 2, 3, 4, 7, 12, 1234])
def test_a_count_axis_marks_whole_numbers_only(top: int) -> None:
    chart = charts.stacked_bars("t", ["a"], ("n",), [[top]], x_label="x", y_label="y", counts=True)
    labels = [tick.label for tick in chart.y_ticks]
    assert all(re.fullmatch(r"[\d,]+", label) for label in labels), labels
    assert int(labels[-1].replace(",", "")) >= top


def test_a_measure_axis_may_mark_fractions() -> None:
    chart = charts.points("t", ["a"], [0.4], x_label="x", y_label="s", hover=["a"])
    assert "0.10" in [tick.label for tick in chart.y_ticks]


def test_histogram_of_one_patient_marks_no_fraction_of_a_patient(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    text = client.get("/console/analytics").get_data(as_text=True)
    labels = re.findall(r'<text class="tick y"[^>]*>([^<]*)</text>', text)
    assert labels == ["0", "1"]


def test_sync_chart_of_one_record_marks_no_fraction_of_a_record(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    text = client.get("/console/syncs").get_data(as_text=True)
    outcomes = text[: text.index("Sync duration")]
    labels = re.findall(r'<text class="tick y"[^>]*>([^<]*)</text>', outcomes)
    assert labels == ["0", "1"]
