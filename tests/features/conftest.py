"""Hand-built canonical tables for the feature tests: a few people, events and orders placed exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CUTOFF = pd.Timestamp("2026-06-01", tz="UTC")


def ago(days: float, hour: int | None = None) -> pd.Timestamp:
    """``days`` before CUTOFF (optionally at a given UTC hour of that day)."""
    ts = CUTOFF - pd.Timedelta(days=days)
    return ts.normalize() + pd.Timedelta(hours=hour) if hour is not None else ts


class World:
    """Collects canonical rows; ``write()`` puts raw tables + a record map + golden records on disk."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.events: list[dict] = []
        self.orders: list[dict] = []
        self.lines: list[dict] = []
        self.people: dict[str, dict] = {}
        self.items = pd.DataFrame({
            "item_id": ["I1", "I2", "I3", "I4"], "category": ["shoes", "shoes", "books", "toys"],
            "brand": ["b1", "b1", "b2", "b3"], "price": [10.0, 30.0, 20.0, 5.0],
            "launch_date": pd.to_datetime(["2024-01-01", "2024-01-01", "2026-05-20", "2026-07-01"], utc=True),
            "in_stock": [True, True, True, False],
        })

    def person(self, pid: str, birth_year: int | None = 1990, first_seen: pd.Timestamp | None = None) -> str:
        self.people[pid] = {"birth_year": birth_year, "first_seen": first_seen}
        return pid

    def event(self, pid: str, event_type: str, ts: pd.Timestamp, item: str | None = "I1",
              session: str | None = None, channel: str = "app", value: float | None = None) -> None:
        self.people.setdefault(pid, {"birth_year": 1990, "first_seen": None})
        self.events.append({"source": "app", "record_id": f"r_{pid}", "event_type": event_type,
                            "item_id": None if event_type == "search" else item, "channel": channel, "ts": ts,
                            "session_id": session or f"s_{pid}_{ts:%Y%m%d}", "value": value})

    def order(self, pid: str, ts: pd.Timestamp, amount: float, items: tuple[str, ...] = ("I1",),
              discount: float = 0.0, coupon: bool = False, channel: str = "store") -> str:
        self.people.setdefault(pid, {"birth_year": 1990, "first_seen": None})
        oid = f"o{len(self.orders)}"
        self.orders.append({"order_id": oid, "source": "app", "record_id": f"r_{pid}", "ts": ts, "amount": amount,
                            "discount": discount, "coupon_used": coupon, "channel": channel, "store_id": None})
        self.lines += [{"order_id": oid, "item_id": i, "quantity": 1, "unit_price": amount / len(items)} for i in items]
        return oid

    def refund(self, pid: str, ts: pd.Timestamp, amount: float, of: str | None = None) -> str:
        """A refund row (negative amount), naming the order it refunds when ``of`` is given."""
        self.people.setdefault(pid, {"birth_year": 1990, "first_seen": None})
        oid = f"r{len(self.orders)}"
        self.orders.append({"order_id": oid, "source": "app", "record_id": f"r_{pid}", "ts": ts,
                            "amount": -abs(amount), "discount": 0.0, "coupon_used": False, "channel": "store",
                            "store_id": None, "refund_of": of})
        return oid

    def write(self) -> tuple[Path, Path]:
        raw, ident = self.root / "raw", self.root / "identity"
        raw.mkdir(parents=True, exist_ok=True)
        ident.mkdir(parents=True, exist_ok=True)
        us = "datetime64[us, UTC]"
        ev = pd.DataFrame(self.events, columns=["source", "record_id", "event_type", "item_id", "channel", "ts",
                                                "session_id", "value"])
        ev["ts"] = pd.to_datetime(ev["ts"], utc=True).astype(us)
        ev["value"] = ev["value"].astype("float64")
        ev.to_parquet(raw / "events.parquet", index=False)
        od = pd.DataFrame(self.orders, columns=["order_id", "source", "record_id", "ts", "amount", "discount",
                                                "coupon_used", "channel", "store_id", "refund_of"])
        if od["refund_of"].isna().all() and not (od["amount"] < 0).any():  # as tables written before refunds
            od = od.drop(columns="refund_of")
        od["ts"] = pd.to_datetime(od["ts"], utc=True).astype(us)
        od = od.astype({"amount": "float64", "discount": "float64", "coupon_used": "bool", "store_id": "string",
                        **({"refund_of": "string"} if "refund_of" in od else {})})
        od.to_parquet(raw / "orders.parquet", index=False)
        ol = pd.DataFrame(self.lines, columns=["order_id", "item_id", "quantity", "unit_price"])
        ol.astype({"quantity": "int64", "unit_price": "float64"}).to_parquet(raw / "order_lines.parquet", index=False)
        self.items.assign(launch_date=self.items["launch_date"].astype(us)).to_parquet(raw / "items.parquet", index=False)
        pids = sorted(self.people)
        pd.DataFrame({"source": "app", "record_id": [f"r_{p}" for p in pids], "one_id": pids}).to_parquet(
            ident / "record_map.parquet", index=False)
        gold = pd.DataFrame({
            "one_id": pids, "birth_year": pd.array([self.people[p]["birth_year"] for p in pids], dtype="Int64"),
            "gender": "F", "city": "Shanghai", "reg_channel": "app", "occupation": None,
            "first_seen": pd.to_datetime([self.people[p]["first_seen"] for p in pids], utc=True).astype(us),
            "n_records": 1,
        })
        gold.to_parquet(ident / "golden.parquet", index=False)
        return raw, ident


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return World(tmp_path / "data")


def compute(raw: Path, ident: Path, cutoffs=(CUTOFF,), tag_config=None, categories=None):
    """(customer frame, item frame) straight from DuckDB, indexed by one_id / item_id for one cutoff."""
    from features import customer, items
    from features.build import FeatureConfig, stage

    con, _ = stage(raw, ident, FeatureConfig())
    try:
        customer.set_cutoffs(con, list(cutoffs))
        cats = categories if categories is not None else customer.top_categories(con, 20)
        cust = customer.frame(con, cats, FeatureConfig(), tag_config)
        item = items.frame(con)
    finally:
        con.close()
    return cust, item


def random_world(root: Path, n_people: int = 60, seed: int = 0) -> World:
    """A random but reproducible world: a few hundred events and orders before CUTOFF."""
    rng = np.random.default_rng(seed)
    w = World(root)
    types = ["view", "view", "view", "click", "search", "add_to_cart", "favorite", "purchase"]
    for p in range(n_people):
        pid = w.person(f"p{p:03d}", birth_year=int(rng.integers(1950, 2008)),
                       first_seen=ago(float(rng.uniform(5, 500))))
        for _ in range(int(rng.integers(0, 25))):
            w.event(pid, str(rng.choice(types)), ago(float(rng.uniform(0.001, 400))), item=f"I{rng.integers(1, 4)}",
                    channel=str(rng.choice(["app", "web", "miniprogram"])))
        for _ in range(int(rng.integers(0, 5))):
            w.order(pid, ago(float(rng.uniform(0.001, 400))), float(rng.uniform(5, 300)),
                    items=(f"I{rng.integers(1, 4)}",), discount=float(rng.choice([0, 5])), coupon=bool(rng.random() < 0.3))
    return w


@pytest.fixture(scope="session")
def h():
    """The helpers above (tests cannot import a conftest by name under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(CUTOFF=CUTOFF, ago=ago, compute=compute, random_world=random_world, World=World)
