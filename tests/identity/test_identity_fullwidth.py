"""Full-width phones and emails (a CJK input method's １３９… and ＠) are the same identifier.

`data import` folds them, but a phone pasted into `identity explain` or an `--ids` file, and a
hand-written Parquet under raw/, reached the normalizer unfolded: no person was found, and a
full-width phone used as record id was stored raw in record_map.
"""

from __future__ import annotations

import pyarrow.parquet as pq
from typer.testing import CliRunner

from features.identity.config import load_rules
from features.identity.normalize import normalize_one, normalize_values

KEY = "fullwidth-test-key-0123456789abcdef"


def test_normalizers_fold_full_width_phones_and_emails():
    import pyarrow as pa

    rules = load_rules(None)
    assert normalize_one("＋８６ １３９－１２３４－５６７８", "phone", rules) == "13912345678"
    assert normalize_one("Ｗａｎｇ＠１６３．ｃｏｍ", "email", rules) == "wang@163.com"
    norm, _ = normalize_values(pa.array(["１３９１２３４５６７８", "Ｗａｎｇ＠１６３．ｃｏｍ"]), "phone", rules)
    assert norm.to_pylist() == ["13912345678", None]


def test_explain_and_record_map_with_full_width_identifiers(tmp_path, monkeypatch, records):
    from portrait.cli import app

    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    pq.write_table(records([{"source": "crm", "record_id": "C001", "phone": "13912345678"},
                            {"source": "pos", "record_id": "１３９１２３４５６７８"}]), raw / "identity_records.parquet")
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PORTRAIT_HMAC_KEY", KEY)
    cli = CliRunner()
    assert cli.invoke(app, ["identity", "resolve"]).exit_code == 0
    written = (tmp_path / "data" / "identity" / "record_map.parquet")
    rm = pq.read_table(written).to_pandas()
    assert not rm["record_id"].str.contains("１３９").any()  # hashed like any phone record id
    assert rm["one_id"].nunique() == 1  # and linked to the CRM record by that phone
    res = cli.invoke(app, ["identity", "explain", "１３９ １２３４ ５６７８"])
    assert res.exit_code == 0, res.output
    assert "crm" in res.output and "C001" in res.output


def test_source_names_match_in_any_case(run):
    from features.identity.index import IdentityIndex

    run([{"source": "crm", "record_id": "C001", "phone": "13912345678"},
         {"source": "pos", "record_id": "139 1234 5678"}])
    index = IdentityIndex.load(run.identity_dir, "test-key-not-secret")
    want = index.resolve("crm:C001")
    assert want is not None
    assert index.resolve("CRM:C001") == want and index.resolve("Pos:+86 139-1234-5678") == want
    assert index.resolve("CRM:C002") is None
