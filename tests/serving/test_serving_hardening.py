"""Requests a demanding caller sends by mistake: each is a 4xx naming what is wrong, and changes nothing.

From an audit of the demo service (2026-12-04): bodies that are not JSON, oversized bodies,
loosely typed fields, unknown categories, lookalike expansions that come out empty, methods a
model cannot run, repeated or out-of-range write-back requests, and the OpenAPI page.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings

import pandas as pd
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEY = {"X-API-Key": "test-key-123"}
PHONE = "+8613912345678"


@pytest.mark.parametrize("path", ["/recommend", "/score", "/lookalike"])
def test_a_body_that_is_not_json_is_a_415_that_echoes_nothing(client: TestClient, path: str) -> None:
    body = '{"ids": ["%s", "alice@example.com"], "user_id": "%s"}' % (PHONE, PHONE)
    r = client.post(path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded", **KEY})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    assert "8613912345678" not in r.text and "alice" not in r.text
    r = client.post(path, content=b"x", headers={"Content-Type": "multipart/form-data", **KEY})  # was a 500
    assert r.status_code == 415
    r = client.post("/score", content='{"ids": ["x"]}', headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200


def test_oversized_bodies_are_413(client: TestClient) -> None:
    big = b'{"ids": ["' + b"x" * (2 << 20) + b'"]}'
    r = client.post("/score", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"ids": ["'
        for _ in range(3):
            yield b"y" * (1 << 20)
        yield b'"]}'

    r = client.post("/score", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    small = iter([b'{"ids": [', b'"nobody"]}'])  # a chunked body under the limit still works
    r = client.post("/score", content=small, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["results"][0]["found"] is False


@pytest.mark.parametrize("path, body, field", [
    ("/recommend", {"user_id": "u1", "k": True}, "k"),
    ("/recommend", {"user_id": "u1", "k": "5"}, "k"),
    ("/recommend", {"user_id": "u1", "exclude_seen": "yes"}, "exclude_seen"),
    ("/recommend", {"user_id": "u1", "filters": {"in_stock": "false"}}, "in_stock"),
    ("/recommend", {"user_id": "u1", "exclude": ["i" * 257]}, "exclude"),
    ("/recommend", {"user_id": "u1", "recent_items": [""]}, "recent_items"),
    ("/score", {"ids": ["ok", "x" * 300]}, "ids"),
    ("/similar_items", {"item_id": "I002", "k": 2.0}, "k"),
    ("/lookalike", {"rule": "x == 1", "reach": True}, "reach"),
    ("/lookalike", {"rule": "x == 1", "reach": "20%"}, "reach"),
    ("/lookalike", {"rule": "x == 1", "filter": ""}, "filter"),
    ("/lookalike", {"rule": "x == 1", "method": "similarity"}, "method"),
    ("/tags/writeback", {"force": "true"}, "force"),
])
def test_loose_types_and_long_strings_are_400s_naming_the_field(client: TestClient, path: str, body: dict,
                                                                field: str) -> None:
    r = client.post(path, json=body, headers=KEY)
    assert r.status_code == 400, r.text
    assert field in r.text


def test_a_category_no_item_has_is_a_400(client: TestClient, world) -> None:  # noqa: ANN001
    for field in ("categories", "exclude_categories"):  # a typo in a deny list must not let everything through
        r = client.post("/recommend", json={"user_id": world.one_ids[1], "filters": {field: ["c1", "skincar"]}})
        assert r.status_code == 400 and f"filters.{field}" in r.text and "'skincar'" in r.text and "c1" in r.text
        r = client.post("/similar_items", json={"item_id": "I002", "filters": {field: ["skincar"]}})
        assert r.status_code == 400
    r = client.post("/recommend", json={"user_id": world.one_ids[1], "filters": {"exclude_categories": ["c1"]}})
    assert r.status_code == 200


def _request_schema(spec: dict, path: str) -> dict:
    schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def _audiences(world) -> set:  # noqa: ANN001
    return {p.name for p in (world.data_dir / "audiences").glob("lookalike-*")}


def test_an_empty_expansion_is_a_400_and_saves_nothing(client: TestClient, world) -> None:  # noqa: ANN001
    before = _audiences(world)
    r = client.post("/lookalike", json={"ids": list(world.one_ids), "reach": 10}, headers=KEY)  # seed = everyone
    assert r.status_code == 400 and "expansion is empty" in r.json()["error"]
    r = client.post("/lookalike", json={"ids": world.one_ids[:10], "reach": 10, "filter": "one_id == 'nobody'"},
                    headers=KEY)
    assert r.status_code == 400 and "filter leaves none" in r.json()["error"]
    assert _audiences(world) == before


def test_lookalike_methods_are_the_models(client: TestClient, world) -> None:  # noqa: ANN001
    from models.lookalike import METHODS

    r = client.post("/lookalike", json={"ids": world.one_ids[:10], "reach": 10, "method": "centroid"}, headers=KEY)
    assert r.status_code == 200 and r.json()["method"] == "centroid"
    assert set(_request_schema(client.get("/docs.json").json(), "/lookalike")["properties"]["method"]["enum"]) == set(METHODS)


def test_a_method_the_model_was_not_fitted_for_is_named() -> None:
    import numpy as np

    from models.lookalike import Lookalike

    m = Lookalike().fit(embeddings=np.random.default_rng(0).normal(size=(30, 4)))
    assert m.methods() == ("auto", "centroid", "knn", "pu")  # no interactions: no "items"


def test_writeback_counts_a_repeated_model_once_and_checks_its_date(client: TestClient, world) -> None:  # noqa: ANN001
    from serving.writeback import history_path

    day = "2024-09-06"
    r = client.post("/tags/writeback", json={"models": ["churn", "churn"], "date": day}, headers=KEY)
    assert r.status_code == 200 and len(r.json()["batches"]) == 1
    hist = pd.read_parquet(history_path(world.data_dir))
    assert (hist["date"] == day).sum() == len(world.one_ids)
    tomorrow = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)
    for bad, why in (("9999-12-31", "in the future"), ((tomorrow + dt.timedelta(days=1)).isoformat(), "in the future"),
                     ("0001-01-01", "before the feature snapshot")):
        r = client.post("/tags/writeback", json={"models": ["ltv"], "date": bad}, headers=KEY)
        assert r.status_code == 400 and why in r.json()["error"], (bad, r.text)
    assert pd.read_parquet(history_path(world.data_dir)).equals(hist)  # nothing written


def test_client_errors_are_one_info_line(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bentoml._internal.server.http_app"):
        assert client.post("/recommend", json={"user_id": ""}).status_code == 400
    rows = [r for r in caplog.records if r.name == "bentoml._internal.server.http_app"]
    assert rows and all(r.levelno == logging.INFO and r.exc_info is None for r in rows)
    assert "400 on /recommend [POST]" in rows[-1].getMessage()


def test_the_openapi_page_says_what_the_service_does(client: TestClient) -> None:
    spec = client.get("/docs.json").json()
    assert spec["info"]["version"] not in ("None", "", None)
    assert spec["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    paths = spec["paths"]
    for path in ("/tags/writeback", "/lookalike", "/admin/reload"):
        op = paths[path]["post"]
        assert {"ApiKey": []} in op["security"] and {"401", "403"} <= set(op["responses"]), path
    assert "security" not in paths["/recommend"]["post"]  # reads are open in this server
    assert {"400", "413", "415", "503"} <= set(paths["/recommend"]["post"]["responses"])
    profile = paths["/profile/{id}"]["get"]["responses"]
    assert {"400", "404", "409", "503"} <= set(profile) and "422" not in profile
    assert not any("422" in op.get("responses", {}) for item in paths.values() for op in item.values()
                   if isinstance(op, dict))
    assert "tag_lifecycle_stage" in str(_request_schema(spec, "/lookalike")["properties"]["rule"])  # a rule that works


def test_serve_on_a_taken_port_is_one_line_before_any_banner(tmp_path, monkeypatch) -> None:
    """`portrait serve --port N` with N taken: one line naming it, no 'portrait is serving' for another server."""
    import socket

    from typer.testing import CliRunner

    from portrait.cli import app

    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        res = CliRunner().invoke(app, ["serve", "--port", str(port), "--ready-timeout", "5"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert f"127.0.0.1:{port}" in text and "--port" in text and "is serving" not in text
