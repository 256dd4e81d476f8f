"""Full-text search terms and queries, and the index on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from items import Author, Item
from storage import Store
from storage.search import (
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    SearchQueryError,
    matching_posts,
    parse_query,
    search_terms,
    tsvector_text,
)
from storage.tables import posts

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
HOSTILE_QUERIES = [
    '" OR 1=1 --',
    "刹车' OR '1'='1",
    "NEAR(刹车 失灵, 2)",
    "刹车* AND NOT 失灵",
    "terms:刹车",
    "'; DROP TABLE posts; --",
    "\\x00 刹车 \\",
    "a & b | !c <-> d",
    "^刹车 {terms}",
]


def test_terms_bigrams_and_words() -> None:
    assert search_terms("QC7 刹车失灵") == ["qc7", "刹车", "车失", "失灵"]
    assert search_terms("Brake-failure on the QC7!") == [
        "brake",
        "failure",
        "on",
        "the",
        "qc7",
    ]


def test_terms_fold_width_case_and_script() -> None:
    assert search_terms("ＱＣ７ 剎車失靈") == ["qc7", "刹车", "车失", "失灵"]


def test_terms_punctuation_splits_runs() -> None:
    assert search_terms("刹车，失灵。车") == ["刹车", "失灵", "车"]


def test_terms_title_first_and_capped() -> None:
    assert search_terms("标题", "正文") == ["标题", "正文"]
    assert search_terms(None, "") == []
    assert len(search_terms("刹" * (MAX_TERMS + 50))) == MAX_TERMS


def test_terms_skip_overlong_words() -> None:
    assert search_terms("a" * 41 + " ok") == ["ok"]


def test_query_phrases() -> None:
    query = parse_query("刹车失灵 QC7")

    assert query.phrases == (("刹车", "车失", "失灵"), ("qc7",))
    assert query.fts5() == '"刹车 车失 失灵" AND "qc7"'
    assert query.tsquery() == "('刹车' <-> '车失' <-> '失灵') & ('qc7')"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "no_terms"),
        ("   ", "no_terms"),
        ("!!! ？？", "no_terms"),
        ("车", "one_character"),
        ("QC7 车", "one_character"),
        ("刹" * (MAX_QUERY_LENGTH + 1), "too_long"),
    ],
)
def test_unusable_query_rejected(query: str, reason: str) -> None:
    with pytest.raises(SearchQueryError) as caught:
        parse_query(query)

    assert caught.value.reason == reason


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_query_keeps_only_terms(query: str) -> None:
    parsed = parse_query(query)

    for phrase in parsed.phrases:
        for term in phrase:
            assert term.isalnum(), term


def test_tsvector_text_positions() -> None:
    assert tsvector_text(["刹车", "车失", "刹车"]) == "'刹车':1,3 '车失':2"


def store_posts(store: Store, texts: dict[str, str]) -> dict[str, int]:
    items = [
        Item(
            source="forum",
            platform="forum",
            external_id=name,
            text=text,
            collected_at=T0,
            created_at=T0,
            author=Author(name="车主"),
        )
        for name, text in texts.items()
    ]
    ids = store.add_items(items)
    return dict(zip(texts, ids, strict=True))


def found(store: Store, query: str) -> set[int]:
    statement = matching_posts(store.engine.dialect.name, parse_query(query))
    with store.engine.connect() as connection:
        return set(connection.execute(statement).scalars())


@pytest.fixture
def indexed(store: Store) -> dict[str, int]:
    return store_posts(
        store,
        {
            "fail": "QC7 刹车失灵，差点追尾",
            "noise": "刹车异响三个月了",
            "apart": "刹车还行，失灵的是车机",
            "latin": "Brake failure on my Qicheng QC7",
            "plural": "The brakes squeal",
            "traditional": "剎車失靈，4S店不處理",
        },
    )


def test_search_finds_substring(store: Store, indexed) -> None:
    assert found(store, "刹车") == {
        indexed["fail"],
        indexed["noise"],
        indexed["apart"],
        indexed["traditional"],
    }
    assert found(store, "车失") == {indexed["fail"], indexed["traditional"]}


def test_search_phrase_must_be_contiguous(store: Store, indexed) -> None:
    assert found(store, "刹车失灵") == {indexed["fail"], indexed["traditional"]}


def test_search_traditional_query(store: Store, indexed) -> None:
    assert found(store, "剎車失靈") == {indexed["fail"], indexed["traditional"]}


def test_search_latin_whole_words(store: Store, indexed) -> None:
    assert found(store, "BRAKE") == {indexed["latin"]}
    assert found(store, "brakes") == {indexed["plural"]}
    assert found(store, "qc7") == {indexed["fail"], indexed["latin"]}


def test_search_all_phrases_required(store: Store, indexed) -> None:
    assert found(store, "刹车 QC7") == {indexed["fail"]}
    assert found(store, "QC7，追尾") == {indexed["fail"]}


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_search_hostile_query_runs(store: Store, indexed, query: str) -> None:
    found(store, query)

    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(posts)).scalar() == 6


def test_replaced_text_reindexed(store: Store, indexed) -> None:
    store.replace_text(indexed["noise"], "刹车异响，换了刹车片还响，要求退车", T0)

    assert indexed["noise"] in found(store, "退车")
    assert found(store, "三个月") == set()


def test_duplicate_post_indexed_once(store: Store, indexed) -> None:
    store_posts(store, {"fail": "QC7 刹车失灵，差点追尾"})

    assert found(store, "追尾") == {indexed["fail"]}
