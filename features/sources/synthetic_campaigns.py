"""Synthetic marketing campaigns: who was contacted, who responded and converted, and why.

Campaigns are category promotions or coupon campaigns, sent over SMS (CRM phone),
email (CRM email), app push or WeChat mini-program messages to a random share of
the records that channel can reach. The response probability depends on the
person's latent traits: interest in the campaign's category (promotions), price
sensitivity (coupons) and purchase activity; dormant people barely respond and
never convert. A conversion becomes a real purchase session, so it shows up in
events and orders. The ground truth keeps the probability and its main driver.
"""

from __future__ import annotations

import numpy as np

from features.sources.synthetic_config import DAY_US, GeneratorConfig
from features.sources.synthetic_identity import APP, CRM, MP
from features.sources.synthetic_people import CAT_NAMES, CATEGORIES

CHANNELS = ("sms", "push", "wechat", "email")
CHANNEL_SOURCE = {"sms": CRM, "push": APP, "wechat": MP, "email": CRM}
DRIVERS = ("interest", "price", "activity")


def make_campaigns(config: GeneratorConfig, rng: np.random.Generator, now_day: int) -> list[dict]:
    """Campaign definitions, sent between ~7 and ~1 months before ``now`` (days relative to the window start)."""
    shares = np.array([c[1] for c in CATEGORIES])
    n = config.n_campaigns
    cats = rng.choice(len(CATEGORIES), size=n, replace=n > len(CATEGORIES), p=shares / shares.sum())
    sent = np.linspace(now_day - 210, now_day - 25, n).astype(np.int64) + rng.integers(-3, 4, n) if n else []
    out = []
    for i in range(n):  # a handful of campaigns, not per person
        kind = "coupon" if i % 4 == 3 else "category_promo"
        channel = CHANNELS[i % len(CHANNELS)]
        category = CAT_NAMES[cats[i]] if kind == "category_promo" else None
        out.append({
            "campaign_id": f"cmp{i + 1:02d}_{category or 'coupon'}_{channel}", "kind": kind, "channel": channel,
            "category": category, "category_code": int(cats[i]) if category else -1, "sent_day": int(sent[i]),
            "reach": round(float(rng.uniform(0.15, 0.4)), 3), "coupon_value": 20 if kind == "coupon" else None,
        })
    return out


def contact(config: GeneratorConfig, rng: np.random.Generator, campaigns: list[dict], people: dict,
            records: dict, phone_ok: np.ndarray, email_ok: np.ndarray, day0_us: int, now_us: int) -> dict:
    """Contacts of one block: canonical columns, ground truth and the conversion purchases to simulate."""
    parts: list[dict] = []
    for c_idx, camp in enumerate(campaigns):
        src = CHANNEL_SOURCE[camp["channel"]]
        reach = records["source"] == src
        if camp["channel"] == "sms":
            reach &= phone_ok
        elif camp["channel"] == "email":
            reach &= email_ok
        reach &= records["created_day"] < camp["sent_day"]
        rec = np.flatnonzero(reach & (rng.random(len(reach)) < camp["reach"]))
        k = len(rec)
        p = records["person"][rec]
        sent_us = day0_us + camp["sent_day"] * DAY_US + (10 * 3600 + rng.integers(0, 7200, k)) * 1_000_000
        active = (people["start_day"][p] <= camp["sent_day"]) & (camp["sent_day"] < people["dormant_day"][p])
        if camp["kind"] == "category_promo":
            interest = 1.2 * np.log(20 * people["interest"][p, camp["category_code"]] + 1e-3)
            price = 0.8 * (people["price_sens"][p] - 0.45)
        else:
            interest = np.zeros(k)
            price = 4.0 * (people["price_sens"][p] - 0.45)
        activity = 0.5 * np.log(people["purchase_rate"][p] * 365 / config.orders_per_year + 0.05)
        logit = -2.0 + interest + price + activity - 3.0 * ~active
        p_resp = 1 / (1 + np.exp(-logit))
        responded = rng.random(k) < p_resp
        resp_us = sent_us + np.minimum(rng.exponential(20 * 3600, k), 7 * 86400).astype(np.int64) * 1_000_000
        resp_day = (resp_us - day0_us) // DAY_US
        still = (resp_day < people["dormant_day"][p]) & active
        p_conv = 1 / (1 + np.exp(-(-0.6 + 0.6 * interest + price)))
        converted = responded & still & (rng.random(k) < p_conv) & (resp_us < now_us - 86_400_000_000)
        driver = np.argmax(np.stack([interest, price, activity]), axis=0)
        parts.append({
            "campaign": np.full(k, c_idx), "record": rec, "person": p, "sent_us": sent_us,
            "responded_at": np.where(responded, resp_us, -1), "converted": converted, "p_respond": p_resp,
            "driver": driver,
        })
    out = {key: np.concatenate([d[key] for d in parts]) if parts else np.zeros(0, dtype=np.int64)
           for key in ("campaign", "record", "person", "sent_us", "responded_at", "converted", "p_respond", "driver")}
    out["converted"] = out["converted"].astype(bool)
    conv = out["converted"]
    code = np.array([c["category_code"] for c in campaigns] or [0], dtype=np.int64)[out["campaign"][conv]]
    top = np.argmax(people["interest"][out["person"][conv]], axis=1) if conv.any() else np.zeros(0, dtype=np.int64)
    out["conversions"] = {  # purchase sessions the behaviour simulation adds
        "person": out["person"][conv],
        "start_us": out["responded_at"][conv]
        + np.minimum(rng.exponential(2 * 3600, conv.sum()), 12 * 3600).astype(np.int64) * 1_000_000,
        "category": np.where(code >= 0, code, top),
        "coupon": np.array([campaigns[i]["kind"] == "coupon" for i in out["campaign"][conv]], dtype=bool),
    }
    return out
