"""HMAC everywhere: no raw phone or email in any identity output, log or CLI answer; key handling."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.identity.hashing import DEMO_HMAC_KEY, MissingKeyError, hash_identifier, hmac128, require_key
from features.identity.index import IdentityIndex
from features.identity.tables import read_identity_table

PHONES = ["13912345678", "15088887777", "18600001111"]
EMAILS = ["wang.wei@163.com", "li_na_88@qq.com"]


def _rows():
    return [
        {"source": "crm", "record_id": "c1", "phone": "+86 139-1234-5678", "email": "Wang.Wei@163.com", "member_id": "M77"},
        {"source": "app", "record_id": "a1", "phone": "13912345678", "device_id": "D-1"},
        {"source": "web", "record_id": "w1", "email": " li_na_88@qq.com", "cookie_id": "GA1.2.3"},
        {"source": "pos", "record_id": "p1", "phone": "150 8888 7777"},
        {"source": "miniprogram", "record_id": "m1", "phone": "0086 18600001111", "unionid": "oU1", "openid": "oM1"},
    ]


def _all_text(identity_dir) -> str:
    """Every value of every output file as text (Parquet decoded, so compression cannot hide a value)."""
    parts = []
    for path in sorted(identity_dir.rglob("*")):
        if path.suffix == ".parquet":
            parts.append(pq.read_table(path).to_pandas().astype(str).to_csv())
        elif path.is_file():
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def _raw_forms() -> list[str]:
    digits = [p for p in PHONES] + [p[3:] for p in PHONES] + ["139-1234-5678", "150 8888 7777"]
    return digits + EMAILS + [e.split("@")[0] for e in EMAILS] + ["Wang.Wei"]


def test_no_raw_phone_or_email_in_any_output(run):
    run(_rows())
    run([{"source": "app", "record_id": "a9", "phone": "15088887777", "email": "LI_NA_88@QQ.COM"}], incremental=True)
    text = _all_text(run.identity_dir)
    assert text  # the outputs exist and were read
    for raw in _raw_forms():
        assert raw not in text, f"raw identifier {raw!r} leaked into the identity outputs"
    assert not re.search(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])", text), "an 11-digit mobile number appears"


def test_identifiers_are_hmac_of_the_normalized_value(run, key):
    run(_rows())
    ids = read_identity_table(run.identity_dir, "identifiers").to_pandas()
    expected = hash_identifier("phone", "13912345678", key.encode())[:16]
    assert expected in set(ids.loc[ids["id_type"] == "phone", "id_hash"])
    assert expected == hmac.new(key.encode(), b"phone:13912345678", hashlib.sha256).hexdigest()[:16]


def test_cli_resolve_and_explain_never_print_raw_values(tmp_path, monkeypatch, records):
    from portrait.cli import app

    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    pq.write_table(records(_rows()), raw / "identity_records.parquet")
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PORTRAIT_HMAC_KEY", raising=False)
    cli = CliRunner()
    missing = cli.invoke(app, ["identity", "resolve"])
    assert missing.exit_code == 2 and "PORTRAIT_HMAC_KEY" in missing.output
    done = cli.invoke(app, ["identity", "resolve", "--demo-key", "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["records"] == 5 and summary["people"] == 4
    shown = cli.invoke(app, ["identity", "explain", "+86 13912345678", "--demo-key", "--json"])
    assert shown.exit_code == 0, shown.output
    out = json.loads(shown.stdout[shown.stdout.index("{"):])
    assert {r["record_id"] for r in out["records"]} == {"c1", "a1"}
    assert out["links"] and out["links"][0]["id_type"] in ("phone", "member_id")
    for raw in _raw_forms():
        assert raw not in shown.stdout and raw not in done.stdout
    unknown = cli.invoke(app, ["identity", "explain", "19900000000", "--demo-key"])
    assert unknown.exit_code == 1


def test_key_is_required_outside_the_demo():
    with pytest.raises(MissingKeyError, match="PORTRAIT_HMAC_KEY"):
        require_key(None)
    assert require_key(None, demo=True) == DEMO_HMAC_KEY.encode()
    assert require_key("s3cret-0123456789", demo=True) == b"s3cret-0123456789"  # a given key wins over the demo key


def test_hashlib_engine_matches_python_hmac():
    values = ["13912345678", "", "é" * 30, "x" * 48, "x" * 49, "y" * 300, "a@b.cn"]
    k1, k2 = hmac128(pa.array(values), "email", b"key", engine="hashlib")
    for v, a, b in zip(values, k1, k2):
        digest = hmac.new(b"key", f"email:{v}".encode(), hashlib.sha256).digest()
        assert int(a) == int.from_bytes(digest[:8], "big") and int(b) == int.from_bytes(digest[8:16], "big")


def test_index_resolves_every_form(run, key):
    run(_rows())
    index = IdentityIndex.load(run.identity_dir, key)
    person = run.record_map()["crm:c1"]
    for text in ["13912345678", "+86 139 1234 5678", "0086-139-1234-5678", "WANG.WEI@163.COM ", "M77",
                 "crm:c1", "app:a1", person, person.lower()]:
        assert index.resolve(text) == person, text
    assert index.resolve("null") is None and index.resolve("") is None and index.resolve("OID9999999999") is None
    assert index.resolve("19900000000") is None
    with pytest.raises(Exception, match="another HMAC key"):
        IdentityIndex.load(run.identity_dir, "wrong-key-0123456789")


def test_a_shared_identifier_names_no_one_where_a_person_is_shown(run, key):
    """A kiosk device two shoppers used: the index may name its latest user, a 360 profile may not."""
    from features.identity.index import SharedIdentifier
    from serving.errors import Conflict
    from serving.loader import Bundle
    from serving.logic import profile
    from serving.resources import Identity, Resources

    run([{"source": "pos", "record_id": "k1", "phone": "13912345678", "device_id": "KIOSK-1"},
         {"source": "pos", "record_id": "k2", "phone": "15088887777", "device_id": "KIOSK-1"}])
    people = run.record_map()
    assert people["pos:k1"] != people["pos:k2"]  # phone limit 1: the device links no one
    index = IdentityIndex.load(run.identity_dir, key)
    assert index.resolve("KIOSK-1") in (people["pos:k1"], people["pos:k2"])
    with pytest.raises(SharedIdentifier, match="device_id is shared"):
        index.resolve("kiosk-1 ", personal=True)
    assert index.resolve("139 1234 5678", personal=True) == people["pos:k1"]  # one person's phone
    ident = Identity(one_ids=frozenset(people.values()), aliases={}, index=index)
    bundle = Bundle(generation=1, resources=Resources(identity=ident))
    with pytest.raises(Conflict, match="device_id is shared by several people.*one_id") as err:
        profile(bundle, "KIOSK-1")
    assert err.value.status == 409 and "KIOSK" not in err.value.message
    assert profile(bundle, people["pos:k2"]).one_id == people["pos:k2"]


def test_a_shared_identifier_gets_no_ones_scores_history_or_seat_in_a_seed(run, key):
    """/score, /recommend and lookalike seeds answer a kiosk's device id as nobody, not as its last shopper."""
    import numpy as np
    import pandas as pd

    from models.recommenders import make
    from serving.audiences import _one_person
    from serving.errors import NotLoaded
    from serving.loader import Bundle, ServedModel
    from serving.logic import recommend, score
    from serving.resources import Features, Identity, Resources
    from serving.schemas import RecommendRequest, ScoreRequest
    from training.recommender import RecommenderConfig, build_bundle

    run([{"source": "pos", "record_id": "k1", "phone": "13912345678", "device_id": "KIOSK-1"},
         {"source": "pos", "record_id": "k2", "phone": "15088887777", "device_id": "KIOSK-1"}])
    people = run.record_map()
    k1, k2 = people["pos:k1"], people["pos:k2"]
    ident = Identity(one_ids=frozenset(people.values()), aliases={}, index=IdentityIndex.load(run.identity_dir, key))
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    events = pd.DataFrame([(u, f"s{i}", "view", t0 + pd.Timedelta(days=i), 1.0)
                           for u, items in ((k1, range(4)), (k2, range(3, 8))) for i in items],
                          columns=["user", "item", "event_type", "timestamp", "weight"])
    rec = build_bundle(events, make("ease"), RecommenderConfig())
    served = {kind: ServedModel(kind, kind, "1", None, model, "now")
              for kind, model in (("recommender", rec), ("churn", None))}
    bundle = Bundle(generation=1, models=served, resources=Resources(identity=ident))

    got = recommend(bundle, RecommendRequest(user_id="KIOSK-1", k=3))
    assert got.one_id is None and got.fallback == "shared_identifier" and len(got.items) == 3
    assert recommend(bundle, RecommendRequest(user_id="139 1234 5678", k=3)).one_id == k1  # one person's phone

    with pytest.raises(NotLoaded, match="customer features are not loaded"):
        score(bundle, ScoreRequest(ids=["KIOSK-1"], models=["churn"]))
    feats = Features(row={}, columns=(), matrix=np.zeros((0, 0)), tag_columns=(), tags={}, as_of=None)
    bundle = Bundle(generation=1, models=served, resources=Resources(identity=ident, features=feats))
    rows = score(bundle, ScoreRequest(ids=["KIOSK-1", "nobody@example.com", k2], models=["churn"])).results
    assert [(r.one_id, r.found, r.reason) for r in rows] == [
        (None, False, "shared_identifier"), (None, False, "unknown_id"), (k2, False, "no_features")]

    res = Resources(identity=ident)
    assert _one_person(res, "KIOSK-1") is None and _one_person(res, "150-8888-7777") == k2
