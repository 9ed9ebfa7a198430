"""``identity explain`` says when an identifier is blocked from linking: which value, which rule or limit.

A placeholder on the rules' blocked list (the zero device id, ``null``, the 13800138000 demo phone)
names nobody; a kiosk's device id two shoppers share (refused by the phone limit) is explained
through its latest holder, with a line saying so, by its hash only.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from portrait.cli import app

ZERO_UUID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture()
def explain(run, key, monkeypatch):  # noqa: ANN001, ANN201
    run([{"source": "pos", "record_id": "k1", "phone": "13912345678", "device_id": "KIOSK-1"},
         {"source": "pos", "record_id": "k2", "phone": "15088887777", "device_id": "KIOSK-1"},
         {"source": "crm", "record_id": "c1", "phone": "13700001111", "device_id": ZERO_UUID}])
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(run.root))
    monkeypatch.setenv("PORTRAIT_HMAC_KEY", key)

    def invoke(*args: str):  # noqa: ANN202
        r = CliRunner().invoke(app, ["identity", "explain", *args])
        return r, " ".join(r.output.split())

    return invoke


def test_a_shared_kiosk_device_is_said_to_be_blocked_by_a_limit(explain, key) -> None:  # noqa: ANN001
    from features.identity.hashing import hash_identifier

    kiosk = hash_identifier("device_id", "kiosk-1", key.encode())[:16]
    r, text = explain("KIOSK-1")
    assert r.exit_code == 0, r.output
    assert f"blocked: device_id {kiosk} is shared by 2 persons, blocked from linking by limit:phone (limits.phone = 1)" in text
    assert "KIOSK" not in r.output  # the raw device id is never printed
    r, _ = explain("kiosk-1 ", "--json")
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert {k: out["blocked"][k] for k in ("id_type", "id_hash", "holders")} == {
        "id_type": "device_id", "id_hash": kiosk, "holders": 2}
    r, _ = explain("crm:c1", "--json")  # a person asked by a record of their own: nothing blocked to say
    assert r.exit_code == 0 and json.loads(r.stdout[r.stdout.index("{"):])["blocked"] is None


@pytest.mark.parametrize("value, line", [
    (ZERO_UUID, f"device_id '{ZERO_UUID}' is on the blocked list (blocked.device_id.values)"),
    ("null", "any identifier 'null' is on the blocked list (blocked.any)"),
    ("138-0013-8000", "phone '13800138000' is on the blocked list (blocked.phone.values)"),
    # a pattern may match a real person's address: shown in part (a listed value is a known placeholder)
    ("test@example.com", "email 't***@example.com' is on the blocked list (blocked.email.patterns '^(test|"),
    ("Alice.Wong@Example.com", "email 'a***@example.com' is on the blocked list (blocked.email.patterns '@(example|"),
])
def test_a_placeholder_on_the_blocked_list_names_its_rule(explain, value: str, line: str) -> None:  # noqa: ANN001
    r, text = explain(value)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"error: no person found for that identifier: {line}" in text, text
    assert len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize(("value", "shown"), [
    ("13812345678", "138****5678"), ("+85212345678", "+85****5678"),
    ("21234567", "****4567"), ("0212345678", "****5678"), ("1234567", "*******")])
def test_a_phone_shown_in_part_hides_at_least_four_digits(value: str, shown: str) -> None:
    from features.identity.explain import shown_in_part as _part

    assert _part(value, "phone") == shown
