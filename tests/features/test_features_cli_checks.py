"""From the CLI audit: a cutoff before the data, nonsense build options and non-ISO dates are one-line
errors (exit 2) that name the option and the value, and nothing already built is touched."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.build import FeatureConfig, build, parse_cutoffs, parse_iso
from features.schema import SchemaError


@pytest.fixture()
def built(tmp_path, h, monkeypatch):
    """A small data folder with a good build as of h.CUTOFF; the CLI points at it."""
    w = h.World(tmp_path / "data")
    w.order("p1", h.ago(40), 20.0)
    w.event("p2", "view", h.ago(3))
    raw, ident = w.write()
    out = tmp_path / "data" / "features"
    build(raw, ident, out, [h.CUTOFF])
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    return out


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*")) if p.is_file()}


def test_cutoff_before_any_data_is_refused_and_nothing_is_overwritten(built, h):
    before = _snapshot(built)
    with pytest.raises(SchemaError, match=r"1990-01-01.*no customer.*data runs from \d{4}-\d\d-\d\d to \d{4}"):
        build(built.parent / "raw", built.parent / "identity", built, [pd.Timestamp("1990-01-01", tz="UTC")])
    from portrait.cli import app

    r = CliRunner().invoke(app, ["features", "build", "--as-of", "1990-01-01"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "1990-01-01" in r.output and "data runs from" in r.output.replace("\n", " ")
    r = CliRunner().invoke(app, ["features", "build", "--as-of", "2026-06-01,1990-01-01", "--append"])
    assert r.exit_code == 2
    assert _snapshot(built) == before  # the good snapshot is untouched
    assert len(pd.read_parquet(built / "customer_features.parquet")) == 2


@pytest.mark.parametrize("args, words", [
    (["--n-categories", "-3"], ["--n-categories", "-3"]),
    (["--memory-limit", "lots"], ["--memory-limit", "'lots'", "GB"]),
    (["--memory-limit", "8"], ["--memory-limit", "'8'"]),
    (["--threads", "0"], ["--threads", "0"]),
    (["--as-of", "01/06/2026"], ["--as-of", "'01/06/2026'", "YYYY-MM-DD"]),
    (["--as-of", "June 1 2026"], ["--as-of", "'June 1 2026'"]),
    (["--as-of", "2026-02-30"], ["--as-of", "'2026-02-30'"]),
])
def test_bad_build_options_are_one_line_errors(built, args, words):
    from portrait.cli import app

    before = _snapshot(built)
    r = CliRunner().invoke(app, ["features", "build", *args])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    for w in words:
        assert w in text, (w, text)
    assert _snapshot(built) == before


def test_memory_limit_and_categories_accepted_as_duckdb_takes_them(built, h):
    for ok in ("8GB", "512MB", "1.5GB", "2 GiB", "100kb"):
        FeatureConfig(memory_limit=ok)
    res = build(built.parent / "raw", built.parent / "identity", built.parent / "f0",
                [h.CUTOFF], FeatureConfig(n_categories=0, memory_limit="1GB"))
    assert not res.categories and res.rows["customer_features"] == 2


def test_iso_dates_only():
    utc = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731
    assert parse_iso("2026-06-01", "--as-of") == utc("2026-06-01")
    assert parse_iso("2026-06-01T12:30", "--as-of") == utc("2026-06-01 12:30")
    assert parse_iso("2026-06-01 12:30:05.5", "--as-of") == utc("2026-06-01 12:30:05.5")
    assert parse_iso("2026-06-01T12:00+02:00", "--as-of") == utc("2026-06-01 10:00")
    assert parse_iso("2026-06-01T12:00Z", "--as-of") == utc("2026-06-01 12:00")
    for bad in ("01/06/2026", "06/01/2026", "20260601", "2026/06/01", "1 June 2026", "2026-6-1", "today", ""):
        with pytest.raises(SchemaError, match=r"--end: not an ISO 8601 date"):
            parse_iso(bad, "--end")
    with pytest.raises(SchemaError, match=r"--date: .*YYYY-MM-DD"):
        parse_iso("2026-06-01T00:00", "--date", date_only=True)
    with pytest.raises(SchemaError, match=r"--as-of: not an ISO 8601 date: '01/06/2026'"):
        parse_cutoffs("2026-06-01,01/06/2026")


def test_tag_config_thresholds_out_of_range(tmp_path):
    from features.tags import load_tag_config

    cfg = tmp_path / "tags.yaml"
    cfg.write_text("dormant_days: -5\n")
    with pytest.raises(ValueError, match=r"tags\.yaml.*dormant_days.*0 or more"):
        load_tag_config(cfg)
    cfg.write_text("night_min_share: 30\n")
    with pytest.raises(ValueError, match=r"tags\.yaml.*night_min_share.*between 0 and 1"):
        load_tag_config(cfg)
    cfg.write_text("night_min_share: 0.3\ndormant_days: 120\n")
    assert load_tag_config(cfg).dormant_days == 120
