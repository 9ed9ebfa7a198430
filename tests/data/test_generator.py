"""The synthetic generator: determinism by seed, schema validity, config errors and the CLI command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.io import validate_folder
from features.sources.synthetic import CANONICAL, TRUTH, GeneratorConfig, generate
from portrait.cli import app

SMALL = dict(people=1200, block_size=400)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def twice(tmp_path_factory) -> tuple[Path, Path]:
    a, b = tmp_path_factory.mktemp("gen_a"), tmp_path_factory.mktemp("gen_b")
    generate(GeneratorConfig(seed=3, **SMALL), a)
    generate(GeneratorConfig(seed=3, **SMALL), b)
    return a, b


def test_same_seed_gives_the_same_bytes(twice):
    a, b = twice
    da, db = _digests(a), _digests(b)
    expected = {f"raw/{n}.parquet" for n in CANONICAL} | {f"raw/_truth/{n}.parquet" for n in TRUTH} | {"raw/_truth/meta.json"}
    assert set(da) == expected
    assert da == db


def test_generated_files_have_the_umask_default_mode(twice):
    """Tables written to a temporary file and renamed get a plain open()'s mode, not mkstemp's 0600."""
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    files = [p for p in twice[0].rglob("*") if p.is_file()]
    modes = {str(p.relative_to(twice[0])): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert "raw/events.parquet" in modes
    assert modes == dict.fromkeys(modes, oct(0o666 & ~umask))


def test_other_seed_differs(twice, tmp_path):
    generate(GeneratorConfig(seed=4, **SMALL), tmp_path)
    da, dc = _digests(twice[0]), _digests(tmp_path)
    differing = {k for k in da if da[k] != dc[k]}
    assert {"raw/events.parquet", "raw/identity_records.parquet", "raw/_truth/truth_people.parquet"} <= differing


def test_worker_processes_do_not_change_the_bytes(twice, tmp_path):
    generate(GeneratorConfig(seed=3, workers=2, **SMALL), tmp_path)
    assert _digests(tmp_path) == _digests(twice[0])


def test_output_validates_with_zero_rejects(twice):
    results = validate_folder(twice[0] / "raw")
    assert set(results) == set(CANONICAL)
    for name, res in results.items():
        assert len(res.rejects) == 0, (name, res.reasons)
        assert res.n_input == len(res.accepted) > 0, name


def test_meta_describes_the_run(twice):
    meta = json.loads((twice[0] / "raw" / "_truth" / "meta.json").read_text())
    assert meta["seed"] == 3 and meta["people"] == SMALL["people"]
    assert meta["now"] == "2026-07-01T00:00:00+00:00"
    assert len(meta["categories"]) == 20 and len(meta["segments"]) == 8
    for name in CANONICAL + TRUTH:
        assert meta["rows"][name] == len(pd.read_parquet(twice[0] / "raw" / ("_truth/" if name in TRUTH else "") /
                                                         f"{name}.parquet", columns=[])), name
    assert "workers" not in meta["config"]  # workers do not change the data, so they are not part of it


@pytest.mark.parametrize(("field", "value"), [("people", 0), ("household_rate", 1.5), ("now", "July"),
                                              ("orders_per_year", 0.0), ("block_size", 2_000_000)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        GeneratorConfig(**{field: value})


def test_a_failed_run_leaves_the_old_tables_and_no_temp_files(twice, tmp_path, monkeypatch):
    from features.sources import synthetic

    generate(GeneratorConfig(seed=3, **SMALL), tmp_path)
    before = _digests(tmp_path)
    calls = {"n": 0}
    real = synthetic.build_block

    def crash_on_second_block(config, block, world):
        calls["n"] += 1
        if block == 1:
            raise RuntimeError("simulated crash")
        return real(config, block, world)

    monkeypatch.setattr(synthetic, "build_block", crash_on_second_block)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate(GeneratorConfig(seed=9, **SMALL), tmp_path)
    assert calls["n"] >= 2
    assert _digests(tmp_path) == before  # nothing replaced, no .tmp left behind


def test_cli_generate_prints_row_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(app, ["data", "generate", "--people", "300", "--seed", "5"])
    assert res.exit_code == 0, res.output
    assert "identity_records" in res.output and "events" in res.output
    events = pd.read_parquet(tmp_path / "data" / "raw" / "events.parquet", columns=["ts"])
    assert f"{len(events):,}" in res.output
    bad = CliRunner().invoke(app, ["data", "generate", "--people", "10", "--now", "someday"])
    assert bad.exit_code == 2 and "now" in bad.output


@pytest.mark.parametrize("people", [1, 2, 5])
def test_tiny_populations_work(people, tmp_path):
    summary = generate(GeneratorConfig(people=people, seed=people), tmp_path)
    assert summary["rows"]["truth_people"] == people
    assert summary["rows"]["identity_records"] >= people
    assert all(len(r.rejects) == 0 for r in validate_folder(tmp_path / "raw").values())
