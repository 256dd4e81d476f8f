"""Grouping of grievances and complaints into incidents and problems (同类投诉).

An incident is one story and its echoes: a post, its near-duplicate copies and
the reposts that quote it. A problem is one fault on one car model, such as
"QC7 · 刹车异响", and gathers every incident about that fault, so that its
counts show how often the fault recurs. :class:`ProblemGrouper` assigns each
post as it arrives, with no batch step. Its state is plain data
(:meth:`ProblemGrouper.state`), so that a store can save it and
:meth:`ProblemGrouper.from_state` can rebuild the grouper from it.

Incidents are found with MinHash over character 3-shingles of the text without
punctuation, spaces, mentions and emoticon codes, and LSH banding picks the
candidates. A Weibo repost is matched by the original post at the end of its
chain (``own words//@B:B's words//@A:original``).

Problems are keyed by the model and a fault term: a component and a symptom
found near each other in the text ("刹车" + "异响"). Symptoms come from the
fault words of the cue lexicon and components from its root-cause words, and
synonyms map to one canonical word. A post without such a pair joins the
problem of the same model whose words it shares most, or starts a new problem.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from items import ROOT_CAUSES, Assessment, Item
from nlp import lexicon
from nlp.cues import Hit, PhraseTable, Scan
from nlp.normalize import fold_characters
from nlp.segment import Segmenter

logger = logging.getLogger(__name__)

STATE_VERSION = 1
GROUPED_KINDS = frozenset({"grievance", "complaint"})
LABEL_SEPARATOR = " · "
# Label of a problem that has neither a fault term nor profile words.
UNNAMED = "未归类"

# The shingle size, the number of hash functions and the banding are part of
# the saved signatures: changing them needs a new STATE_VERSION.
SHINGLE_SIZE = 3
PERMUTATIONS = 128
BANDS = 32
# Only the start of a long post is read, which bounds its cost: faults are
# named early, and copies of a long post share its start.
MAX_TEXT_CHARS = 1_000

# --- Fault terms -----------------------------------------------------------

# Fault words too vague to name a fault: "车机有问题" names only the component.
GENERIC_FAULT = "故障"
GENERIC_FAULTS = frozenset(
    {
        "故障",
        "毛病",
        "问题",
        "缺陷",
        "隐患",
        "坏了",
        "坏掉",
        "又坏",
        "损坏",
        "等了",
        "等得",
        "排了",
        "排队",
        "进了三次",
        r"\bbroken\b",
        r"\bissues?\b",
        r"\bproblems?\b",
    }
)
# The lists below are written for cars, like the cue lexicon they extend.
# Root-cause words that are not a part of the car or a party the customer
# deals with: qualities, policies and complaints about people.
NOT_COMPONENTS = frozenset(
    {
        "质量",
        "做工",
        "bug",
        "服务",
        "态度",
        "修了",
        "骗",
        "不理",
        "政策",
        "条款",
        "流程",
        "规定",
        "提车时间",
        r"\brude\b",
        r"\bpolicy\b",
    }
)
EXTRA_COMPONENTS = (
    "制动",
    "刹车片",
    "中控屏",
    "中控",
    "大屏",
    "仪表",
    "仪表盘",
    "智驾",
    "后视镜",
    "天窗",
    "车窗",
    "玻璃",
    "轮胎",
    "减震",
    "门把手",
    "尾门",
    "后备箱",
    "摄像头",
    "雷达",
    "安全带",
    "气囊",
    "尾灯",
    "充电枪",
    "热泵",
    "APP",
)
# Symptoms that the fault table lacks: safety events and service faults.
EXTRA_SYMPTOMS = (
    "起火",
    "着火",
    "自燃",
    "冒烟",
    "溜车",
    "失控",
    "断电",
    "失去动力",
    "动力中断",
    "刹不住",
    "刹车失灵",
    "刹车失效",
    "制动失效",
    "划伤",
    "刮花",
    "翻新",
    "推诿",
    "敷衍",
    "忽悠",
)
COMPONENT_SYNONYMS = {
    "漆面": "车漆",
    "交车": "交付",
    "保价": "价保",
    "门店": "4S店",
    "制动": "刹车",
    "刹车片": "刹车",
    "中控屏": "车机",
    "中控": "车机",
    "大屏": "车机",
    "屏幕": "车机",
    "仪表盘": "仪表",
    "智驾": "辅助驾驶",
}
# Canonical symptom -> the words that mean it. A fault phrase that starts with
# a component ("刹车软") is looked up by the rest of it ("软").
SYMPTOM_SYNONYMS = {
    "异响": ("嗡嗡响", "咔咔响", "吱吱响", "咯吱", "哒哒响"),
    "失灵": ("不灵", "失效", "不工作", "刹不住"),
    "死机": ("卡死", "无响应", "没反应"),
    "卡顿": ("卡了", "又卡", "很卡", "太卡", "好卡", "巨卡", "卡成"),
    "重启": ("自动重启",),
    "掉电": ("掉电快", "耗电", "亏电"),
    "虚标": ("缩水", "打折"),
    "漏水": ("进水",),
    "充电失败": ("充不进", "充不上", "跳枪"),
    "生锈": ("锈蚀", "锈迹"),
    "偏软": ("软",),
    "抖动": ("发抖", "共振"),
    "延期": (
        "推迟",
        "跳票",
        "延迟",
        "提不到车",
        "没交车",
        "还没交付",
        "等车",
        "等不到",
    ),
    "异味": ("味道大", "刺鼻"),
    "没修好": ("修不好",),
    "态度差": ("态度恶劣",),
    "起火": ("着火",),
    "降价": ("背刺", "刚买就降"),
    "乱收费": ("多收", "额外收费", "收费高"),
    "减配": ("阉割", "偷工减料", "取消了", "砍掉"),
    "failure": ("fail",),
    "freeze": ("froze", "freez"),
}
# A symptom right after one of these is denied: "没有异响", "零故障".
_DENIALS = ("没有", "没", "无", "不再", "零")
# Sentence ends after NFKC; a comma does not end the reach of a component.
_SENTENCE_END = re.compile(r"[。!?;\n]|//")
# Characters between a component and the symptom it governs.
MAX_GAP_BEFORE = 16
MAX_GAP_AFTER = 4


def _english_word(source: str) -> str:
    """Return the plain word of an English entry: r"\\bbrakes?\\b" gives "brake"."""
    word = re.sub(r"\(\?:[^)]*\)\??", "", source)
    word = word.replace(r"\b", "").replace(r"\w*", "").replace(r"\s", " ")
    return word.removesuffix("s?").strip()


def _canonical(word: str, synonyms: Mapping[str, str]) -> str:
    if word.startswith("\\"):
        word = _english_word(word)
    return synonyms.get(word, word)


def _component_table() -> dict[str, list[str]]:
    faults = set(lexicon.POLARITY["fault"]) | set(EXTRA_SYMPTOMS)
    sources = [w for words in lexicon.ROOT_CAUSES.values() for w in words]
    sources += [*EXTRA_COMPONENTS, *COMPONENT_SYNONYMS]
    table: dict[str, list[str]] = {}
    for source in dict.fromkeys(sources):
        if source in faults or source in NOT_COMPONENTS:
            continue
        code = _canonical(source, COMPONENT_SYNONYMS)
        table.setdefault(code, []).append(source)
    return table


def _symptom_table(components: Iterable[str]) -> dict[str, list[str]]:
    canonical = {
        word: code for code, words in SYMPTOM_SYNONYMS.items() for word in words
    }
    prefixes = sorted(components, key=len, reverse=True)
    table: dict[str, list[str]] = {}
    for source in dict.fromkeys([*lexicon.POLARITY["fault"], *EXTRA_SYMPTOMS]):
        if source in GENERIC_FAULTS:
            code = GENERIC_FAULT
        else:
            lead = next((p for p in prefixes if source.startswith(p)), "")
            code = _canonical(source[len(lead) :] or source, canonical)
        table.setdefault(code, []).append(source)
    return table


_COMPONENT_TABLE = _component_table()
COMPONENTS = PhraseTable("problem_components", _COMPONENT_TABLE)
SYMPTOMS = PhraseTable(
    "problem_symptoms",
    _symptom_table(
        source
        for sources in _COMPONENT_TABLE.values()
        for source in sources
        if not source.startswith("\\")
    ),
)


@dataclass(frozen=True, slots=True)
class FaultTerms:
    """The fault terms of one text, without repeats.

    ``clean`` terms pair a component with a symptom ("刹车异响"), in the order
    of their symptoms in the text. ``partial`` terms are a component or a
    symptom alone, or a component with a vague fault word ("车机故障").
    ``words`` are the canonical components and symptoms found.
    """

    clean: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()
    words: tuple[str, ...] = ()


def find_fault_terms(text: str) -> FaultTerms:
    """Find the fault terms of a normalised text."""
    scan = Scan(text[:MAX_TEXT_CHARS])
    components = scan.hits(COMPONENTS)
    symptoms = [hit for hit in scan.hits(SYMPTOMS) if not _denied(scan.text, hit)]
    ends = [match.start() for match in _SENTENCE_END.finditer(scan.text)]
    ends.append(len(scan.text))

    clean: list[str] = []
    partial: list[str] = []
    paired: set[int] = set()
    for symptom in symptoms:
        component = _component_of(symptom, components, ends)
        if component is not None:
            paired.add(component.start)
        term, is_clean = _join_term(component, symptom)
        if term:
            (clean if is_clean else partial).append(term)
    partial += [hit.code for hit in components if hit.start not in paired]

    words = [hit.code for hit in components]
    words += [hit.code for hit in symptoms if hit.code != GENERIC_FAULT]
    return FaultTerms(_unique(clean), _unique(partial), _unique(words))


def _denied(text: str, hit: Hit) -> bool:
    return text[max(0, hit.start - 2) : hit.start].endswith(_DENIALS)


def _component_of(symptom: Hit, components: list[Hit], ends: list[int]) -> Hit | None:
    """Return the component that a symptom is about, in the same sentence."""
    index = bisect.bisect_right(ends, symptom.start)
    first = ends[index - 1] if index > 0 else 0
    last = ends[index]
    before = None
    for component in components:
        if component.start < first or component.start >= last:
            continue
        if component.start < symptom.end and symptom.start < component.end:
            return component
        gap_before = symptom.start - component.end
        if 0 <= gap_before <= MAX_GAP_BEFORE:
            before = component
        elif before is None and 0 <= component.start - symptom.end <= MAX_GAP_AFTER:
            return component
    return before


def _join_term(component: Hit | None, symptom: Hit) -> tuple[str | None, bool]:
    """Return the term of a symptom and its component, and whether it is clean."""
    if symptom.code == GENERIC_FAULT:
        if component is None:
            return None, False
        return _join(component.code, GENERIC_FAULT), False
    if component is None:
        return symptom.code, False
    return _join(component.code, symptom.code), True


def _join(component: str, symptom: str) -> str:
    if component.isascii() or symptom.isascii():
        return f"{component} {symptom}"
    return component + symptom


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


# --- Repost chains and fingerprints ----------------------------------------

_CHAIN_LINK = re.compile(r"//\s*@")
_CHAIN_SEGMENT = re.compile(r"@?([^:\s@]{1,30})\s*:\s*(.*)", re.DOTALL)
_REPOST_FILLER = re.compile(r"转发微博|转发|repost", re.IGNORECASE)
_EMOTICON = re.compile(r"\[[^\[\]\s]{1,8}\]")
_MENTION = re.compile(r"@[\w\-]{1,30}:?")
# Any character that is not a letter or digit of some script. The underscore
# is listed because \W does not match it.
_NOT_ALNUM = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class ChainSegment:
    """One link of a repost chain: who wrote it and the words they added."""

    author: str | None
    words: str

    @property
    def adds_words(self) -> bool:
        return not _is_filler(self.words)


def parse_chain(quoted: str) -> list[ChainSegment]:
    """Split a repost chain into segments, the newest first and the original last.

    ``quoted`` is :attr:`items.NormalizedText.quoted`, as in
    "@用户B:同款问题!//@车主A:提车两周...".
    """
    segments = []
    for part in _CHAIN_LINK.split(quoted):
        part = part.strip()
        if not part:
            continue
        match = _CHAIN_SEGMENT.fullmatch(part)
        if match is None:
            segments.append(ChainSegment(None, part))
        else:
            segments.append(ChainSegment(match.group(1), match.group(2).strip()))
    return segments


def _is_filler(text: str) -> bool:
    rest = _REPOST_FILLER.sub("", _EMOTICON.sub("", text))
    return not any(char.isalnum() for char in rest)


def fingerprint_text(text: str) -> str:
    """Return the text that near-duplicate detection compares.

    Punctuation, spaces, mentions and emoticon codes go, and ASCII letters are
    lower-cased, so a copy with other punctuation gives the same text.
    """
    text = _MENTION.sub("", _EMOTICON.sub("", text))
    return _NOT_ALNUM.sub("", text).lower()


_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _mix64(values: np.ndarray) -> np.ndarray:
    """Scramble 64-bit integers with the splitmix64 finaliser (wrapping arithmetic)."""
    values = values ^ (values >> np.uint64(30))
    values = values * _MIX_1
    values = values ^ (values >> np.uint64(27))
    values = values * _MIX_2
    return values ^ (values >> np.uint64(31))


class MinHasher:
    """MinHash signatures over character 3-shingles, with fixed hash functions.

    The hash functions come from BLAKE2b of fixed strings, not from a random
    generator, so that saved signatures stay comparable across numpy versions.
    """

    def __init__(self) -> None:
        multipliers, increments = [], []
        for index in range(PERMUTATIONS):
            seed = f"fenghuo minhash {index}".encode()
            digest = hashlib.blake2b(seed, digest_size=16).digest()
            multipliers.append(int.from_bytes(digest[:8], "little") | 1)
            increments.append(int.from_bytes(digest[8:], "little"))
        self._multipliers = np.array(multipliers, dtype=np.uint64)
        self._increments = np.array(increments, dtype=np.uint64)

    def signature(self, text: str) -> np.ndarray | None:
        """Return the uint32 signature of ``text``, or None for an empty text."""
        encoded = text.encode("utf-32-le", errors="surrogatepass")
        codes = np.frombuffer(encoded, dtype=np.uint32).astype(np.uint64)
        if codes.size == 0:
            return None
        if codes.size < SHINGLE_SIZE:
            codes = np.pad(codes, (0, SHINGLE_SIZE - codes.size))
        # A code point has 21 bits, so three of them pack into one integer
        # without collisions.
        shingles = (codes[:-2] << np.uint64(42)) | (codes[1:-1] << np.uint64(21))
        shingles = np.unique(shingles | codes[2:])
        mixed = _mix64(shingles)[:, None]
        hashes = (mixed * self._multipliers + self._increments) >> np.uint64(32)
        return hashes.min(axis=0).astype(np.uint32)


def similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Estimate the Jaccard similarity of two shingle sets from their signatures."""
    return float(np.count_nonzero(first == second)) / first.size


class SignatureIndex:
    """LSH banding over MinHash signatures, each stored with its owner's id.

    The signatures are the rows of one matrix, so that the candidates of a
    query are compared in one numpy operation. Each of the BANDS bands (4 values
    of a signature) has a dictionary from its bytes to the rows that share them.

    NOTE: the index only grows: every incident keeps its signatures for as
    long as the grouper lives, at 512 bytes each.
    """

    def __init__(self) -> None:
        self._matrix = np.empty((1024, PERMUTATIONS), dtype=np.uint32)
        self._owners: list[int] = []
        self._buckets: list[dict[bytes, list[int]]] = [{} for _ in range(BANDS)]

    def __len__(self) -> int:
        return len(self._owners)

    def add(self, owner: int, signature: np.ndarray) -> None:
        row = len(self._owners)
        if row == len(self._matrix):
            self._matrix = np.concatenate([self._matrix, np.empty_like(self._matrix)])
        self._matrix[row] = signature
        self._owners.append(owner)
        for buckets, key in zip(self._buckets, _band_keys(signature), strict=True):
            buckets.setdefault(key, []).append(row)

    def nearest(self, signature: np.ndarray) -> tuple[int | None, float]:
        """Return the owner of the most similar candidate and its similarity.

        Candidates share at least one band with ``signature``. The earliest
        stored of equally similar candidates wins. Returns (None, 0.0) when
        there is no candidate.
        """
        candidates: set[int] = set()
        for buckets, key in zip(self._buckets, _band_keys(signature), strict=True):
            rows = buckets.get(key)
            if rows:
                candidates.update(rows)
        if not candidates:
            return None, 0.0
        rows = np.sort(np.fromiter(candidates, dtype=np.intp, count=len(candidates)))
        matches = np.count_nonzero(self._matrix[rows] == signature, axis=1)
        best = int(np.argmax(matches))
        return self._owners[rows[best]], float(matches[best]) / PERMUTATIONS


def _band_keys(signature: np.ndarray) -> list[bytes]:
    data = signature.tobytes()
    width = len(data) // BANDS
    return [data[start : start + width] for start in range(0, len(data), width)]


def _encode_signature(signature: np.ndarray) -> str:
    return base64.b64encode(signature.astype("<u4").tobytes()).decode("ascii")


def _decode_signature(text: str) -> np.ndarray:
    signature = np.frombuffer(base64.b64decode(text), dtype="<u4").astype(np.uint32)
    if signature.size != PERMUTATIONS:
        raise ValueError(
            f"invalid incident signature: {signature.size} values, "
            f"expected {PERMUTATIONS}"
        )
    return signature


# --- Problems and incidents -------------------------------------------------


@dataclass(frozen=True)
class GroupingSettings:
    """Thresholds of the grouping.

    ``duplicate_similarity`` is the estimated Jaccard similarity of shingle
    sets at or above which a post joins an incident. ``problem_similarity`` is
    the weighted share of a post's words, from 0 to 1, that a problem must
    cover to take a post without a clean fault term. ``profile_words`` is the
    number of words each problem keeps for that comparison, and a word found in
    more than ``max_word_problems`` problems of one model is too common to
    select candidates. ``max_signatures`` bounds the signatures kept for each
    incident, so that copies of copies are still found.

    NOTE: the defaults are estimates checked on hand-written cases, not
    tuned on labelled groupings.
    """

    duplicate_similarity: float = 0.6
    problem_similarity: float = 0.4
    profile_words: int = 48
    max_word_problems: int = 200
    max_signatures: int = 4

    def __post_init__(self) -> None:
        for name in ("duplicate_similarity", "problem_similarity"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"invalid {name}: {value!r}, expected 0 < value <= 1")
        for name in ("profile_words", "max_word_problems", "max_signatures"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"invalid {name}: {value!r}, expected at least 1")


@dataclass(slots=True)
class Incident:
    """One post with its copies and reposts.

    ``posts`` maps each post key ("source:external_id") to whether the post is
    a report: a post with words in it, a verbatim copy included, rather than a
    repost that adds nothing.
    ``authors`` contains everyone seen in the incident: the authors of its
    posts and the names in their repost chains. ``reporters`` contains those
    of them who wrote words. Authors are stored as hashes of platform and name.
    """

    id: int
    problem_id: int
    posts: dict[str, bool] = field(default_factory=dict)
    authors: set[str] = field(default_factory=set)
    reporters: set[str] = field(default_factory=set)
    signatures: list[np.ndarray] = field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @property
    def reports(self) -> int:
        return sum(self.posts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "problem_id": self.problem_id,
            "posts": dict(self.posts),
            "authors": sorted(self.authors),
            "reporters": sorted(self.reporters),
            "signatures": [_encode_signature(s) for s in self.signatures],
            "first_seen": _isoformat(self.first_seen),
            "last_seen": _isoformat(self.last_seen),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        return cls(
            id=int(data["id"]),
            problem_id=int(data["problem_id"]),
            posts={str(key): bool(report) for key, report in data["posts"].items()},
            authors=set(data["authors"]),
            reporters=set(data["reporters"]),
            signatures=[_decode_signature(text) for text in data["signatures"]],
            first_seen=_parse_time(data["first_seen"]),
            last_seen=_parse_time(data["last_seen"]),
        )


@dataclass(slots=True)
class Problem:
    """Similar grievances and complaints: one fault on one model.

    ``term`` is the fault term the problem is keyed by, or None when it was
    started by a post without one. ``terms`` and ``partial_terms`` count the
    incidents that named each term, ``words`` the incidents that contained each
    profile word (``profile_incidents`` in all). ``root_causes`` and ``kinds``
    count posts. ``authors`` contains the hashes of the people who reported
    the problem: the authors of its reports and the authors named in repost
    chains who wrote words there. Reposters who added nothing are left out.
    """

    id: int
    model: str | None
    term: str | None
    posts: int = 0
    reports: int = 0
    incident_ids: list[int] = field(default_factory=list)
    authors: set[str] = field(default_factory=set)
    terms: Counter[str] = field(default_factory=Counter)
    partial_terms: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    root_causes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    words: Counter[str] = field(default_factory=Counter)
    profile_incidents: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @property
    def incidents(self) -> int:
        return len(self.incident_ids)

    @property
    def author_count(self) -> int:
        return len(self.authors)

    @property
    def root_cause(self) -> str | None:
        """Return the most common root cause of the posts; ties go to product."""
        if not self.root_causes:
            return None
        return max(ROOT_CAUSES, key=lambda cause: self.root_causes[cause])

    @property
    def label(self) -> str:
        """Return a readable name, such as "QC7 · 刹车异响".

        It names the models of at least a third of the posts, then the most
        common fault term, with the next one when it is at least two thirds as
        common. The label can change as the problem grows.
        """
        models = _top(self.models, limit=3, share=1 / 3)
        names = _top(self.terms, limit=2, share=2 / 3, first=self.term)
        if not names:
            names = _top(self.partial_terms, limit=2, share=2 / 3, first=self.term)
        if not names:
            names = _top(self.words, limit=2, share=2 / 3)
        name = "、".join(names) or UNNAMED
        if not models:
            return name
        return "/".join(models) + LABEL_SEPARATOR + name

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _PLAIN_FIELDS}
        data.update({name: dict(getattr(self, name)) for name in _COUNTER_FIELDS})
        data["incident_ids"] = list(self.incident_ids)
        data["authors"] = sorted(self.authors)
        data["first_seen"] = _isoformat(self.first_seen)
        data["last_seen"] = _isoformat(self.last_seen)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        problem = cls(**{name: data[name] for name in _PLAIN_FIELDS})
        for name in _COUNTER_FIELDS:
            setattr(problem, name, Counter(data[name]))
        problem.incident_ids = [int(value) for value in data["incident_ids"]]
        problem.authors = set(data["authors"])
        problem.first_seen = _parse_time(data["first_seen"])
        problem.last_seen = _parse_time(data["last_seen"])
        return problem


_PLAIN_FIELDS = ("id", "model", "term", "posts", "reports", "profile_incidents")
_COUNTER_FIELDS = (
    "terms",
    "partial_terms",
    "models",
    "root_causes",
    "kinds",
    "words",
)


def _top(
    counts: Counter[str], limit: int, share: float, first: str | None = None
) -> list[str]:
    """Return up to ``limit`` keys with at least ``share`` of the top count.

    ``first`` wins a tie for the top place.
    """
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] != first))
    if not ranked:
        return []
    top = ranked[0][1]
    return [key for key, count in ranked[:limit] if count >= top * share]


def _isoformat(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True, slots=True)
class Assignment:
    """The incident and problem a post was assigned to, and how.

    ``report`` is False for a repost that adds no words of its own.
    ``matched_by`` names the step that decided:

    - "incident": the post is a copy or a repost of a known post;
    - "term": the problem has the post's model and fault term;
    - "similarity": the problem shares the most words with the post;
    - "new": no problem matched, so the post started one;
    - "known": the post was assigned before, and nothing changed.

    ``posted_at`` is the post's time as the grouping read it, and ``people``
    lists (author hash, whether that author wrote words) for the post's author
    and the names of its repost chain. A "known" post has neither.
    """

    post_key: str
    problem_id: int
    incident_id: int
    report: bool
    matched_by: str
    new_problem: bool = False
    new_incident: bool = False
    terms: tuple[str, ...] = ()
    posted_at: datetime | None = None
    people: tuple[tuple[str, bool], ...] = ()


# Frequent words of complaints that name no fault.
STOP_WORDS = frozenset(
    """
    我们 你们 他们 自己 这个 那个 一个 什么 怎么 就是 还是 但是 因为 所以 然后 而且
    已经 现在 今天 昨天 时候 真的 可以 没有 知道 觉得 感觉 直接 一直 还有 如果 这样
    那么 出现 发现 提车 汽车 车主 车子 一下 一次 两次 三次 大家 有人 希望 同款 问题
    故障 毛病 转发 微博
    """.split()
)
# Weight of a lexicon component or symptom against another word of a post.
LEXICON_WEIGHT = 3
# Other words of a post that take part in the comparison, in text order. The
# bound keeps a long post's many words from diluting its fault words.
PROFILE_POST_WORDS = 12
_CONTENT_CHAR = re.compile(r"[\u4e00-\u9fffa-z]")


def post_key(item: Item) -> str:
    """Return the key of a post: its source and its id within that source."""
    return f"{item.source}:{item.external_id}"


def author_hash(
    platform: str, name: str | None = None, author_id: str | None = None
) -> str | None:
    """Return a short hash that identifies an author on a platform.

    The name is preferred over the id, because a repost chain names authors
    by their screen name. Returns None when both are missing.
    """
    if name and name.strip():
        identity = f"{platform}\0name\0{fold_characters(name.strip())}"
    elif author_id:
        identity = f"{platform}\0id\0{author_id}"
    else:
        return None
    return hashlib.blake2b(identity.encode("utf-8"), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class _Post:
    """The fields of one item and its assessment that the grouping reads."""

    key: str
    time: datetime
    own: str
    chain: tuple[ChainSegment, ...]
    models: tuple[str, ...]
    # (author hash, whether that author wrote words) for the post and its chain.
    people: tuple[tuple[str, bool], ...]

    @property
    def amplification(self) -> bool:
        return not self.own

    @property
    def model(self) -> str | None:
        return self.models[0] if self.models else None

    @property
    def root_text(self) -> str:
        """Return the words of the original post: the end of the chain, or own.

        NOTE: a repost joins the incident of its original even when its own
        words describe another fault.
        """
        for segment in reversed(self.chain):
            if segment.adds_words:
                return segment.words
        return self.own

    @property
    def text(self) -> str:
        parts = [self.own] if self.own else []
        parts += [segment.words for segment in self.chain if segment.adds_words]
        return " // ".join(parts)


def _read_post(key: str, item: Item, assessment: Assessment) -> _Post | None:
    normalized = assessment.normalized
    own = normalized.text.strip()
    chain = tuple(parse_chain(normalized.quoted)) if normalized.quoted else ()
    if not own and not any(segment.adds_words for segment in chain):
        return None

    relevance = assessment.relevance
    models = tuple(m for m in relevance.models if m not in relevance.competitor_models)
    people = [(author_hash(item.platform, item.author.name, item.author.id), bool(own))]
    people += [
        (author_hash(item.platform, segment.author), segment.adds_words)
        for segment in chain
    ]
    return _Post(
        key=key,
        time=item.created_at or item.collected_at,
        own=own,
        chain=chain,
        models=models,
        people=tuple((person, wrote) for person, wrote in people if person),
    )


def _accepted(assessment: Assessment) -> bool:
    """Return True for a grievance or complaint about the monitored brand."""
    return (
        assessment.relevance.relevant
        and assessment.classification.kind in GROUPED_KINDS
    )


def _model_key(model: str | None) -> str:
    return model.casefold() if model else ""


class ProblemGrouper:
    """Assign posts to incidents and problems online, one post at a time.

    Only grievances and complaints about the brand start or join problems,
    except that a repost without words of its own joins the incident of the
    post it quotes whatever its kind. Assigning a post twice changes nothing.
    The grouper is not thread-safe.
    """

    def __init__(self, segmenter: Segmenter, settings: GroupingSettings | None = None):
        self.segmenter = segmenter
        self.settings = settings or GroupingSettings()
        self._hasher = MinHasher()
        self._problems: dict[int, Problem] = {}
        self._incidents: dict[int, Incident] = {}
        self._post_incidents: dict[str, int] = {}
        self._problem_keys: dict[tuple[str, str], int] = {}
        self._word_index: dict[tuple[str, str], set[int]] = {}
        self._signatures = SignatureIndex()
        self._ignored_words = STOP_WORDS | frozenset(segmenter.words)
        self._next_problem_id = 1
        self._next_incident_id = 1

    def assign(self, item: Item, assessment: Assessment) -> Assignment | None:
        """Add one post to an incident and a problem, creating them as needed.

        Returns None for a post that joins no problem: another kind, not about
        the brand, or without any words.
        """
        key = post_key(item)
        known = self._post_incidents.get(key)
        if known is not None:
            incident = self._incidents[known]
            return Assignment(
                key, incident.problem_id, known, incident.posts[key], "known"
            )

        post = _read_post(key, item, assessment)
        accepted = _accepted(assessment)
        if post is None or not (accepted or post.amplification):
            return None
        root = fingerprint_text(post.root_text[:MAX_TEXT_CHARS])
        signature = self._hasher.signature(root)
        incident = self._find_incident(signature)
        if incident is not None:
            return self._join(incident, post, signature, assessment)
        if not accepted:
            return None
        return self._open(post, signature, assessment)

    def problem(self, problem_id: int) -> Problem:
        return self._problems[problem_id]

    def recent_reporters(self, problem_id: int, since: datetime) -> set[str]:
        """Return the people who wrote about a problem in incidents seen from ``since``.

        The cost grows with the problem's incidents, so callers that ask
        for many posts of one problem should ask once and add the new people.
        """
        people: set[str] = set()
        for incident_id in self._problems[problem_id].incident_ids:
            incident = self._incidents[incident_id]
            if incident.last_seen is not None and incident.last_seen >= since:
                people |= incident.reporters
        return people

    def incident(self, incident_id: int) -> Incident:
        return self._incidents[incident_id]

    def incident_or_none(self, incident_id: int) -> Incident | None:
        """Return an incident, or None for an id the grouper does not have."""
        return self._incidents.get(incident_id)

    def incident_of(self, key: str) -> Incident | None:
        """Return the incident of a post key, or None for a post never assigned."""
        incident_id = self._post_incidents.get(key)
        return None if incident_id is None else self._incidents[incident_id]

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems.values())

    @property
    def incidents(self) -> list[Incident]:
        return list(self._incidents.values())

    def _open(
        self, post: _Post, signature: np.ndarray | None, assessment: Assessment
    ) -> Assignment:
        """Start an incident for a post that matches none, in a problem."""
        terms = find_fault_terms(post.text)
        words = self._post_words(post.text, terms)
        problem, matched_by = self._choose_problem(post, terms, words)

        incident = Incident(self._next_incident_id, problem.id)
        self._next_incident_id += 1
        self._incidents[incident.id] = incident
        problem.incident_ids.append(incident.id)
        self._add_signature(incident, signature)
        self._add_profile(problem, terms, words)
        self._record(problem, incident, post, assessment)
        logger.debug(
            "incident opened incident_id=%s problem_id=%s matched_by=%s",
            incident.id,
            problem.id,
            matched_by,
        )
        return Assignment(
            post.key,
            problem.id,
            incident.id,
            report=not post.amplification,
            matched_by=matched_by,
            new_problem=matched_by == "new",
            new_incident=True,
            terms=terms.clean or terms.partial,
            posted_at=post.time,
            people=post.people,
        )

    def _join(
        self,
        incident: Incident,
        post: _Post,
        signature: np.ndarray | None,
        assessment: Assessment,
    ) -> Assignment:
        problem = self._problems[incident.problem_id]
        if not post.amplification:
            self._add_signature(incident, signature)
        self._record(problem, incident, post, assessment)
        return Assignment(
            post.key,
            problem.id,
            incident.id,
            not post.amplification,
            "incident",
            posted_at=post.time,
            people=post.people,
        )

    def _record(
        self, problem: Problem, incident: Incident, post: _Post, assessment: Assessment
    ) -> None:
        """Count a post in its incident and problem."""
        report = not post.amplification
        incident.posts[post.key] = report
        self._post_incidents[post.key] = incident.id
        for person, wrote in post.people:
            incident.authors.add(person)
            if wrote:
                incident.reporters.add(person)
                problem.authors.add(person)

        problem.posts += 1
        problem.reports += report
        problem.models.update(post.models)
        problem.kinds[assessment.classification.kind] += 1
        if assessment.classification.root_cause:
            problem.root_causes[assessment.classification.root_cause] += 1
        for group in (incident, problem):
            if group.first_seen is None or post.time < group.first_seen:
                group.first_seen = post.time
            if group.last_seen is None or post.time > group.last_seen:
                group.last_seen = post.time

    # --- incidents -----------------------------------------------------------

    def _find_incident(self, signature: np.ndarray | None) -> Incident | None:
        """Return the most similar incident at or above the duplicate threshold."""
        if signature is None:
            return None
        incident_id, score = self._signatures.nearest(signature)
        if incident_id is None or score < self.settings.duplicate_similarity:
            return None
        return self._incidents[incident_id]

    def _add_signature(self, incident: Incident, signature: np.ndarray | None) -> None:
        """Keep a signature that differs from the incident's, within the bound."""
        if signature is None:
            return
        if len(incident.signatures) >= self.settings.max_signatures:
            return
        # A near-identical signature finds nothing the stored one does not.
        if any(similarity(signature, s) >= 0.9 for s in incident.signatures):
            return
        incident.signatures.append(signature)
        self._signatures.add(incident.id, signature)

    # --- problems ------------------------------------------------------------

    def _post_words(self, text: str, terms: FaultTerms) -> dict[str, int]:
        """Return the words a post is compared by, each with its weight."""
        # The segmenter lower-cases ASCII, so lexicon words are compared so too.
        words = dict.fromkeys((word.lower() for word in terms.words), LEXICON_WEIGHT)
        others = 0
        for token in self.segmenter.segment(text[:MAX_TEXT_CHARS]):
            if others >= PROFILE_POST_WORDS:
                break
            if len(token) < 2 or token in words or token in self._ignored_words:
                continue
            if _CONTENT_CHAR.search(token):
                words[token] = 1
                others += 1
        return words

    def _choose_problem(
        self, post: _Post, terms: FaultTerms, words: Mapping[str, int]
    ) -> tuple[Problem, str]:
        """Return the problem for a new incident, and how it was chosen."""
        model_key = _model_key(post.model)
        for term in terms.clean:
            problem_id = self._problem_keys.get((model_key, term))
            if problem_id is not None:
                return self._problems[problem_id], "term"
        if not terms.clean:
            nearest = self._nearest(model_key, words)
            if nearest is not None:
                return nearest, "similarity"
            for term in terms.partial:
                problem_id = self._problem_keys.get((model_key, term))
                if problem_id is not None:
                    return self._problems[problem_id], "term"

        term = next(iter(terms.clean or terms.partial), None)
        return self._new_problem(post.model, term), "new"

    def _nearest(self, model_key: str, words: Mapping[str, int]) -> Problem | None:
        """Return the problem of the model that covers most of a post's words.

        A problem's cover of a word is the share of its incidents that contain
        the word. The weighted sum over the post's words, divided by their total
        weight, must reach ``problem_similarity``.
        """
        total = sum(words.values())
        scores: dict[int, float] = {}
        for word, weight in words.items():
            problem_ids = self._word_index.get((model_key, word))
            if not problem_ids or len(problem_ids) > self.settings.max_word_problems:
                continue
            for problem_id in problem_ids:
                problem = self._problems[problem_id]
                cover = min(1.0, problem.words[word] / problem.profile_incidents)
                scores[problem_id] = scores.get(problem_id, 0.0) + weight * cover
        if not scores:
            return None

        def rank(problem_id: int) -> tuple[float, int, int]:
            problem = self._problems[problem_id]
            return scores[problem_id], problem.profile_incidents, -problem_id

        best = max(scores, key=rank)
        if scores[best] < self.settings.problem_similarity * total:
            return None
        return self._problems[best]

    def _new_problem(self, model: str | None, term: str | None) -> Problem:
        problem = Problem(self._next_problem_id, model, term)
        self._next_problem_id += 1
        self._register_problem(problem)
        logger.debug("problem created problem_id=%s", problem.id)
        return problem

    def _register_problem(self, problem: Problem) -> None:
        self._problems[problem.id] = problem
        if problem.term is not None:
            key = (_model_key(problem.model), problem.term)
            self._problem_keys.setdefault(key, problem.id)
        for word in problem.words:
            self._index_word(problem, word)

    def _add_profile(
        self, problem: Problem, terms: FaultTerms, words: Iterable[str]
    ) -> None:
        """Count the terms and words of a new incident in its problem."""
        problem.terms.update(terms.clean)
        problem.partial_terms.update(terms.partial)
        problem.profile_incidents += 1
        for word in words:
            if word not in problem.words:
                self._index_word(problem, word)
            problem.words[word] += 1
        if len(problem.words) > 2 * self.settings.profile_words:
            self._prune_profile(problem)

    def _prune_profile(self, problem: Problem) -> None:
        """Keep the most common profile words of a problem, dropping the rest."""
        top_words = dict(problem.words.most_common(self.settings.profile_words))
        model_key = _model_key(problem.model)
        for word in problem.words:
            if word not in top_words:
                self._word_index[(model_key, word)].discard(problem.id)
        problem.words = Counter(top_words)

    def _index_word(self, problem: Problem, word: str) -> None:
        key = (_model_key(problem.model), word)
        self._word_index.setdefault(key, set()).add(problem.id)

    # --- state ---------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Return the grouping state as JSON-ready built-in types."""
        return {
            "version": STATE_VERSION,
            "next_problem_id": self._next_problem_id,
            "next_incident_id": self._next_incident_id,
            "problems": [problem.to_dict() for problem in self._problems.values()],
            "incidents": [incident.to_dict() for incident in self._incidents.values()],
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        segmenter: Segmenter,
        settings: GroupingSettings | None = None,
    ) -> ProblemGrouper:
        """Rebuild a grouper from :meth:`state`, with its indexes.

        Raises ValueError for a state of another version, a missing field or
        an incident whose problem is missing.
        """
        version = state.get("version")
        if version != STATE_VERSION:
            raise ValueError(
                f"unsupported problem state version {version!r}, "
                f"expected {STATE_VERSION}"
            )
        grouper = cls(segmenter, settings)
        try:
            for data in state["problems"]:
                grouper._register_problem(Problem.from_dict(data))
            for data in state["incidents"]:
                grouper._restore_incident(Incident.from_dict(data))
        except KeyError as exc:
            raise ValueError(f"invalid problem state: missing field {exc}") from exc
        grouper._next_problem_id = max(
            [int(state["next_problem_id"]), *(p + 1 for p in grouper._problems)]
        )
        grouper._next_incident_id = max(
            [int(state["next_incident_id"]), *(i + 1 for i in grouper._incidents)]
        )
        return grouper

    def _restore_incident(self, incident: Incident) -> None:
        if incident.problem_id not in self._problems:
            raise ValueError(
                f"invalid problem state: incident {incident.id} names "
                f"problem {incident.problem_id}, which is missing"
            )
        self._incidents[incident.id] = incident
        for key in incident.posts:
            self._post_incidents[key] = incident.id
        for signature in incident.signatures:
            self._signatures.add(incident.id, signature)
