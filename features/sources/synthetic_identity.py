"""Synthetic source records: how one person is fragmented over CRM, app, mini-program, POS and web.

Each person gets records in a random subset of the sources (at least one that
carries behaviour: app, mini-program, POS or web), sometimes several in one source
(a re-installed app, extra web cookies, a second POS card). Each source holds the
identifiers it realistically has, with the noise OneID must survive (rates in
:class:`GeneratorConfig`): blanks, phone formats (+86, 0086, spaces, dashes), email
case and whitespace, one-digit phone typos, email domain typos (.con, .cm), malformed values, placeholders
(``00000000000``, ``null``, ``test@test.com``, ...), household devices and cookies,
store kiosk devices shared by many people, and recycled phone numbers.

The ``noise`` bitmask per record says which of these were applied (``NOISE``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from features.sources import synthetic_ids as ids
from features.sources.synthetic_config import GeneratorConfig

SOURCES = ("crm", "app", "miniprogram", "pos", "web")
CRM, APP, MP, POS, WEB = range(5)
REG_CHANNEL = ("store", "app", "miniprogram", "store", "web")  # registration channel by source
RECORD_PREFIX = np.frombuffer(b"CAMPW", dtype=np.uint8)
NOISE = ("phone_format", "phone_typo", "phone_invalid", "phone_recycled", "email_case", "email_space",
         "email_invalid", "placeholder", "household_device", "household_cookie", "kiosk_device", "device_zero",
         "email_typo")
_BIT = {name: 1 << i for i, name in enumerate(NOISE)}
PH_PHONE = ("00000000000", "null", "N/A", "-1", "11111111111")
PH_EMAIL = ("test@test.com", "null", "anonymous", "N/A", "none@none.com")
PH_MEMBER = ("-1", "0", "null", "N/A")
ZERO_DEVICE = "00000000-0000-0000-0000-000000000000"  # iOS "limit ad tracking" IDFA
SURNAMES = ("wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma",
            "zhu", "hu", "guo", "he", "lin", "gao", "luo")
GIVEN = ("wei", "fang", "na", "min", "jing", "li", "qiang", "lei", "jun", "yang", "yong", "yan", "jie", "tao",
         "ming", "chao", "xiu", "xia", "ping", "gang", "hui", "hong", "ling", "yun", "bin", "hao", "yu", "xin")
DOMAINS = ("163.com", "126.com", "gmail.com", "sina.com", "outlook.com", "foxmail.com", "hotmail.com")


def recycle_phones(config: GeneratorConfig, rng: np.random.Generator, people: dict, now_day: int) -> np.ndarray:
    """Pick (old owner, new owner) pairs and move the new owner's start after the old one went dormant.

    Returns ``phone_owner``: whose phone number each person uses (themselves, or the old owner).
    """
    n = len(people["pid"])
    owner = np.arange(n)
    old = np.flatnonzero((people["dormant_day"] < now_day - 120) & (people["start_day"] < people["dormant_day"] - 30))
    new = np.flatnonzero(people["member"] & ~people["lapsed"] & (people["dormant_day"] > now_day))
    k = min(rng.binomial(n, config.recycled_phone_rate), len(old), len(new))
    if k:
        a = rng.choice(old, k, replace=False)
        b = rng.choice(np.setdiff1d(new, a), k, replace=False)
        owner[b] = a
        people["start_day"][b] = people["dormant_day"][a] + rng.integers(30, 90, k)
        people["dormant_day"][b] = np.maximum(people["dormant_day"][b], people["start_day"][b] + 60)
    return owner


def make_records(config: GeneratorConfig, rng: np.random.Generator, block: int, people: dict, now_day: int) -> dict:
    """Source records of one block of people: structure, creation day, identifiers (Arrow), noise bits."""
    n = len(people["pid"])
    member = people["member"]
    phone_owner = recycle_phones(config, rng, people, now_day)
    has = np.zeros((n, 5), dtype=bool)
    has[:, CRM] = member & (rng.random(n) < 0.97)
    has[:, APP] = rng.random(n) < np.where(member, 0.55, 0.40)
    has[:, MP] = rng.random(n) < 0.45
    has[:, POS] = rng.random(n) < np.where(member, 0.55, 0.30)
    has[:, WEB] = rng.random(n) < 0.35
    none = ~has[:, 1:].any(axis=1)
    has[none, rng.choice(4, n, p=[0.35, 0.3, 0.2, 0.15])[none] + 1] = True
    cnt = has.astype(np.int64)
    cnt[:, APP] += has[:, APP] & (rng.random(n) < config.reinstall_rate)
    cnt[:, POS] += has[:, POS] & (rng.random(n) < 0.08)
    cnt[:, WEB] += has[:, WEB] * np.minimum(rng.poisson(config.extra_cookie_mean, n), 3)
    flat = cnt.ravel()
    person = np.repeat(np.repeat(np.arange(n), 5), flat)
    source = np.repeat(np.tile(np.arange(5), n), flat)
    r = len(person)
    if r >= 1 << 22:
        raise ValueError(f"block {block}: {r} records exceed the 2**22 id space; lower block_size")
    seq = np.arange(r) - np.repeat(np.cumsum(flat) - flat, flat)
    num = (np.uint64(block) << np.uint64(22)) + np.arange(r, dtype=np.uint64)

    # creation day: first records early in the person's active span, extra ones anywhere in it
    start = people["start_day"][person]
    span = np.maximum(np.minimum(people["dormant_day"][person], now_day) - start, 1)
    u = rng.random(r)
    created = start + (np.where(seq == 0, u ** 3, u) * span).astype(np.int64)
    first_created = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_created, person, np.where(source == CRM, np.iinfo(np.int64).max, created))
    created = np.where(source == CRM, np.minimum(first_created[person], start + span - 1), created)
    crm_last = np.where(source == CRM, 9, source)  # the registration channel is a behavioural source
    reg_source = source[np.lexsort((crm_last, created, person))][np.r_[0, np.cumsum(cnt.sum(1))[:-1]]]

    # which identifiers each record holds
    def p(prob: np.ndarray | float) -> np.ndarray:
        return rng.random(r) < np.asarray(prob) * (1 - config.missing_id_rate)

    src = [source == k for k in range(5)]
    mem = member[person]
    m_member = src[CRM] | (src[APP] & mem & p(0.8)) | (src[POS] & mem & (seq == 0) & p(0.9)) | (src[WEB] & mem & p(0.3))
    m_email = (src[CRM] & p(0.6)) | (src[APP] & p(0.15)) | (src[WEB] & p(0.45))
    m_phone = ((src[CRM] & p(0.97)) | (src[APP] & p(0.93)) | (src[MP] & p(0.7))
               | (src[POS] & ((seq > 0) | (~m_member & p(0.85)))) | (src[WEB] & p(0.5)))
    m_union = (src[MP] & p(0.95)) | (src[APP] & p(0.3)) | (src[WEB] & p(0.1))  # WeChat login
    m_member, m_phone, m_email, m_union = _connect(config, rng, person, n, src, m_member, m_phone, m_email, m_union)
    noise = np.zeros(r, dtype=np.int64)

    phone, noise = _phones(config, rng, people["pid"][phone_owner[person]], m_phone, noise,
                           recycled=phone_owner[person] != person)
    email, noise = _emails(config, rng, people["pid"], person, m_email, noise)
    pid = people["pid"][person].astype(np.uint64)
    member_id = ids.where(m_member, ids.strings(r, b"M", ids.digits(ids.affine(pid, 10**10, 1_664_525_003, 7), 10)))
    unionid = ids.where(m_union, ids.strings(r, b"oU", ids.hexdigits(ids.mix64(pid, 11)), ids.hexdigits(ids.mix64(pid, 12), 10)))
    openid = ids.where(src[MP], ids.strings(r, b"oM", ids.hexdigits(ids.mix64(pid, 13)), ids.hexdigits(ids.mix64(pid, 14), 10)))

    # devices: own app device; households share one; kiosk registrations carry the store kiosk's device
    dev_key = num.copy()
    in_hh = rng.random(n) < config.household_rate
    hh_people = np.flatnonzero(in_hh)
    household = np.full(n, -1, dtype=np.int64)
    if len(hh_people) >= 2:
        sizes = rng.integers(2, 5, len(hh_people))
        hh = np.repeat(np.arange(len(sizes)), sizes)[: len(hh_people)]
        hh[np.bincount(hh)[hh] == 1] = max(hh[0], hh[-1] - 1)  # no household of one
        household[hh_people] = (block << 20) + hh
        people["city"][hh_people] = people["city"][hh_people[np.searchsorted(hh, hh)]]  # live together
    hh_rec = household[person]
    first_app = src[APP] & (seq == 0) & (hh_rec >= 0)
    dev_key[first_app] = (np.uint64(1) << np.uint64(62)) + hh_rec[first_app].astype(np.uint64)
    noise[first_app] |= _BIT["household_device"]
    kiosk_people = rng.random(n) < config.kiosk_rate
    kiosk_of = rng.integers(0, config.kiosks, n)
    on_pos = has[person, POS]
    kiosk_rec = kiosk_people[person] & (seq == 0) & (src[POS] | (src[APP] & ~on_pos))
    dev_key[kiosk_rec] = (np.uint64(1) << np.uint64(63)) + kiosk_of[person][kiosk_rec].astype(np.uint64)
    noise[kiosk_rec] = (noise[kiosk_rec] & ~_BIT["household_device"]) | _BIT["kiosk_device"]
    h1, h2 = ids.hexdigits(ids.mix64(dev_key, 21)), ids.hexdigits(ids.mix64(dev_key, 22))
    device = ids.strings(r, h1[:, :8], b"-", h1[:, 8:12], b"-", h1[:, 12:16], b"-", h2[:, :4], b"-", h2[:, 4:16])
    zero = src[APP] & ~kiosk_rec & (rng.random(r) < config.placeholder_rate / 5)
    noise[zero] |= _BIT["device_zero"]
    device = ids.where(~zero, device, ZERO_DEVICE)
    device = ids.where(src[APP] | kiosk_rec, device)

    hh_cookie = src[WEB] & (seq == 0) & (hh_rec >= 0) & (ids.mix64(hh_rec.astype(np.uint64), 31) % np.uint64(10) < 3)
    noise[hh_cookie] |= _BIT["household_cookie"]
    epoch = (config.window_start - np.datetime64("1970-01-01")).astype(np.int64) + created
    # household cookies live in [2e12, 3.1e12), record cookies below 1.1e12: never equal
    ck_num = np.where(hh_cookie, np.uint64(2 * 10**12) + ids.mix40(hh_rec.astype(np.uint64), 34), ids.mix40(num, 33))
    cookie = ids.strings(r, b"GA1.2.", ids.digits(ck_num, 13), b".", ids.digits(epoch * 86400 + 3600 * 9, 10))
    cookie = ids.where(src[WEB], cookie)

    # placeholders where a source forces a value the customer did not give
    for arr_name, slot, collects, values in (
        ("phone", m_phone, src[CRM] | src[APP] | src[POS] | src[MP], PH_PHONE),
        ("email", m_email, src[CRM] | src[WEB], PH_EMAIL),
        ("member", m_member, src[APP] | src[POS], PH_MEMBER),
    ):
        fill = ~slot & collects & (rng.random(r) < config.placeholder_rate)
        noise[fill] |= _BIT["placeholder"]
        filler = ids.pick(values, np.where(fill, rng.integers(0, len(values), r), -1))
        if arr_name == "phone":
            phone = pc.coalesce(phone, filler)
        elif arr_name == "email":
            email = pc.coalesce(email, filler)
        else:
            member_id = pc.coalesce(member_id, filler)

    record_id = ids.strings(r, RECORD_PREFIX[source][:, None], ids.digits(ids.mix40(num, 41), 13))
    return {
        "person": person, "source": source, "seq": seq, "num": num, "created_day": created, "noise": noise,
        "record_id": record_id, "member_id": member_id, "phone": phone, "email": email, "unionid": unionid,
        "openid": openid, "device_id": device, "cookie_id": cookie, "household": household,
        "kiosk": kiosk_people, "phone_owner": phone_owner, "has": has, "reg_source": reg_source,
        "has_phone": m_phone & ~noise_has(noise, "phone_invalid"), "has_email": m_email & ~noise_has(noise, "email_invalid"),
    }


def _connect(config: GeneratorConfig, rng: np.random.Generator, person: np.ndarray, n: int, src: list,
             *masks: np.ndarray) -> tuple[np.ndarray, ...]:
    """Make each person's records linkable through their own identifiers, except deliberate anonymous ones.

    Records of one person link when both hold the same identifier type (member_id, phone, email or
    unionid: the values are that person's). A record outside the person's largest linked group gets
    the phone (the identifier every Chinese source asks for); then ``anonymous_rate`` of the POS and
    web records lose every personal identifier (walk-in buyers, anonymous cookies).
    """
    m_member, m_phone, m_email, m_union = (m.copy() for m in masks)
    r = len(person)
    for _ in range(2):  # the second pass links groups that had no phone in their main group
        rows, kind = np.nonzero(np.stack([m_member, m_phone, m_email, m_union], axis=1))
        graph = coo_matrix((np.ones(len(rows)), (rows, r + person[rows] * 4 + kind)), shape=(r + 4 * n,) * 2)
        label = connected_components(graph, directed=False)[1][:r]
        size = np.bincount(label)
        order = np.lexsort((label, -size[label], person))
        head = order[np.r_[True, person[order][1:] != person[order][:-1]]]  # each person's largest group
        main = np.empty(n, dtype=np.int64)
        main[person[head]] = label[head]
        outside = label != main[person]
        if not outside.any():
            break
        m_phone |= outside
        in_main_phone = np.bincount(person[~outside & m_phone], minlength=n) > 0
        first_main = np.flatnonzero(~outside & ~in_main_phone[person])
        m_phone[first_main] = True
    anon = (src[POS] | src[WEB]) & (rng.random(r) < config.anonymous_rate)
    return tuple(m & ~anon for m in (m_member, m_phone, m_email, m_union))


def _phones(config: GeneratorConfig, rng: np.random.Generator, owner_pid: np.ndarray, mask: np.ndarray,
            noise: np.ndarray, recycled: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """Phone strings: canonical 11-digit mobiles with typos, format variants and too-short values."""
    r = len(owner_pid)
    number = np.uint64(13_000_000_000) + ids.affine(owner_pid.astype(np.uint64), 7_000_000_000, 1_812_433_253, 12345)
    mat = ids.digits(number, 11)
    typo = mask & (rng.random(r) < config.phone_typo_rate)
    pos = rng.integers(3, 11, r)
    rows = np.flatnonzero(typo)
    old = mat[rows, pos[rows]] - 48
    mat[rows, pos[rows]] = (old + rng.integers(1, 10, len(rows))) % 10 + 48
    plain = ids.strings(r, mat)
    dashed = ids.strings(r, mat[:, :3], b"-", mat[:, 3:7], b"-", mat[:, 7:])
    spaced = ids.strings(r, mat[:, :3], b" ", mat[:, 3:7], b" ", mat[:, 7:])
    variants = [plain, ids.join("+86 ", plain), ids.join("+86", plain), ids.join("0086 ", spaced), dashed,
                spaced, ids.join("86-", plain), ids.strings(r, mat[:, :10])]
    fmt = np.where(rng.random(r) < config.phone_format_rate, rng.integers(1, 7, r), 0)
    short = mask & (rng.random(r) < config.invalid_rate)
    fmt[short] = 7
    noise = noise | np.where(mask & (fmt > 0) & (fmt < 7), _BIT["phone_format"], 0) \
        | np.where(typo, _BIT["phone_typo"], 0) | np.where(short, _BIT["phone_invalid"], 0) \
        | np.where(mask & recycled, _BIT["phone_recycled"], 0)
    return ids.where(mask, pc.choose(pa.array(fmt, type=pa.int8()), *variants)), noise


def _emails(config: GeneratorConfig, rng: np.random.Generator, pid: np.ndarray, person: np.ndarray,
            mask: np.ndarray, noise: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """Email strings: unique per person (QQ numbers or pinyin), with case, whitespace and malformed variants."""
    n, r = len(pid), len(person)
    upid = pid.astype(np.uint64)
    qq = ids.join(ids.strings(n, ids.digits(np.uint64(100_000_000) + ids.affine(upid, 900_000_000, 1_103_515_249, 99), 9)), "@qq.com")
    h = ids.mix64(upid, 51)
    local = ids.join(ids.pick(SURNAMES, (h % np.uint64(len(SURNAMES))).astype(np.int64)),
                     ids.pick(GIVEN, ((h >> np.uint64(8)) % np.uint64(len(GIVEN))).astype(np.int64)))
    named = ids.join(local, "_", ids.strings(n, ids.digits(ids.affine(upid, 10**8, 1_664_525_003, 3), 8)), "@",
                     ids.pick(DOMAINS, ((h >> np.uint64(16)) % np.uint64(len(DOMAINS))).astype(np.int64)))
    base = ids.where((h >> np.uint64(24)) % np.uint64(100) < 35, qq, named).take(pa.array(person))
    case = mask & (rng.random(r) < config.email_case_rate)
    space = mask & (rng.random(r) < config.email_space_rate)
    bad = mask & (rng.random(r) < config.invalid_rate)
    variants = [base, pc.utf8_upper(base), pc.utf8_capitalize(base)]
    out = pc.choose(pa.array(np.where(case, rng.integers(1, 3, r), 0), type=pa.int8()), *variants)
    case &= pc.not_equal(out, base).to_numpy(zero_copy_only=False)  # "123@qq.com".capitalize() is unchanged
    pads = [out, ids.join(" ", out), ids.join(out, "  "), ids.join(" ", out, " "), ids.join("\t", out)]
    out = pc.choose(pa.array(np.where(space, rng.integers(1, 5, r), 0), type=pa.int8()), *pads)
    typo = mask & ~bad & (rng.random(r) < config.email_typo_rate)  # a valid address of nobody: .com -> .con/.cm
    typos = [out, pc.replace_substring_regex(out, r"\.com(\s*)$", r".con\1"),
             pc.replace_substring_regex(out, r"\.com(\s*)$", r".cm\1")]
    out = pc.choose(pa.array(np.where(typo, rng.integers(1, 3, r), 0), type=pa.int8()), *typos)
    malformed = [out, pc.replace_substring(out, "@", "#"), pc.replace_substring_regex(out, "@.*$", "@")]
    out = pc.choose(pa.array(np.where(bad, rng.integers(1, 3, r), 0), type=pa.int8()), *malformed)
    noise = noise | np.where(case, _BIT["email_case"], 0) | np.where(space, _BIT["email_space"], 0) \
        | np.where(bad, _BIT["email_invalid"], 0) | np.where(typo, _BIT["email_typo"], 0)
    return ids.where(mask, out), noise


def noise_has(bits: np.ndarray, name: str) -> np.ndarray:
    """Records whose noise bitmask includes ``name``."""
    return (bits & _BIT[name]) != 0


def noise_labels(bits: np.ndarray) -> pa.Array:
    """The noise bitmask as ``'a|b'`` strings (null when clean)."""
    uniq, inv = np.unique(bits, return_inverse=True)
    labels = ["|".join(n for n in NOISE if b & _BIT[n]) or None for b in uniq.tolist()]
    return pa.array(labels, type=pa.string()).take(pa.array(inv.astype(np.int32)))
