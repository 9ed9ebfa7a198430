"""User-written YAML (import mapping, identity rules) is UTF-8 whatever the locale.

Under a non-UTF-8 locale (LC_ALL=C without Python's UTF-8 mode, or a Chinese Windows' cp936) a
mapping naming 会员号 could not be read, and a rules file blocking 无 was a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd

ENV = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "utf-8",
       "PORTRAIT_HMAC_KEY": "utf8-config-test-key-0123456789"}


def _cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**ENV, "PORTRAIT_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-c", "from portrait.cli import app; app()", *args], env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


def test_chinese_mapping_and_rules_under_an_ascii_locale(tmp_path):
    data = tmp_path / "crm.csv"
    data.write_text("会员号,更新时间,手机\nM1,2026-01-02,13912345678\nM2,2026-01-03,无\n", encoding="utf-8")
    mapping = tmp_path / "crm.yaml"
    mapping.write_text("table: identity_records\ncolumns: {record_id: 会员号, observed_at: 更新时间, phone: 手机, "
                       "member_id: 会员号}\nconstants: {source: crm}\n", encoding="utf-8")
    done = _cli(tmp_path, "data", "import", str(data), "--mapping", str(mapping))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(pd.read_parquet(tmp_path / "data" / "raw" / "identity_records.parquet")) == 2
    rules = tmp_path / "rules.yaml"
    rules.write_text('blocked:\n  any: ["无", "暂无", "null"]\n', encoding="utf-8")
    done = _cli(tmp_path, "identity", "resolve", "--rules", str(rules), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["dropped_identifiers"]["phone"] == {"blocked": 1}  # the rule in Chinese was applied


def test_train_config_is_utf8_under_an_ascii_locale_and_other_bytes_name_the_file(tmp_path):
    """``portrait train --config`` read the file in the locale's encoding: a propensity config naming the
    category 母婴 was "'ascii' codec can't decode byte 0xe6" under LC_ALL=C, and a Latin-1 file was the
    bare codec error, naming neither the file nor what to do."""
    cfg = tmp_path / "propensity.yaml"
    cfg.write_bytes("\ufeff# 母婴 first\ncategories: [母婴, pets]\n".encode("utf-8"))  # with a BOM, as Notepad saves
    script = ("import json, sys; from pathlib import Path; from portrait.commands.train_value import make_config; "
              "print(json.dumps(make_config('propensity', Path(sys.argv[1])).categories))")
    env = {**ENV, "PORTRAIT_DATA_DIR": str(tmp_path / "data"), "PORTRAIT_MLRUNS_DIR": str(tmp_path / "mlruns")}
    done = subprocess.run([sys.executable, "-c", script, str(cfg)], env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["母婴", "pets"]
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("categories: [café]\n".encode("latin-1"))
    done = _cli(tmp_path, "train", "propensity", "--config", str(latin))
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2 and "Traceback" not in text, text
    assert "latin.yaml" in text and "not UTF-8" in text and "0xe9" in text, text
