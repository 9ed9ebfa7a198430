"""The customer-value benchmark rebuilds its RESULTS.md section from the parts already there.

Running ``--parts cdnow`` alone must keep the ``truth`` part (and vice versa), on any machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import _report
from benchmarks.customer_value import stored_parts

CDNOW = "_Part `cdnow`: `python -m benchmarks.customer_value --parts cdnow`, 2026-01-01 00:00 UTC._\n\n### CDNOW\n| a | b |"
TRUTH = "_Part `truth`: `python -m benchmarks.customer_value --parts truth`, 2026-01-02 00:00 UTC._\n\n### Synthetic\ntext"


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "RESULTS.md"
    path.write_text(_report.HEADER + "\n<!-- section:other -->\n## other\n\n_Part `cdnow`: not ours._\n"
                    "<!-- /section:other -->\n")
    monkeypatch.setattr(_report, "RESULTS", path)
    return path


def test_parts_round_trip_through_results(results: Path) -> None:
    _report.write_section("customer_value", CDNOW + "\n\n" + TRUTH, "python -m benchmarks.customer_value")
    parts = stored_parts(_report.read_section("customer_value"))
    assert parts == {"cdnow": CDNOW, "truth": TRUTH}
    # one part rerun: the other is kept as it was, and a second round trip changes nothing
    parts["cdnow"] = CDNOW.replace("| a | b |", "| c | d |")
    _report.write_section("customer_value", "\n\n".join(parts.values()), "cmd")
    again = stored_parts(_report.read_section("customer_value"))
    assert again == parts and again["truth"] == TRUTH
    assert "_Part `cdnow`: not ours._" in results.read_text()  # other sections untouched


def test_no_section_no_parts(results: Path) -> None:
    assert _report.read_section("customer_value") is None
    assert stored_parts(None) == {}
    assert stored_parts(_report.read_section("other")) == {"cdnow": "_Part `cdnow`: not ours._"}


def test_repository_results_hold_both_parts() -> None:
    parts = stored_parts(_report.read_section("customer_value"))
    assert set(parts) == {"cdnow", "truth"}
    assert "### CDNOW" in parts["cdnow"] and "### Synthetic data" in parts["truth"]
