"""`features build` names a source whose orders or events match no identity record.

Orders imported with `--set source=POS` while the identity records say `pos` all fell out of
every feature; the only trace was a dict of totals among the build's output lines.
"""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner


def test_a_source_matching_no_identity_record_is_named(tmp_path, monkeypatch, h):
    from portrait.cli import app

    w = h.World(tmp_path / "data")
    w.order("p1", h.ago(3), 20.0)
    w.order("p2", h.ago(2), 30.0)
    w.event("p1", "view", h.ago(1))
    raw, _ = w.write()
    orders = pd.read_parquet(raw / "orders.parquet")
    extra = orders.assign(order_id=orders["order_id"] + "x", source="POS")  # the same shoppers, another spelling
    pd.concat([orders, extra], ignore_index=True).to_parquet(raw / "orders.parquet")
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    cli = CliRunner()
    res = cli.invoke(app, ["features", "build", "--as-of", "2026-06-01"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "orders of source 'POS': 2 of 2 rows belong to no customer" in text
    assert "no identity record has this source" in text and "OneID knows sources app" in text
    res = cli.invoke(app, ["features", "build", "--as-of", "2026-06-01", "--json"])
    got = json.loads(res.stdout[res.stdout.index("{"):])
    assert got["unmapped_sources"] == {"orders": {"POS": {"rows": 2, "unmapped": 2}}}
