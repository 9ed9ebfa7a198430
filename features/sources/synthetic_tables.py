"""One block of the synthetic world as Arrow tables: canonical tables and ground truth.

:func:`build_block` runs people -> records -> campaigns -> behaviour for one block
with its own seed, then cuts at ``now``: canonical tables get only what happened
before it, the truth tables get the future too. Arrow schemas follow
``features.schema`` (strings, int64, float64, bool, ``timestamp[us, UTC]``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import TABLES
from features.sources import synthetic_ids as ids
from features.sources.synthetic_behaviour import EVENT_CODES, simulate
from features.sources.synthetic_campaigns import DRIVERS, contact
from features.sources.synthetic_config import DAY_US, GeneratorConfig
from features.sources.synthetic_identity import REG_CHANNEL, SOURCES, make_records, noise_labels
from features.sources.synthetic_people import CAT_NAMES, CITY_NAMES, OCCUPATIONS, SEGMENT_NAMES, make_people
from features.sources.synthetic_refunds import add_refunds

TS = pa.timestamp("us", tz="UTC")
_KIND = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "money": pa.float64(), "bool": pa.bool_(), "timestamp": TS}
SCHEMAS = {name: pa.schema([(c.name, _KIND[c.kind]) for c in t.columns]) for name, t in TABLES.items()}
# events as written: the repetitive string columns dictionary-encoded (readers see plain strings)
EVENTS_CODED = pa.schema([pa.field(f.name, pa.dictionary(pa.int32(), pa.string())) if f.name in
                          ("source", "record_id", "event_type", "item_id", "channel") else f for f in SCHEMAS["events"]])
CHANNEL = ("crm", "app", "miniprogram", "store", "web")  # event/order channel by source
PROFILE_RATE = np.array([1.0, 0.6, 0.75, 0.25, 0.1])  # records with a profile row, by source
FUTURE_WINDOWS = (30, 90, 180)


def _ts(us: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), type=pa.int64(), mask=None if valid is None else ~valid).cast(TS)


def _table(name: str, cols: dict) -> pa.Table:
    return pa.table(cols, schema=SCHEMAS[name])


def person_ids(pid: np.ndarray) -> pa.Array:
    return ids.strings(len(pid), b"P", ids.digits(pid, 8))


def build_block(config: GeneratorConfig, block: int, world: dict) -> dict:
    """Tables (name -> ``pa.Table``) and counters for people ``block * block_size ..``."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1, block)))
    first = block * config.block_size
    n = min(config.block_size, config.people - first)
    now_day, end_day, day0 = world["now_day"], world["end_day"], world["day0_us"]
    now_us = day0 + now_day * DAY_US
    people = make_people(config, rng, first, n, now_day, end_day)
    rec = make_records(config, rng, block, people, now_day)
    people["store"] = world["store_offset"][people["city"]] + (rng.random(n) * world["store_count"][people["city"]]).astype(np.int64)
    camp = contact(config, rng, world["campaigns"], people, rec, rec["has_phone"], rec["has_email"], day0, now_us)
    sim = simulate(config, rng, block, people, rec, world["catalog"], world["calendar"], camp["conversions"],
                   now_day, end_day, day0)
    src, person = rec["source"], rec["person"]
    r = len(src)
    src_names = ids.pick(SOURCES, src)

    # events before now, in time order
    e_rec = sim["sess_rec"][sim["e_sess"]]
    past = np.flatnonzero(sim["e_ts"] < now_us)
    past = past[np.argsort(sim["e_ts"][past], kind="stable")]
    e_item = sim["e_item"][past]
    e_sess = sim["e_sess"][past]
    n_sess = len(sim["sess_who"])
    sess_num = (np.uint64(block) << np.uint64(40)) + np.arange(n_sess, dtype=np.uint64)
    session_ids = ids.strings(n_sess, b"S", ids.hexdigits(ids.mix64(sess_num, 61)))  # per session, not per event
    # dictionary-encoded columns: no string copies, and Parquet writes the codes as they are
    ev_rec = e_rec[past]
    used_items, item_code = np.unique(np.maximum(e_item, 0), return_inverse=True)
    events = pa.table({
        "source": ids.coded(SOURCES, src[ev_rec]), "record_id": ids.coded(rec["record_id"], ev_rec),
        "event_type": ids.coded(EVENT_CODES, sim["e_type"][past]),
        "item_id": ids.coded(world["item_ids"].take(pa.array(used_items)), np.where(e_item < 0, -1, item_code)),
        "channel": ids.coded(CHANNEL, src[ev_rec]), "ts": _ts(sim["e_ts"][past]),
        "session_id": session_ids.take(pa.array(e_sess)),
        "value": pa.nulls(len(past), pa.float64()),
    }, schema=EVENTS_CODED)

    # orders and lines before now
    o_rec = sim["sess_rec"][sim["o_sess"]]
    o_past = np.flatnonzero(sim["o_ts"] < now_us)
    o_past = o_past[np.argsort(sim["o_ts"][o_past], kind="stable")]
    o_num = (np.uint64(block) << np.uint64(40)) + np.arange(len(sim["o_sess"]), dtype=np.uint64)
    order_ids = ids.strings(len(o_num), b"O", ids.hexdigits(ids.mix64(o_num, 71)))
    o_src = src[o_rec[o_past]]
    store_of = people["store"][person[o_rec[o_past]]]
    orders = _table("orders", {
        "order_id": order_ids.take(pa.array(o_past)), "source": ids.pick(SOURCES, o_src),
        "record_id": rec["record_id"].take(pa.array(o_rec[o_past])), "ts": _ts(sim["o_ts"][o_past]),
        "amount": (sim["o_subtotal"][o_past] - sim["o_discount"][o_past]) / 100.0,
        "discount": sim["o_discount"][o_past] / 100.0, "coupon_used": sim["o_coupon"][o_past],
        "channel": ids.pick(CHANNEL, o_src), "store_id": world["store_ids"].take(pa.array(store_of, mask=o_src != 3)),
        "refund_of": pa.nulls(len(o_past), pa.string()),
    })
    orders = add_refunds(config, block, orders, now_us)
    rank = np.full(len(sim["o_sess"]), -1)
    rank[o_past] = np.arange(len(o_past))
    l_keep = np.flatnonzero(rank[sim["l_order"]] >= 0)
    l_keep = l_keep[np.lexsort((l_keep, rank[sim["l_order"][l_keep]]))]
    lines = _table("order_lines", {
        "order_id": order_ids.take(pa.array(sim["l_order"][l_keep])),
        "item_id": world["item_ids"].take(pa.array(sim["l_item"][l_keep])),
        "quantity": sim["l_qty"][l_keep], "unit_price": sim["l_unit"][l_keep] / 100.0,
        "line_no": pa.nulls(len(l_keep), pa.string()),
    })

    # identity records: observed_at = last time the source saw the record (before now)
    created_us = day0 + rec["created_day"] * DAY_US + rng.integers(8 * 3600, 22 * 3600, r) * 1_000_000
    last_day = np.minimum(people["dormant_day"][person], now_day)
    crm_seen = created_us + (rng.random(r) * np.maximum(last_day - rec["created_day"] - 1, 0) * DAY_US).astype(np.int64)
    observed = np.where(src == 0, crm_seen, created_us)
    np.maximum.at(observed, e_rec[past], sim["e_ts"][past])
    pid_str = person_ids(people["pid"])
    by_record = pc.sort_indices(pa.table({"s": src_names, "r": rec["record_id"]}), [("s", "ascending"), ("r", "ascending")])
    identity = _table("identity_records", {
        "source": src_names, "record_id": rec["record_id"], **{k: rec[k] for k in
        ("member_id", "phone", "email", "unionid", "openid", "device_id", "cookie_id")}, "observed_at": _ts(observed),
    }).take(by_record)
    truth_records = pa.table({
        "source": src_names, "record_id": rec["record_id"], "person_id": pid_str.take(pa.array(person)),
        "noise": noise_labels(rec["noise"]), "created_at": _ts(created_us),
    }).take(by_record)
    profiles = _profiles(rng, config, rec, people, src_names, observed)
    contacts, truth_campaigns = _contacts(world["campaigns"], camp, rec, src_names, pid_str, people)
    truth_people = _truth_people(config, world, people, rec, sim, pid_str, now_us, now_day, end_day, e_rec, past, o_past)
    return {
        "tables": {"identity_records": identity, "profiles": profiles, "events": events, "orders": orders,
                   "order_lines": lines, "campaign_contacts": contacts, "truth_records": truth_records,
                   "truth_people": truth_people, "truth_campaigns": truth_campaigns},
        "future_sessions": int((sim["sess_start"] >= now_us).sum()), "future_orders": int(len(sim["o_ts"]) - len(o_past)),
    }


def _sorted(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, [("source", "ascending"), ("record_id", "ascending")]))


def _profiles(rng: np.random.Generator, config: GeneratorConfig, rec: dict, people: dict, src_names: pa.Array,
              observed: np.ndarray) -> pa.Table:
    """Profile attributes per record, as each source knows them: partial, sometimes stale or 'U'."""
    src, p = rec["source"], rec["person"]
    r = len(src)

    def known(rates: list[float]) -> np.ndarray:
        return rng.random(r) < np.array(rates)[src]

    birth = int(str(config.now)[:4]) - people["age"][p] + np.where(rng.random(r) < 0.1, rng.integers(-1, 2, r), 0)
    gender = np.where(rng.random(r) < 0.03, 2, np.where(people["female"][p], 0, 1))
    city = np.where(rng.random(r) < 0.05, rng.integers(0, len(CITY_NAMES), r), people["city"][p])
    reg = np.where(src == 0, rec["reg_source"][p], src)
    table = _table("profiles", {
        "source": src_names, "record_id": rec["record_id"],
        "birth_year": pa.array(birth, mask=~known([0.9, 0.5, 0.0, 0.3, 0.2]), type=pa.int64()),
        "gender": ids.pick(("F", "M", "U"), np.where(known([0.95, 0.7, 0.9, 0.3, 0.3]), gender, -1)),
        "city": ids.pick(CITY_NAMES, np.where(known([0.9, 0.6, 0.8, 1.0, 0.3]), city, -1)),
        "reg_channel": ids.pick(REG_CHANNEL, reg),
        "occupation": ids.pick(OCCUPATIONS, np.where((src == 0) & (rng.random(r) < 0.4), people["occupation"][p], -1)),
        "observed_at": _ts(observed),
    })
    return _sorted(table.filter(pa.array(rng.random(r) < PROFILE_RATE[src])))


def _contacts(campaigns: list[dict], camp: dict, rec: dict, src_names: pa.Array, pid_str: pa.Array,
              people: dict) -> tuple[pa.Table, pa.Table]:
    """The canonical campaign_contacts table and its ground truth (probability, driver)."""
    k = len(camp["record"])
    names = [c["campaign_id"] for c in campaigns] or ["none"]
    rows = pa.array(camp["record"], type=pa.int64())
    responded = camp["responded_at"] >= 0
    base = {
        "campaign_id": ids.pick(names, camp["campaign"]), "source": src_names.take(rows),
        "record_id": rec["record_id"].take(rows),
    }
    contacts = _table("campaign_contacts", {
        **base, "channel": ids.pick([c["channel"] for c in campaigns] or ["none"], camp["campaign"]),
        "sent_at": _ts(camp["sent_us"]), "responded_at": _ts(camp["responded_at"], responded),
        "converted": camp["converted"],
    })
    truth = pa.table({
        **base, "person_id": pid_str.take(pa.array(camp["person"], type=pa.int64())),
        "kind": ids.pick([c["kind"] for c in campaigns] or ["none"], camp["campaign"]),
        "category": ids.pick([c["category"] or "" for c in campaigns] or ["none"], camp["campaign"]),
        "p_respond": pa.array(camp["p_respond"], type=pa.float64()), "responded": responded,
        "converted": camp["converted"], "driver": ids.pick(DRIVERS, camp["driver"].astype(np.int64)),
    })
    assert len(contacts) == len(truth) == k
    return contacts, truth


def _truth_people(config: GeneratorConfig, world: dict, people: dict, rec: dict, sim: dict, pid_str: pa.Array,
                  now_us: int, now_day: int, end_day: int, e_rec: np.ndarray, past: np.ndarray,
                  o_past: np.ndarray) -> pa.Table:
    """Latent traits, what the raw data shows, and the future behaviour after ``now``."""
    n = len(people["pid"])
    day0 = world["day0_us"]
    o_person = sim["sess_who"][sim["o_sess"]]
    o_amount = (sim["o_subtotal"] - sim["o_discount"]) / 100.0
    o_ts = sim["o_ts"]
    fut = {w: (o_ts >= now_us) & (o_ts < now_us + w * DAY_US) for w in FUTURE_WINDOWS}
    s_fut = (sim["sess_start"] >= now_us) & (sim["sess_start"] < now_us + 90 * DAY_US)
    interest = people["interest"]
    top2 = np.argsort(-interest, axis=1, kind="stable")[:, :2]
    dormant_day = people["dormant_day"]
    last_order = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_order, o_person[o_past], o_ts[o_past])
    bits = (rec["has"] * (1 << np.arange(5))).sum(axis=1)
    uniq, inv = np.unique(bits, return_inverse=True)
    src_label = pa.array(["|".join(s for i, s in enumerate(SOURCES) if b >> i & 1) for b in uniq.tolist()]).take(pa.array(inv))
    owner = rec["phone_owner"]
    hh = rec["household"]
    cols = {
        "person_id": pid_str, "segment": ids.pick(SEGMENT_NAMES, people["segment"]),
        "gender": ids.pick(("F", "M"), np.where(people["female"], 0, 1)), "age": people["age"],
        "birth_year": int(str(config.now)[:4]) - people["age"], "city": ids.pick(CITY_NAMES, people["city"]),
        "reg_channel": ids.pick(REG_CHANNEL, rec["reg_source"]), "occupation": ids.pick(OCCUPATIONS, people["occupation"]),
        "member": people["member"], "home_store": world["store_ids"].take(pa.array(people["store"])),
        "household_id": ids.where(hh >= 0, ids.strings(n, b"H", ids.digits(np.maximum(hh, 0), 12))),
        "kiosk_registered": rec["kiosk"], "phone_from_person": ids.where(owner != np.arange(n), pid_str.take(pa.array(owner))),
        "sources": src_label, "n_records": np.bincount(rec["person"], minlength=n),
        "interest": pa.FixedSizeListArray.from_arrays(pa.array(interest.ravel()), interest.shape[1]),
        "top_category": ids.pick(CAT_NAMES, top2[:, 0]), "second_category": ids.pick(CAT_NAMES, top2[:, 1]),
        "top_share": interest[np.arange(n), top2[:, 0]].astype(np.float64),
        "purchase_rate": people["purchase_rate"] * 365.0, "session_conversion": people["conv"],
        "spend_level": people["spend"], "price_sensitivity": people["price_sens"], "night_owl": people["night_owl"],
        "start_at": _ts(day0 + people["start_day"] * DAY_US),
        "churn_hazard": people["hazard"] * 365.0,
        "dormant_since": _ts(day0 + dormant_day * DAY_US, dormant_day <= end_day),
        "dormant": dormant_day <= now_day, "lapsed": people["lapsed"],
        "churn_next_90d": (dormant_day > now_day) & (dormant_day <= now_day + 90),
        "events_observed": np.bincount(sim["sess_who"][sim["e_sess"][past]], minlength=n),
        "orders_observed": np.bincount(o_person[o_past], minlength=n),
        "spend_observed": np.bincount(o_person[o_past], weights=o_amount[o_past], minlength=n).astype(np.float64),
        "last_order_at": _ts(last_order, last_order >= 0),
        "future_purchases_30d": np.bincount(o_person[fut[30]], minlength=n),
        "future_purchases_90d": np.bincount(o_person[fut[90]], minlength=n),
        "future_spend_90d": np.bincount(o_person[fut[90]], weights=o_amount[fut[90]], minlength=n).astype(np.float64),
        "future_spend_180d": np.bincount(o_person[fut[180]], weights=o_amount[fut[180]], minlength=n).astype(np.float64),
        "future_sessions_90d": np.bincount(sim["sess_who"][s_fut], minlength=n),
    }
    cols["future_active_90d"] = cols["future_purchases_90d"] > 0
    buys = np.zeros((n, len(CAT_NAMES)), dtype=bool)
    buys[o_person[fut[30]], sim["sess_cat"][sim["o_sess"]][fut[30]]] = True
    for c, name in enumerate(CAT_NAMES):
        cols[f"future_buy_30d_{name}"] = buys[:, c]
    return pa.table(cols)
