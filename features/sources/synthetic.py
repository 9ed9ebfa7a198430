"""The synthetic multi-source generator: portrait's embedded default data, with ground truth.

``generate(GeneratorConfig(people=20_000, seed=42), data_dir)`` writes

- ``<data>/raw/{identity_records,profiles,events,orders,order_lines,items,campaign_contacts}.parquet``
  in the canonical schemas of :mod:`features.schema` (people referenced only by ``(source, record_id)``);
- ``<data>/raw/_truth/truth_records.parquet``: ``source, record_id, person_id`` for every record, plus
  ``noise`` (which traps were applied) and ``created_at``;
- ``<data>/raw/_truth/truth_people.parquet``: latent traits (segment, interest mix, purchase rate,
  churn hazard and dormancy, spend level, price sensitivity, night owl, ...), what the raw data shows,
  and the future after ``now``: ``future_purchases_30d/90d``, ``future_spend_90d/180d``,
  ``future_active_90d``, ``future_sessions_90d`` and ``future_buy_30d_<category>``;
- ``<data>/raw/_truth/truth_campaigns.parquet``: per contact, the true response probability, whether
  the person responded and converted, and the main driver (interest, price, activity);
- ``<data>/raw/_truth/meta.json``: config, seed, ``now``, counts, categories, segments, campaigns.

People are simulated in blocks of ``block_size`` with per-block seeds
(``SeedSequence(seed, spawn_key=(1, block))``), so the bytes do not depend on ``workers``.
Big tables are streamed block by block (one Parquet row group or more per block) into temporary
files that are renamed into place only when every table is complete.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.io import atomic_write, publish
from features.sources import synthetic_ids as ids
from features.sources.synthetic_campaigns import make_campaigns
from features.sources.synthetic_config import DAY_US, GeneratorConfig
from features.sources.synthetic_identity import NOISE, SOURCES
from features.sources.synthetic_people import (
    CAT_NAMES, CATEGORIES, CITIES, CITY_NAMES, SEGMENTS, calendar, make_catalog,
)
from features.sources.synthetic_tables import EVENTS_CODED, SCHEMAS, TS, build_block

__all__ = ["GeneratorConfig", "generate", "CANONICAL", "TRUTH"]

CANONICAL = ("identity_records", "profiles", "events", "orders", "order_lines", "items", "campaign_contacts")
TRUTH = ("truth_records", "truth_people", "truth_campaigns")
# low-cardinality columns worth dictionary-encoding (ids like record_id or session_id are not: encoding them is slow)
_DICTIONARY = frozenset((
    "source", "event_type", "item_id", "channel", "category", "brand", "city", "gender", "reg_channel", "occupation",
    "campaign_id", "store_id", "noise", "segment", "kind", "driver", "top_category", "second_category", "sources",
    "home_store",
))


def build_world(config: GeneratorConfig) -> dict:
    """What every block shares: calendar, catalog, stores, campaigns (from the seed alone)."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0,)))
    first = config.window_start
    now_day = int((config.now_day - first).astype(np.int64))
    end_day = now_day + config.future_days
    catalog = make_catalog(config, rng, first)
    n_items = len(catalog["category"])
    weights = np.array([c[1] for c in CITIES], dtype=float)
    n_stores = int(np.clip(config.people // 4000, len(CITIES), 2000))
    store_city = np.sort(np.r_[np.arange(len(CITIES)), rng.choice(len(CITIES), n_stores - len(CITIES), p=weights / weights.sum())])
    count = np.bincount(store_city, minlength=len(CITIES))
    return {
        "now_day": now_day, "end_day": end_day, "calendar": calendar(first, end_day),
        "day0_us": int((first - np.datetime64("1970-01-01")).astype(np.int64)) * DAY_US,
        "catalog": catalog, "item_ids": ids.strings(n_items, b"I", ids.digits(np.arange(n_items), 6)),
        "store_ids": ids.strings(n_stores, b"ST", ids.digits(np.arange(n_stores), 4)), "store_city": store_city,
        "store_offset": np.cumsum(count) - count, "store_count": count,
        "campaigns": make_campaigns(config, rng, now_day),
    }


def items_table(config: GeneratorConfig, world: dict) -> pa.Table:
    """The catalog as it stands at ``now``: items launching later exist only in the simulated future."""
    cat = world["catalog"]
    n = len(cat["category"])
    brand_names = _brand_names(cat["n_brands"])
    title_no = ids.strings(n, ids.digits(np.arange(n) % 10_000, 4))
    return pa.table({
        "item_id": world["item_ids"], "category": ids.pick(CAT_NAMES, cat["category"]),
        "brand": ids.pick(brand_names, cat["brand"]), "price": cat["price_cents"] / 100.0,
        "launch_date": pa.array(world["day0_us"] + cat["launch_day"] * DAY_US, type=pa.int64()).cast(TS),
        "in_stock": cat["in_stock"],
        "title": ids.join(ids.pick(brand_names, cat["brand"]), " ", ids.pick(CAT_NAMES, cat["category"]), " #", title_no),
    }, schema=SCHEMAS["items"]).filter(pa.array(cat["launch_day"] < world["now_day"]))


def _brand_names(n_brands: np.ndarray) -> list[str]:
    a = ("Lan", "Mei", "Hua", "Xin", "Yue", "Qing", "Ming", "Jia", "Rui", "An", "Bo", "Zhi", "Tian", "Le", "Shu")
    b = ("ya", "shi", "li", "na", "de", "feng", "lin", "mo", "xi", "ke", "tu", "ran")
    out = []
    for c, k in enumerate(n_brands.tolist()):  # a few hundred names, built once
        out += [f"{a[(c * 7 + j) % len(a)]}{b[(c + j * 5) % len(b)]} {CAT_NAMES[c][:3].title()}{j:02d}" for j in range(k)]
    return out


class _Outputs:
    """Parquet writers on temporary files; ``commit`` renames them all into place, ``abort`` removes them."""

    def __init__(self, paths: dict[str, Path], schemas: dict[str, pa.Schema]):
        self.paths, self.tmp, self.writers = paths, {}, {}
        try:
            for name, path in paths.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
                os.close(fd)
                self.tmp[name] = Path(tmp)
                schema = schemas[name]
                coded = any(pa.types.is_dictionary(f.type) for f in schema)
                # coded tables: no Arrow schema in the file, so every reader gets plain strings back;
                # min/max statistics only on numbers and times (on strings they cost half the write time)
                self.writers[name] = pq.ParquetWriter(
                    tmp, schema, compression="snappy", store_schema=not coded,
                    use_dictionary=[f.name for f in schema if f.name in _DICTIONARY or pa.types.is_dictionary(f.type)],
                    write_statistics=[f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
                                      or pa.types.is_timestamp(f.type) or pa.types.is_boolean(f.type)])
        except BaseException:
            self.abort()
            raise

    def write(self, name: str, table: pa.Table) -> None:
        if len(table):
            self.writers[name].write_table(table, row_group_size=1 << 20)

    def commit(self) -> None:
        for w in self.writers.values():
            w.close()
        for name, path in self.paths.items():
            publish(self.tmp[name], path)  # the umask's mode, not mkstemp's 0600

    def abort(self) -> None:
        for w in self.writers.values():
            try:
                w.close()
            except Exception:  # a half-closed writer must not hide the original error
                pass
        for tmp in self.tmp.values():
            tmp.unlink(missing_ok=True)


_WORKER_WORLD: dict = {}  # filled once per worker process by _init_worker (the shared world is rebuilt, not pickled)


def _init_worker(config: GeneratorConfig) -> None:
    _WORKER_WORLD["world"] = build_world(config)


def _run_block(args: tuple[GeneratorConfig, int]) -> dict:
    config, block = args
    return build_block(config, block, _WORKER_WORLD["world"])


def _blocks(config: GeneratorConfig, world: dict, n_blocks: int):
    """Yield each block's result in order; with workers > 1, a bounded number run ahead in processes."""
    if config.workers == 1 or n_blocks == 1:
        for b in range(n_blocks):
            yield build_block(config, b, world)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=config.workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(config,)) as pool:
        # at most `workers` blocks in flight: the parent writes while the workers compute, memory stays bounded
        pending = [pool.submit(_run_block, (config, b)) for b in range(min(n_blocks, config.workers))]
        for b in range(n_blocks):
            result = pending.pop(0).result()
            nxt = b + len(pending) + 1
            if nxt < n_blocks:
                pending.append(pool.submit(_run_block, (config, nxt)))
            yield result


def generate(config: GeneratorConfig, out_dir: Path,
             on_block: Callable[[int, int], None] | None = None) -> dict:
    """Generate the synthetic data under ``out_dir`` (the data directory); return a summary.

    ``on_block(done, total)`` is called after each block (for progress bars).
    """
    t_start = time.perf_counter()
    raw = Path(out_dir) / "raw"
    truth = raw / "_truth"
    world = build_world(config)
    n_blocks = -(-config.people // config.block_size)
    names = {**{n: raw / f"{n}.parquet" for n in CANONICAL}, **{n: truth / f"{n}.parquet" for n in TRUTH}}
    schemas = {**SCHEMAS, "events": EVENTS_CODED}
    counts = {n: 0 for n in names}
    future = {"sessions": 0, "orders": 0}
    out = _Outputs(names, schemas | _truth_schemas(config, world))
    try:
        items = items_table(config, world)
        out.write("items", items)
        counts["items"] = len(items)
        for b, result in enumerate(_blocks(config, world, n_blocks)):
            for name, table in result["tables"].items():
                out.write(name, table)
                counts[name] += len(table)
            future["sessions"] += result["future_sessions"]
            future["orders"] += result["future_orders"]
            if on_block:
                on_block(b + 1, n_blocks)
        out.commit()
    except BaseException:
        out.abort()
        raise
    seconds = time.perf_counter() - t_start
    meta = {
        "generator": "portrait.synthetic/1",
        "config": {k: v for k, v in config.to_dict().items() if k != "workers"},  # workers do not change the data
        "seed": config.seed,
        "now": f"{config.now_day}T00:00:00+00:00", "window_start": f"{config.window_start}T00:00:00+00:00",
        "horizon_end": f"{config.now_day + config.future_days}T00:00:00+00:00", "people": config.people,
        "blocks": n_blocks, "rows": counts, "future_rows_not_written": future, "sources": list(SOURCES),
        "categories": list(CAT_NAMES), "category_price_median": {c[0]: c[2] for c in CATEGORIES},
        "segments": [s[0] for s in SEGMENTS], "cities": list(CITY_NAMES), "noise_labels": list(NOISE),
        "kiosk_devices": config.kiosks, "stores": len(world["store_ids"]),
        "campaigns": [{k: v for k, v in c.items() if k != "category_code"}
                      | {"sent_at": f"{config.window_start + c['sent_day']}T10:00:00+00:00"} for c in world["campaigns"]],
        "local_clock_utc_offset_hours": config.utc_offset_hours,
    }
    atomic_write(truth / "meta.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n"))
    return {"people": config.people, "rows": counts, "future": future, "seconds": round(seconds, 2),
            "raw_dir": str(raw), "truth_dir": str(truth), "now": meta["now"], "blocks": n_blocks}


def _truth_schemas(config: GeneratorConfig, world: dict) -> dict[str, pa.Schema]:
    """Truth schemas, taken from a tiny block so empty outputs still carry the right columns."""
    probe = build_block(GeneratorConfig(**{**config.to_dict(), "people": 50, "block_size": 50, "workers": 1}), 0,
                        world)
    return {name: probe["tables"][name].schema for name in TRUTH}
