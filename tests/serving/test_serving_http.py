"""HTTP behaviour in-process (BentoML's ASGI app under Starlette's TestClient): validation, auth, errors."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEY = "test-key-123"



def test_health_ready_and_status(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200  # churn@champion is loaded
    status = client.get("/status").json()
    assert status["models"]["churn"] == "1"
    assert status["models"]["lookalike"] == "1" and status["missing_data"] == []
    assert client.post("/noop", json={}).json() == {"ok": True}


@pytest.mark.parametrize("body, field", [
    ({"user_id": "u1", "k": 0}, "k"),
    ({"user_id": "u1", "k": 1001}, "k"),
    ({"user_id": "u1", "k": "ten"}, "k"),
    ({"k": 5}, "user_id"),
    ({"user_id": "u1", "filters": {"colour": "red"}}, "colour"),
    ({"user_id": "u1", "filters": {"price_min": 5, "price_max": 1}}, "price_min"),
    ({"user_id": "u1", "surprise": 1}, "surprise"),
])
def test_bad_recommend_requests_name_the_field(client: TestClient, body: dict, field: str) -> None:
    r = client.post("/recommend", json=body)
    assert r.status_code == 400
    assert field in r.text


def test_malformed_json_and_oversized_lists(client: TestClient) -> None:
    r = client.post("/recommend", content=b'{"user_id": "13800138000", ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "json" in r.text.lower()
    assert "13800138000" not in r.text  # the id the caller sent is never echoed
    assert client.post("/score", json={"ids": []}).status_code == 400
    assert client.post("/score", json={"ids": ["x"] * 1001}).status_code == 400
    r = client.post("/lookalike", json={"ids": [], "reach": 10}, headers={"X-API-Key": KEY})
    assert r.status_code == 400
    r = client.post("/lookalike", json={"ids": ["a"], "rule": "x == 1"}, headers={"X-API-Key": KEY})
    assert r.status_code == 400 and "exactly one" in r.text
    r = client.post("/lookalike", json={"rule": "x == 1", "reach": "150%"}, headers={"X-API-Key": KEY})
    assert r.status_code == 400 and "reach" in r.text
    assert client.get("/audiences/a/members?page=0").status_code == 400


def test_write_and_admin_endpoints_need_the_key(client: TestClient) -> None:
    r = client.post("/admin/reload", json={})
    assert r.status_code == 401 and "X-API-Key" in r.json()["error"]
    assert client.post("/admin/reload", json={}, headers={"X-API-Key": "wrong"}).status_code == 403
    assert client.post("/tags/writeback", json={}).status_code == 401
    assert client.post("/lookalike", json={"rule": "x == 1"}).status_code == 401
    r = client.post("/admin/reload", json={}, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.json()["models"]["recommender"] == "1"


def test_missing_model_is_a_clear_503() -> None:
    from serving.loader import Bundle
    from serving.logic import score
    from serving.schemas import ScoreRequest
    from serving.service import _answer

    r = _answer(score, Bundle(generation=0), ScoreRequest(ids=["x"], models=["ltv"]))
    assert r.status_code == 503 and b"model not loaded: ltv" in r.body


def test_lookalike_saves_a_pageable_audience(client: TestClient, world) -> None:  # noqa: ANN001
    r = client.post("/lookalike", json={"ids": world.one_ids[:10], "reach": 20, "page_size": 5},
                    headers={"X-API-Key": KEY})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["size"] == 20 and len(body["members"]) == 5 and body["explanation"]
    assert not set(world.one_ids[:10]) & {m["one_id"] for m in body["members"]}  # seeds are not their own lookalikes
    page = client.get(f"/audiences/{body['audience_id']}/members?page=2&page_size=5").json()
    assert page["total"] == 20 and len(page["members"]) == 5
    r = client.post("/lookalike", json={"rule": "nonsense >> 3", "reach": 5}, headers={"X-API-Key": KEY})
    assert r.status_code == 400 and "rule" in r.json()["error"]


def test_read_endpoints_over_http(client: TestClient, world) -> None:  # noqa: ANN001
    r = client.post("/recommend", json={"user_id": "crm:m5", "k": 3, "filters": {"categories": ["c1", "c2"]}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["one_id"] == world.one_ids[5] and len(body["items"]) == 3 and body["fallback"] is None
    r = client.post("/recommend", json={"user_id": "someone@example.com", "k": 2})
    assert r.status_code == 200 and r.json()["fallback"] == "unknown_user"
    assert "someone@example.com" not in r.text
    r = client.post("/score", json={"ids": [world.one_ids[0], "x"], "models": ["ltv"]})
    assert r.status_code == 200 and [x["found"] for x in r.json()["results"]] == [True, False]
    r = client.get(f"/profile/{world.one_ids[0]}")
    assert r.status_code == 200 and r.json()["one_id"] == world.one_ids[0]
    r = client.get("/profile/13800138000")
    assert r.status_code == 404 and "13800138000" not in r.text
    assert client.post("/similar_items", json={"item_id": "I002", "k": 2}).status_code == 200


def test_audience_pages_and_csv(client: TestClient, world) -> None:  # noqa: ANN001
    import pandas as pd

    from serving.audiences import save

    members = pd.DataFrame({"one_id": world.one_ids[:25], "score": [1 - i / 25 for i in range(25)]})
    save(world.data_dir, "vip-lookalike", members)
    r = client.get("/audiences/vip-lookalike/members?page=3&page_size=10")
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 25 and [m["one_id"] for m in body["members"]] == world.one_ids[20:25]
    csv = client.get("/audiences/vip-lookalike/members.csv")
    assert csv.status_code == 200 and csv.text.splitlines()[0] == "one_id,score,percentile"
    assert len(csv.text.splitlines()) == 26
    assert client.get("/audiences/nope/members").status_code == 404
    assert client.get("/audiences/..%2Fsecret/members").status_code in (400, 404)


def test_an_empty_audience_page_says_it_is_empty_and_why(client: TestClient, world) -> None:  # noqa: ANN001
    import pandas as pd

    from features.audience import AudienceStore, latest_features
    from serving.audiences import save

    feats = latest_features(world.data_dir / "features")
    AudienceStore(world.data_dir / "audiences").create_rule("lapsed-none", "recency_days < -1", feats, overwrite=True)
    body = client.get("/audiences/lapsed-none/members").json()
    assert body["total"] == 0 and body["members"] == []
    assert body["note"].startswith("audience 'lapsed-none' is empty, 0 members: the rule 'recency_days < -1' matches "
                                   "no customer of the features as of "), body
    save(world.data_dir, "bare-empty", pd.DataFrame({"one_id": pd.Series([], dtype=str)}))  # no metadata
    assert client.get("/audiences/bare-empty/members").json()["note"] == "the audience is empty"
    save(world.data_dir, "two", pd.DataFrame({"one_id": world.one_ids[:2]}))
    assert client.get("/audiences/two/members").json()["note"] is None


def test_openapi_lists_every_endpoint(client: TestClient) -> None:
    paths = client.get("/docs.json").json()["paths"]
    for p in ("/recommend", "/similar_items", "/lookalike", "/score", "/tags/writeback", "/admin/reload",
              "/profile/{id}", "/audiences/{audience_id}/members", "/audiences/{audience_id}/members.csv",
              "/healthz", "/readyz", "/noop"):
        assert p in paths, p


@pytest.mark.parametrize("path", ["/noop", "/admin/reload", "/admin/memory"])
def test_endpoints_without_fields_refuse_unknown_ones(client: TestClient, path: str) -> None:
    """/noop and /admin/reload accepted any body; now an unknown field is a 400 naming it, as elsewhere."""
    key = {"X-API-Key": KEY}
    r = client.post(path, json={"surprise": 1}, headers=key)
    assert r.status_code == 400 and [d["loc"] for d in r.json()["detail"]] == [["surprise"]], r.text
    assert client.post(path, json={}, headers=key).status_code == 200
    assert client.post(path, headers=key).status_code == 200  # no body is no fields
    body = client.get("/docs.json").json()["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["additionalProperties"] is False and body["schema"]["properties"] == {}


def test_closed_reads_need_the_key() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from serving.auth import ApiKeyMiddleware

    inner = Starlette(routes=[Route("/recommend", lambda r: PlainTextResponse("ok"), methods=["POST"]),
                              Route("/healthz", lambda r: PlainTextResponse("ok"))])
    c = TestClient(ApiKeyMiddleware(inner, server_key=KEY, open_reads=False))
    assert c.post("/recommend").status_code == 401
    assert c.post("/recommend", headers={"X-API-Key": KEY}).status_code == 200
    assert c.get("/healthz").status_code == 200
    keyless = TestClient(ApiKeyMiddleware(inner, server_key=None, open_reads=False))
    r = keyless.post("/recommend", headers={"X-API-Key": "anything"})
    assert r.status_code == 403 and "PORTRAIT_API_KEY" in r.json()["error"]


def test_delete_audience_needs_the_key_and_removes_it(client: TestClient, world) -> None:  # noqa: ANN001
    import pandas as pd

    from serving.audiences import save

    save(world.data_dir, "to-delete", pd.DataFrame({"one_id": world.one_ids[:3]}))
    r = client.delete("/audiences/to-delete")
    assert r.status_code == 401 and "X-API-Key" in r.json()["error"]  # open reads do not open a DELETE
    assert client.delete("/audiences/to-delete", headers={"X-API-Key": "wrong"}).status_code == 403
    assert client.get("/audiences/to-delete/members").status_code == 200  # refused: nothing was deleted
    r = client.delete("/audiences/to-delete", headers={"X-API-Key": KEY})
    assert r.status_code == 200, r.text
    assert r.json() == {"audience_id": "to-delete", "deleted": True, "lookalike_tags": None}  # not a lookalike one
    assert client.get("/audiences/to-delete/members").status_code == 404
    r = client.delete("/audiences/to-delete", headers={"X-API-Key": KEY})
    assert r.status_code == 404 and "to-delete" in r.json()["error"]
    assert client.delete("/audiences/..%2Fsecret", headers={"X-API-Key": KEY}).status_code in (400, 404)
    assert (world.data_dir / "features").is_dir()  # a traversal attempt deleted nothing outside the audiences


def test_openapi_marks_delete_as_needing_the_key(client: TestClient) -> None:
    op = client.get("/docs.json").json()["paths"]["/audiences/{audience_id}"]["delete"]
    assert {"ApiKey": []} in op["security"] and {"401", "403", "404"} <= set(op["responses"])
