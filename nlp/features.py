"""Cue features for the trained classifier, from the lexicon scan of a post.

Each post becomes a dict of feature name to count, for a scikit-learn
``DictVectorizer``. The counts come from the same phrase tables and the same
action/threat logic as the lexicon classifier. Counts are capped at
:data:`MAX_COUNT` and no feature measures length, so a longer text with the
same cues gets the same features.
"""

from __future__ import annotations

from collections.abc import Sequence

from items import Item, NormalizedText
from nlp import cues, lexicon
from nlp.classifier import COMPLAINT_PLATFORMS, Evidence, gather, post_text
from nlp.cues import Scan

MAX_COUNT = 3
_NEGATION_CODES = frozenset({"double_negation", "shifted_negation"})

# Readable names of the features, for the cues shown to analysts.
FEATURE_NAMES = {
    "action_taken": "action taken",
    "action_service_only": "only an ordinary service contact",
    "threatened": "action threatened, not taken",
    "threat_marker": "threat marker",
    "completed_marker": "completed-action marker",
    "demand": "demand",
    "strong_demand": "demand beyond ordinary service",
    "negated_action": "action denied",
    "negation": "negation",
    "sarcasm": "sarcasm marker",
    "question_mark": "question mark",
    "question": "question words",
    "complaint_platform": "posted on a complaint platform",
    "resolved": "resolved marker",
    "positive": "positive words",
    "mild_positive": "mildly positive words",
    "negative": "negative words",
    "fault": "fault words",
    "frequency": "repetition words",
    "dissatisfied_question": "dissatisfied question",
    "bystander": "bystander marker",
    "statement": "official statement marker",
    "first_hand": "own experience",
    "organising": "organising others",
    "tagged_official": "official account tagged",
    "safety_event": "safety event",
    "spam": "advertising",
    "routine_service": "routine service step",
    "author_role": "author role",
    "channel": "channel used",
    "emoticon": "emoticon",
}


def cue_features(
    normalized: NormalizedText, item: Item, official_accounts: Sequence[str] = ()
) -> dict[str, float]:
    """Return the cue features of one post as a name-to-count dict."""
    scan = cues.scan(post_text(normalized))
    evidence = gather(scan, normalized, item, official_accounts)
    return evidence_features(scan, evidence, normalized, item)


def evidence_features(
    scan: Scan, evidence: Evidence, normalized: NormalizedText, item: Item
) -> dict[str, float]:
    """Return the cue features of a post that the lexicon classifier has examined.

    ``scan`` and ``evidence`` must come from the same post, for example from
    ``LexiconClassifier.examine``, which saves scanning the text a second time.
    """
    counts: dict[str, float] = {}

    def add(name: str, value: float) -> None:
        if value:
            counts[name] = min(float(value), MAX_COUNT)

    _add_actions(scan, evidence, item, add)
    _add_polarity(evidence.polarity, add)
    _add_context(scan, evidence, normalized, item, add)
    return counts


def _add_actions(scan: Scan, evidence: Evidence, item: Item, add) -> None:
    """Count the actions, threats and demands of a post."""
    # gather() adds the complaint platform a post was filed on as an action
    # with an empty span. It is counted apart, as complaint_platform.
    actions = [
        code
        for code, hit in evidence.actions.items()
        if not (code == item.platform and hit.end == 0)
    ]
    add("action_taken", len(actions))
    for code in actions:
        add(f"channel={code}", 1)
    add("action_service_only", evidence.service_only)
    add("threatened", len(evidence.threats))
    add("threat_marker", len(scan.hits(cues.THREATS)))
    add("completed_marker", len(scan.hits(cues.COMPLETED)))
    add("demand", len(evidence.demands))
    add("strong_demand", len(set(evidence.demands) & set(lexicon.STRONG_DEMANDS)))
    add("complaint_platform", item.platform in COMPLAINT_PLATFORMS)


def _add_context(
    scan: Scan, evidence: Evidence, normalized: NormalizedText, item: Item, add
) -> None:
    """Count the questions, markers, author role and emoticons of a post."""
    add("negated_action", len(scan.hits(cues.NEGATED_ACTIONS)))
    add("question_mark", normalized.text.count("?") + normalized.quoted.count("?"))
    add("question", evidence.question)
    add("bystander", len(scan.hits(cues.BYSTANDER)))
    add("statement", len(scan.hits(cues.STATEMENTS)))
    add("first_hand", evidence.first_hand)
    add("organising", evidence.organising is not None)
    add("tagged_official", evidence.tagged_official)
    add("safety_event", evidence.safety is not None)
    add("spam", evidence.spam is not None)
    add("routine_service", evidence.routine)
    if item.author.role:
        add(f"author_role={item.author.role}", 1)
    for code, count in normalized.emoticons.items():
        add(f"emoticon=[{code}]", count)


def _add_polarity(hits, add) -> None:
    """Count the polarity hits per code, with both negation codes as one."""
    per_code: dict[str, int] = {}
    for hit in hits:
        code = "negation" if hit.code in _NEGATION_CODES else hit.code
        per_code[code] = per_code.get(code, 0) + 1
    for code, count in per_code.items():
        add(code, count)


def readable(feature: str) -> str:
    """Return the readable name of a cue feature ("channel=12315" stays specific)."""
    name, _, value = feature.partition("=")
    label = FEATURE_NAMES.get(name, name)
    return f"{label} {value}" if value else label
