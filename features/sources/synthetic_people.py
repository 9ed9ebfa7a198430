"""Synthetic people, item catalog and calendar: the latent world the sources observe.

- :data:`CATEGORIES` and :data:`SEGMENTS`: each person belongs to one interest
  segment, which sets a Dirichlet prior over the 20 item categories, gender and age.
- :func:`calendar`: daily intensity over the simulated days with weekly seasonality,
  the 618 (June 18) and Double 11 (Nov 11) peaks with their pre-sale ramps, Double 12
  and a Chinese-New-Year dip; one curve for browsing, a sharper one for promotion
  hunters, and the markdown applied to prices on promotion days.
- :func:`make_catalog`: items with categories, brands, lognormal prices by category,
  launch dates, stock flags and Zipf-like popularity within each category.
- :func:`make_people`: one block of people with their latent traits (vectorized).
"""

from __future__ import annotations

import numpy as np

from features.sources.synthetic_config import HISTORY_YEARS, GeneratorConfig

# name, share of the catalog, median price (CNY)
CATEGORIES: tuple[tuple[str, float, float], ...] = (
    ("skincare", 0.09, 180), ("makeup", 0.07, 150), ("fragrance", 0.03, 450), ("haircare", 0.04, 60),
    ("womens_apparel", 0.10, 250), ("mens_apparel", 0.07, 260), ("shoes", 0.06, 400), ("bags", 0.04, 600),
    ("sports", 0.05, 200), ("outdoor", 0.04, 350), ("electronics", 0.06, 1200), ("home", 0.06, 150),
    ("kitchen", 0.05, 120), ("baby", 0.04, 120), ("toys", 0.03, 100), ("pets", 0.03, 80),
    ("books", 0.04, 45), ("snacks", 0.06, 35), ("beverages", 0.04, 25), ("health", 0.05, 150),
)
CAT_NAMES = tuple(c[0] for c in CATEGORIES)
CAT = {name: i for i, name in enumerate(CAT_NAMES)}

# name, share of people, P(female), mean age, purchase-rate multiplier, mean price sensitivity, interests
SEGMENTS: tuple[tuple[str, float, float, float, float, float, dict[str, float]], ...] = (
    ("beauty", 0.16, 0.90, 29, 1.2, 0.45, {"skincare": 5, "makeup": 4, "fragrance": 2, "haircare": 2, "health": 1}),
    ("fashion", 0.16, 0.65, 30, 1.0, 0.50, {"womens_apparel": 5, "shoes": 3, "bags": 2.5, "makeup": 1}),
    ("sports_outdoor", 0.11, 0.40, 31, 0.9, 0.35, {"sports": 5, "outdoor": 3.5, "shoes": 2, "health": 1.5, "beverages": 1.5}),
    ("tech", 0.11, 0.25, 32, 0.6, 0.30, {"electronics": 6, "books": 2, "home": 1, "outdoor": 1}),
    ("parent", 0.13, 0.75, 34, 1.3, 0.55, {"baby": 6, "toys": 4, "health": 1.5, "snacks": 1.5, "kitchen": 1}),
    ("home_living", 0.12, 0.60, 40, 0.9, 0.50, {"home": 5, "kitchen": 4, "books": 1, "pets": 1}),
    ("foodie", 0.13, 0.55, 33, 1.5, 0.55, {"snacks": 5, "beverages": 4, "kitchen": 2, "health": 1}),
    ("pet_lover", 0.08, 0.62, 30, 1.2, 0.45, {"pets": 6, "home": 1.5, "snacks": 1.5, "outdoor": 1}),
)
SEGMENT_NAMES = tuple(s[0] for s in SEGMENTS)

CITIES: tuple[tuple[str, float], ...] = (
    ("Shanghai", 10), ("Beijing", 9), ("Guangzhou", 7), ("Shenzhen", 7), ("Hangzhou", 6), ("Chengdu", 6),
    ("Chongqing", 5), ("Wuhan", 5), ("Nanjing", 5), ("Xi'an", 4), ("Suzhou", 4), ("Tianjin", 4),
    ("Changsha", 4), ("Zhengzhou", 3), ("Qingdao", 3), ("Shenyang", 3), ("Dongguan", 3), ("Foshan", 3),
    ("Hefei", 3), ("Kunming", 3), ("Xiamen", 2), ("Ningbo", 2),
)
CITY_NAMES = tuple(c[0] for c in CITIES)
OCCUPATIONS = ("student", "office_worker", "manager", "engineer", "teacher", "healthcare", "self_employed",
               "service", "homemaker", "retired")
CNY = {2024: "2024-02-10", 2025: "2025-01-29", 2026: "2026-02-17", 2027: "2027-02-06", 2028: "2028-01-26"}

WEEKLY = np.array([0.93, 0.90, 0.92, 0.96, 1.04, 1.16, 1.09])  # Monday .. Sunday
HOURS_DAY = np.array([.3, .15, .1, .05, .05, .1, .3, .8, 1.2, 1.4, 1.5, 1.6, 1.9, 1.7, 1.4, 1.4, 1.5, 1.6, 1.8, 2.2, 2.5, 2.3, 1.5, .8])
HOURS_NIGHT = np.array([1.6, 1.2, .8, .4, .2, .1, .1, .3, .6, .8, .9, 1., 1.2, 1., .9, .9, 1., 1.1, 1.4, 1.8, 2.2, 2.8, 3., 2.6])
HOURS_STORE = np.array([0] * 10 + [1.0, 1.2, 1.4, 1.3, 1.2, 1.2, 1.3, 1.5, 1.6, 1.5, 1.2, 0, 0, 0], dtype=float)


def calendar(first: np.datetime64, n_days: int) -> dict[str, np.ndarray]:
    """Daily curves over ``n_days`` from ``first``: ``base`` and ``promo`` intensities (mean 1),
    their cumulative sums ``cbase``/``cpromo`` (length n+1), price ``markdown`` and ``conv_boost``."""
    days = first + np.arange(n_days)
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    lift = np.ones(n_days)
    markdown = np.zeros(n_days)
    years = range(days[0].astype("datetime64[Y]").astype(int) + 1970, days[-1].astype("datetime64[Y]").astype(int) + 1971)
    for y in years:
        def span(a: str, b: str) -> np.ndarray:
            return (days >= np.datetime64(f"{y}-{a}")) & (days <= np.datetime64(f"{y}-{b}"))

        for start, peak, ramp_to, peak_lift in (("06-01", "06-18", 2.0, 4.0), ("10-24", "11-11", 2.2, 6.0)):
            pre = span(start, peak) & (days < np.datetime64(f"{y}-{peak}"))
            if pre.any():  # pre-sale: a rising ramp towards the peak day
                lift[pre] = np.linspace(1.2, ramp_to, pre.sum())
                markdown[pre] = 0.08
            day = days == np.datetime64(f"{y}-{peak}")
            lift[day], markdown[day] = peak_lift, 0.2
            after = (days > np.datetime64(f"{y}-{peak}")) & (days <= np.datetime64(f"{y}-{peak}") + 2)
            lift[after] = 1.4
        d12 = days == np.datetime64(f"{y}-12-12")
        lift[d12], markdown[d12] = 1.8, 0.1
        if y in CNY:  # Spring Festival: logistics stop, shoppers travel
            c = np.datetime64(CNY[y])
            lift[(days >= c - 10) & (days <= c + 7)] *= 0.7
    promo = WEEKLY[weekday] * lift
    base = WEEKLY[weekday] * (1 + 0.3 * (lift - 1))
    promo, base = promo / promo.mean(), base / base.mean()
    return {
        "base": base, "promo": promo, "markdown": markdown, "conv_boost": 1 + 0.6 * (lift - 1) / 5,
        "cbase": np.concatenate([[0.0], np.cumsum(base)]), "cpromo": np.concatenate([[0.0], np.cumsum(promo)]),
    }


def make_catalog(config: GeneratorConfig, rng: np.random.Generator, first_day: np.datetime64) -> dict[str, np.ndarray]:
    """The item catalog: arrays ``category, brand (code), brand_name, price_cents, launch_day,
    in_stock, weight`` plus the per-category sampling arrays ``order``/``cdf`` and ``fallback``."""
    n = config.items
    shares = np.array([c[1] for c in CATEGORIES])
    counts = np.maximum(5, np.floor(shares / shares.sum() * n)).astype(np.int64)
    counts[np.argmax(counts)] += n - counts.sum()
    category = np.repeat(np.arange(len(CATEGORIES)), counts)
    # brands: ~20 items per brand, each brand with its own price level
    n_brands = np.clip(counts // 20, 3, 60)
    brand_local = (rng.random(n) ** 1.5 * n_brands[category]).astype(np.int64)
    brand_offset = np.concatenate([[0], np.cumsum(n_brands)])
    brand = brand_offset[category] + brand_local
    brand_level = rng.lognormal(0.0, 0.4, brand_offset[-1])
    median = np.array([c[2] for c in CATEGORIES])[category]
    price = median * brand_level[brand] * rng.lognormal(0.0, 0.35, n)
    price_cents = (np.round(np.maximum(price, 3.0)) * 100 - 10).astype(np.int64)  # prices end in .90
    # popularity: Zipf over a random rank within the category
    rank = np.empty(n, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for c in range(len(CATEGORIES)):  # 20 iterations, not per item
        rank[starts[c]:starts[c + 1]] = rng.permutation(counts[c]) + 1
    weight = 1.0 / rank ** config.zipf_exponent
    order = np.lexsort((rank, category))  # per category, most popular first
    w = weight[order]
    cum = np.cumsum(w)
    seg_start = np.repeat(cum[starts[:-1]] - w[starts[:-1]], counts)
    seg_total = np.repeat(cum[starts[1:] - 1], counts) - seg_start
    cdf = category[order] + (cum - seg_start) / seg_total
    cdf[starts[1:] - 1] = np.arange(1, len(CATEGORIES) + 1)  # exact segment ends
    # launches over the 3 years before the window, 15% inside the simulated horizon;
    # each category's most popular item is old so it can stand in for not-yet-launched ones
    horizon = config.months * 31 + config.future_days
    launch = np.where(rng.random(n) < 0.15, rng.integers(0, horizon, n), -rng.integers(30, 365 * HISTORY_YEARS, n))
    fallback = order[starts[:-1]]
    launch[fallback] = -365 * HISTORY_YEARS
    return {
        "category": category, "brand": brand, "n_brands": n_brands, "price_cents": price_cents,
        "launch_day": launch, "in_stock": rng.random(n) < 0.92, "weight": weight,
        "order": order, "cdf": cdf, "fallback": fallback, "first_day": first_day,
    }


def make_people(config: GeneratorConfig, rng: np.random.Generator, first: int, n: int, now_day: int,
                end_day: int) -> dict[str, np.ndarray]:
    """Latent traits of people ``first .. first+n-1`` (days are relative to the window start)."""
    seg = rng.choice(len(SEGMENTS), n, p=_norm([s[1] for s in SEGMENTS]))
    female = rng.random(n) < np.array([s[2] for s in SEGMENTS])[seg]
    age = np.clip(np.rint(rng.normal(np.array([s[3] for s in SEGMENTS])[seg], 9.0)), 16, 75).astype(np.int64)
    city = rng.choice(len(CITIES), n, p=_norm([c[1] for c in CITIES]))
    # interests: Dirichlet around the segment's profile, apparel and makeup following gender
    profile = np.zeros((len(SEGMENTS), len(CATEGORIES)))
    for s, seg_def in enumerate(SEGMENTS):
        for name, w in seg_def[6].items():
            profile[s, CAT[name]] = w
    alpha = 0.12 + 0.6 * profile[seg]
    wa, ma, mk = CAT["womens_apparel"], CAT["mens_apparel"], CAT["makeup"]
    male = ~female
    alpha[male, ma], alpha[male, wa] = alpha[male, wa] + alpha[male, ma], 0.05
    alpha[male, mk] *= 0.2
    alpha[female, ma] *= 0.3
    interest = rng.gamma(alpha)
    interest = (interest / interest.sum(axis=1, keepdims=True)).astype(np.float32)
    # value and behaviour
    mult = np.array([s[4] for s in SEGMENTS])[seg]
    purchase_rate = rng.gamma(config.rate_shape, config.orders_per_year / config.rate_shape, n) * mult / 365.0
    a = 2.0
    conv = rng.beta(a, a * (1 - config.conversion_mean) / config.conversion_mean, n)
    ps_mean = np.array([s[5] for s in SEGMENTS])[seg]
    price_sens = rng.beta(6 * ps_mean, 6 * (1 - ps_mean))
    spend = rng.lognormal(0.0, 0.5, n)
    night_owl = rng.random(n) < np.where(age < 30, 0.35, 0.15)
    member = rng.random(n) < 0.7
    # lifetime: first activity, then an exponential time to dormancy with a lognormal hazard
    new = rng.random(n) < config.new_share
    start = np.where(new, rng.integers(0, max(now_day, 1), n), -rng.integers(1, 365 * HISTORY_YEARS, n))
    hazard = np.exp(rng.normal(np.log(np.log(2) / config.median_lifetime_days), 0.9, n))
    dormant = np.maximum(start, 0) + np.ceil(rng.exponential(1.0 / hazard)).astype(np.int64)
    lapsed = ~new & (start < -60) & (rng.random(n) < config.lapsed_share)
    dormant = np.where(lapsed, start + 30 + (rng.random(n) * (-start - 30)).astype(np.int64), dormant)
    dormant = np.minimum(dormant, end_day + 1)  # end_day + 1 means "still active at the horizon"
    return {
        "pid": np.arange(first, first + n, dtype=np.int64), "segment": seg, "female": female, "age": age,
        "city": city, "interest": interest, "purchase_rate": purchase_rate, "conv": conv,
        "price_sens": price_sens, "spend": spend, "night_owl": night_owl, "member": member,
        "start_day": start, "hazard": hazard, "dormant_day": dormant, "lapsed": lapsed,
        "occupation": rng.integers(0, len(OCCUPATIONS), n),
    }


def _norm(w: list[float]) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    return w / w.sum()
