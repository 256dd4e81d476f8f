"""Alert emails: compose them, write them as .eml files, or connect to an SMTP server.

Everything that comes from a post is treated as hostile: header values are
stripped of line breaks and control characters before they reach a header,
and the HTML body escapes every value.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime
from email import message_from_string
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts import policy
from alerts.rules import AlertDecision
from config import Smtp
from items import (
    FACTOR_NAMES_ZH,
    KIND_NAMES_ZH,
    LEVEL_NAMES_ZH,
    Assessment,
    Item,
)

SUMMARY_CHARS = 36
BODY_TEXT_CHARS = 5000
# Control characters, line and paragraph separators, and the bidirectional
# marks, embeddings, overrides and isolates, which would let a poster reorder
# what a mail client shows of the subject.
_UNSAFE_HEADER = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]+"
)
_STRATEGY_NAMES_ZH = {
    "customer_first": "客户至上",
    "balanced": "平等关系",
    "assertive": "强势理性",
}
_VERIFIED_ZH = {
    "personal": "个人认证",
    "media": "媒体认证",
    "government": "政府认证",
    "enterprise": "企业认证",
}
# Cue names are "kind" or "kind:code"; mail shows both parts in Chinese.
_CUE_KINDS_ZH = {
    "channel": "渠道",
    "demand": "诉求",
    "threat": "扬言",
    "organising": "组织维权",
    "safety": "安全",
    "sarcasm": "反讽",
    "resolved": "已解决",
    "question": "提问",
    "statement": "声明",
    "bystander": "旁观",
    "spam": "广告",
    "author": "作者",
    "competitor_only": "仅涉及竞品",
    "no_brand": "未提及品牌",
    "positive": "正面",
    "negative": "负面",
    "mild_negative": "轻微负面",
    "fault": "过失",
}
_CUE_CODES_ZH = {
    "company": "企业客服/门店",
    "brand_social": "@官方账号",
    "12315": "12315",
    "consumer_association": "消费者协会",
    "market_regulator": "市场监管局",
    "dpac": "缺陷产品管理中心",
    "12345": "12345热线",
    "12365auto": "车质网",
    "heimao": "黑猫投诉",
    "media": "媒体",
    "lawyer": "律师函",
    "court": "法院",
    "police": "报警",
    "offline_protest": "线下维权",
    "return_car": "退车",
    "exchange_car": "换车",
    "refund": "退款",
    "repair": "维修",
    "replace_part": "换件",
    "compensation": "赔偿",
    "recall": "召回",
    "apology": "道歉",
    "explanation": "说明",
    "honor_promise": "兑现承诺",
    "investigation": "调查",
    "restore_feature": "恢复功能",
    "extended_warranty": "延保",
    "implied": "默认",
}


@dataclass(frozen=True, slots=True)
class Composed:
    subject: str
    message_id: str
    message: str


@dataclass(frozen=True, slots=True)
class Thread:
    """A mail's place in its alert's thread, and what the alert amounts to.

    ``key`` names the message uniquely and stably (the alert's key and the
    message's number), so a resend carries the same Message-ID. ``reasons``
    are the update reasons of :mod:`alerts.policy` (empty for the first mail),
    or ``ESCALATION``. ``parent`` and ``references`` are the Message-IDs the
    reply headers name, and ``subject`` the first mail's subject, which every
    reply repeats after "Re: " so that mail clients keep one thread.
    """

    key: str
    reasons: tuple[str, ...] = ()
    parent: str | None = None
    references: tuple[str, ...] = ()
    subject: str | None = None
    ack_url: str | None = None
    problem: str | None = None
    people: int = 0
    posts: int = 1
    reach: int = 0


ESCALATION = "escalation"
# Message-IDs that a reply names in References: the first and the latest.
MAX_REFERENCES = 20


def reply_references(message_ids: list[str]) -> tuple[str, ...]:
    """Return the References of a reply to a thread of ``message_ids``, oldest
    first: all of them, or the first and the latest when there are too many."""
    if len(message_ids) <= MAX_REFERENCES:
        return tuple(message_ids)
    return (message_ids[0], *message_ids[-(MAX_REFERENCES - 1) :])


_REASONS_ZH = {
    policy.LEVEL_RAISED: "级别升至【{level}】",
    policy.REACH_DOUBLED: "传播量翻倍，现共 {reach:,} 次互动",
    policy.NEW_OWNER: "又有车主反映同一问题，现共 {people:,} 人",
    policy.TURNED_COMPLAINT: "抱怨已转为投诉",
    policy.FORECAST_VIRAL: "预计将大范围传播",
}


def compose(
    decision: AlertDecision,
    item: Item,
    assessment: Assessment,
    *,
    post_id: int,
    sender: str,
    review_url: str,
    timezone: str,
    now: datetime,
    thread: Thread | None = None,
) -> Composed:
    """Build the alert email for one post, as RFC 5322 text with CRLF line ends.

    With ``thread``, the mail is that message of its alert: an update or an
    escalation is a reply to the mail before it.
    """
    grading = assessment.grading
    assert grading is not None, "only graded posts alert"
    zone = ZoneInfo(timezone)
    thread = thread or Thread(key=decision.dedup_key)

    subject = subject_line(decision, item, assessment)
    if thread.subject:
        subject = "Re: " + header_safe(thread.subject, 200)
    message_id = _message_id(thread.key, sender)
    message = EmailMessage(policy=SMTP)
    message["Subject"] = subject
    message["From"] = _address(sender)
    message["To"] = [_address(r) for r in decision.recipients]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    if thread.parent:
        message["In-Reply-To"] = thread.parent
        message["References"] = " ".join(thread.references or (thread.parent,))
    message["X-Fenghuo-Level"] = decision.level
    message["X-Fenghuo-Post"] = str(post_id)

    context = _Context(
        decision, item, assessment, post_id, review_url.rstrip("/"), zone, now
    )
    context.thread = thread
    message.set_content(context.plain(), charset="utf-8")
    message.add_alternative(context.html(), subtype="html", charset="utf-8")
    return Composed(subject=subject, message_id=message_id, message=message.as_string())


def header_safe(value: str, limit: int) -> str:
    """Collapse line breaks and control characters to spaces and cut to ``limit``."""
    flat = _UNSAFE_HEADER.sub(" ", value)
    flat = re.sub(r"\s+", " ", flat).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def subject_line(decision: AlertDecision, item: Item, assessment: Assessment) -> str:
    """Return the subject of an alert's first mail."""
    level = LEVEL_NAMES_ZH[decision.level]
    kind = KIND_NAMES_ZH[decision.kind]
    if decision.kind == "grievance" and decision.high_risk:
        kind += "·高风险"
    relevance = assessment.relevance
    own = [m for m in relevance.models if m not in relevance.competitor_models]
    models = "/".join(own[:2])
    summary = header_safe(
        item.title or assessment.normalized.text or item.text, SUMMARY_CHARS
    )
    parts = [f"[烽火·{level}] {kind}"]
    if models:
        parts.append(models)
    parts.append(summary)
    return " | ".join(parts)


def _message_id(dedup_key: str, sender: str) -> str:
    # A stable id: the same alert always carries the same Message-ID, so a
    # resend after a crash is recognisable as the same message.
    digest = hashlib.sha256(dedup_key.encode("utf-8")).hexdigest()[:32]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "fenghuo.localhost"
    return f"<{digest}.alert@{domain}>"


def _address(value: str) -> Address:
    name, addr = parseaddr(value)
    username, _, domain = addr.rpartition("@")
    return Address(display_name=header_safe(name, 80), username=username, domain=domain)


class _Context:
    """The values shown in both bodies, formatted once."""

    def __init__(
        self, decision, item, assessment, post_id, review_url, zone, now
    ) -> None:
        self.now = now
        self.decision = decision
        self.item = item
        self.assessment = assessment
        self.grading = assessment.grading
        self.link = f"{review_url}/posts/{post_id}"
        self.zone = zone
        self.thread: Thread | None = None

    def when(self, moment: datetime | None) -> str:
        if moment is None:
            return "时间未知"
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def update_line(self) -> str | None:
        """Return what changed since the last mail, or None for the first mail."""
        reasons = self.thread.reasons if self.thread else ()
        if not reasons:
            return None
        if ESCALATION in reasons:
            return "这条预警超过首次响应时限仍无人确认，按升级规则转给您。"
        values = {
            "level": LEVEL_NAMES_ZH[self.decision.level],
            "reach": self.thread.reach,
            "people": self.thread.people,
        }
        changes = [_REASONS_ZH[r].format(**values) for r in reasons if r in _REASONS_ZH]
        return "更新：" + "；".join(changes) + "。"

    def problem_line(self) -> str | None:
        thread = self.thread
        if thread is None or (not thread.problem and thread.posts <= 1):
            return None
        parts = []
        if thread.problem:
            parts.append(f"所属问题：{header_safe(thread.problem, 60)}")
        if thread.people:
            parts.append(f"{thread.people:,} 人反映")
        if thread.posts > 1:
            parts.append(f"本事件共 {thread.posts:,} 条帖子（含转发和复制）")
        return "，".join(parts)

    def lead(self) -> str:
        level = LEVEL_NAMES_ZH[self.decision.level]
        kind = KIND_NAMES_ZH[self.decision.kind]
        deadline = self.grading.deadline
        found = f"烽火发现一条【{level}】级{kind}"
        if deadline is None:
            return f"{found}，请尽快首次响应。"
        when = f"{self.when(deadline)}（{self.zone.key}）"
        if deadline < self.now:
            hours = (self.now - deadline).total_seconds() / 3600
            return f"{found}，首次响应时限 {when} 已过 {hours:,.0f} 小时，请立即处理。"
        return f"{found}，请在 {when} 前首次响应。"

    def factor_lines(self) -> list[str]:
        lines = []
        for factor in self.grading.factors:
            evidence = (
                "；".join(_chinese_punctuation(e) for e in factor.evidence)
                or "无明显证据"
            )
            lines.append(f"{FACTOR_NAMES_ZH[factor.name]} {factor.score}/3：{evidence}")
        return lines

    def author_line(self) -> str:
        author = self.item.author
        parts = [self.item.platform, header_safe(author.name or "匿名", 40)]
        if author.followers is not None:
            parts.append(f"粉丝 {author.followers:,}")
        if author.verified in _VERIFIED_ZH:
            parts.append(_VERIFIED_ZH[author.verified])
        parts.append(self.when(self.item.created_at))
        return " · ".join(parts)

    def engagement_line(self) -> str:
        e = self.item.engagement
        return f"点赞 {e.likes:,} · 转发 {e.reposts:,} · 评论 {e.comments:,}"

    def post_text(self) -> str:
        text = self.item.text
        if len(text) > BODY_TEXT_CHARS:
            return text[:BODY_TEXT_CHARS] + f"\n（全文共 {len(text):,} 字，此处截断）"
        return text

    def cue_line(self) -> str:
        cues = self.assessment.classification.cues
        return "；".join(_describe_cue(cue) for cue in cues[:8]) or "无"

    def strategy(self) -> str:
        return _STRATEGY_NAMES_ZH.get(self.grading.strategy, self.grading.strategy)

    def plain(self) -> str:
        reason = _chinese_punctuation(self.grading.reason)
        lines = ["各位好，", ""]
        if self.update_line():
            lines += [self.update_line(), ""]
        lines += [self.lead(), "", f"原因：{reason}"]
        if self.problem_line():
            lines.append(self.problem_line())
        lines += ["", "四个因子："]
        lines += [f"- {line}" for line in self.factor_lines()]
        lines += [
            "",
            f"原帖（{self.author_line()}）",
            self.engagement_line(),
            "",
            self.post_text(),
        ]
        if self.item.url:
            lines += ["", f"原帖链接：{self.item.url}"]
        lines += [
            "",
            f"判断依据：{self.cue_line()}",
            f"在烽火中处理：{self.link}",
        ]
        if self.thread and self.thread.ack_url:
            lines.append(f"确认收到（停止升级）：{self.thread.ack_url}")
        lines += [
            "",
            f"—— 烽火预警（{self.strategy()}策略）",
        ]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        e = html.escape
        factors = "".join(f"<li>{e(line)}</li>" for line in self.factor_lines())
        text = e(self.post_text()).replace("\n", "<br>\n")
        url = ""
        if self.item.url and self.item.url.startswith(("http://", "https://")):
            url = f'<p><a href="{e(self.item.url)}">原帖链接</a></p>'
        update = (
            f"<p><strong>{e(self.update_line())}</strong></p>\n"
            if self.update_line()
            else ""
        )
        problem = f"<p>{e(self.problem_line())}</p>\n" if self.problem_line() else ""
        ack = ""
        if self.thread and self.thread.ack_url:
            ack = (
                f'<p><a href="{e(self.thread.ack_url)}">确认收到（停止升级）</a></p>\n'
            )
        return (
            "<!doctype html><html><body>\n"
            f"<p>各位好，</p>\n{update}<p><strong>{e(self.lead())}</strong></p>\n"
            f"<p>原因：{e(_chinese_punctuation(self.grading.reason))}</p>\n{problem}"
            f"<p>四个因子：</p><ul>{factors}</ul>\n"
            f"<p>原帖（{e(self.author_line())}）<br>{e(self.engagement_line())}</p>\n"
            f"<blockquote>{text}</blockquote>\n{url}"
            f"<p>判断依据：{e(self.cue_line())}</p>\n"
            f'<p><a href="{e(self.link)}">在烽火中处理</a></p>\n{ack}'
            f"<p>—— 烽火预警（{e(self.strategy())}策略）</p>\n</body></html>\n"
        )


_FULL_WIDTH = str.maketrans({",": "，", ":": "：", "(": "（", ")": "）"})


def _chinese_punctuation(generated: str) -> str:
    """Give a sentence that the grader wrote the punctuation of Chinese prose.

    Only for text Fenghuo generates: a post's own text is quoted as written.
    """
    return generated.translate(_FULL_WIDTH)


def _describe_cue(cue) -> str:
    kind, _, code = cue.name.partition(":")
    label = _CUE_KINDS_ZH.get(kind, kind)
    if code:
        label += "·" + _CUE_CODES_ZH.get(code, code)
    text = header_safe(cue.text, 30)
    return f"{label}「{text}」" if text else label


def write_eml(message: str, outbox: Path, name: str) -> Path:
    """Write a message into ``outbox`` atomically and return its path.

    The file appears under its final name only once it is complete, so a
    crash never leaves half an email where a reader would pick it up.
    """
    outbox.mkdir(parents=True, exist_ok=True)
    target = outbox / f"{name}.eml"
    fd, temporary = tempfile.mkstemp(dir=outbox, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "w", encoding="ascii", newline="") as handle:
            handle.write(message)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def open_smtp(settings: Smtp, password: str | None) -> smtplib.SMTP:
    """Connect to the configured SMTP server, secure the session and log in.

    ``settings.security`` is "tls" for implicit TLS, "starttls" to upgrade a
    plain connection, or "none". Raises OSError for network and TLS errors
    and ``smtplib.SMTPException`` for the server's refusals.
    """
    context = ssl.create_default_context()
    if settings.security == "tls":
        client = smtplib.SMTP_SSL(
            settings.host,
            settings.port,
            timeout=settings.timeout_seconds,
            context=context,
        )
    else:
        client = smtplib.SMTP(
            settings.host, settings.port, timeout=settings.timeout_seconds
        )
    try:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, password or "")
    except BaseException:
        client.close()
        raise
    return client


def envelope_sender(message: str, settings: Smtp) -> str:
    """Return the envelope sender: the login user when there is one, else the
    From address, so that providers which check it against the account accept
    the message."""
    return settings.username or parseaddr(_header(message, "From"))[1]


def _header(message: str, name: str) -> str:
    prefix = name.lower() + ":"
    for line in message.split("\r\n"):
        if not line:
            break
        if line.lower().startswith(prefix):
            return line[len(prefix) :].strip()
    return ""


def compose_notice(
    dedup_key: str,
    subject: str,
    body: str,
    *,
    sender: str,
    recipients: tuple[str, ...],
    now: datetime,
) -> Composed:
    """Build a plain-text notice to operations, such as a source gone stale."""
    subject = header_safe(subject, 120)
    message_id = _message_id(dedup_key, sender)
    message = EmailMessage(policy=SMTP)
    message["Subject"] = subject
    message["From"] = _address(sender)
    message["To"] = [_address(r) for r in recipients]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message.set_content(body, charset="utf-8")
    return Composed(subject=subject, message_id=message_id, message=message.as_string())


def compose_reply(
    thread: Thread,
    body: str,
    *,
    sender: str,
    recipients: tuple[str, ...],
    now: datetime,
) -> Composed:
    """Build a plain-text message in an alert's mail thread, such as an escalation.

    ``thread.key`` names the message, and ``thread.subject`` is the first
    mail's subject, repeated after "Re: ".
    """
    subject = "Re: " + header_safe(thread.subject or "烽火预警", 200)
    message_id = _message_id(thread.key, sender)
    message = EmailMessage(policy=SMTP)
    message["Subject"] = subject
    message["From"] = _address(sender)
    if recipients:
        message["To"] = [_address(r) for r in recipients]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    if thread.parent:
        message["In-Reply-To"] = thread.parent
        message["References"] = " ".join(thread.references or (thread.parent,))
    message.set_content(body, charset="utf-8")
    return Composed(subject=subject, message_id=message_id, message=message.as_string())


def copy_as_reply(original: str, thread: Thread, *, now: datetime) -> Composed:
    """Build a copy of a stored mail as a new message in its alert's thread.

    The body and recipients stay as they were. The copy gets the Message-ID
    of ``thread.key``, the date ``now``, "Re: " before ``thread.subject`` and
    reply headers naming ``thread.parent`` and ``thread.references``, so that
    a mail client shows it in the same thread as a message of its own.
    """
    message = message_from_string(original, policy=SMTP)
    sender = message.get("From", "")
    subject = "Re: " + header_safe(thread.subject or message.get("Subject", ""), 200)
    message_id = _message_id(thread.key, str(sender))
    for name in ("Subject", "Date", "Message-ID", "In-Reply-To", "References"):
        del message[name]
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    if thread.parent:
        message["In-Reply-To"] = thread.parent
        message["References"] = " ".join(thread.references or (thread.parent,))
    return Composed(subject=subject, message_id=message_id, message=message.as_string())
