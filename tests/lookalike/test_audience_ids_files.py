"""`audience create --ids` on the files a CRM hands over: GBK, quoted CSV, ';', a Chinese header."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner


@pytest.fixture()
def cli(tmp_path, monkeypatch, lal_builder):
    from portrait.cli import app

    root, ids, _ = lal_builder(tmp_path)
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(root))
    runner = CliRunner()
    return (lambda *args: runner.invoke(app, list(args))), ids


def test_gbk_file_is_one_line_error_then_read_with_encoding(cli, tmp_path):
    invoke, ids = cli
    path = tmp_path / "vip.csv"
    path.write_bytes(("会员编号,姓名\n" + "\n".join(f"{i},王伟" for i in ids[:3]) + "\n").encode("gbk"))
    r = invoke("audience", "create", "vip", "--ids", str(path))
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "not valid utf-8" in r.output and "--encoding gbk" in r.output
    r = invoke("audience", "create", "vip", "--ids", str(path), "--encoding", "gbk", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert out["size"] == 3 and out["unresolved"] == 0 and out["warnings"] == []  # the header is no id


def test_quoted_semicolon_csv_takes_the_first_column(cli, tmp_path):
    invoke, ids = cli
    path = tmp_path / "vip.csv"
    path.write_text('"手机号";"备注"\n' + "\n".join(f'"{i}";"a, b"' for i in ids[:4]) + "\n", encoding="utf-8-sig")
    r = invoke("audience", "create", "vip", "--ids", str(path), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert out["size"] == 4 and out["unresolved"] == 0, out
