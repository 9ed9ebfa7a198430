"""A record id that is a phone or email links its record as that phone or email.

A POS keyed by phone exports ``record_id = "+86 139-1234-5678"`` and no phone column. Before,
such a record linked nobody: the CRM customer with that phone and the POS shopper were two
persons, and the POS orders counted for the phone-less one.
"""

from __future__ import annotations

import pandas as pd
import pytest
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

KEY = "record-id-link-test-key-0123456789"


def test_phone_record_id_links_to_the_crm_person_in_full_and_incremental_runs(run):
    crm = [{"source": "crm", "record_id": "C001", "phone": "13912345678", "email": "wang.wei@163.com"}]
    pos = [{"source": "pos", "record_id": "+86 139-1234-5678"},  # the phone, formatted, as the only id
           {"source": "web", "record_id": "Wang.Wei@163.com"},  # an email record id links as the email
           {"source": "pos", "record_id": "15088887777", "phone": "13700001111"}]  # a filled phone cell wins
    summary = run(crm + pos)
    one = run.record_map()
    assert summary["people"] == 2, summary
    assert len(set(one.values())) == 2
    crm_person = one["crm:C001"]
    assert sum(v == crm_person for v in one.values()) == 3  # crm, pos (phone), web (email)
    # an incremental batch: a new POS shopper keyed by the CRM customer's phone in another form
    run(crm + pos + [{"source": "pos2", "record_id": "0086 139 1234 5678", "observed_at": "2026-02-01"}],
        incremental=True)
    assert len({v for k, v in run.record_map().items() if k.startswith("pos2:")} | {crm_person}) == 1


def _resolve_and_build(tmp_path, monkeypatch, identity_records, orders: dict) -> pd.DataFrame:
    """Write the two raw tables, run `identity resolve` and `features build` by the CLI; the customer features."""
    from portrait.cli import app

    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    pq.write_table(identity_records, raw / "identity_records.parquet")
    orders = {**orders, "ts": pd.to_datetime(orders["ts"], utc=True).as_unit("us")}
    pq.write_table(pa.Table.from_pandas(pd.DataFrame(orders), preserve_index=False), raw / "orders.parquet")
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PORTRAIT_HMAC_KEY", KEY)
    cli = CliRunner()
    done = cli.invoke(app, ["identity", "resolve", "--json"])
    assert done.exit_code == 0, done.output
    built = cli.invoke(app, ["features", "build", "--json"])
    assert built.exit_code == 0, built.output
    return pd.read_parquet(tmp_path / "data" / "features" / "customer_features.parquet")


def test_pos_orders_keyed_by_phone_count_for_the_crm_customer(tmp_path, monkeypatch, records):
    feats = _resolve_and_build(tmp_path, monkeypatch, records([{"source": "crm", "record_id": "C001", "phone": "13912345678"},
                                                               {"source": "pos", "record_id": "139 1234 5678"}]),
                               {"order_id": ["o1", "o2"], "source": ["pos", "pos"],
                                "record_id": ["+86 139-1234-5678", "13912345678"],
                                "ts": ["2026-01-02", "2026-01-03"], "amount": [10.0, 30.0]})
    assert len(feats) == 1  # one person, not a CRM one without orders and a POS one with them
    assert feats["orders_total"].iloc[0] == 2 and feats["monetary_total"].iloc[0] == 40.0


def test_one_pos_customer_exported_twice_in_two_phone_forms_keeps_the_orders(tmp_path, monkeypatch, records):
    """The same POS phone as "+86 139-…" and "139 …" is one record after hashing; the dedupe of
    that record lost the count of hashed record ids, so the feature build stopped hashing the orders' ids
    and dropped every POS order as unmapped."""
    feats = _resolve_and_build(tmp_path, monkeypatch,
                               records([{"source": "pos", "record_id": "+86 139-1234-5678"},
                                        {"source": "pos", "record_id": "139 1234 5678", "observed_at": "2026-01-05"}]),
                               {"order_id": ["o1"], "source": ["pos"], "record_id": ["13912345678"],
                                "ts": ["2026-01-02"], "amount": [25.0]})
    assert feats["orders_total"].tolist() == [1] and feats["monetary_total"].tolist() == [25.0]


def _as_before_record_id_hashing(run, monkeypatch, rows):
    """A state as portrait wrote it before record ids were hashed: raw ids, no ``record_ids`` in meta.json."""
    import json

    import features.identity.prepare as prepare

    with monkeypatch.context() as m:
        m.setattr(prepare, "protect", lambda ids, rules, key: (ids, 0))
        run(rows)
    meta_path = run.identity_dir / "state" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.pop("record_ids", None)
    meta_path.write_text(json.dumps(meta))


def test_a_state_from_before_record_id_hashing_keeps_its_one_ids_on_a_full_run(run, monkeypatch):
    from features.identity.state import StateError

    rows = [{"source": "pos", "record_id": "13912345678"}, {"source": "pos", "record_id": "13700001111"},
            {"source": "crm", "record_id": "C001", "member_id": "M1"}]
    _as_before_record_id_hashing(run, monkeypatch, rows)
    before = run.record_map()
    assert "pos:13912345678" in before  # the old state holds the raw phone
    with pytest.raises(StateError, match="predates hashing phone and email record ids.*full"):
        run(rows, incremental=True)
    run(rows)  # one full run upgrades it: the same persons, the same one_ids, no raw phone left
    after = run.record_map()
    assert sorted(after.values()) == sorted(before.values())
    assert not any("13912345678" in k for k in after)
    run(rows + [{"source": "app", "record_id": "A9", "member_id": "M9"}], incremental=True)  # and then increments
    assert len(set(run.record_map().values())) == 4


def test_a_state_from_before_record_id_hashing_keeps_the_one_ids_of_its_incremental_runs(run, monkeypatch):
    """The old state's record_map is its base plus the deltas of later incremental runs: all are re-keyed."""
    import json

    import features.identity.prepare as prepare

    rows = [{"source": "pos", "record_id": "13912345678"}, {"source": "crm", "record_id": "C001", "member_id": "M1"}]
    late = [{"source": "app", "record_id": "A7", "member_id": "M7", "observed_at": "2026-02-01"}]
    with monkeypatch.context() as m:
        m.setattr(prepare, "protect", lambda ids, rules, key: (ids, 0))
        run(rows)
        run(late, incremental=True)  # a delta on top of the base record_map
    meta_path = run.identity_dir / "state" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.pop("record_ids", None)
    meta_path.write_text(json.dumps(meta))
    before = run.record_map()
    assert "app:A7" in before
    run(rows + late)
    after = run.record_map()
    assert after["app:A7"] == before["app:A7"] and after["crm:C001"] == before["crm:C001"]
    assert sorted(after.values()) == sorted(before.values())
