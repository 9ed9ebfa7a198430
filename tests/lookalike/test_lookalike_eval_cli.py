"""``portrait evaluate lookalike``: the protocol on any interactions file, JSON shape, bad options."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from portrait.cli import app


def interactions_file(tmp_path):
    """300 users in 3 taste groups over 45 items (each group favours 15); header-less TSV like u.data."""
    rng = np.random.default_rng(5)
    rows = []
    for u in range(300):
        g = u % 3
        liked = rng.choice(np.arange(g * 15, g * 15 + 15), 7, replace=False)
        noise = rng.choice(45, 2, replace=False)
        rows += [(u, i, 4, 880000000 + u) for i in np.r_[liked, noise]]
    path = tmp_path / "u.data"
    pd.DataFrame(rows).drop_duplicates([0, 1]).to_csv(path, sep="\t", header=False, index=False)
    return path


def test_json_has_default_on_top_and_peers_beneath(tmp_path):
    r = CliRunner().invoke(app, ["evaluate", "lookalike", "--interactions", str(interactions_file(tmp_path)),
                                 "--items-rank", "1-3", "--seed-fraction", "0.4", "--peers", "activity,logreg",
                                 "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert {"method", "auc", "r_precision", "seconds", "baselines"} <= set(out)
    assert out["items"] == 3 and set(out["baselines"]) == {"activity", "logreg"}
    assert out["auc"] > out["baselines"]["activity"]["auc"] + 0.1  # taste groups are recoverable, activity is not
    assert out["method"].startswith("lookalike:auto->")


def test_bad_options_are_clear_errors(tmp_path):
    path = interactions_file(tmp_path)
    run = CliRunner().invoke
    r = run(app, ["evaluate", "lookalike", "--interactions", str(path), "--items-rank", "80-51"])
    assert r.exit_code == 2 and "LOW-HIGH" in r.output
    r = run(app, ["evaluate", "lookalike", "--interactions", str(path), "--items-rank", "40-60"])
    assert r.exit_code == 2 and "only 45 items" in r.output
    r = run(app, ["evaluate", "lookalike", "--interactions", str(path), "--peers", "magic"])
    assert r.exit_code == 2 and "unknown peer" in r.output
    r = run(app, ["evaluate", "lookalike", "--interactions", str(tmp_path / "missing.csv")])
    assert r.exit_code == 2 and "missing.csv" in r.output


def test_items_without_hidden_users_are_skipped_and_said(tmp_path):
    path = interactions_file(tmp_path)
    with path.open("a") as fh:  # two items with a single user each: their one user is always the seed
        fh.write("0\t900\t4\t880000000\n1\t901\t4\t880000001\n")
    run = CliRunner().invoke
    r = run(app, ["evaluate", "lookalike", "--interactions", str(path), "--items-rank", "44-47",
                  "--peers", "activity", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout[r.stdout.index("{"):])  # strict JSON: NaN figures made it unparseable before
    assert out["items"] == 2 and out["items_skipped"]["count"] == 2
    assert 0.0 <= out["auc"] <= 1.0
    r = run(app, ["evaluate", "lookalike", "--interactions", str(path), "--items-rank", "46-47", "--peers", "activity"])
    assert r.exit_code == 2 and "keeps a user outside its seeds" in r.output
    r = run(app, ["evaluate", "lookalike", "--interactions", str(path), "--method", "knn"])
    assert r.exit_code == 2 and "knn_als" in r.output


def test_json_output_is_strict():
    import io
    import sys

    from portrait.commands._common import emit_json

    buf, old = io.StringIO(), sys.stdout
    sys.stdout = buf
    try:
        emit_json({"auc": float("nan"), "n": np.int64(3), "x": [np.float32(0.5), float("inf")]})
    finally:
        sys.stdout = old
    assert json.loads(buf.getvalue()) == {"auc": None, "n": 3, "x": [0.5, None]}
