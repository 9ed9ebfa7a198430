"""``identity explain`` output: golden numbers are JSON numbers, and no empty table stands for "none".

A person without refused links gets one line "no links refused" (it got an empty table with
headers only); a one-record person gets "no links". ``--json``'s golden ``n_records`` and
``birth_year`` are ints (numpy ints used to be turned into strings).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from portrait.cli import app
from tests.identity.test_identity_golden import _profiles


@pytest.fixture()
def explain(run, key, monkeypatch):  # noqa: ANN001, ANN201
    run([{"source": "crm", "record_id": "c1", "phone": "13912345678"},
         {"source": "app", "record_id": "a1", "phone": "13912345678", "device_id": "KIOSK-1"},
         {"source": "pos", "record_id": "k2", "phone": "15088887777", "device_id": "KIOSK-1"},
         {"source": "web", "record_id": "w1", "email": "li@example.com"}],
        profiles=_profiles([{"source": "crm", "record_id": "c1", "birth_year": 1990, "gender": "F",
                             "observed_at": "2026-01-01"}]))
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(run.root))
    monkeypatch.setenv("PORTRAIT_HMAC_KEY", key)

    def invoke(*args: str):  # noqa: ANN202
        r = CliRunner().invoke(app, ["identity", "explain", *args])
        assert r.exit_code == 0, r.output
        return r

    return invoke


def test_json_golden_numbers_are_numbers(explain) -> None:  # noqa: ANN001
    out = json.loads(explain("crm:c1", "--json").stdout)
    assert out["golden"]["n_records"] == 2 and isinstance(out["golden"]["n_records"], int)
    assert out["golden"]["birth_year"] == 1990 and out["golden"]["gender"] == "F"
    assert isinstance(out["golden"]["first_seen"], str)


def test_no_refused_links_is_one_line_not_an_empty_table(explain) -> None:  # noqa: ANN001
    text = explain("web:w1").output  # one record, nothing shared, nothing refused
    assert "no links refused" in text and "no links (" in text
    assert "links refused by a limit" not in text and "also held by" not in text
    text = explain("crm:c1").output  # linked by phone; its kiosk device was refused (limit:phone)
    assert "links (identifiers shared" in text and "links refused by a limit" in text
    assert "no links refused" not in text
