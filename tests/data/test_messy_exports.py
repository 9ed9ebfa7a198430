"""A brand's own exports, as a data engineer imports them: a Chinese CRM, a POS, refunds.

Each test builds the small file the README's `portrait data import` is given and checks the
table written, through the real CLI.
"""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner


def _import(tmp_path, monkeypatch, *args: str):
    from portrait.cli import app

    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    return CliRunner().invoke(app, ["data", "import", *args])


def test_chinese_crm_genders_are_read_not_rejected(tmp_path, monkeypatch):
    crm = tmp_path / "crm.csv"
    crm.write_bytes(("sep=;\nCustomerCode;City;Gender;UpdatedAt\nC1;上海;男;2026/01/02 10:00\nC2;北京;女;2026/01/03\n"
                     "C3;杭州;Female;2026/01/04\nC4;深圳;保密;2026/01/05\nC5;成都;其他;2026/01/06\n").encode("gbk"))
    done = _import(tmp_path, monkeypatch, str(crm), "-t", "profiles", "--map", "record_id=CustomerCode",
                   "--map", "observed_at=UpdatedAt", "--set", "source=crm", "--encoding", "gbk")
    assert done.exit_code == 0, done.output
    got = pd.read_parquet(tmp_path / "data" / "raw" / "profiles.parquet")
    assert got["gender"].tolist() == ["M", "F", "F", "U"]  # a profile is not lost over 男/女
    rejects = pd.read_csv(tmp_path / "data" / "rejects" / "profiles.csv")
    assert rejects["_reason"].tolist() == ["gender: not one of ['F', 'M', 'U']: 其他"]


def test_chinese_dates_are_read(tmp_path, monkeypatch):
    pos = tmp_path / "pos.csv"
    pos.write_text("会员号,更新时间\nM1,2026年3月4日 13:45\nM2,2025年12月5日\nM3,2026年1月2号\n", encoding="utf-8")
    done = _import(tmp_path, monkeypatch, str(pos), "-t", "identity_records", "--map", "record_id=会员号",
                   "--map", "member_id=会员号", "--map", "observed_at=更新时间", "--set", "source=pos",
                   "--tz", "Asia/Shanghai")
    assert done.exit_code == 0, done.output
    got = pd.read_parquet(tmp_path / "data" / "raw" / "identity_records.parquet")
    assert got["observed_at"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2026-03-04 05:45", "2025-12-04 16:00", "2026-01-01 16:00"]  # Shanghai wall clock, stored as UTC


def test_an_excel_workbook_is_refused_saying_to_save_it_as_csv(tmp_path, monkeypatch):
    import zipfile

    book = tmp_path / "members.xlsx"
    with zipfile.ZipFile(book, "w") as z:  # what Excel writes: a zip of XML parts
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet>" + "<row/>" * 2000 + "</worksheet>")
    renamed = tmp_path / "members_export.csv"  # the same bytes under a .csv name
    renamed.write_bytes(book.read_bytes())
    for path in (book, renamed):
        done = _import(tmp_path, monkeypatch, str(path), "-t", "items")
        assert done.exit_code == 2, done.output
        assert "spreadsheet workbook" in done.output and "CSV" in done.output
        assert "Traceback" not in done.output and "no data rows" not in done.output and "--encoding" not in done.output
    assert not (tmp_path / "data" / "raw").exists() or not any((tmp_path / "data" / "raw").iterdir())


def test_phones_and_ids_rounded_by_excel_are_rejected_naming_the_fix(tmp_path, monkeypatch):
    """1.39123E+10 is what Excel leaves of 13912345678 in a General cell: as a record id, every shopper
    whose phone rounds the same way would be one customer; as a phone it silently links nobody."""
    pos = tmp_path / "pos.csv"
    pos.write_text("OrderNo,Phone,PaidAt,Total\nP1,1.39123E+10,2026-01-02,10\nP2,1.39123E+10,2026-01-03,20\n"
                   "P3,13912345678,2026-01-04,30\nP4,2E10,2026-01-05,40\n", encoding="utf-8")
    done = _import(tmp_path, monkeypatch, str(pos), "-t", "orders", "--map", "order_id=OrderNo", "--map",
                   "record_id=Phone", "--map", "ts=PaidAt", "--map", "amount=Total", "--set", "source=pos")
    assert done.exit_code == 0, done.output
    got = pd.read_parquet(tmp_path / "data" / "raw" / "orders.parquet")
    assert got["order_id"].tolist() == ["P3", "P4"]  # 2E10 is no Excel rounding (no decimals, no '+')
    rejects = pd.read_csv(tmp_path / "data" / "rejects" / "orders.csv")
    assert rejects["_data_row"].tolist() == [1, 2]
    assert all("Excel rounded" in r and "format the column as text" in r for r in rejects["_reason"])


def test_chinese_and_ga4_event_names_and_yes_no_flags_are_read(tmp_path, monkeypatch):
    ev = tmp_path / "events.csv"
    ev.write_text("uid,行为,sku,时间\nu1,浏览,S1,2026-01-02\nu1,加购,S1,2026-01-02 10:00\nu1,View_Item,S1,2026-01-03\n"
                  "u1,add-to-cart,S1,2026-01-03\nu1,收藏,S1,2026-01-04\nu1,分享,S1,2026-01-04\n", encoding="utf-8")
    done = _import(tmp_path, monkeypatch, str(ev), "-t", "events", "--map", "record_id=uid", "--map", "event_type=行为",
                   "--map", "item_id=sku", "--map", "ts=时间", "--set", "source=app")
    assert done.exit_code == 0, done.output
    got = pd.read_parquet(tmp_path / "data" / "raw" / "events.parquet")
    assert got["event_type"].tolist() == ["view", "add_to_cart", "view", "add_to_cart", "favorite"]
    rejects = pd.read_csv(tmp_path / "data" / "rejects" / "events.csv")
    assert rejects["_data_row"].tolist() == [6] and "分享" in rejects["_reason"][0]  # no such type: still named
    items = tmp_path / "items.csv"
    items.write_text("item_id,category,in_stock\nS1,a,是\nS2,b,否\nS3,c,Y\nS4,d,n\n", encoding="utf-8")
    done = _import(tmp_path, monkeypatch, str(items), "-t", "items")
    assert done.exit_code == 0, done.output
    assert pd.read_parquet(tmp_path / "data" / "raw" / "items.parquet")["in_stock"].tolist() == [True, False, True, False]


def test_trailing_empty_spreadsheet_rows_are_not_rejects(tmp_path, monkeypatch):
    crm = tmp_path / "crm.csv"
    crm.write_text("record_id,source,phone,observed_at\r\nC1,crm,13912345678,2026-01-01\r\n,,,\r\n"
                   "C2,crm,13912345679,2026-01-01\r\n,,,\r\n,,,\r\n", encoding="utf-8")
    done = _import(tmp_path, monkeypatch, str(crm), "-t", "identity_records")
    assert done.exit_code == 0, done.output
    assert len(pd.read_parquet(tmp_path / "data" / "raw" / "identity_records.parquet")) == 2
    rejects = pd.read_csv(tmp_path / "data" / "rejects" / "identity_records.csv")
    assert rejects["_data_row"].tolist() == [2]  # a blank row between data rows is still named, by its row
