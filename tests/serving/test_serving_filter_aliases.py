"""`/recommend` filters also take the Python `ItemFilters` names (categories_allow, categories_deny, in_stock_only).

The README shows the bundle's `ItemFilters(in_stock_only=True, categories_deny=...)`; a caller who writes those
names into the HTTP body gets the same filter, not a 400; one filter given under both names is a 400 naming both.
"""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PAIRS = [("categories", "categories_allow", ["c1"]), ("exclude_categories", "categories_deny", ["c1"]),
         ("in_stock", "in_stock_only", True)]


def _items(client: TestClient, body: dict) -> list[str]:
    r = client.post("/recommend", json=body)
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


@pytest.mark.parametrize("name, alias, value", PAIRS)
def test_the_item_filters_name_is_the_same_filter(client: TestClient, world, name, alias, value) -> None:  # noqa: ANN001
    user = world.one_ids[1]
    plain = _items(client, {"user_id": user, "k": 20})
    named = _items(client, {"user_id": user, "k": 20, "filters": {name: value}})
    assert _items(client, {"user_id": user, "k": 20, "filters": {alias: value}}) == named
    if name != "in_stock":  # every test item may be in stock; the category filters surely change the list
        assert named != plain


def test_both_names_of_one_filter_are_a_400_naming_both(client: TestClient, world) -> None:  # noqa: ANN001
    r = client.post("/recommend", json={"user_id": world.one_ids[1],
                                        "filters": {"categories": ["c1"], "categories_allow": ["c2"]}})
    assert r.status_code == 400 and "categories and categories_allow" in r.text, r.text


def test_an_unknown_category_under_the_alias_is_still_a_400(client: TestClient, world) -> None:  # noqa: ANN001
    r = client.post("/recommend", json={"user_id": world.one_ids[1], "filters": {"categories_deny": ["skincar"]}})
    assert r.status_code == 400 and "'skincar'" in r.text


def test_the_openapi_page_names_the_http_fields_and_their_aliases(client: TestClient) -> None:
    spec = client.get("/docs.json").json()
    props = spec["components"]["schemas"]["ItemFilters"]["properties"]
    assert {"categories", "exclude_categories", "in_stock"} <= set(props)
    assert not {"categories_allow", "categories_deny", "in_stock_only"} & set(props)
    for name, alias, _ in PAIRS:
        assert f"also accepted as {alias}" in props[name]["description"]
