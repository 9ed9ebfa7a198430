"""Synthetic behaviour: sessions, events, orders and order lines, past and future.

Each person's online sessions and store visits are Poisson processes over their
active days (first activity to dormancy, cut at the horizon), with day-of-year
intensity from :func:`calendar` (promotion hunters follow the sharper promotion
curve) and hour-of-day from their clock (night owls). A session has a category
drawn from the person's interest mix and a funnel: an optional search, product
views (Zipf-popular items of that category), clicks, favorites, add-to-cart, and
for buying sessions a coupon use and one purchase event per order line. Store
visits are purchases at POS. Orders carry ``amount = sum(lines) - discount`` in
exact cents.

Sessions and orders are simulated ``future_days`` past ``now``: only those before ``now``
become raw rows; the rest become the ground truth's future behaviour. Future sessions skip
the browsing funnel (nobody sees it) and keep their purchases.
"""

from __future__ import annotations

import numpy as np

from features.sources.synthetic_config import DAY_US, GeneratorConfig
from features.sources.synthetic_identity import APP, MP, POS, WEB
from features.sources.synthetic_people import HOURS_DAY, HOURS_NIGHT, HOURS_STORE

EVENT_CODES = ("view", "click", "search", "add_to_cart", "purchase", "coupon_use", "favorite")
VIEW, CLICK, SEARCH, CART, PURCHASE, COUPON, FAVORITE = range(7)
SOURCE_WEIGHT = np.array([0.0, 3.0, 2.0, 0.0, 1.5])  # preference among a person's online records
HOUR_CDF = np.stack([np.cumsum(h) / h.sum() for h in (HOURS_DAY, HOURS_NIGHT, HOURS_STORE)])


def _pick(rng: np.random.Generator, owner: np.ndarray, weight: np.ndarray, n_people: int, who: np.ndarray) -> np.ndarray:
    """For each entry of ``who`` (a person), a row index among rows owned by that person, by weight.

    ``owner`` must be sorted and contain every person in ``who``.
    """
    if len(who) == 0:
        return np.zeros(0, dtype=np.int64)
    total = np.bincount(owner, weights=weight, minlength=n_people)
    cum = np.cumsum(weight)
    first = np.searchsorted(owner, owner)
    cw = (cum - (cum[first] - weight[first])) / total[owner] + owner
    last = np.r_[owner[1:] != owner[:-1], True]
    cw[last] = owner[last] + 1.0
    return np.minimum(np.searchsorted(cw, who + rng.random(len(who)), side="right"), len(owner) - 1)


def _days(rng: np.random.Generator, t0: np.ndarray, t1: np.ndarray, rate: np.ndarray, w: np.ndarray,
          cal: dict) -> tuple[np.ndarray, np.ndarray]:
    """Poisson event days in ``[t0, t1)`` per person: intensity ``rate * ((1-w) base + w promo)``."""
    cb, cp = cal["cbase"], cal["cpromo"]
    db, dp = cb[t1] - cb[t0], cp[t1] - cp[t0]
    mass = (1 - w) * db + w * dp
    who = np.repeat(np.arange(len(t0)), rng.poisson(rate * mass))
    promo = rng.random(len(who)) < (w * dp / np.maximum(mass, 1e-12))[who]
    lo = np.where(promo, cp[t0[who]], cb[t0[who]])
    y = lo + rng.random(len(who)) * np.where(promo, dp[who], db[who])
    day = np.where(promo, np.searchsorted(cp, y, side="right"), np.searchsorted(cb, y, side="right")) - 1
    return who, np.clip(day, t0[who], t1[who] - 1)


def _items(rng: np.random.Generator, catalog: dict, cat: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Zipf-popular items of each category, never before their launch day."""
    idx = np.minimum(np.searchsorted(catalog["cdf"], cat + rng.random(len(cat)), side="right"), len(catalog["cdf"]) - 1)
    item = catalog["order"][idx]
    late = catalog["launch_day"][item] > day
    return np.where(late, catalog["fallback"][cat], item)


def simulate(config: GeneratorConfig, rng: np.random.Generator, block: int, people: dict, records: dict,
             catalog: dict, cal: dict, conversions: dict, now_day: int, end_day: int, day0_us: int) -> dict:
    """Sessions, events and orders of one block (all of them, past and future; ``ts`` in µs since epoch)."""
    n = len(people["pid"])
    src, person = records["source"], records["person"]
    online_rec = np.isin(src, (APP, MP, WEB))
    store_rec = src == POS
    has_online = np.bincount(person[online_rec], minlength=n) > 0
    has_store = np.bincount(person[store_rec], minlength=n) > 0
    store_share = np.where(has_online & has_store, rng.beta(2, 3, n), has_store.astype(float))
    t0 = np.clip(np.maximum(people["start_day"], 0), 0, end_day)
    t1 = np.clip(people["dormant_day"], t0, end_day)
    w = 0.15 + 0.7 * people["price_sens"]
    rate = people["purchase_rate"]
    on_who, on_day = _days(rng, t0, t1, rate * (1 - store_share) / people["conv"], w, cal)
    st_who, st_day = _days(rng, t0, t1, rate * store_share, w, cal)
    cv = conversions
    who = np.concatenate([on_who, st_who, cv["person"]])
    n_cv = len(cv["person"])
    cv_store = ~has_online[cv["person"]]
    store = np.concatenate([np.zeros(len(on_who), bool), np.ones(len(st_who), bool), cv_store])
    day = np.concatenate([on_day, st_day, (cv["start_us"] - day0_us) // DAY_US])
    s = len(who)

    # session start: the day plus an hour from the person's clock
    profile = np.where(store, 2, people["night_owl"][who].astype(np.int64))
    u = rng.random(s)
    hour = np.zeros(s, dtype=np.int64)
    for k in range(3):  # day people, night owls, store opening hours
        sel = profile == k
        hour[sel] = np.minimum(np.searchsorted(HOUR_CDF[k], u[sel], side="right"), 23)
    start_us = day0_us + day * DAY_US + (hour * 3600 + rng.integers(0, 3600, s) - 3600 * config.utc_offset_hours) * 1_000_000
    start_us[s - n_cv:] = cv["start_us"]
    icdf = np.cumsum(people["interest"].astype(np.float64), axis=1)
    icdf = icdf / icdf[:, -1:] + np.arange(n)[:, None]
    icdf[:, -1] = np.arange(1, n + 1)
    n_cat = people["interest"].shape[1]
    cat = np.searchsorted(icdf.ravel(), who + rng.random(s), side="right") - who * n_cat
    cat = np.clip(cat, 0, n_cat - 1)
    cat[s - n_cv:] = cv["category"]
    rec_idx = np.zeros(s, dtype=np.int64)
    on_rows, st_rows = np.flatnonzero(online_rec), np.flatnonzero(store_rec)
    rec_idx[~store] = on_rows[_pick(rng, person[on_rows], SOURCE_WEIGHT[src[on_rows]], n, who[~store])]
    rec_idx[store] = st_rows[_pick(rng, person[st_rows], np.ones(len(st_rows)), n, who[store])]

    # the funnel; sessions after now only need their orders (their clicks would never be written)
    future = start_us >= day0_us + now_day * DAY_US
    shelf = store | future  # lines picked directly, without simulated views
    buy = store | (rng.random(s) < np.minimum(0.95, people["conv"][who] * cal["conv_boost"][day]))
    buy[s - n_cv:] = True
    spend = people["spend"][who]
    lines = np.where(buy, 1 + np.minimum(rng.poisson(0.15 + 0.25 * spend), 4), 0)
    lines[s - n_cv:] = 1
    views = np.where(shelf, 0, np.maximum(lines + rng.poisson(config.views_per_session, s), 1))
    search = ~shelf & (rng.random(s) < 0.35)
    abandon = ~shelf & ~buy & (rng.random(s) < config.cart_abandon_rate)
    p_coupon = config.coupon_rate * (0.3 + 2 * people["price_sens"][who]) * (1 + 4 * cal["markdown"][day])
    coupon = buy & (rng.random(s) < np.minimum(0.9, p_coupon))
    coupon[s - n_cv:] |= cv["coupon"]

    # views and the purchased lines (online: the first viewed items; store and future: picked at the shelf)
    v_sess = np.repeat(np.arange(s), views)
    v_j = np.arange(len(v_sess)) - np.repeat(np.cumsum(views) - views, views)
    v_item = _items(rng, catalog, cat[v_sess], day[v_sess])
    on_line = v_j < lines[v_sess]
    st_sess = np.repeat(np.flatnonzero(shelf), lines[shelf])
    l_sess = np.concatenate([v_sess[on_line], st_sess])
    l_item = np.concatenate([v_item[on_line], _items(rng, catalog, cat[st_sess], day[st_sess])])
    n_items = np.int64(len(catalog["category"]))
    key = np.unique(l_sess * n_items + l_item)  # one line per (order, item), sorted by session
    l_sess, l_item = key // n_items, key % n_items
    l_j = np.arange(len(l_sess)) - np.searchsorted(l_sess, l_sess)
    ordered = np.bincount(l_sess, minlength=s) > 0

    # events: (session, position key, type, item), then sorted and timed
    clk = rng.random(len(v_sess)) < 0.3
    fav = rng.random(len(v_sess)) < 0.04
    ab = np.flatnonzero(abandon)
    first_view = np.cumsum(views) - views
    cp = np.flatnonzero(coupon & ordered)
    on_l = ~shelf[l_sess]
    parts = [
        (np.flatnonzero(search), 0, SEARCH, -1),
        (v_sess, 1 + 4 * v_j, VIEW, v_item),
        (v_sess[clk], 2 + 4 * v_j[clk], CLICK, v_item[clk]),
        (v_sess[fav], 3 + 4 * v_j[fav], FAVORITE, v_item[fav]),
        (l_sess[on_l], 4000 + l_j[on_l], CART, l_item[on_l]),
        (ab, 4000, CART, v_item[first_view[ab]]),
        (cp, 5000, COUPON, -1),
        (l_sess, 6000 + l_j, PURCHASE, l_item),
    ]
    e_sess = np.concatenate([p[0] for p in parts])
    e_key = np.concatenate([np.broadcast_to(p[1], len(p[0])) for p in parts]).astype(np.int64)
    e_type = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts])
    e_item = np.concatenate([np.broadcast_to(p[3], len(p[0])) for p in parts]).astype(np.int64)
    order = np.argsort(e_sess * 8192 + e_key)  # keys are unique per (session, step), so any sort gives one order
    e_sess, e_type, e_item, e_key = e_sess[order], e_type[order], e_item[order], e_key[order]
    m = len(e_sess)
    first = np.r_[True, e_sess[1:] != e_sess[:-1]]
    gap = rng.exponential(45e6, m).astype(np.int64)
    prev_checkout = np.r_[False, (e_type[:-1] == COUPON) | (e_type[:-1] == PURCHASE)]
    gap[first | ((e_type == PURCHASE) & prev_checkout)] = 0
    cs = np.cumsum(gap)
    e_ts = start_us[e_sess] + cs - cs[np.maximum.accumulate(np.where(first, np.arange(m), 0))]

    # orders: one per session with lines, exact cents
    o_sess = np.flatnonzero(ordered)
    o_of_sess = np.full(s, -1, dtype=np.int64)
    o_of_sess[o_sess] = np.arange(len(o_sess))
    o_ts = np.zeros(s, dtype=np.int64)
    pe = e_type == PURCHASE
    o_ts[e_sess[pe]] = e_ts[pe]
    qty = 1 + np.minimum(rng.poisson(0.1 + 0.2 * spend[l_sess]), 9)
    unit = np.rint(catalog["price_cents"][l_item] * (1 - cal["markdown"][day[l_sess]])).astype(np.int64)
    subtotal = np.bincount(o_of_sess[l_sess], weights=qty * unit, minlength=len(o_sess)).astype(np.int64)
    tier = np.clip(subtotal // 10000 * 1000, 500, 10000)  # 10 yuan off per 100 spent, 5..100 yuan
    discount = np.where(coupon[o_sess], np.minimum(tier, subtotal * 3 // 10), 0)
    return {
        "sess_who": who, "sess_rec": rec_idx, "sess_start": start_us, "sess_cat": cat, "sess_store": store,
        "e_sess": e_sess, "e_type": e_type, "e_item": e_item, "e_ts": e_ts,
        "o_sess": o_sess, "o_ts": o_ts[o_sess], "o_subtotal": subtotal, "o_discount": discount,
        "o_coupon": coupon[o_sess], "l_order": o_of_sess[l_sess], "l_item": l_item, "l_qty": qty, "l_unit": unit,
    }
