"""Audiences that silently match nobody now say why: unknown rule values, unknown ids, an id-file header;
an audience overlapped with itself is 100%."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner



@pytest.fixture()
def cli(tmp_path, monkeypatch, lal_builder):
    from portrait.cli import app

    root, ids, _ = lal_builder(tmp_path)
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(root))
    runner = CliRunner()
    return (lambda *args: runner.invoke(app, list(args))), root, ids


def _json(r) -> dict:
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout[r.stdout.index("{"):])


def test_rule_on_a_value_no_one_has_warns_with_near_matches(cli):
    invoke, _, _ = cli
    r = invoke("audience", "create", "atl", "--rule", 'gender == "f" or tag_group in ("b", "Atlantis")', "--json")
    out = _json(r)
    assert out["size"] == 200
    assert any("gender == 'f'" in w and "'F'" in w for w in out["warnings"]), out["warnings"]
    assert any("'Atlantis'" in w for w in out["warnings"]) and not any("== 'b'" in w for w in out["warnings"])
    assert "warning:" in r.stderr
    assert _json(invoke("audience", "create", "ok", "--rule", 'gender == "F"', "--json"))["warnings"] == []


def test_ids_file_header_skipped_and_unknown_ids_named(cli, tmp_path):
    invoke, _, ids = cli
    path = tmp_path / "vip.csv"
    path.write_text("customer_id,score\n" + "\n".join([*ids[:3], "OID9999999999", "nobody"]) + "\n13912345678\n")
    out = _json(invoke("audience", "create", "vip", "--ids", str(path), "--json"))
    assert out["size"] == 3 and out["unresolved"] == 3  # the header is neither a member nor "not found"
    (warning,) = out["warnings"]
    assert "OID9999999999" in warning and "nobody" in warning and "customer_id" not in warning
    assert "13912345678" not in warning and "139****5678" in warning  # a phone is shown masked


def test_overlap_of_an_audience_with_itself_is_100_percent(cli):
    invoke, _, _ = cli
    assert invoke("audience", "create", "b", "--rule", 'tag_group == "b"').exit_code == 0
    r = invoke("audience", "overlap", "b", "b", "--json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout[r.stdout.index("["):])
    assert row["intersection"] == 200 and row["share_of_a"] == row["jaccard"] == 1.0
    assert "200" in invoke("audience", "overlap", "b", "b").output


def test_helpers_directly(tmp_path):
    from features.audience import AudienceStore, looks_like_header, overlap
    from features.audience_rules import unknown_values

    feats = pd.DataFrame({"one_id": ["OID1", "OID2"], "city": ["Shanghai", "Beijing"], "age": [20.0, 30.0]})
    assert unknown_values('city == "Shanghai" and age > 3', feats) == []
    assert "did you mean 'Shanghai'" in unknown_values('city != "SHANGHAI"', feats)[0]
    assert all(looks_like_header(h) for h in ("one_id", "Customer ID", "phone", "email", "member_ids"))
    assert not any(looks_like_header(h) for h in ("OID0000000001", "M77", "crm:C001", "13912345678", "a@b.com"))
    store = AudienceStore(tmp_path)
    meta = store.create_ids("x", ["one_id", "OID1"])  # unchecked ids: a header still is not a member
    assert meta.size == 1 and store.members("x").tolist() == ["OID1"]
    assert overlap([("a", ["1"]), ("a", ["1"])]).iloc[0]["jaccard"] == 1.0


def test_an_audience_with_no_member_is_saved_with_a_warning_saying_why(cli, tmp_path):
    invoke, root, _ = cli
    r = invoke("audience", "create", "old", "--rule", "age > 1000", "--json")
    out = _json(r)
    assert out["size"] == 0 and (root / "audiences" / "old.parquet").exists()
    assert out["warnings"] == ["audience 'old' is empty, 0 members: the rule 'age > 1000' matches no customer of the "
                               "features as of 2026-07-01T00:00:00+00:00; saved all the same"]
    assert "warning:" in r.stderr and "is empty" in r.stderr
    out = _json(invoke("audience", "create", "atl", "--rule", 'tag_group == "Atlantis"', "--json"))
    assert "is empty" in out["warnings"][0] and "'Atlantis'" in out["warnings"][1]  # the value is why
    path = tmp_path / "nobody.txt"
    path.write_text("OID9999999999\nnobody\n")
    r = invoke("audience", "create", "none", "--ids", str(path))
    assert r.exit_code == 0 and "none of the 2 id(s) given matches a customer" in " ".join(r.output.split())
    r = invoke("audience", "create", "some", "--rule", "age > 30", "--json")
    assert not any("empty" in w for w in _json(r)["warnings"])


def test_refreshing_a_dynamic_audience_to_no_member_warns(cli):
    invoke, root, _ = cli
    assert invoke("audience", "create", "adults", "--rule", "age >= 18", "--dynamic").exit_code == 0
    feats = root / "features" / "customer_features.parquet"
    df = pd.read_parquet(feats)
    pd.concat([df, df.assign(event_timestamp=pd.Timestamp("2026-08-01", tz="UTC"), age=12.0)]).to_parquet(feats)
    r = invoke("audience", "refresh", "adults")
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "0 customers as of 2026-08-01" in text, r.output
    assert "audience 'adults' is empty, 0 members: the rule 'age >= 18' matches no customer" in text
    assert "`portrait audience refresh`" in text  # a dynamic audience fills again


def test_refreshing_a_rule_on_a_column_the_features_lost_is_one_clear_error(cli):
    invoke, root, _ = cli
    assert invoke("audience", "create", "big", "--rule", "spend > 10", "--dynamic").exit_code == 0
    feats = root / "features" / "customer_features.parquet"
    pd.read_parquet(feats).drop(columns=["spend"]).to_parquet(feats)
    r = invoke("audience", "refresh", "big")
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), repr(r.exception)  # not a RuleError traceback
    assert "audience 'big'" in r.output and "'spend'" in r.output and "nothing rewritten" in r.output
