"""CLI errors of audience export and lookalike expand: one line, exit 2, nothing saved; reach edge cases.

One trained lookalike (real MLflow registry under tmp) serves every test of the module.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def cli(tmp_path_factory, lal_builder):
    """(invoke, data root) with a trained champion lookalike and a seed audience ``b`` (200 customers)."""
    from portrait.cli import app

    root, _, _ = lal_builder(tmp_path_factory.mktemp("lal_cli"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PORTRAIT_DATA_DIR", str(root))
        mp.setenv("PORTRAIT_MLRUNS_DIR", str(root / "mlruns"))
        mp.delenv("PORTRAIT_MLFLOW_URI", raising=False)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        runner = CliRunner()

        def invoke(*args: str):
            return runner.invoke(app, list(args))

        r = invoke("train", "lookalike", "--factors", "8", "--json")
        assert r.exit_code == 0, r.output
        assert invoke("audience", "create", "b", "--rule", 'tag_group == "b"').exit_code == 0
        yield invoke, root


def _one_line_error(r, *parts: str) -> str:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit))
    err = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(err) == 1, r.output
    for p in parts:
        assert p in err[0], err[0]
    return err[0]


def test_export_to_missing_folder_directory_or_existing_file(cli, tmp_path):
    invoke, _ = cli
    _one_line_error(invoke("audience", "export", "b", "-o", str(tmp_path / "nosuch" / "b.csv")),
                    str(tmp_path / "nosuch"), "does not exist")
    assert not (tmp_path / "nosuch").exists()
    _one_line_error(invoke("audience", "export", "b", "-o", str(tmp_path)), "is a folder")
    (tmp_path / "b.csv").write_text("keep me\n")
    _one_line_error(invoke("audience", "export", "b", "-o", str(tmp_path / "b.csv")), "exists", "--overwrite")
    assert (tmp_path / "b.csv").read_text() == "keep me\n"
    _one_line_error(invoke("audience", "export", "b", "-o", str(tmp_path / "b.csv" / "x.csv")), "not a folder")
    r = invoke("audience", "export", "b", "-o", str(tmp_path / "b.csv"), "--overwrite")
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(tmp_path / "b.csv")) == 200


def test_expand_with_unknown_explain_column_saves_nothing(cli):
    invoke, root = cli
    line = _one_line_error(invoke("lookalike", "expand", "--seed", "b", "--reach", "20", "--name", "b_x",
                                  "--explain", "tag_grop,nosuch"), "--explain", "nosuch", "tag_group")
    assert "tag_grop" in line
    assert not (root / "audiences" / "b_x.json").exists() and not (root / "audiences" / "b_x.parquet").exists()


def test_an_existing_name_names_the_cli_option_replace(cli):
    """The store's error names its Python argument (overwrite=True); each command names its own --replace."""
    invoke, root = cli
    assert invoke("lookalike", "expand", "--seed", "b", "--reach", "20", "--name", "b_twice").exit_code == 0
    line = _one_line_error(invoke("lookalike", "expand", "--seed", "b", "--reach", "30", "--name", "b_twice"),
                           "audience 'b_twice' already exists", "pass --replace", "--name")
    assert "overwrite=True" not in line and "overwrite /" not in line
    assert json.loads((root / "audiences" / "b_twice.json").read_text())["size"] == 20  # left as it was
    r = invoke("lookalike", "expand", "--seed", "b", "--reach", "30", "--name", "b_twice", "--replace")
    assert r.exit_code == 0 and json.loads((root / "audiences" / "b_twice.json").read_text())["size"] == 30
    line = _one_line_error(invoke("audience", "create", "b", "--rule", 'tag_group == "a"'),
                           "audience 'b' already exists", "pass --replace")
    assert "overwrite=True" not in line and "overwrite /" not in line


def test_filter_leaving_no_one_eligible_names_the_filter(cli):
    invoke, root = cli
    _one_line_error(invoke("lookalike", "expand", "--seed", "b", "--name", "b_none", "--filter", "age > 1000"),
                    "filter 'age > 1000'", "leaves none of the 400 non-seed customers eligible")
    assert not (root / "audiences" / "b_none.json").exists()


def test_reach_above_the_eligible_population_is_capped_with_a_warning(cli):
    invoke, _ = cli
    r = invoke("lookalike", "expand", "--seed", "b", "--reach", "100000", "--name", "b_all", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert out["eligible"] == 400 and out["audience"]["size"] == 400 and out["reach"] == 400
    assert any("100,000" in w and "400" in w for w in out["warnings"])
    assert "warning:" in r.stderr and "100,000" in r.stderr


def test_too_small_seed_names_the_training_option(cli):
    invoke, _ = cli
    assert invoke("audience", "create", "tiny", "--rule", 'tag_group == "b" and age < 18').exit_code == 0
    _one_line_error(invoke("lookalike", "expand", "--seed", "tiny", "--reach", "10"),
                    "at least 50", "portrait train lookalike --min-seeds")


def test_export_encoding_option(cli, tmp_path):
    invoke, _ = cli
    _one_line_error(invoke("audience", "export", "b", "-o", str(tmp_path / "b.csv"), "--encoding", "nosuch"),
                    "unknown encoding 'nosuch'")
    assert not (tmp_path / "b.csv").exists()
    r = invoke("audience", "export", "b", "-o", str(tmp_path / "b.csv"), "--encoding", "utf-8-sig")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "b.csv").read_bytes().startswith(b"\xef\xbb\xbfone_id")
    assert "byte-order" not in r.output  # ASCII one_ids need no hint
