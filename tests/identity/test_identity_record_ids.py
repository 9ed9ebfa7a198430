"""Record ids that are phone numbers or emails never reach a file portrait writes, nor the CLI output.

A shop keying its customers by phone writes ``record_id = "13912345678"``: resolve, incremental
resolve, features build and explain must store and show only the keyed hash, while lookups by
``source:<raw record_id>`` and the orders of those records still find the person.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.identity.hashing import WeakKeyError, hash_identifier, require_key
from features.identity.record_ids import protect, protect_one
from features.identity.config import load_rules

KEY = "record-id-test-key-0123456789"
RAW = ["13912345678", "139-1234-5678", "1234-5678", "15088887777", "wang.wei@163.com", "Wang.Wei@163.com",
       "li_na_88@qq.com", "li_na_88"]


ROWS = [
    {"source": "miniprogram", "record_id": "13912345678", "phone": "13912345678", "unionid": "oU1"},
    {"source": "webshop", "record_id": "Wang.Wei@163.com", "email": "wang.wei@163.com"},
    {"source": "crm", "record_id": "C001", "phone": "+86 139 1234 5678", "email": "wang.wei@163.com"},
    {"source": "webshop", "record_id": "li_na_88@qq.com", "email": "li_na_88@qq.com"},
]


def _orders() -> pa.Table:
    ids = [("miniprogram", "13912345678"), ("webshop", "Wang.Wei@163.com"), ("crm", "C001"), ("webshop", "li_na_88@qq.com")]
    return pa.Table.from_pandas(pd.DataFrame({
        "order_id": [f"o{i}" for i in range(len(ids))], "source": [s for s, _ in ids], "record_id": [r for _, r in ids],
        "ts": pd.to_datetime(["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"], utc=True).as_unit("us"),
        "amount": [10.0, 20.0, 30.0, 40.0]}), preserve_index=False)


def _written_text(data_dir) -> str:
    """Every file written under the data dir except the raw inputs, Parquet decoded (compression hides nothing)."""
    parts = []
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file() or "raw" in path.relative_to(data_dir).parts:
            continue
        if path.suffix == ".parquet":
            parts.append(pq.read_table(path).to_pandas().astype(str).to_csv())
        else:
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.fixture()
def data_dir(tmp_path, monkeypatch, records):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    pq.write_table(records(ROWS), raw / "identity_records.parquet")
    pq.write_table(_orders(), raw / "orders.parquet")
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PORTRAIT_HMAC_KEY", KEY)
    return tmp_path / "data"


def test_phone_and_email_record_ids_are_stored_hashed_everywhere(data_dir, records):
    from portrait.cli import app

    cli = CliRunner()
    done = cli.invoke(app, ["identity", "resolve", "--json"])
    assert done.exit_code == 0, done.output
    # a second batch through the incremental path (state strings, deltas, changelog)
    pq.write_table(records([{"source": "miniprogram", "record_id": "15088887777", "phone": "15088887777",
                              "observed_at": "2026-02-01"}]), data_dir / "raw" / "identity_records.parquet")
    inc = cli.invoke(app, ["identity", "resolve", "--incremental", "--json"])
    assert inc.exit_code == 0, inc.output
    pq.write_table(records(ROWS + [{"source": "miniprogram", "record_id": "15088887777", "phone": "15088887777",
                                     "observed_at": "2026-02-01"}]), data_dir / "raw" / "identity_records.parquet")
    built = cli.invoke(app, ["features", "build", "--json"])
    assert built.exit_code == 0, built.output
    summary = json.loads(built.stdout[built.stdout.index("{"):])
    assert summary["unmapped"]["orders"] == 0  # the orders of phone/email-keyed records still find their person
    shown = cli.invoke(app, ["identity", "explain", "miniprogram:139 1234 5678", "--json"])
    assert shown.exit_code == 0, shown.output
    out = json.loads(shown.stdout[shown.stdout.index("{"):])
    assert {r["source"] for r in out["records"]} == {"miniprogram", "webshop", "crm"}
    by_email = cli.invoke(app, ["identity", "explain", "webshop:Wang.Wei@163.com", "--json"])
    assert by_email.exit_code == 0 and json.loads(by_email.stdout[by_email.stdout.index("{"):])["one_id"] == out["one_id"]
    text = _written_text(data_dir)
    assert "hashed-phone-" in text and "hashed-email-" in text and "C001" in text
    assert KEY not in text  # the key the feature build was given is not logged in features/meta.json
    for raw in RAW:
        for where, blob in (("files", text), ("explain", shown.stdout + by_email.stdout), ("resolve", done.stdout + inc.stdout)):
            assert raw not in blob, f"raw record id {raw!r} leaked into {where}"


def test_only_phone_and_email_record_ids_change():
    rules, key = load_rules(), KEY.encode()
    ids = pa.array(["C001", "13912345678", "+86 139-1234-5678", "Foo@Bar.com", "12345", "hashed-phone-ab"])
    out, n = protect(ids, rules, key)
    out = out.to_pylist()
    assert out[0] == "C001" and out[4] == "12345" and out[5] == "hashed-phone-ab"
    assert out[1] == out[2] == "hashed-phone-" + hash_identifier("phone", "13912345678", key) and n == 3
    assert out[3] == "hashed-email-" + hash_identifier("email", "foo@bar.com", key)
    assert [protect_one(v, rules, key) for v in ids.to_pylist()] == out


@pytest.mark.parametrize("weak", ["x", "secret", "0123456789", "aaaaaaaaaaaaaaaaaaaaaaaa"])
def test_weak_keys_are_refused_with_how_to_make_one(weak):
    with pytest.raises(WeakKeyError, match="secrets.token_hex"):
        require_key(weak)
    assert require_key("9f86d081884c7d659a2feaa0c55ad015") == b"9f86d081884c7d659a2feaa0c55ad015"


def test_cli_refuses_a_weak_key_in_one_line(tmp_path, monkeypatch, records):
    from portrait.cli import app

    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    pq.write_table(records(ROWS), raw / "identity_records.parquet")
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PORTRAIT_HMAC_KEY", "x")
    res = CliRunner().invoke(app, ["identity", "resolve"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "too weak" in res.output and "secrets.token_hex(32)" in res.output
    assert not (tmp_path / "data" / "identity").exists()  # nothing written


def test_feature_build_without_the_key_is_a_one_line_error(data_dir, monkeypatch):
    from portrait.cli import app

    cli = CliRunner()
    assert cli.invoke(app, ["identity", "resolve"]).exit_code == 0
    monkeypatch.delenv("PORTRAIT_HMAC_KEY")
    res = cli.invoke(app, ["features", "build"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "record ids are phone numbers or emails" in res.output and "PORTRAIT_HMAC_KEY" in res.output
    assert not (data_dir / "features" / "customer_features.parquet").exists()


def test_training_labels_join_orders_of_phone_keyed_records_and_never_log_the_key(data_dir, tmp_path):
    """Labels (features.labels, via training.datasets.Paths) count the orders of phone/email record ids."""
    import mlflow

    from features.labels import future_labels
    from training import registry
    from training.datasets import Paths

    assert CliRunner().invoke(__import__("portrait.cli").cli.app, ["identity", "resolve"]).exit_code == 0
    from features.identity.tables import read_identity_table

    people = read_identity_table(data_dir / "identity", "golden", columns=["one_id"]).to_pandas()
    ents = people.assign(event_timestamp=pd.Timestamp("2026-01-01", tz="UTC"))
    with pytest.raises(Exception, match="(?i)key"):  # without the key the join cannot hash the raw ids
        future_labels(data_dir / "raw", data_dir / "identity", ents, horizons=(30,))
    paths = Paths(str(data_dir), f"sqlite:///{tmp_path}/m.db", str(tmp_path / "art"), hmac_key=KEY)
    labels = future_labels(data_dir / "raw", data_dir / "identity", ents, horizons=(30,), hmac_key=paths.hmac_key)
    spent = labels.filter(like="spend").sum(numeric_only=True).sum()
    assert spent == pytest.approx(10.0 + 20.0 + 30.0 + 40.0)  # every order, whatever its record id
    assert KEY not in repr(paths)
    mlflow.set_tracking_uri(paths.mlflow_uri)
    with mlflow.start_run() as run:
        registry.log_config({"paths": paths, "horizon": 30})
    logged = mlflow.get_run(run.info.run_id).data.params
    body = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config.json")
    assert logged["paths.data_dir"] == str(data_dir) and not any(KEY in str(v) for v in logged.values())
    assert "hmac_key" not in body and KEY not in body
