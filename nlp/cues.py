"""Compiled phrase tables and the per-text scan that the classifier and grader share.

A :class:`PhraseTable` turns one lexicon table into a few compiled regexes that
report the code of each match. The longest phrase at a position wins. A
:class:`Scan` contains one text. It finds the hits of any table once, caches
them, and finds the clause that contains each position.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nlp import lexicon

_REGEX_SYNTAX = set(".^$*+?{}[]\\|()")
# Clause ends: Chinese and ASCII punctuation after NFKC, line breaks kept as
# double spaces, and the "//" of a repost chain. A period between digits is a
# decimal point, not an end.
_CLAUSE_END = re.compile(r"[,;!?。;!?、…~]+|(?<!\d)\.(?!\d)|//|\s{2,}")
_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
_ASCII_LETTER = re.compile("[a-z]")
# English phrases run over letters, digits, apostrophes, hyphens and spaces.
_ASCII_RUN = re.compile(r"[a-z0-9'\-][a-z0-9'\- ]*")


@dataclass(frozen=True, slots=True)
class Hit:
    """One phrase found in a text: its code, its span and the matched text."""

    code: str
    start: int
    end: int
    text: str


class PhraseTable:
    """One lexicon table compiled into regexes that report the code of each match.

    Plain phrases go into a trie-shaped alternation. Together with the regex
    entries that start with a plain character, it forms one pattern whose
    alternatives all begin with a literal, so the regex engine skips positions
    whose character starts no phrase. Entries that start with a group or a
    class are compiled one by one. English entries (starting with ``\\b``) form
    a last pattern that runs only over the ASCII words of a text. Patterns are
    case-sensitive because the scanned text has its ASCII lower-cased.

    NOTE: phrases are matched in unsegmented text, so a phrase can match across
    a word boundary ("上周到账" contains "周到"). Longer phrases win where they
    overlap, which covers the cases added to the tables, but not all.
    """

    def __init__(self, name: str, table: Mapping[str, Sequence[str]] | Sequence[str]):
        self.name = name
        if isinstance(table, Mapping):
            entries = [(s, code) for code, sources in table.items() for s in sources]
        else:
            entries = [(source, name) for source in table]

        self._literal_codes: dict[str, str] = {}
        buckets: dict[str, list[tuple[str, str]]] = {
            "fast": [],
            "other": [],
            "words": [],
        }
        for source, code in entries:
            source = _lower_source(source)
            if _is_literal(source):
                self._literal_codes.setdefault(source, code)
            else:
                buckets[_bucket(source)].append((source, code))
        for bucket in buckets.values():
            bucket.sort(key=lambda entry: -_phrase_length(entry[0]))

        self._regex_codes = [
            (re.compile(source), code)
            for bucket in buckets.values()
            for source, code in bucket
        ]
        self._patterns = _compile_buckets(buckets, self._literal_codes)

    def find(
        self, lowered: str, original: str, ascii_runs: Sequence[tuple[int, int]]
    ) -> list[Hit]:
        """Return the non-overlapping hits in ``lowered``.

        ``lowered`` is ``original`` with ASCII lower-cased, and ``ascii_runs``
        are the spans of its ASCII words, where English entries are searched.
        Hit texts are cut from ``original``.
        """
        spans = [(0, len(lowered))]
        hits = []
        for pattern, english in self._patterns:
            for start, end in ascii_runs if english else spans:
                for match in pattern.finditer(lowered, start, end):
                    hits.append(self._hit(match, original))
        if len(self._patterns) > 1 and len(hits) > 1:
            hits = _without_overlaps(hits)
        return hits

    def occurs_in(self, text: str) -> bool:
        """Return True when any phrase of the table occurs in ``text``."""
        lowered = text.translate(_ASCII_LOWER)
        return bool(self.find(lowered, text, ascii_runs(lowered)))

    def _hit(self, match: re.Match, original: str) -> Hit:
        start, end = match.span()
        return Hit(self._code(match.group()), start, end, original[start:end])

    def _code(self, text: str) -> str:
        code = self._literal_codes.get(text)
        if code is not None:
            return code
        for regex, code in self._regex_codes:
            if regex.fullmatch(text):
                return code
        return self.name


def _compile_buckets(
    buckets: Mapping[str, list[tuple[str, str]]], literals: Mapping[str, str]
) -> list[tuple[re.Pattern, bool]]:
    """Compile the patterns of a table, each with whether it is English-only.

    Entries that start with a group or a class are compiled one by one: alone,
    each still lets the engine skip positions its first character rules out.
    """
    fast = [source for source, _ in buckets["fast"]] + _trie_alternatives(literals)
    patterns = [(re.compile("|".join(fast)), False)] if fast else []
    patterns += [(re.compile(source), False) for source, _ in buckets["other"]]
    words = [source for source, _ in buckets["words"]]
    if words:
        patterns.append((re.compile("|".join(words)), True))
    return patterns


def ascii_runs(lowered: str) -> list[tuple[int, int]]:
    """Return the spans of ASCII words and phrases that contain a letter."""
    return [
        m.span()
        for m in _ASCII_RUN.finditer(lowered)
        if _ASCII_LETTER.search(m.group())
    ]


def _lower_source(source: str) -> str:
    if re.search(r"\\[A-Z]", source):
        raise ValueError(
            f"lexicon entry {source!r}: upper-case escapes are not supported"
        )
    return source.translate(_ASCII_LOWER)


def _bucket(source: str) -> str:
    if source.startswith("\\b"):
        return "words"
    first = source[0]
    if first == "\\" and len(source) > 1 and not source[1].isalnum():
        return "fast"
    return "other" if first in _REGEX_SYNTAX else "fast"


def _trie_alternatives(words: Mapping[str, str]) -> list[str]:
    """Return one alternative per first character, each a trie of its phrases.

    Optional tails are greedy, so the longest phrase at a position wins.
    """
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return [re.escape(char) + _trie_tail(node) for char, node in sorted(trie.items())]


def _trie_tail(node: dict) -> str:
    children = [(char, child) for char, child in sorted(node.items()) if char]
    if not children:
        return ""
    alternatives = [re.escape(char) + _trie_tail(child) for char, child in children]
    body = (
        alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"
    )
    if "" in node:
        return f"(?:{body})?"
    return body


def _without_overlaps(hits: list[Hit]) -> list[Hit]:
    """Keep the leftmost, then longest, of overlapping hits."""
    hits.sort(key=lambda hit: (hit.start, hit.start - hit.end))
    kept: list[Hit] = []
    for hit in hits:
        if not kept or hit.start >= kept[-1].end:
            kept.append(hit)
    return kept


def _is_word(text: str, first: int, second: int) -> bool:
    """Return True when both positions hold ASCII letters or digits."""
    return all(text[i].isascii() and text[i].isalnum() for i in (first, second))


def _is_literal(source: str) -> bool:
    return not any(char in _REGEX_SYNTAX for char in source)


def _phrase_length(source: str) -> int:
    # A rough length of what a regex entry matches: its text without syntax.
    return len(re.sub(r"\\[bwds]|\[[^\]]*\]|[(){}?*+|^$.:<>!=\\]", "", source)) + 1


class Scan:
    """One text with lazily computed hits per table and its clause boundaries."""

    __slots__ = ("_ends", "_hits", "_starts", "ascii_runs", "lowered", "text")

    def __init__(self, text: str):
        self.text = text
        self.lowered = text.translate(_ASCII_LOWER)
        self.ascii_runs = ascii_runs(self.lowered)
        self._hits: dict[str, list[Hit]] = {}
        self._ends: list[int] | None = None
        self._starts: list[int] = []

    def hits(self, table: PhraseTable) -> list[Hit]:
        found = self._hits.get(table.name)
        if found is None:
            found = table.find(self.lowered, self.text, self.ascii_runs)
            self._hits[table.name] = found
        return found

    def codes(self, table: PhraseTable) -> set[str]:
        return {hit.code for hit in self.hits(table)}

    def clause(self, position: int) -> tuple[int, int]:
        """Return the (start, end) of the clause that contains ``position``."""
        if self._ends is None:
            spans = [match.span() for match in _CLAUSE_END.finditer(self.text)]
            self._ends = [start for start, _ in spans]
            self._starts = [end for _, end in spans]
        index = bisect.bisect_right(self._ends, position)
        end = self._ends[index] if index < len(self._ends) else len(self.text)
        start = self._starts[index - 1] if index > 0 else 0
        return start, end

    def in_clause(self, table: PhraseTable, hit: Hit) -> list[Hit]:
        """Return the hits of ``table`` in the clause of ``hit``."""
        start, end = self.clause(hit.start)
        return [
            other
            for other in self.hits(table)
            if other.start < end and other.end > start
        ]

    def snippet(self, hit: Hit, limit: int = 20) -> str:
        """Return the clause around ``hit``, cut to at most ``limit`` characters."""
        start, end = self.clause(hit.start)
        if end - start <= limit:
            return self.text[start:end].strip()
        left = max(
            start, min(hit.start - (limit - (hit.end - hit.start)) // 2, end - limit)
        )
        right = left + limit
        # Do not cut an English word in half at either edge.
        while left < hit.start and left > start and _is_word(self.text, left - 1, left):
            left += 1
        while right > hit.end and right < end and _is_word(self.text, right - 1, right):
            right -= 1
        return self.text[left:right].strip()


@functools.lru_cache(maxsize=512)
def scan(text: str) -> Scan:
    """Return the shared :class:`Scan` of ``text``.

    The classifier and the grader scan the same text, so the second call reuses
    the hits of the first.
    """
    return Scan(text)


CHANNELS = PhraseTable("channels", lexicon.CHANNELS)
NARRATIVE_CHANNELS = PhraseTable("narrative_channels", lexicon.NARRATIVE_CHANNELS)
COMPLAINT_VERBS = PhraseTable("complaint_verbs", lexicon.COMPLAINT_VERBS)
COMPLETED = PhraseTable("completed", lexicon.COMPLETED_MARKERS)
THREATS = PhraseTable("threats", lexicon.THREAT_MARKERS)
NEGATED_ACTIONS = PhraseTable("negated_actions", lexicon.NEGATED_ACTIONS)
ADVICE = PhraseTable("advice", lexicon.ADVICE_MARKERS)
STRONG_DEMANDS = PhraseTable("strong_demands", lexicon.STRONG_DEMANDS)
WEAK_DEMANDS = PhraseTable("weak_demands", lexicon.WEAK_DEMANDS)
REQUESTS = PhraseTable("requests", lexicon.REQUEST_MARKERS)
POLARITY = PhraseTable("polarity", lexicon.POLARITY)
QUESTIONS = PhraseTable("questions", lexicon.QUESTION_MARKERS)
FIRST_HAND = PhraseTable("first_hand", lexicon.FIRST_HAND)
BYSTANDER = PhraseTable("bystander", lexicon.BYSTANDER)
ROUTINE_SERVICE = PhraseTable("routine_service", lexicon.ROUTINE_SERVICE)
THIRD_PARTY = PhraseTable("third_party", lexicon.THIRD_PARTY)
STATEMENTS = PhraseTable("statements", lexicon.STATEMENTS)
SPAM = PhraseTable("spam", lexicon.SPAM)
GROUP_ORGANISING = PhraseTable("group_organising", lexicon.GROUP_ORGANISING)
ROOT_CAUSES = PhraseTable("root_causes", lexicon.ROOT_CAUSES)
SAFETY_EVENTS = PhraseTable("safety_events", lexicon.SAFETY_EVENTS)
SAFETY_HAZARDS = PhraseTable("safety_hazards", lexicon.SAFETY_HAZARDS)
HYPOTHETICAL = PhraseTable("hypothetical", lexicon.HYPOTHETICAL)
WORKSHOP_COLLISION = PhraseTable("workshop_collision", lexicon.WORKSHOP_COLLISION)
CAR_UNUSABLE = PhraseTable("car_unusable", lexicon.CAR_UNUSABLE)
FUNCTION_LOST = PhraseTable("function_lost", lexicon.FUNCTION_LOST)
TIME_LOSS = PhraseTable("time_loss", lexicon.TIME_LOSS)
HEALTH = PhraseTable("health", lexicon.HEALTH)
CAR_PRICE_CONTEXT = PhraseTable("car_price_context", lexicon.CAR_PRICE_CONTEXT)
FAULT_SERIOUS = PhraseTable("fault_serious", lexicon.FAULT_SERIOUS)
FAULT_CLEAR = PhraseTable("fault_clear", lexicon.FAULT_CLEAR)
FAULT_MINOR = PhraseTable("fault_minor", lexicon.FAULT_MINOR)
FAULT_NONE = PhraseTable("fault_none", lexicon.FAULT_NONE)
GROUP_ACTION = PhraseTable("group_action", lexicon.GROUP_ACTION)
MASS_ESCALATION = PhraseTable("mass_escalation", lexicon.MASS_ESCALATION)
MAINSTREAM_MEDIA = PhraseTable("mainstream_media", lexicon.MAINSTREAM_MEDIA)
VERTICAL_MEDIA = PhraseTable("vertical_media", lexicon.VERTICAL_MEDIA)
TRENDING = PhraseTable("trending", lexicon.TRENDING)
OFFLINE_PROTEST = PhraseTable("offline_protest", lexicon.OFFLINE_PROTEST)
IDENTITY = PhraseTable("identity", lexicon.IDENTITY)
FLEET = PhraseTable("fleet", lexicon.FLEET)
