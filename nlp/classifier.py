"""Decide the kind of a post from cue lexicons.

Kinds are tried in a fixed order, and the first that fits wins. A post not
about the brand is irrelevant. A completed action toward the company or another
organisation, together with a demand, makes a complaint. First-hand
dissatisfaction makes a grievance, and that includes threats, sarcasm and
dissatisfied questions. A first-hand positive experience, or a case resolved to
the author's satisfaction, is praise. Everything else is neutral.

The confidence grows with the number of agreeing cues and shrinks with the cues
that point elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from items import Classification, Cue, Item, NormalizedText, Relevance
from nlp import cues, lexicon
from nlp.cues import Hit, Scan

logger = logging.getLogger(__name__)

MODEL_VERSION = "lexicon-1"
COMPLAINT_PLATFORMS = frozenset({"12365auto", "heimao"})
# Channels outside the company: reaching one is a formal step by itself.
EXTERNAL_CHANNELS = frozenset(lexicon.CHANNELS) - {"company"}
# Demands that go beyond ordinary service. A call to the hotline becomes a
# complaint only with one of these.
BEYOND_SERVICE = frozenset(lexicon.STRONG_DEMANDS) | {"refund"}
NON_CUSTOMER_ROLES = frozenset({"brand_official", "dealer"})
_SERVICE_CONTACTS = frozenset(word.lower() for word in lexicon.SERVICE_CONTACTS)
_MAX_CUES = 8


def post_text(normalized: NormalizedText) -> str:
    """Return the text a post is judged on: own words, then the repost chain."""
    if normalized.quoted:
        return f"{normalized.text} // {normalized.quoted}"
    return normalized.text


@dataclass
class Evidence:
    """The cues found in one post, before the kind is decided."""

    actions: dict[str, Hit] = field(default_factory=dict)
    service_only: bool = False
    threats: dict[str, Hit] = field(default_factory=dict)
    demands: dict[str, Hit] = field(default_factory=dict)
    negative: int = 0
    positive: int = 0
    polarity: list[Hit] = field(default_factory=list)
    sarcasm: Hit | None = None
    resolved: Hit | None = None
    organising: Hit | None = None
    first_hand: bool = False
    experience: bool = False
    tagged_official: bool = False
    safety: Hit | None = None
    bystander: bool = False
    routine: bool = False
    question: bool = False
    statement: Hit | None = None
    spam: Hit | None = None

    @property
    def has_fault(self) -> bool:
        return any(hit.code == "fault" for hit in self.polarity)

    @property
    def own_experience(self) -> bool:
        """Whether the post reads as the author's own experience, not an onlooker's."""
        if self.first_hand or self.tagged_official:
            return True
        specific = self.has_fault or self.sarcasm is not None or self.safety is not None
        return (specific or self.experience) and not self.bystander


def check_batch(
    normalized: Sequence[NormalizedText],
    relevance: Sequence[Relevance],
    items: Sequence[Item],
) -> None:
    """Raise ValueError unless the three sequences of a batch have one length."""
    if not len(normalized) == len(relevance) == len(items):
        raise ValueError(
            f"classify_batch: lengths differ: normalized={len(normalized)} "
            f"relevance={len(relevance)} items={len(items)}"
        )


class LexiconClassifier:
    """Classifier of normalised, brand-matched posts built on the cue lexicons.

    ``official_accounts`` are the brand's handles. Tagging one of them with an
    explicit demand is the ``brand_social`` channel.
    """

    model_version = MODEL_VERSION

    def __init__(self, official_accounts: Sequence[str] = ()):
        self._official = tuple(
            a if a.startswith("@") else f"@{a}" for a in official_accounts
        )

    def classify_batch(
        self,
        normalized: Sequence[NormalizedText],
        relevance: Sequence[Relevance],
        items: Sequence[Item],
    ) -> list[Classification]:
        """Classify posts in order; the three sequences must have the same length."""
        check_batch(normalized, relevance, items)
        return [
            self.classify(n, r, i)
            for n, r, i in zip(normalized, relevance, items, strict=True)
        ]

    def classify(
        self, normalized: NormalizedText, relevance: Relevance, item: Item
    ) -> Classification:
        """Return the kind of one post with its confidence and deciding cues."""
        if not relevance.relevant:
            return _irrelevant(relevance)
        scan, evidence = self.examine(normalized, item)
        return self.decide(scan, evidence, item)

    def examine(self, normalized: NormalizedText, item: Item) -> tuple[Scan, Evidence]:
        """Scan one post and collect its cues, for :meth:`decide` and cue features."""
        scan = cues.scan(post_text(normalized))
        return scan, gather(scan, normalized, item, self._official)

    def decide(self, scan: Scan, evidence: Evidence, item: Item) -> Classification:
        """Return the kind of a relevant post from its scan and collected cues."""
        if evidence.spam is not None and not evidence.first_hand:
            return _result("irrelevant", 1, 0, [Cue("spam", evidence.spam.text)])
        if item.author.role in NON_CUSTOMER_ROLES:
            return _result("neutral", 2, 0, [Cue("author", item.author.role)])
        decided = _decide_complaint(scan, evidence, item)
        if decided is None:
            decided = _decide_other(scan, evidence)
        logger.debug("classified item=%s kind=%s", item.external_id, decided.kind)
        return decided


def gather(
    scan: Scan, normalized: NormalizedText, item: Item, official: Sequence[str]
) -> Evidence:
    """Collect the cues of one post."""
    evidence = Evidence()
    _find_actions(scan, evidence)
    _find_demands(scan, evidence)
    _find_polarity(scan, evidence)
    _find_brand_social(scan, normalized, evidence, official)
    if item.platform in COMPLAINT_PLATFORMS:
        evidence.actions.setdefault(
            item.platform, Hit(item.platform, 0, 0, item.platform)
        )
        evidence.service_only = False

    evidence.first_hand = bool(scan.hits(cues.FIRST_HAND))
    evidence.experience = bool(scan.hits(cues.ROOT_CAUSES))
    evidence.tagged_official = any(account in normalized.text for account in official)
    evidence.safety = _safety_event(scan)
    if evidence.safety is not None:
        evidence.negative += 2
    evidence.bystander = bool(scan.hits(cues.BYSTANDER))
    evidence.routine = bool(scan.hits(cues.ROUTINE_SERVICE))
    evidence.question = bool(scan.hits(cues.QUESTIONS))
    evidence.statement = _first(scan.hits(cues.STATEMENTS))
    evidence.spam = _first(scan.hits(cues.SPAM))
    organising = scan.hits(cues.GROUP_ORGANISING)
    evidence.organising = organising[0] if organising else None
    return evidence


def _safety_event(scan: Scan) -> Hit | None:
    """Return the first safety event that is not hypothetical or denied."""
    for hit in scan.hits(cues.SAFETY_EVENTS):
        markers = scan.in_clause(cues.HYPOTHETICAL, hit)
        if not any(marker.start < hit.start for marker in markers):
            return hit
    return None


def _find_actions(scan: Scan, evidence: Evidence) -> None:
    """Sort channel mentions into actions taken, threats and mere mentions."""
    channel_hits = scan.hits(cues.CHANNELS)
    service_actions, formal_actions = 0, 0
    for hit in channel_hits:
        status = _action_status(scan, hit, narrative=False)
        if status == "implicit" and scan.in_clause(cues.COMPLAINT_VERBS, hit):
            status = "action"
        if status == "threat":
            evidence.threats.setdefault(hit.code, hit)
        elif status == "action":
            evidence.actions.setdefault(hit.code, hit)
            is_service = hit.text.lower() in _SERVICE_CONTACTS
            service_actions += is_service
            formal_actions += not is_service
    for hit in scan.hits(cues.NARRATIVE_CHANNELS):
        if _action_status(scan, hit, narrative=True) == "action":
            evidence.actions.setdefault(hit.code, hit)
            formal_actions += 1

    for hit in scan.hits(cues.COMPLAINT_VERBS):
        status = _action_status(scan, hit, narrative=False)
        named = [c for c in scan.in_clause(cues.CHANNELS, hit) if c.code != "company"]
        if status == "threat" and not named:
            evidence.threats.setdefault("company", hit)
        elif status == "action" and not named:
            evidence.actions.setdefault("company", hit)
            formal_actions += 1
    evidence.service_only = service_actions > 0 and formal_actions == 0


def _action_status(scan: Scan, hit: Hit, narrative: bool) -> str:
    """Return action, threat, mention or implicit for a channel or verb mention.

    The marker nearest before the mention decides ("已经投诉要求退车,再不解决就去
    12315": the 12315 clause has a threat). A completed marker right after the
    mention ("投诉了", "法院已立案") counts as well.
    """
    if scan.in_clause(cues.NEGATED_ACTIONS, hit):
        return "mention"
    threats = scan.in_clause(cues.THREATS, hit)
    completed = scan.in_clause(cues.COMPLETED, hit)
    before = [m for m in threats + completed if m.start < hit.start]
    if before:
        nearest = max(before, key=lambda m: m.end)
        return "threat" if nearest.code == "threats" else "action"
    if any(hit.start <= m.start <= hit.end + 3 for m in completed):
        return "action"
    if threats:
        return "threat"
    if scan.in_clause(cues.ADVICE, hit) or scan.in_clause(cues.QUESTIONS, hit):
        return "mention"
    return "action" if narrative else "implicit"


def _find_demands(scan: Scan, evidence: Evidence) -> None:
    for hit in scan.hits(cues.STRONG_DEMANDS):
        evidence.demands.setdefault(hit.code, hit)
    for hit in scan.hits(cues.WEAK_DEMANDS):
        if scan.in_clause(cues.REQUESTS, hit):
            evidence.demands.setdefault(hit.code, hit)


def _find_polarity(scan: Scan, evidence: Evidence) -> None:
    """Score negative and positive cues. Sarcasm turns the praise words negative."""
    hits = scan.hits(cues.POLARITY)
    evidence.polarity = hits
    evidence.sarcasm = _first(h for h in hits if h.code == "sarcasm")
    resolved = [h for h in hits if h.code == "resolved"]
    evidence.resolved = resolved[-1] if resolved else None
    negative = sum(lexicon.NEGATIVE_WEIGHTS.get(h.code, 0) for h in hits)
    positive = sum(lexicon.POSITIVE_WEIGHTS.get(h.code, 0) for h in hits)
    if evidence.sarcasm is not None and (negative or evidence.has_fault):
        negative += 2 + positive
        positive = 0
    evidence.negative = negative
    evidence.positive = positive


def _find_brand_social(
    scan: Scan, normalized: NormalizedText, evidence: Evidence, official: Sequence[str]
) -> None:
    """Record the brand_social channel: an official account tagged with a demand."""
    if not official or not evidence.demands:
        return
    tagged = next((a for a in official if a in normalized.text), None)
    if tagged is None:
        return
    explicit = [
        hit
        for hit in evidence.demands.values()
        if hit.code in lexicon.STRONG_DEMANDS or scan.in_clause(cues.REQUESTS, hit)
    ]
    demand_clauses = {scan.clause(hit.start) for hit in explicit}
    if explicit and not any(
        scan.clause(t.start) in demand_clauses for t in scan.hits(cues.THREATS)
    ):
        evidence.actions.setdefault("brand_social", Hit("brand_social", 0, 0, tagged))
        evidence.service_only = False


def _decide_complaint(
    scan: Scan, evidence: Evidence, item: Item
) -> Classification | None:
    """Return a complaint (or a resolved case as praise), or None to go on."""
    if not evidence.actions:
        return None
    if _resolved_and_satisfied(evidence):
        return _praise_resolved(evidence)
    if evidence.service_only and not set(evidence.demands) & BEYOND_SERVICE:
        return None

    demands = dict(evidence.demands)
    cue_list = [_channel_cue(scan, code, hit) for code, hit in evidence.actions.items()]
    if not demands:
        # NOTE: a formal complaint that names no demand ("已向12315投诉") gets the
        # demand it implies (repair for a product, else an explanation). The
        # cue "demand:implied" marks the guess.
        code = _implied_demand(scan)
        cue_list.append(Cue("demand:implied", code))
        demands[code] = Hit(code, 0, 0, "")
    cue_list += [
        Cue(f"demand:{c}", scan.snippet(h)) for c, h in demands.items() if h.text
    ]
    cue_list += [Cue("threat", scan.snippet(h)) for h in evidence.threats.values()]
    return _complaint(scan, evidence, demands, cue_list)


def _complaint(
    scan: Scan, evidence: Evidence, demands: dict[str, Hit], cue_list: list[Cue]
) -> Classification:
    support = len(evidence.actions) + len(evidence.demands) + (evidence.negative > 0)
    resolved = 0.5 * (evidence.resolved is not None)
    conflict = evidence.question + evidence.bystander + resolved
    return _result(
        "complaint",
        support,
        conflict,
        cue_list,
        demands=tuple(demands),
        channels=tuple(evidence.actions),
        root_cause=root_cause(scan),
    )


def _decide_other(scan: Scan, evidence: Evidence) -> Classification:
    """Decide between grievance, praise and neutral for a post with no complaint."""
    if _resolved_and_satisfied(evidence, need_praise=False):
        return _praise_resolved(evidence)
    grievance = _grievance_cues(scan, evidence)
    if grievance:
        support = (
            evidence.negative / 2
            + len(evidence.threats)
            + (evidence.sarcasm is not None)
        )
        conflict = evidence.positive / 2 + (not evidence.first_hand)
        return _result(
            "grievance",
            support,
            conflict,
            grievance,
            demands=_stated_demands(scan, evidence),
            root_cause=root_cause(scan),
        )
    # Praise needs no ownership word ("倒也不是不喜欢QC7,就是觉得值这个价"), but
    # an onlooker's or a question's praise is neutral.
    onlooker = evidence.bystander or evidence.statement is not None
    asking = evidence.question and not evidence.own_experience
    if evidence.positive >= 2 and evidence.negative < 2 and not (onlooker or asking):
        positive = [h for h in evidence.polarity if h.code in lexicon.POSITIVE_WEIGHTS]
        cue_list = [Cue("positive", h.text) for h in positive]
        return _result("praise", evidence.positive / 2, evidence.negative, cue_list)
    return _neutral(evidence)


def _grievance_cues(scan: Scan, evidence: Evidence) -> list[Cue]:
    """Return the cues that make the post a grievance, or [] when it is not one."""
    cue_list = [Cue("threat", scan.snippet(h)) for h in evidence.threats.values()]
    if evidence.organising is not None:
        cue_list.append(Cue("organising", scan.snippet(evidence.organising)))
    if cue_list:
        return cue_list
    if not evidence.own_experience or not _dissatisfied(evidence):
        return []
    if evidence.safety is not None:
        cue_list.append(Cue("safety", evidence.safety.text))
    if evidence.sarcasm is not None:
        cue_list.append(Cue("sarcasm", evidence.sarcasm.text))
    negative = [h for h in evidence.polarity if h.code in lexicon.NEGATIVE_WEIGHTS]
    cue_list += [Cue(h.code, h.text) for h in negative]
    return cue_list


def _dissatisfied(evidence: Evidence) -> bool:
    """Return True when the negative cues outweigh a plain report or question.

    Two negative points suffice ("车机三天两头死机"). A single fault counts too
    ("车机死机了"), unless it comes with a routine service step ("周一送修异响")
    or as a question ("异响怎么解决").
    """
    if evidence.negative >= 2:
        return True
    if not evidence.has_fault or evidence.positive >= 2:
        return False
    return not (evidence.routine or evidence.question)


def _stated_demands(scan: Scan, evidence: Evidence) -> tuple[str, ...]:
    """Return the demands of a grievance: only those stated with a threat or a group."""
    if not evidence.threats and evidence.organising is None:
        return ()
    if evidence.demands:
        return tuple(evidence.demands)
    return (_implied_demand(scan),)


def _resolved_and_satisfied(evidence: Evidence, need_praise: bool = True) -> bool:
    """Return True when the last resolution is followed by no complaint.

    A case that involved an action must also carry praise; an open action or
    a disputed outcome stays a complaint.
    """
    resolved = evidence.resolved
    if resolved is None or evidence.threats or evidence.sarcasm is not None:
        return False
    after = [h for h in evidence.polarity if h.start >= resolved.start]
    negative_after = any(h.code in ("negative", "dissatisfied_question") for h in after)
    positive = any(h.code in lexicon.POSITIVE_WEIGHTS for h in evidence.polarity)
    return (positive or not need_praise) and not negative_after


def _praise_resolved(evidence: Evidence) -> Classification:
    cue_list = [Cue("resolved", evidence.resolved.text)]
    positive = [h for h in evidence.polarity if h.code in lexicon.POSITIVE_WEIGHTS]
    cue_list += [Cue("positive", h.text) for h in positive]
    return _result("praise", 1 + evidence.positive / 2, len(evidence.threats), cue_list)


def _neutral(evidence: Evidence) -> Classification:
    cue_list = []
    if evidence.question:
        cue_list.append(Cue("question", "?"))
    if evidence.statement is not None:
        cue_list.append(Cue("statement", evidence.statement.text))
    if evidence.bystander:
        cue_list.append(Cue("bystander", "no own experience"))
    support = 1 + len(cue_list)
    conflict = (evidence.negative + evidence.positive) / 2 + len(evidence.actions)
    return _result("neutral", support, conflict, cue_list)


def _irrelevant(relevance: Relevance) -> Classification:
    if relevance.competitors:
        names = ",".join(relevance.competitors)
        return _result("irrelevant", 2, 0, [Cue("competitor_only", names)])
    return _result("irrelevant", 1, 0, [Cue("no_brand", "")])


def _implied_demand(scan: Scan) -> str:
    """Return the demand a complaint implies when it names none."""
    return "repair" if root_cause(scan) == "product" else "explanation"


def root_cause(scan: Scan) -> str:
    """Return the root cause with the most cue words.

    Ties go to product, then service.
    """
    counts = {"product": 0, "service": 0, "process": 0}
    for hit in scan.hits(cues.ROOT_CAUSES):
        counts[hit.code] += 1
    return max(counts, key=lambda code: counts[code])


def _channel_cue(scan: Scan, code: str, hit: Hit) -> Cue:
    if not hit.text or hit.end == 0:
        return Cue(f"channel:{code}", hit.text or code)
    return Cue(f"channel:{code}", scan.snippet(hit))


def _result(
    kind: str,
    support: float,
    conflict: float,
    cue_list: list[Cue],
    demands: tuple[str, ...] = (),
    channels: tuple[str, ...] = (),
    root_cause: str | None = None,
) -> Classification:
    # Laplace-style agreement: two neutral pseudo-cues keep a single cue from
    # reaching certainty, and every conflicting cue pulls the value down.
    confidence = (support + 1) / (support + conflict + 2)
    return Classification(
        kind=kind,
        confidence=round(min(max(confidence, 0.0), 1.0), 3),
        cues=tuple(dict.fromkeys(cue_list))[:_MAX_CUES],
        demands=demands,
        channels=channels,
        root_cause=root_cause,
        model_version=MODEL_VERSION,
    )


def _first(hits) -> Hit | None:
    return next(iter(hits), None)
