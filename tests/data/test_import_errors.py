"""What `portrait data import` says about a file it cannot take: the encoding, the columns it cannot map.

A new user's first files: a GBK export of a Chinese CRM, a POS export with its own headers.
Each error is one line naming the file and what to pass instead; nothing is written.
"""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from portrait.cli import app

runner = CliRunner()
CHINESE = "来源,客户编号,手机,注册时间\ncrm,C1,13900000001,2026-01-02\ncrm,C2,13900000002,2026-01-03\n"


def _import(data, *args: str):
    return runner.invoke(app, ["data", "import", *map(str, args)], env={"PORTRAIT_DATA_DIR": str(data)})


def _one_line(res) -> str:
    assert res.exit_code == 2, res.output
    assert res.output.strip().count("\n") == 0 and "Traceback" not in res.output, res.output
    return res.output.strip()


def test_a_gbk_file_with_chinese_headers_names_gbk_and_re_saving(tmp_path):
    src = tmp_path / "会员导出.csv"
    src.write_bytes(CHINESE.encode("gbk"))
    text = _one_line(_import(tmp_path / "data", src, "-t", "identity_records"))
    assert "会员导出.csv: not valid utf-8 text at byte offset 0" in text
    assert "it reads as GBK" in text and "pass --encoding gbk" in text and "re-save the file as UTF-8" in text
    assert not (tmp_path / "data").exists()
    done = _import(tmp_path / "data", src, "-t", "identity_records", "--encoding", "gbk", "--map", "source=来源",
                   "--map", "record_id=客户编号", "--map", "phone=手机", "--map", "observed_at=注册时间")
    assert done.exit_code == 0, done.output
    assert pd.read_parquet(tmp_path / "data" / "raw" / "identity_records.parquet")["record_id"].tolist() == ["C1", "C2"]


def test_a_file_only_gb18030_reads_is_told_gb18030(tmp_path):
    src = tmp_path / "rare.csv"
    src.write_bytes("source,record_id,observed_at,name\ncrm,C1,2026-01-02,𠀀\n".encode("gb18030"))  # not in GBK
    text = _one_line(_import(tmp_path / "data", src, "-t", "identity_records"))
    assert "it reads as GB18030" in text and "--encoding gb18030" in text


def test_a_utf8_file_read_as_gbk_is_told_utf8(tmp_path):
    src = tmp_path / "crm.csv"
    src.write_text("source,record_id,observed_at,city\ncrm,C1,2026-01-02,上海\n", encoding="utf-8")
    text = _one_line(_import(tmp_path / "data", src, "-t", "identity_records", "--encoding", "ascii"))
    assert "not valid ascii text" in text and "it reads as UTF-8: pass --encoding utf-8" in text


def test_unmapped_required_columns_name_the_files_unmapped_columns(tmp_path):
    src = tmp_path / "pos.csv"
    src.write_text("OrderNo,CustomerCode,PaidAt,Total,source\nA1,c1,2026-03-01,12.5,pos\n")
    text = _one_line(_import(tmp_path / "data", src, "-t", "orders", "--map", "order_id=OrderNo"))
    assert "pos.csv: table 'orders' needs column(s) record_id, ts, amount" in text
    assert "the file's columns not mapped to one of the table: 'CustomerCode', 'PaidAt', 'Total'" in text
    assert "'OrderNo'" not in text.split("not mapped")[1] and "'source'" not in text.split("not mapped")[1]
    assert "--map record_id=<file column>" in text and "--set record_id=<value>" in text
    assert not (tmp_path / "data").exists()


def test_a_mapped_column_is_not_listed_as_unmapped(tmp_path):
    src = tmp_path / "lines.csv"
    src.write_text("Ref,Sku,Qty\nA1,i1,2\n")
    text = _one_line(_import(tmp_path / "data", src, "-t", "order_lines", "--map", "item_id=Sku"))
    assert "needs column(s) order_id, quantity (read under these names in any case and punctuation)" in text
    assert "not mapped to one of the table: 'Ref', 'Qty'" in text


def test_every_column_mapped_and_still_missing_says_so(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("order_id,source\no1,pos\n")
    text = _one_line(_import(tmp_path / "data", src, "-t", "orders"))
    assert "needs column(s) record_id, ts, amount" in text and "every column of the file is mapped already" in text


def test_no_table_says_to_pass_one_and_a_wrong_target_lists_the_tables_columns(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("order_id,source\no1,pos\n")
    text = _one_line(_import(tmp_path / "data", src))
    assert "no table given: pass --table (-t) with one of campaign_contacts, events," in text  # was "unknown table ''"
    text = _one_line(_import(tmp_path / "data", src, "-t", "orders", "--map", "customer=source"))
    assert "mapping names column(s) ['customer'] that table 'orders' does not have (its columns: order_id, source, " \
           "record_id, ts, amount" in text
