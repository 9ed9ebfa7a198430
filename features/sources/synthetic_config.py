"""Configuration of the synthetic multi-source generator (one frozen dataclass).

Every rate that shapes the data, including the identity noise that OneID must
survive, is a field here with its default and what it means. The same config and
seed always give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, fields

import numpy as np

DAY_US = 86_400_000_000  # microseconds per day
HISTORY_YEARS = 3  # registrations reach back this far before the window


@dataclass(frozen=True)
class GeneratorConfig:
    people: int = 20_000  # true persons
    seed: int = 42  # master seed: same config + seed -> byte-identical files
    now: str = "2026-07-01"  # data end (UTC midnight): raw tables hold only what happened before it
    months: int = 13  # history before `now` (>= 12 covers a full year of seasonality)
    future_days: int = 180  # simulated after `now` for the ground truth only (future behaviour)
    block_size: int = 10_000  # people per block (~0.5 GB peak each); each block has its own seed (changing it changes the data)
    workers: int = 1  # processes generating blocks; the output does not depend on it
    n_items: int | None = None  # catalog size; None = max(500, min(100_000, people // 10))
    n_campaigns: int = 8  # past campaigns: category promotions and coupon campaigns
    utc_offset_hours: int = 0  # shoppers' local clock minus UTC (8 = China); 0 keeps hour features readable in UTC
    # --- behaviour
    orders_per_year: float = 4.0  # mean purchase rate of an active person (gamma across people)
    rate_shape: float = 0.9  # gamma shape of purchase rates (lower = more heterogeneous)
    conversion_mean: float = 0.22  # mean share of online sessions ending in a purchase (beta across people)
    views_per_session: float = 2.4  # mean product views per online session beyond the purchased items
    median_lifetime_days: float = 700.0  # median time from first activity to dormancy (lognormal hazard)
    new_share: float = 0.35  # people whose first activity falls inside the window (others registered earlier)
    lapsed_share: float = 0.05  # people already dormant before the window: records, no recent behaviour
    cart_abandon_rate: float = 0.25  # non-buying online sessions that still put an item in the cart
    coupon_rate: float = 0.15  # base chance an order uses a coupon (scaled by price sensitivity, promotions)
    zipf_exponent: float = 1.0  # item popularity within a category ~ 1 / rank**s
    # --- identity noise (what OneID must survive)
    missing_id_rate: float = 0.03  # extra chance that an identifier a source normally holds is blank
    phone_format_rate: float = 0.3  # phones written as +86 / 0086 / with spaces or dashes
    email_case_rate: float = 0.15  # emails in upper or capitalized case
    email_space_rate: float = 0.08  # emails with surrounding whitespace
    phone_typo_rate: float = 0.005  # phones with one mistyped digit (a number that belongs to nobody, rarely someone)
    email_typo_rate: float = 0.005  # emails with a domain typo (.com -> .con / .cm): valid-looking, nobody's address
    invalid_rate: float = 0.003  # malformed emails and too-short phones (normalization must count and drop them)
    anonymous_rate: float = 0.01  # POS and web records with no personal identifier (walk-in buyers, anonymous cookies)
    placeholder_rate: float = 0.1  # blank identifier slots filled with 00000000000, null, test@test.com, -1, N/A ...
    household_rate: float = 0.06  # people in 2-4-person households sharing an app device (some a web cookie too)
    kiosk_rate: float = 0.04  # people registered on a store kiosk device shared by many (device_id at POS/app)
    people_per_kiosk: int = 25_000  # one kiosk device per this many people (at least one)
    recycled_phone_rate: float = 0.002  # people whose phone number earlier belonged to a now-dormant person
    reinstall_rate: float = 0.12  # app users with a second app record (re-install: new device id)
    extra_cookie_mean: float = 0.35  # mean extra (logged-in) web cookie records per web user

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ValueError(f"GeneratorConfig.{name}: {why} (got {getattr(self, name)!r})")

        for name in ("people", "block_size", "workers", "months", "people_per_kiosk"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                bad(name, "must be a positive integer")
        if self.future_days < 0:
            bad("future_days", "must be >= 0")
        if self.block_size > 1_000_000:
            bad("block_size", "must be <= 1,000,000 (ids reserve 2**22 records per block)")
        if self.n_items is not None and self.n_items < 100:
            bad("n_items", "must be >= 100 or None")
        if self.n_campaigns < 0:
            bad("n_campaigns", "must be >= 0")
        for f in fields(self):
            if f.name.endswith(("_rate", "_share")) or f.name == "conversion_mean":
                if not 0.0 <= getattr(self, f.name) <= 1.0:
                    bad(f.name, "must be within [0, 1]")
        for name in ("orders_per_year", "rate_shape", "median_lifetime_days", "zipf_exponent"):
            if getattr(self, name) <= 0:
                bad(name, "must be > 0")
        try:
            self.now_day
        except ValueError as exc:
            raise ValueError(f"GeneratorConfig.now: not a date like 2026-07-01 (got {self.now!r})") from exc

    @property
    def now_day(self) -> np.datetime64:
        """``now`` as a day (midnight UTC)."""
        return np.datetime64(dt.date.fromisoformat(str(self.now)[:10]), "D")

    @property
    def window_start(self) -> np.datetime64:
        """First day of the raw history: ``months`` calendar months before ``now``."""
        m = np.datetime64(self.now_day, "M") - np.timedelta64(self.months, "M")
        return (m.astype("datetime64[D]") + (self.now_day - np.datetime64(self.now_day, "M"))).astype("datetime64[D]")

    @property
    def items(self) -> int:
        return self.n_items or max(500, min(100_000, self.people // 10))

    @property
    def kiosks(self) -> int:
        return max(1, self.people // self.people_per_kiosk)

    def to_dict(self) -> dict:
        return asdict(self)
