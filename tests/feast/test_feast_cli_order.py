"""From the CLI audit: the Feast commands run out of order say what to run first, an unknown --view names
the registered ones, and Feast's colour codes stay out of files and pipes."""

from __future__ import annotations

from typer.testing import CliRunner

from portrait.cli import app


def test_out_of_order_commands_say_what_to_run(feast_data, monkeypatch):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(feast_data))
    monkeypatch.delenv("PORTRAIT_REDIS", raising=False)
    runner = CliRunner()

    def run(*args):
        r = runner.invoke(app, ["features", *args])
        return r, " ".join(r.output.split())

    r, text = run("materialize", "--end", "2026-05-01")  # before apply: was "materialized" with nothing loaded
    assert r.exit_code == 2 and "run `portrait features apply` first" in text and "materialized" not in text
    r, text = run("online", "c0000001")
    assert r.exit_code == 2 and "run `portrait features apply` first" in text
    r, text = run("apply")
    assert r.exit_code == 0, r.output
    r, text = run("online", "c0000001")  # applied, nothing materialized: every value "—", and why
    assert r.exit_code == 0 and "portrait features materialize" in text and "unknown" not in text
    r, text = run("online", "nobody", "c0000001")  # a customer of the snapshot, not materialized yet; and nobody
    assert r.exit_code == 0 and "unknown one_id nobody: no row in churn_v1's online store nor in the feature " \
        "snapshot" in text and "no online feature values for c0000001: not materialized yet" in text
    r, text = run("online", "nobody")
    assert r.exit_code == 1 and "unknown one_id nobody" in text
    r, text = run("materialize", "--view", "nosuch", "--end", "2026-05-01")
    assert r.exit_code == 2 and "'nosuch'" in text and "customer_features" in text and "item_features" in text
    r, text = run("materialize", "--end", "2026-05-01")
    assert r.exit_code == 0 and "materialized customer_features" in text
    assert "\x1b[" not in r.output  # Feast's colorama codes, stripped when not a terminal
    r, text = run("online", "c0000001")
    assert r.exit_code == 0 and "portrait features materialize" not in text
