"""``portrait train lookalike`` retrained: the new version stays challenger (no holdout to gate a population
on), and the command says so with the command that promotes it; --json carries version and promoted
(it printed only the run id, and the text said nothing, so a retrain silently changed no expansion)."""

from __future__ import annotations

import json

from typer.testing import CliRunner


def test_retrained_lookalike_says_it_is_a_challenger_and_how_to_promote(lal_builder, tmp_path, monkeypatch):
    from portrait.cli import app

    (tmp_path / "data").mkdir()
    root, _, _ = lal_builder(tmp_path / "data")
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(root))
    monkeypatch.setenv("PORTRAIT_MLRUNS_DIR", str(tmp_path / "mlruns"))
    monkeypatch.delenv("PORTRAIT_MLFLOW_URI", raising=False)
    args = ["train", "lookalike", "--factors", "8", "--min-seeds", "5", "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    one = json.loads(first.stdout)
    assert one["version"] == 1 and one["promoted"] is True
    second = CliRunner().invoke(app, args)
    two = json.loads(second.stdout)
    assert two["version"] == 2 and two["promoted"] is False
    assert "champion stays v1" in two["gate"] and "portrait models promote lookalike 2" in two["gate"]
    text = " ".join(CliRunner().invoke(app, args[:-1]).output.split())
    assert "version 3 (challenger)" in text and "models promote lookalike 3" in text
