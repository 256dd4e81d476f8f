"""Replay collector: field mapping, cursors and bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collectors.base import CollectorError, clean_text, parse_count, parse_time
from collectors.replay import ReplayCollector
from config import Source

SHANGHAI = ZoneInfo("Asia/Shanghai")


def collector(path: Path, **options) -> ReplayCollector:
    source = Source(name="test", kind="replay", path=str(path), **options)
    return ReplayCollector(source, path, "Asia/Shanghai")


def collect_all(replay: ReplayCollector, cursor: str | None = None):
    batches = list(replay.collect(cursor))
    items = [item for batch in batches for item in batch.items]
    rejected = [r for batch in batches for r in batch.rejected]
    return batches, items, rejected


def write_lines(path: Path, records: list) -> Path:
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    )
    return path


def test_nested_field_mapping(tmp_path):
    path = write_lines(
        tmp_path / "posts.jsonl",
        [
            {
                "pid": "a1",
                "body": "QC7很好",
                "user": {"fans": "1.2万", "v": "蓝V"},
                "stats": {"up": 5},
                "site": "weibo",
                "time": "2026-11-01 08:00",
            }
        ],
    )
    fields = {
        "id": "pid",
        "text": "body",
        "followers": "user.fans",
        "verified": "user.v",
        "likes": "stats.up",
        "platform": "site",
        "created_at": "time",
    }

    _, items, rejected = collect_all(collector(path, fields=fields))

    assert rejected == []
    item = items[0]
    assert item.external_id == "a1"
    assert item.author.followers == 12_000
    assert item.author.verified == "enterprise"
    assert item.engagement.likes == 5
    assert item.platform == "weibo"
    assert item.created_at == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert item.location == "posts.jsonl:1"


def test_missing_mapped_id_is_rejected(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl", [{"text": "QC5"}, {"key": "k", "text": "QC7"}]
    )

    _, items, rejected = collect_all(collector(path, fields={"id": "key"}))

    assert [i.external_id for i in items] == ["k"]
    assert rejected[0].location == "p.jsonl:1"
    assert "missing id" in rejected[0].reason


def test_unmapped_id_uses_text_hash(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [{"text": "QC5"}, {"text": "QC5"}])

    _, items, _ = collect_all(collector(path))

    assert items[0].external_id.startswith("sha1:")
    assert items[0].external_id == items[1].external_id


def test_cursor_resumes_after_last_batch(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl", [{"id": n, "text": f"post {n}"} for n in range(7)]
    )
    replay = collector(path)
    replay.batch_size = 3

    batches, _, _ = collect_all(replay)
    _, resumed, _ = collect_all(replay, batches[1].cursor)

    assert [len(b.items) for b in batches] == [3, 3, 1]
    assert [i.external_id for i in resumed] == ["6"]
    assert replay.estimate_total(batches[1].cursor) == 1


def test_limit_stops_early(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl", [{"id": n, "text": f"post {n}"} for n in range(5)]
    )

    batches, items, _ = collect_all(collector(path, limit=2))

    assert len(items) == 2
    assert json.loads(batches[-1].cursor)["records"] == 2


def test_unreadable_cursor_starts_over(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [{"id": 1, "text": "x"}])

    _, items, _ = collect_all(collector(path), "garbage")

    assert len(items) == 1


def test_missing_file_raises(tmp_path):
    with pytest.raises(CollectorError, match="replay file not found"):
        collect_all(collector(tmp_path / "absent.jsonl"))


def test_gbk_line_in_utf8_file(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(
        '{"id": 1, "text": "启程汽车投诉"}\n'.encode("gbk")
        + b'{"id": 2, "text": "\xff\xfe"}\n'
    )

    _, items, rejected = collect_all(collector(path))

    assert items[0].text == "启程汽车投诉"
    assert rejected[0].location == "p.jsonl:2"


def test_csv_multiline_and_bad_rows(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(
        '\ufeffid,text\n1,"两行\n文本"\n2\n3,"ok"\n4,bad,extra\n'.encode("utf-8")
    )

    _, items, rejected = collect_all(collector(path))

    assert [i.external_id for i in items] == ["1", "3"]
    assert items[0].text == "两行\n文本"
    assert [r.location for r in rejected] == ["p.csv:4", "p.csv:6"]


def test_control_characters_removed(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl", [{"id": 1, "text": "a\u0000b\u0007c\td\ne"}]
    )

    _, items, _ = collect_all(collector(path))

    assert items[0].text == "abc\td\ne"
    assert "\u0000" not in json.dumps(items[0].raw)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12),
        ("1,024", 1024),
        ("1.2万", 12_000),
        ("3k", 3000),
        ("2w+", 20_000),
        (-5, 0),
        ("n/a", 0),
        (None, 0),
        (True, 0),
        (float("nan"), 0),
    ],
)
def test_parse_count(value, expected):
    assert parse_count(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "2026-03-02T10:48:13+08:00",
            datetime(2026, 3, 2, 2, 48, 13, tzinfo=UTC),
        ),
        ("2021-02-07", datetime(2021, 2, 6, 16, 0, tzinfo=UTC)),
        ("2020-03-29 16:50", datetime(2020, 3, 29, 8, 50, tzinfo=UTC)),
        (1464739201, datetime(2016, 6, 1, 0, 0, 1, tzinfo=UTC)),
        ("1464739201000", datetime(2016, 6, 1, 0, 0, 1, tzinfo=UTC)),
        ("2026年3月2日", datetime(2026, 3, 1, 16, 0, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_time(value, expected):
    assert parse_time(value, SHANGHAI) == expected


# 10:30 on 4 December 2026 in Shanghai.
FETCHED = datetime(2026, 12, 4, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("刚刚", FETCHED),
        ("5分钟前", datetime(2026, 12, 4, 2, 25, tzinfo=UTC)),
        ("3小时前", datetime(2026, 12, 3, 23, 30, tzinfo=UTC)),
        ("2天前", datetime(2026, 12, 2, 2, 30, tzinfo=UTC)),
        ("今天 08:05", datetime(2026, 12, 4, 0, 5, tzinfo=UTC)),
        ("昨天 23:10", datetime(2026, 12, 3, 15, 10, tzinfo=UTC)),
        ("前天", datetime(2026, 12, 1, 16, 0, tzinfo=UTC)),
        ("12-03 10:00", datetime(2026, 12, 3, 2, 0, tzinfo=UTC)),
        ("11月30日 21:00", datetime(2026, 11, 30, 13, 0, tzinfo=UTC)),
        ("12-25", datetime(2025, 12, 24, 16, 0, tzinfo=UTC)),
        ("09:15", datetime(2026, 12, 4, 1, 15, tzinfo=UTC)),
        ("13-45 10:00", None),
        ("99:99", None),
        ("5年前", None),
    ],
)
def test_parse_relative_time(value, expected):
    assert parse_time(value, SHANGHAI, now=FETCHED) == expected


def test_record_without_time_is_dated_at_fetch(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"id": "1", "text": "QC7 异响", "created_at": "下个月"}\n')
    [batch] = list(collector(path).collect(None))
    [item] = batch.items
    assert item.time_estimated is True
    assert item.created_at == item.collected_at


def test_clean_text_keeps_newlines():
    assert clean_text("a\r\nb\x00\x1b") == "a\r\nb"


def test_replaced_file_read_from_start(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl", [{"id": n, "text": f"old {n}"} for n in range(5)]
    )
    batches, _, _ = collect_all(collector(path))
    path.unlink()
    write_lines(path, [{"id": f"new{n}", "text": f"new {n}"} for n in range(8)])

    _, items, _ = collect_all(collector(path), batches[-1].cursor)

    assert [i.external_id for i in items] == [f"new{n}" for n in range(8)]


def test_truncated_file_read_from_start(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl", [{"id": n, "text": f"old {n}"} for n in range(5)]
    )
    batches, _, _ = collect_all(collector(path))
    with path.open("w") as handle:
        handle.write(json.dumps({"id": "x", "text": "fresh"}) + "\n")

    _, items, _ = collect_all(collector(path), batches[-1].cursor)

    assert [i.external_id for i in items] == ["x"]


def test_line_cut_inside_character_waits(tmp_path):
    path = tmp_path / "p.jsonl"
    whole = '{"id": "u1", "text": "启程QC7"}\n'.encode()
    path.write_bytes(whole[:24])

    batches, items, rejected = collect_all(collector(path))

    assert items == []
    assert rejected == []
    path.write_bytes(whole)
    _, items, _ = collect_all(collector(path))
    assert [i.external_id for i in items] == ["u1"]
