"""``portrait features online`` by ``source:record_id``: resolved through the identity state as ``/score`` does.

A real identity resolve (phone/email record ids stored hashed) and a real Feast repo (SQLite online
store) whose customers are the resolved persons: a source key reads the same row as its one_id, in
any of the forms the resolver accepts (full-width digits, the source name's case); an unknown key is
a one-line error that names it without printing a phone.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pytest
from typer.testing import CliRunner

from portrait.cli import app

pytestmark = pytest.mark.slow  # Feast import + apply + materialize

KEY = "online-keys-test-key-0123456789"
ROWS = [
    {"source": "miniprogram", "record_id": "13912345678", "phone": "13912345678"},
    {"source": "crm", "record_id": "C001", "phone": "+86 139 1234 5678"},
    {"source": "crm", "record_id": "C002", "email": "li_na_88@qq.com"},
    {"source": "crm", "record_id": "C003", "member_id": "M3"},
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):  # noqa: ANN001, ANN201
    from features.feast_ext.sample import customer_table, item_table
    from features.identity.config import ResolveConfig
    from features.identity.resolve import resolve
    from features.identity.tables import read_identity_table
    from features.io import write_parquet
    from features.schema import IDENTIFIER_TYPES
    from features.store import open_store

    data = tmp_path_factory.mktemp("online_keys") / "data"
    (data / "raw").mkdir(parents=True)
    recs = pd.DataFrame(ROWS).reindex(columns=["source", "record_id", *IDENTIFIER_TYPES])
    recs = recs.astype(object).where(recs.notna(), None).assign(observed_at=pd.Timestamp("2026-01-01", tz="UTC"))
    recs.to_parquet(data / "raw" / "identity_records.parquet")
    resolve(ResolveConfig(identity_dir=data / "identity", raw_dir=data / "raw", hmac_key=KEY))
    people = sorted(set(read_identity_table(data / "identity", "record_map").to_pandas()["one_id"]))
    cutoffs = [datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc)]
    table = customer_table(len(people), cutoffs, seed=5)
    table["one_id"] = table["one_id"].map(dict(zip(sorted(table["one_id"].unique()), people)))  # the persons' ids
    write_parquet(table, data / "features" / "customer_features.parquet")
    write_parquet(item_table(10, cutoffs), data / "features" / "item_features.parquet")
    store = open_store(data)
    store.apply()
    store.materialize(end=datetime(2026, 5, 1, tzinfo=timezone.utc))
    return data


@pytest.fixture()
def online(data, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(data))
    monkeypatch.setenv("PORTRAIT_HMAC_KEY", KEY)
    monkeypatch.delenv("PORTRAIT_REDIS", raising=False)

    def run(*keys: str):  # noqa: ANN202
        r = CliRunner().invoke(app, ["features", "online", *keys, "--service", "ltv_v1", "--json"])
        return r, (json.loads(r.stdout[r.stdout.index("{"):]) if r.exit_code == 0 else None)

    return run


def test_source_keys_read_their_persons_online_features(data, online) -> None:  # noqa: ANN001
    from features.identity.tables import read_identity_table

    m = read_identity_table(data / "identity", "record_map").to_pandas()
    c001 = m.loc[m["record_id"] == "C001", "one_id"].iloc[0]
    c002 = m.loc[m["record_id"] == "C002", "one_id"].iloc[0]
    r, by_id = online(c001, c002)
    assert r.exit_code == 0, r.output
    assert any(v is not None for col, vs in by_id.items() if col != "one_id" for v in vs)  # materialized values
    # crm:C001 as given; the phone-keyed mini-program record (stored hashed) by its raw id, full-width and
    # spaced; the source name in capitals
    r, by_key = online("crm:C001", "miniprogram:１３９ １２３４ ５６７８", "CRM:C002")
    assert r.exit_code == 0, r.output
    assert by_key["one_id"] == [c001, c001, c002]
    for col, values in by_id.items():
        assert by_key[col] == [values[0], values[0], values[1]], col
    r, mixed = online(c002, "crm:C001")  # one_ids and keys together, in the order given
    assert r.exit_code == 0 and mixed["one_id"] == [c002, c001]


def test_an_unknown_key_is_one_line_naming_it(online) -> None:  # noqa: ANN001
    r, _ = online("crm:C001", "crm:NOPE")
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "key 2 (crm:NOPE): no customer has this source:record_id" in text and "sources: crm, miniprogram" in text
    r, _ = online("miniprogram:13900000000")  # a phone record id nobody has: named by its hash, not printed
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "miniprogram:hashed-phone-" in text and "13900000000" not in text


def test_unknown_one_ids_are_named_and_none_known_exits_1(data, online) -> None:  # noqa: ANN001
    """No online row for any requested id: "unknown one_id X" on stderr, exit 1, nothing on stdout."""
    from features.identity.tables import read_identity_table

    r, _ = online("OID9999999999")
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and r.stdout == "", r.output
    assert "unknown one_id OID9999999999: no row in ltv_v1's online store" in text
    m = read_identity_table(data / "identity", "record_map").to_pandas()
    c001 = m.loc[m["record_id"] == "C001", "one_id"].iloc[0]
    r, got = online(c001, "OID9999999999")  # one known: its row is shown, the other named on stderr
    assert r.exit_code == 0 and got["one_id"] == [c001, "OID9999999999"]
    assert "unknown one_id OID9999999999" in " ".join(r.output.split())
