"""Score the four grading factors (0-3) of a grievance or complaint.

Each scorer returns a :class:`items.FactorScore` whose evidence strings name
the words, amounts or counts that set the score, never more than a short cut of
the post. When the evidence is unclear the lower score is taken.
"""

from __future__ import annotations

from collections.abc import Sequence

from items import Classification, FactorScore, Item, NormalizedText
from nlp import cues
from nlp.amounts import Amount, find_amounts
from nlp.cues import Hit, Scan

# Amount thresholds in yuan for customer loss 2 and 3.
LOSS_MEDIUM_YUAN = 1_000
LOSS_HIGH_YUAN = 50_000
# Characters around an amount searched for the car price ("30万落地").
PRICE_WINDOW = 6
# Interaction bands for public impact 1, 2 and 3.
INTERACTION_BANDS = (10, 1_000, 10_000)
MEDIA_ROLES = frozenset({"media", "journalist", "kol"})
EVIDENCE_CHARS = 20
# Root causes that the company owns, with their evidence labels.
DEFECT_CAUSES = {"product": "产品问题", "service": "服务问题"}
# Demands whose claimed amount is the price of the car.
RETURN_DEMANDS = frozenset({"return_car", "exchange_car"})


def customer_loss(scan: Scan, demands: Sequence[str] = ()) -> tuple[FactorScore, bool]:
    """Score customer loss and report whether a safety event actually happened.

    ``demands`` are the demand codes of the post. With a return or exchange
    demand, an amount of ``LOSS_HIGH_YUAN`` or more is the price of the car,
    which is not a loss.
    """
    events, hazards, damage = _safety_hits(scan)
    if events:
        return _score("customer_loss", 3, [f"安全事件:{events[0].text}"]), True

    amounts = _loss_amounts(scan)
    if RETURN_DEMANDS & set(demands):
        # NOTE: a real loss of this size claimed beside a return demand (a
        # fleet's lost income) is dropped too and scores on other evidence.
        amounts = [amount for amount in amounts if amount.yuan < LOSS_HIGH_YUAN]
    largest = max(amounts, key=lambda a: a.yuan, default=None)
    if largest is not None and largest.yuan >= LOSS_HIGH_YUAN:
        return _score("customer_loss", 3, [f"金额{largest.text}"]), False
    unusable = scan.hits(cues.CAR_UNUSABLE)
    if unusable and scan.hits(cues.FLEET):
        return _score("customer_loss", 3, [f"车队停运:{unusable[0].text}"]), False

    evidence = []
    if largest is not None and largest.yuan >= LOSS_MEDIUM_YUAN:
        evidence.append(f"金额{largest.text}")
    evidence += [f"无法用车:{h.text}" for h in unusable[:1]]
    evidence += [f"功能失效:{h.text}" for h in scan.hits(cues.FUNCTION_LOST)[:1]]
    evidence += [f"车辆受损:{h.text}" for h in damage[:1]]
    evidence += [f"健康:{h.text}" for h in scan.hits(cues.HEALTH)[:1]]
    evidence += [f"安全隐患:{h.text}" for h in hazards[:1]]
    if evidence:
        return _score("customer_loss", 2, evidence), False

    if largest is not None:
        evidence.append(f"金额{largest.text}")
    evidence += _minor_loss(scan)
    return _score("customer_loss", 1 if evidence else 0, evidence), False


def _minor_loss(scan: Scan) -> list[str]:
    """Name the time lost or the annoyance that sets customer loss 1.

    A named defect of the car counts as at least a minor function annoyance.
    """
    evidence = [f"时间:{h.text}" for h in scan.hits(cues.TIME_LOSS)[:1]]
    faults = [h for h in scan.hits(cues.POLARITY) if h.code == "fault"]
    evidence += [f"不便:{h.text}" for h in faults[:1]]
    product = [h for h in scan.hits(cues.ROOT_CAUSES) if h.code == "product"]
    evidence += [f"产品问题:{h.text}" for h in product[:1]]
    return evidence


def _safety_hits(scan: Scan) -> tuple[list[Hit], list[Hit], list[Hit]]:
    """Split safety words into events that happened, hazards and damage.

    An event word after a hypothetical or denying marker in the same clause
    ("万一起火", "没有冒烟") is only a hazard. A collision in the workshop
    ("保养时把车撞了") is damage to the car, not a safety event.

    NOTE: an event that the author only saw in a video or the news still
    counts as an event, so such a post is graded critical.
    """
    hazards = list(scan.hits(cues.SAFETY_HAZARDS))
    damage = scan.hits(cues.WORKSHOP_COLLISION)
    events = []
    for hit in scan.hits(cues.SAFETY_EVENTS):
        markers = scan.in_clause(cues.HYPOTHETICAL, hit)
        if any(marker.start < hit.start for marker in markers):
            hazards.append(hit)
        elif not any(d.start <= hit.start and hit.end <= d.end for d in damage):
            events.append(hit)
    return events, hazards, damage


def _loss_amounts(scan: Scan) -> list[Amount]:
    """Return the amounts that are not the price of the car."""
    amounts = []
    for amount in find_amounts(scan.text):
        left = scan.text[max(0, amount.start - PRICE_WINDOW) : amount.start]
        right = scan.text[amount.end : amount.end + PRICE_WINDOW]
        if cues.CAR_PRICE_CONTEXT.occurs_in(f"{left}{amount.text}{right}"):
            continue
        amounts.append(amount)
    return amounts


def company_fault(scan: Scan) -> FactorScore:
    """Score company fault from the fault anchors, highest first.

    A grievance or complaint that names a defect or a service failure scores 2
    unless a phrase states otherwise, with those words as evidence. A post with
    no such words scores 1, because unclear evidence takes the lower value.
    """
    serious = scan.hits(cues.FAULT_SERIOUS)
    if serious:
        return _score("company_fault", 3, [h.text for h in serious[:2]])
    clear = scan.hits(cues.FAULT_CLEAR)
    if clear:
        return _score("company_fault", 2, [h.text for h in clear[:2]])
    polarity = scan.hits(cues.POLARITY)
    faults = [h for h in polarity if h.code == "fault"]
    repeated = [h for h in polarity if h.code == "frequency"]
    causes = [h for h in scan.hits(cues.ROOT_CAUSES) if h.code in DEFECT_CAUSES]
    no_fault = scan.hits(cues.FAULT_NONE)
    if no_fault:
        # A no-fault phrase next to a named defect leaves the blame unclear.
        score = 1 if causes else 0
        return _score("company_fault", score, [f"非企业责任:{no_fault[0].text}"])
    if faults and repeated:
        return _score("company_fault", 2, [f"{repeated[0].text}{faults[0].text}"])
    # NOTE: most training posts with a minor phrase (降价, 延期, 慢) are labelled
    # 2, not 1, but each such phrase alone is too weak to tell which.
    minor = scan.hits(cues.FAULT_MINOR)
    if minor:
        return _score("company_fault", 1, [minor[0].text])
    evidence = _defect_evidence(faults, causes)
    return _score("company_fault", 2 if evidence else 1, evidence)


def _defect_evidence(faults: list[Hit], causes: list[Hit]) -> list[str]:
    evidence = [f"故障:{hit.text}" for hit in faults[:1]]
    evidence += [f"{DEFECT_CAUSES[hit.code]}:{hit.text}" for hit in causes[:1]]
    return evidence


def public_impact(
    item: Item,
    scan: Scan,
    normalized: NormalizedText,
    classification: Classification,
    relayed: bool,
) -> FactorScore:
    """Score public impact from engagement, spread words and the author's reach."""
    candidates = [_engagement_impact(item)]
    if normalized.hashtags:
        candidates.append((1, f"话题#{_cut(normalized.hashtags[0], 12)}#"))
    if item.platform in ("12365auto", "heimao"):
        # The likes of a platform entry count followers of that one case and
        # fall in the interaction bands. Similar entries filed by other
        # owners show only in the text ("同类投诉300多条").
        candidates.append((1, "投诉平台1条"))
    candidates += _spread_words(scan, classification)
    if relayed:
        candidates.append(_relay_reach(item))
    return _best("public_impact", candidates)


def _engagement_impact(item: Item) -> tuple[int, str]:
    interactions = item.engagement.interactions
    score = sum(interactions >= band for band in INTERACTION_BANDS)
    if score == 0 and (item.author.followers or 0) >= 10_000:
        return 1, f"粉丝{format_count(item.author.followers or 0)}"
    return score, f"互动{format_count(interactions)}"


def _spread_words(scan: Scan, classification: Classification) -> list[tuple[int, str]]:
    found = []
    trending = scan.hits(cues.TRENDING)
    if trending:
        found.append((3, trending[0].text))
    group = scan.hits(cues.GROUP_ACTION)
    if group:
        escalated = scan.hits(cues.MASS_ESCALATION) and (
            set(classification.channels) - {"company", "brand_social"}
        )
        found.append((3 if escalated else 2, f"群体:{group[0].text}"))
    if "offline_protest" in classification.channels:
        protest = scan.hits(cues.OFFLINE_PROTEST)
        found.append((3, f"线下维权:{protest[0].text if protest else '现场'}"))
    mainstream = scan.hits(cues.MAINSTREAM_MEDIA)
    if mainstream:
        found.append((3, f"主流媒体:{mainstream[0].text}"))
    elif "media" in classification.channels:
        found.append((2, "媒体报道"))
    vertical = scan.hits(cues.VERTICAL_MEDIA)
    if vertical:
        found.append((2, f"垂直媒体:{vertical[0].text}"))
    return found


def _relay_reach(item: Item) -> tuple[int, str]:
    """Score the reach of an author who relays someone else's case."""
    followers = item.author.followers or 0
    label = f"转述者粉丝{format_count(followers)}"
    if followers >= 1_000_000:
        return 3, label
    if followers >= 100_000 and (
        item.author.role in MEDIA_ROLES or item.author.verified == "media"
    ):
        return 2, label
    return 0, label


def customer_identity(item: Item, scan: Scan, author_is_customer: bool) -> FactorScore:
    """Score the identity of the complaining customer, not of a reposter."""
    candidates = []
    for hit in scan.hits(cues.IDENTITY):
        candidates.append((int(hit.code), f"自述:{hit.text}"))
    if author_is_customer:
        candidates.append(_author_identity(item))
    return _best("customer_identity", candidates)


def _author_identity(item: Item) -> tuple[int, str]:
    author = item.author
    followers = author.followers or 0
    fans = f"粉丝{format_count(followers)}"
    if followers >= 1_000_000:
        return 3, fans
    if author.verified == "government" or author.role == "journalist":
        return 3, "政府认证" if author.verified == "government" else "记者"
    if author.role in ("lawyer", "fleet_operator"):
        return 2, {"lawyer": "律师", "fleet_operator": "车队客户"}[author.role]
    if followers >= 100_000:
        return 2, fans
    if author.verified in ("media", "enterprise"):
        return 2, {"media": "媒体认证", "enterprise": "企业认证"}[author.verified]
    if author.verified == "personal" or followers >= 10_000:
        return 1, "个人认证" if author.verified == "personal" else fans
    return 0, ""


def is_relayed(item: Item, normalized: NormalizedText) -> bool:
    """Return True when the author reports someone else's case (news, KOL, repost)."""
    own = cues.scan(normalized.text)
    first_hand = bool(own.hits(cues.FIRST_HAND))
    if normalized.quoted and not first_hand:
        return True
    if item.author.role in ("media", "journalist") or item.author.verified == "media":
        return not first_hand or bool(own.hits(cues.THIRD_PARTY))
    return bool(own.hits(cues.THIRD_PARTY)) and not first_hand


def format_count(count: float) -> str:
    """Format a count the Chinese way: 21000 is 2.1万, 3.2e9 is 32亿."""
    if count >= 100_000_000:
        return f"{count / 100_000_000:.1f}".rstrip("0").rstrip(".") + "亿"
    if count >= 10_000:
        return f"{count / 10_000:.1f}".rstrip("0").rstrip(".") + "万"
    return str(int(count))


def _best(name: str, candidates: list[tuple[int, str]]) -> FactorScore:
    if not candidates:
        return _score(name, 0, [])
    top = max(score for score, _ in candidates)
    evidence = [label for score, label in candidates if score == top and label]
    return _score(name, top, evidence if top else evidence[:1])


def _score(name: str, score: int, evidence: list[str]) -> FactorScore:
    cut = tuple(dict.fromkeys(_cut(text, EVIDENCE_CHARS) for text in evidence if text))
    return FactorScore(name=name, score=max(0, min(3, score)), evidence=cut[:3])


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
