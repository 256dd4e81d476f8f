"""Full-text search of posts, the same on SQLite and PostgreSQL.

Neither database splits Chinese into words, so the terms are computed here
and both databases index the same list. The text is folded first (NFKC, case
folded, traditional characters converted one by one to simplified), then:

- a run of Chinese, Japanese or Korean characters gives its character
  bigrams in order (a run of one character gives that character);
- any other run of letters and digits gives one word (``qc7``, ``brake``).

A query is folded and split the same way. Each run of the query must appear
as a phrase: its terms at consecutive positions. That makes a Chinese query of
two or more characters match wherever it occurs as a substring (刹车 finds
刹车失灵), and a Latin query match whole words. Runs separated by spaces or
punctuation must all appear, in any order.

SQLite keeps the terms in the FTS5 table ``post_search`` (rowid = post id,
tokenizer unicode61, which splits only on the spaces put between terms).
PostgreSQL keeps them in the ``tsvector`` column of the table
``post_search``, cast from the text form ``'刹车':1 '车失':2`` so that the
text search parser (which would glue CJK punctuation to words under the C
locale) plays no part, and indexes the column with GIN.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import opencc
from sqlalchemy import (
    BigInteger,
    Connection,
    TextClause,
    TextualSelect,
    bindparam,
    column,
    text,
)

SEARCH_TABLE = "post_search"
# PostgreSQL keeps at most 16,383 positions in a tsvector. Terms past that
# are not indexed, so a post is searchable in about its first 16,000
# characters.
# NOTE: PostgreSQL also keeps at most 256 positions of one term. In a long
# post that repeats a bigram more often, a phrase at a later occurrence can
# be missed on PostgreSQL while SQLite finds it.
MAX_TERMS = 16_000
# Longer words (a base64 blob, a long URL path) are not indexed.
MAX_WORD_LENGTH = 40
MAX_QUERY_LENGTH = 100

# Han (with extension A and the compatibility ideographs and the
# supplementary planes), kana and Hangul: scripts written without spaces.
_SPACELESS = (
    "\u3040-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0003ffff"
)
_RUN = re.compile(rf"([{_SPACELESS}]+)|([^\W_{_SPACELESS}]+)")


class SearchQueryError(ValueError):
    """A search query that cannot be run.

    ``reason`` is ``too_long`` (over :data:`MAX_QUERY_LENGTH` characters),
    ``no_terms`` (no letters, digits or CJK characters) or ``one_character``
    (a run of a single CJK character, which bigrams cannot find).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed query: phrases of terms, all of which must match."""

    phrases: tuple[tuple[str, ...], ...]

    def fts5(self) -> str:
        """Return the query in FTS5 syntax: quoted phrases joined by AND."""
        # Terms contain only letters and digits, so no quote can end a phrase.
        return " AND ".join(f'"{" ".join(phrase)}"' for phrase in self.phrases)

    def tsquery(self) -> str:
        """Return the query in tsquery syntax: ``<->`` phrases joined by ``&``."""
        return " & ".join(
            "(" + " <-> ".join(f"'{term}'" for term in phrase) + ")"
            for phrase in self.phrases
        )


class _Simplifier:
    """Converts traditional characters to simplified ones, one at a time.

    OpenCC's phrase rules would convert a character differently inside a
    longer text than in a short query, so each character is converted alone,
    once, and the changes are kept in a table for ``str.translate``.
    """

    def __init__(self) -> None:
        self.converter: opencc.OpenCC | None = None
        self.seen: set[str] = set()
        self.table: dict[int, str] = {}
        self.lock = threading.Lock()

    def convert(self, run: str) -> str:
        if not self.seen.issuperset(run):
            self._learn(run)
        return run.translate(self.table)

    def _learn(self, run: str) -> None:
        with self.lock:
            if self.converter is None:
                self.converter = opencc.OpenCC("t2s")
            for char in set(run).difference(self.seen):
                converted = self.converter.convert(char)
                if len(converted) == 1 and converted != char:
                    self.table[ord(char)] = converted
                self.seen.add(char)


_simplifier = _Simplifier()


def _runs(value: str) -> Iterable[tuple[bool, str]]:
    """Yield (spaceless, run) for each run of searchable characters."""
    folded = unicodedata.normalize("NFKC", value).casefold()
    for match in _RUN.finditer(folded):
        spaceless, word = match.groups()
        if spaceless is not None:
            yield True, _simplifier.convert(spaceless)
        else:
            yield False, word


def _run_terms(spaceless: bool, run: str) -> list[str]:
    if not spaceless:
        return [run] if len(run) <= MAX_WORD_LENGTH else []
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def search_terms(*texts: str | None) -> list[str]:
    """Return the indexed terms of a post's texts (title and text), in order."""
    terms: list[str] = []
    for value in texts:
        if not value:
            continue
        for spaceless, run in _runs(value):
            terms.extend(_run_terms(spaceless, run))
            if len(terms) >= MAX_TERMS:
                return terms[:MAX_TERMS]
    return terms


def parse_query(query: str) -> SearchQuery:
    """Parse what a reader typed into phrases; raise SearchQueryError when unusable."""
    if len(query) > MAX_QUERY_LENGTH:
        raise SearchQueryError(
            "too_long", f"query longer than {MAX_QUERY_LENGTH} characters"
        )
    phrases = []
    for spaceless, run in _runs(query):
        if spaceless and len(run) == 1:
            raise SearchQueryError(
                "one_character", f"single character {run!r}; give two or more"
            )
        terms = _run_terms(spaceless, run)
        if terms:
            phrases.append(tuple(terms))
    if not phrases:
        raise SearchQueryError("no_terms", "query has no letters, digits or CJK text")
    return SearchQuery(tuple(dict.fromkeys(phrases)))


def tsvector_text(terms: Sequence[str]) -> str:
    """Return the text form of a tsvector with the terms at positions 1, 2, ..."""
    positions: dict[str, list[str]] = {}
    for position, term in enumerate(terms, start=1):
        positions.setdefault(term, []).append(str(position))
    return " ".join(f"'{term}':{','.join(at)}" for term, at in positions.items())


def index_posts(
    connection: Connection, posts: Sequence[tuple[int, str | None, str]]
) -> None:
    """Store the search terms of ``(post_id, title, text)`` rows, replacing old ones."""
    if not posts:
        return
    rows = [
        {"post_id": post_id, "terms": search_terms(title, body)}
        for post_id, title, body in posts
    ]
    ids = [{"post_id": row["post_id"]} for row in rows]
    if connection.dialect.name == "sqlite":
        connection.execute(
            text(f"DELETE FROM {SEARCH_TABLE} WHERE rowid = :post_id"), ids
        )
        connection.execute(
            text(
                f"INSERT INTO {SEARCH_TABLE} (rowid, terms) VALUES (:post_id, :terms)"
            ),
            [{"post_id": r["post_id"], "terms": " ".join(r["terms"])} for r in rows],
        )
        return
    connection.execute(
        text(
            f"INSERT INTO {SEARCH_TABLE} (post_id, terms) "
            "VALUES (:post_id, CAST(:terms AS tsvector)) "
            "ON CONFLICT (post_id) DO UPDATE SET terms = excluded.terms"
        ),
        [{"post_id": r["post_id"], "terms": tsvector_text(r["terms"])} for r in rows],
    )


def matching_posts(dialect: str, query: SearchQuery) -> TextualSelect:
    """Return a SELECT of the ids of the posts that match ``query``."""
    if dialect == "sqlite":
        statement = text(
            f"SELECT rowid AS post_id FROM {SEARCH_TABLE} "
            f"WHERE {SEARCH_TABLE} MATCH :search_query"
        ).bindparams(bindparam("search_query", query.fts5()))
    else:
        statement = text(
            f"SELECT post_id FROM {SEARCH_TABLE} "
            "WHERE terms @@ CAST(:search_query AS tsquery)"
        ).bindparams(bindparam("search_query", query.tsquery()))
    return statement.columns(column("post_id", BigInteger))


def matches_row(dialect: str, query: SearchQuery, post_id: str) -> TextClause:
    """Return a condition that tests one row's post against ``query``.

    ``post_id`` is the SQL name of the outer query's post id column. The
    test runs once per row that reaches it, through the index of the
    search table's key. On PostgreSQL, OFFSET 0 keeps the subquery a
    per-row test instead of a join that reads every match.
    """
    if dialect == "sqlite":
        condition = text(
            f"EXISTS (SELECT 1 FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} "
            f"MATCH :search_query AND rowid = {post_id})"
        ).bindparams(bindparam("search_query", query.fts5()))
    else:
        condition = text(
            f"EXISTS (SELECT 1 FROM {SEARCH_TABLE} "
            f"WHERE {SEARCH_TABLE}.post_id = {post_id} "
            "AND terms @@ CAST(:search_query AS tsquery) OFFSET 0)"
        ).bindparams(bindparam("search_query", query.tsquery()))
    return condition


def create_search_table(connection: Connection) -> None:
    """Create the search table of the connection's database (used by the migration)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5("
            "terms, tokenize = 'unicode61 remove_diacritics 0')"
        )
        return
    connection.exec_driver_sql(
        f"CREATE TABLE {SEARCH_TABLE} ("
        "post_id BIGINT PRIMARY KEY REFERENCES posts (id), "
        "terms TSVECTOR NOT NULL)"
    )
    connection.exec_driver_sql(
        f"CREATE INDEX ix_{SEARCH_TABLE}_terms ON {SEARCH_TABLE} USING gin (terms)"
    )


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Tell Alembic's autogenerate to skip the search tables (its include_name hook).

    The migration creates them per database by hand, an FTS5 table with its
    shadow tables (``post_search_data`` ...) or a tsvector table, and the
    metadata leaves them out.
    """
    if type_ != "table" or name is None:
        return True
    return not (name == SEARCH_TABLE or name.startswith(f"{SEARCH_TABLE}_"))
