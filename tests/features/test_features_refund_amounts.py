"""Refund amounts compared exactly: sub-cent, 2**46 and up, and amounts whose cents overflow a double.

``features.returns`` matches a refund to "exactly one purchase's amount" and sums named refunds up to their
order's amount; neither may round two amounts onto one nor overflow on amounts the import accepts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from features.returns import amount_key, settle_returns, stand_orders

DAY_US = 86_400_000_000


def _day(amounts: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """One customer's day: ``(settled amounts, purchases kept)`` for these rows in order (refunds negative)."""
    amt = np.array(amounts, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow nor invalid cast on the way
        return settle_returns(np.zeros(len(amt), np.int64), np.linspace(0.1, 0.9, len(amt)), amt, amt < 0)


def test_amounts_at_2_46_and_up_never_share_a_key():
    # from 2**46 up a double skips cents: these two amounts round to the same cent, 9147936743096324
    x, y = 91479367430963.23, 91479367430963.25
    assert x >= 2 ** 46 and x != y and np.round(x * 100) == np.round(y * 100)
    keys = amount_key(np.array([x, y, -y, 1e308, -1.5e308, 0.1 + 0.2, 0.3, 10.004, 10.0]))
    assert keys[0] != keys[1] and keys[1] == keys[2] and keys[3] != keys[4]
    assert keys[5] == keys[6]  # float noise is one amount
    assert keys[7] != keys[8]  # a third decimal (KWD, BHD) is money, not noise


def test_a_refund_of_one_huge_amount_cancels_that_purchase_not_its_neighbour_in_cents():
    x, y = 91479367430963.23, 91479367430963.25
    out, kept = _day([x, y, 500.0, -y])
    assert kept.tolist() == [True, False, True, False]
    assert out.tolist() == [x, 0.0, 500.0, 0.0]


def test_a_sub_cent_amount_is_not_a_refund_of_the_rounded_amount():
    out, kept = _day([10.004, 25.0, -10.0])  # not exactly one purchase: the day's spend goes down
    assert kept.tolist() == [True, True, False]
    assert out[:2].sum() == pytest.approx(25.004) and out[2] == 0.0


def test_a_day_refunded_in_full_in_cents_is_no_purchase_day_despite_float_noise():
    """0.1 + 0.2 bought, 0.3 refunded: the float sums left 5.6e-17, so both purchases stood (a purchase day)."""
    out, kept = _day([0.1, 0.2, -0.3])
    assert kept.tolist() == [False, False, False] and out.tolist() == [0.0, 0.0, 0.0]
    out, kept = _day([0.1, 0.2, -0.31])  # a cent more than the day's spend stays a return
    assert kept.tolist() == [False, False, False] and out[2] == pytest.approx(-0.01)


def test_amounts_whose_cents_overflow_are_matched_exactly():
    out, kept = _day([1e300, 5e299, -1e300])
    assert kept.tolist() == [False, True, False] and out.tolist() == [0.0, 5e299, 0.0]


def test_named_refunds_of_amounts_whose_cents_overflow_add_up_exactly():
    """A refund of 1e307 of a 1.5e307 order is partial (in cents both were inf, so it looked full)."""
    cid, ts = np.array([0, 0, 0]), np.array([1, 10, 20]) * DAY_US
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, amount, cancel = stand_orders(cid, ts, np.array([1.5e307, -1e307, -5e306]),
                                         np.array(["A", "R1", "R2"], dtype=object),
                                         np.array([None, "A", "A"], dtype=object))
    assert cancel.tolist() == [20 * DAY_US, -1, -1]  # cancelled by the second refund, not the first
    assert amount.tolist() == [1.5e307, -1e307, -5e306]
    _, _, cancel = stand_orders(cid[:2], ts[:2], np.array([1.5e307, -1e307]), np.array(["A", "R1"], dtype=object),
                                np.array([None, "A"], dtype=object))
    assert cancel.tolist() == [-1, -1]


def test_named_refunds_add_up_to_float_noise_but_not_to_a_third_decimal():
    cid, ts = np.zeros(3, np.int64), np.array([1, 2, 3]) * DAY_US
    ids, of = np.array(["A", "R1", "R2"], dtype=object), np.array([None, "A", "A"], dtype=object)
    assert stand_orders(cid, ts, np.array([0.3, -0.1, -0.2]), ids, of)[2][0] == 3 * DAY_US  # 0.1 + 0.2 is 0.3
    assert stand_orders(cid, ts, np.array([10.004, -5.0, -5.0]), ids, of)[2][0] == -1  # 10.000 of 10.004 is not all


def test_the_feature_build_keeps_a_huge_order_refunded_in_part(tmp_path, h):
    w = h.World(tmp_path / "data")
    bought = w.order("a", h.ago(40), 1.5e307)
    w.refund("a", h.ago(10), 1e307, of=bought)
    cust, _ = h.compute(*w.write())
    a = cust.set_index("one_id").loc["a"]
    assert a["orders_total"] == 1 and a["monetary_total"] == pytest.approx(5e306)


def test_named_refunds_in_whole_cents_add_up_exactly_however_large():
    """Three refunds making up a 476,238,501,428.09 order exactly: summed as doubles they came to less than
    the order (the sum drifts past float noise from about 1e11), so the order was never cancelled."""
    parts = [130013280068.16, 205398880096.71, 140826341263.22]
    assert sum(parts) < 476238501428.09 - 1e-5  # the drift, as a double sum has it
    cid, ts = np.zeros(4, np.int64), np.array([1, 2, 3, 4]) * DAY_US
    _, _, cancel = stand_orders(cid, ts, np.array([476238501428.09, *(-p for p in parts)]),
                                np.array(["A", "R1", "R2", "R3"], dtype=object),
                                np.array([None, "A", "A", "A"], dtype=object))
    assert cancel.tolist() == [4 * DAY_US, -1, -1, -1]
