"""Alerts as chat-robot messages: 企业微信, 钉钉 and 飞书 group webhooks.

An :class:`AlertCard` contains what a robot shows about one alert. A formatter
per robot kind turns it into that robot's JSON payload, and
:class:`RobotSender` signs the payload where the robot checks signatures,
posts it, and classifies the robot's response as sent, a temporary failure
worth retrying later, or a permanent failure. Nothing here retries.

Text that comes from a post (title, excerpt, author name, evidence quotes,
problem label) is written by strangers. Every text value of a card is put on
one line, and the characters that markdown, HTML and mention syntax need are
replaced by their full-width forms, which read the same in Chinese text.
Addresses are broken up (``https:／／``, ``example．com``). A post's text thus
carries none of the syntax that links, mentions, headings or markup need in
the three dialects.

Payload formats, limits, signatures and error codes follow the 飞书 custom-bot
guide (open.larkoffice.com/document/ukTMukTMukTM/ucTM5YjL3ETO24yNxkjN) and the
企业微信 and 钉钉 group-robot pages as quoted in public guides.

Errors: :class:`RobotSetupError` (a ValueError) for a robot whose URL,
secret, kind or time zone cannot be used, and ValueError for an invalid card
or robot kind given to a formatter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from config import ROBOT_KINDS, Http, Robot
from items import KIND_NAMES_ZH, KINDS, LEVEL_NAMES_ZH, LEVELS

logger = logging.getLogger(__name__)

# 企业微信 rejects markdown content over 4096 bytes of UTF-8.
WECOM_CONTENT_BYTES = 4096
# 飞书 rejects request bodies over 20 KB. The margin leaves room for the
# timestamp and sign fields that signing adds.
FEISHU_BODY_BYTES = 20 * 1024 - 256
TITLE_CHARS = 60
REASON_CHARS = 200
EVIDENCE_CHARS = 80
NAME_CHARS = 40
EXCERPT_CHARS = 600
URL_CHARS = 1024
DETAIL_CHARS = 300
ELLIPSIS = "…"

_FEISHU_TEMPLATES = {"critical": "red", "medium": "orange", "normal": "blue"}
# 企业微信 markdown supports three font colours: info (green), comment (grey)
# and warning (orange-red).
_WECOM_COLOURS = {"critical": "warning", "medium": "warning", "normal": "info"}
# Response codes that mean "try again later". Every other non-zero code means
# the request itself is wrong (bad key, signature, keyword, payload), so it is
# a permanent failure.
# NOTE: 钉钉 130101 ("send too fast") and -1 ("system busy") were not found in
# 钉钉 documentation that could be checked.
_TEMPORARY_CODES = {
    "wecom": frozenset({-1, 45009}),  # -1: system busy, 45009: api freq out of limit
    "dingtalk": frozenset({-1, 130101}),
    "feishu": frozenset({11232}),  # frequency limited, at 100 a minute or 5 a second
}
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class RobotSetupError(ValueError):
    """A robot that cannot be used: its URL, secret or kind is missing or invalid."""


@dataclass(frozen=True, slots=True)
class AlertCard:
    """The content of one alert as a chat robot shows it.

    ``factors`` contains (Chinese factor name, score 0-3, evidence) triples.
    ``deadline`` is the first-response deadline, timezone-aware. ``problem``
    is the label of the problem the post belongs to and ``problem_people`` how
    many people report it. ``update`` marks a later message about an incident
    that was already alerted.
    """

    level: str
    kind: str
    title: str
    reason: str
    factors: tuple[tuple[str, int, str], ...]
    excerpt: str
    author: str | None
    followers: int | None
    reposts: int | None
    post_url: str | None
    review_url: str | None
    deadline: datetime | None
    problem: str | None = None
    problem_people: int | None = None
    update: bool = False

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"unknown level {self.level!r}; expected one of {LEVELS}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {KINDS}")
        if self.deadline is not None and self.deadline.utcoffset() is None:
            raise ValueError("deadline must be timezone-aware")
        for name, score, _ in self.factors:
            if not 0 <= score <= 3:
                raise ValueError(f"factor {name!r}: score {score} is not within 0-3")


@dataclass(frozen=True, slots=True)
class RobotResult:
    """The outcome of one post to a robot, for the outbox to record.

    ``temporary`` is True for failures worth retrying (network errors, 5xx,
    429, rate limits). ``code`` is the robot's errcode or code when its
    response could be read. ``retry_after`` is in seconds, from a Retry-After header.
    ``detail`` never contains the webhook URL or the secret.
    """

    robot: str
    kind: str
    ok: bool
    temporary: bool = False
    status: int | None = None
    code: int | None = None
    detail: str = ""
    retry_after: float | None = None

    @property
    def outcome(self) -> str:
        """The outcome in one word: "sent", "temporary" or "permanent"."""
        if self.ok:
            return "sent"
        return "temporary" if self.temporary else "permanent"


def robots_for_level(robots: tuple[Robot, ...], level: str) -> tuple[Robot, ...]:
    """Return the configured robots that receive alerts of ``level``."""
    return tuple(robot for robot in robots if level in robot.levels)


# --- Neutralising text from posts -------------------------------------------

_LINE_BREAKS = re.compile(r"\s+")
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]"
)
_SCHEME_SEPARATOR = re.compile(r":/{2,}")
_WWW = re.compile(r"(?i)(www)\.")
_DOMAIN_DOT = re.compile(r"(?<=[A-Za-z0-9])\.(?=[A-Za-z]{2,})")
_FULL_WIDTH = str.maketrans(
    {
        "\\": "＼",
        "*": "＊",
        "_": "＿",
        "~": "～",
        "`": "｀",
        "#": "＃",
        "[": "［",
        "]": "］",
        "<": "＜",
        ">": "＞",
        "|": "｜",
        "&": "＆",
        "@": "＠",
    }
)


def neutralize(text: str | None) -> str:
    """Return ``text`` on one line with no markdown, HTML, mention or link syntax.

    Whitespace runs, line breaks included, become one space, and invisible
    control and direction characters are dropped. Syntax characters become
    their full-width forms, so ``<@all>``, ``<at user_id="all">``, ``@所有人``,
    ``[text](url)`` and ``# heading`` stay readable but inert. ``://``,
    ``www.`` and dots before a domain-like word get full-width forms too,
    because the clients turn bare addresses into links.
    """
    if not text:
        return ""
    flat = _LINE_BREAKS.sub(" ", text)
    flat = _INVISIBLE.sub("", flat)
    flat = _SCHEME_SEPARATOR.sub(":／／", flat)
    flat = _WWW.sub(r"\1．", flat)
    flat = _DOMAIN_DOT.sub("．", flat)
    flat = flat.translate(_FULL_WIDTH)
    return _LINE_BREAKS.sub(" ", flat).strip()


def truncate_text(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, ending it with an ellipsis.

    The cut never separates a character from the combining marks, emoji
    modifiers or zero-width joiner sequences that belong to it.
    """
    if len(text) <= max_chars:
        return text
    if max_chars < 1:
        return ""
    cut = _grapheme_boundary(text, max_chars - 1)
    return text[:cut].rstrip() + ELLIPSIS


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` bytes of UTF-8, with an ellipsis.

    Like :func:`truncate_text`, the cut falls between whole characters.
    """
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    budget = max_bytes - len(ELLIPSIS.encode("utf-8"))
    if budget < 0:
        return ""
    used = 0
    cut = len(text)
    for position, char in enumerate(text):
        used += len(char.encode("utf-8"))
        if used > budget:
            cut = position
            break
    cut = _grapheme_boundary(text, cut)
    return text[:cut].rstrip() + ELLIPSIS


def _grapheme_boundary(text: str, index: int) -> int:
    """Move a cut at ``index`` back until it falls between two user-visible characters."""
    while 0 < index < len(text) and (
        _extends(text[index]) or text[index - 1] == "\u200d"
    ):
        index -= 1
    if 0 < index < len(text) and _regional(text[index]):
        run = 0
        while index - run - 1 >= 0 and _regional(text[index - run - 1]):
            run += 1
        # A flag is a pair of regional indicators, so an odd run splits a flag.
        index -= run % 2
    return index


def _extends(char: str) -> bool:
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char == "\u200d"
        or "\ufe00" <= char <= "\ufe0f"
        or "\U0001f3fb" <= char <= "\U0001f3ff"
        or "\U000e0020" <= char <= "\U000e007f"
    )


def _regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _short(text: str | None, max_chars: int) -> str:
    return truncate_text(neutralize(text), max_chars)


def _link_target(url: str | None) -> str | None:
    """Return ``url`` fit for a markdown link, or None when it is not http(s).

    Characters that would end the link or open markup are percent-encoded,
    ``@`` included, so that a user-info part cannot disguise the host.
    """
    if not url:
        return None
    url = url.strip()
    if not re.match(r"(?i)https?://[^\s/?#]+", url) or len(url) > URL_CHARS:
        return None
    return quote(url, safe="/:?#&=%+,;~!$*")


# --- Card text shared by the three formats ----------------------------------


@dataclass(frozen=True, slots=True)
class _Text:
    """The neutralised, shortened text of a card, ready for any dialect."""

    heading: str
    title: str
    reason: str
    deadline: str
    links: tuple[tuple[str, str], ...]
    factors: tuple[str, ...]
    source: str
    problem: str
    excerpt: str


def _card_text(card: AlertCard, zone: ZoneInfo) -> _Text:
    heading = f"烽火预警·{LEVEL_NAMES_ZH[card.level]} {KIND_NAMES_ZH[card.kind]}"
    if card.update:
        heading = f"【更新】{heading}"
    links = []
    review = _link_target(card.review_url)
    if review:
        links.append(("在烽火中处理", review))
    post = _link_target(card.post_url)
    if post:
        links.append(("查看原帖", post))
    return _Text(
        heading=heading,
        title=_short(card.title, TITLE_CHARS) or "（无标题）",
        reason=_short(card.reason, REASON_CHARS),
        deadline=_deadline_text(card.deadline, zone),
        links=tuple(links),
        factors=tuple(_factor_line(factor) for factor in card.factors),
        source=_source_line(card),
        problem=_problem_line(card),
        excerpt=truncate_text(neutralize(card.excerpt), EXCERPT_CHARS),
    )


def _deadline_text(deadline: datetime | None, zone: ZoneInfo) -> str:
    if deadline is None:
        return "未设定"
    local = deadline.astimezone(zone)
    minutes = int(local.utcoffset().total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{local:%Y-%m-%d %H:%M}（UTC{sign}{hours:02d}:{minutes:02d}）"


def _factor_line(factor: tuple[str, int, str]) -> str:
    name, score, evidence = factor
    shown = _short(evidence, EVIDENCE_CHARS) or "无明显证据"
    return f"{_short(name, NAME_CHARS)} {score}/3：{shown}"


def _source_line(card: AlertCard) -> str:
    parts = [_short(card.author, NAME_CHARS) or "匿名"]
    if card.followers is not None:
        parts.append(f"粉丝 {card.followers:,}")
    if card.reposts is not None:
        parts.append(f"转发 {card.reposts:,}")
    return f"原帖（{' · '.join(parts)}）"


def _problem_line(card: AlertCard) -> str:
    label = _short(card.problem, NAME_CHARS)
    if not label:
        return ""
    if card.problem_people is None:
        return f"问题：{label}"
    return f"问题：{label}（{card.problem_people:,} 人反映）"


def _markdown_links(text: _Text) -> str:
    return " · ".join(f"[{label}]({url})" for label, url in text.links)


def _fit(
    build: Callable[[str], Any],
    size: Callable[[Any], int],
    excerpt: str,
    limit: int,
) -> Any:
    """Build a payload, cutting ``excerpt`` until the payload's size is within ``limit``."""
    payload = build(excerpt)
    overflow = size(payload) - limit
    while overflow > 0 and excerpt:
        room = max(len(excerpt.encode("utf-8")) - overflow, 0)
        excerpt = truncate_utf8(excerpt, room)
        payload = build(excerpt)
        overflow = size(payload) - limit
    return payload


# --- The three formats -------------------------------------------------------


def format_wecom(card: AlertCard, timezone: str) -> dict[str, Any]:
    """Build a 企业微信 group-robot markdown message of at most 4096 bytes."""
    text = _card_text(card, ZoneInfo(timezone))
    colour = _WECOM_COLOURS[card.level]
    level = LEVEL_NAMES_ZH[card.level]
    kind = KIND_NAMES_ZH[card.kind]
    update = "【更新】" if card.update else ""
    head = [
        f'## {update}烽火预警 · <font color="{colour}">{level}</font> · {kind}',
        f"**{text.title}**",
        f"> 原因：{text.reason}",
        f"> 首次响应时限：{text.deadline}",
    ]
    if text.links:
        head.append(_markdown_links(text))
    head += ["**四个因子**", *(f"> {line}" for line in text.factors)]

    def build(excerpt: str) -> str:
        lines = [*head, f"**{text.source}**", f"> {excerpt}"]
        if text.problem:
            lines.append(text.problem)
        return "\n".join(lines)

    content = _fit(build, _utf8_size, text.excerpt, WECOM_CONTENT_BYTES)
    content = _drop_last_lines(content, WECOM_CONTENT_BYTES)
    return {"msgtype": "markdown", "markdown": {"content": content}}


def format_dingtalk(card: AlertCard, timezone: str) -> dict[str, Any]:
    """Build a 钉钉 custom-robot markdown message without any @-mention."""
    text = _card_text(card, ZoneInfo(timezone))
    lines = [
        f"### {text.heading}",
        f"**{text.title}**",
        f"> 原因：{text.reason}",
        f"> 首次响应时限：{text.deadline}",
    ]
    if text.links:
        lines.append(_markdown_links(text))
    lines += ["**四个因子**", *(f"> {line}" for line in text.factors)]
    lines += [f"**{text.source}**", f"> {text.excerpt}"]
    if text.problem:
        lines.append(text.problem)
    # NOTE: no size limit for 钉钉 markdown was found in its documentation.
    # The field limits above keep a message to a few kilobytes.
    return {
        "msgtype": "markdown",
        # A 钉钉 markdown line break needs a blank line between lines.
        "markdown": {
            "title": f"{text.heading}：{text.title}",
            "text": "\n\n".join(lines),
        },
        "at": {"isAtAll": False},
    }


def format_feishu(card: AlertCard, timezone: str) -> dict[str, Any]:
    """Build a 飞书 custom-bot interactive card, its header coloured by level."""
    text = _card_text(card, ZoneInfo(timezone))
    header = {
        "template": _FEISHU_TEMPLATES[card.level],
        "title": {"tag": "plain_text", "content": f"{text.heading}：{text.title}"},
    }
    top = [_lark_div(f"**原因**：{text.reason}\n**首次响应时限**：{text.deadline}")]
    if text.links:
        top.append(_lark_div(_markdown_links(text)))
    top += [{"tag": "hr"}, _lark_div("\n".join(["**四个因子**", *text.factors]))]

    def build(excerpt: str) -> dict[str, Any]:
        elements = [*top, _lark_div(f"**{text.source}**\n{excerpt}")]
        if text.problem:
            elements.append(_lark_div(text.problem))
        body = {"config": {"wide_screen_mode": True}, "header": header}
        return {"msg_type": "interactive", "card": {**body, "elements": elements}}

    return _fit(build, _json_size, text.excerpt, FEISHU_BODY_BYTES)


FORMATTERS: dict[str, Callable[[AlertCard, str], dict[str, Any]]] = {
    "wecom": format_wecom,
    "dingtalk": format_dingtalk,
    "feishu": format_feishu,
}


def format_card(kind: str, card: AlertCard, timezone: str) -> dict[str, Any]:
    """Build the JSON payload of robot ``kind`` for ``card``, times shown in ``timezone``."""
    try:
        formatter = FORMATTERS[kind]
    except KeyError:
        raise ValueError(
            f"unknown robot kind {kind!r}; expected one of {', '.join(FORMATTERS)}"
        ) from None
    return formatter(card, timezone)


def _lark_div(content: str) -> dict[str, Any]:
    return {"tag": "div", "text": {"tag": "lark_md", "content": content}}


def _utf8_size(content: str) -> int:
    return len(content.encode("utf-8"))


def _json_size(payload: Any) -> int:
    return len(_json_bytes(payload))


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _drop_last_lines(content: str, max_bytes: int) -> str:
    """Drop whole trailing lines until ``content`` fits, so no markup is cut in half."""
    lines = content.split("\n")
    while len(lines) > 1 and _utf8_size("\n".join(lines)) > max_bytes:
        lines.pop()
    return truncate_utf8("\n".join(lines), max_bytes)


# --- Signing -----------------------------------------------------------------


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """Return the 钉钉 signature: base64 of HMAC-SHA256 keyed by the secret.

    The signed message is the millisecond timestamp, a line feed and the secret.
    """
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """Append the ``timestamp`` and URL-encoded ``sign`` parameters to a 钉钉 webhook."""
    sign = quote_plus(dingtalk_sign(secret, timestamp_ms))
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={sign}"


def feishu_sign(secret: str, timestamp: int) -> str:
    """Return the 飞书 signature for a timestamp in seconds.

    Unlike 钉钉, the HMAC-SHA256 key is the timestamp, a line feed and the
    secret, and the message is empty.
    """
    key = f"{timestamp}\n{secret}".encode()
    digest = hmac.new(key, b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


# --- Sending -----------------------------------------------------------------


class RobotSender:
    """Post payloads to one robot's webhook and classify its responses.

    The client uses the timeouts and User-Agent of ``http``. ``clock`` returns
    Unix seconds and dates the signatures. Use it as a context manager or call
    :meth:`close`.

    NOTE: httpx (0.28) logs every request's URL, the robot's key included, at
    INFO on the "httpx" logger, so that logger must stay at WARNING.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        url: str,
        *,
        http: Http,
        timezone: str = "Asia/Shanghai",
        secret: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_setup(name, kind, url, secret, timezone)
        self.name = name
        self.kind = kind
        self.timezone = timezone
        self._url = url
        self._secret = secret or None
        self._clock = clock
        self._hidden = _secret_parts(url, secret)
        self._client = httpx.Client(
            headers={"User-Agent": http.user_agent},
            timeout=httpx.Timeout(
                connect=http.connect_timeout_seconds,
                read=http.read_timeout_seconds,
                write=http.read_timeout_seconds,
                pool=http.connect_timeout_seconds,
            ),
            follow_redirects=False,
        )

    @classmethod
    def from_config(
        cls,
        robot: Robot,
        *,
        http: Http,
        timezone: str,
        environ: Mapping[str, str] = os.environ,
    ) -> RobotSender:
        """Set up the sender of a configured robot, reading its URL and secret from ``environ``."""
        url = environ.get(robot.url_env, "").strip()
        if not url:
            raise RobotSetupError(
                f"robot {robot.name!r}: environment variable {robot.url_env} is not "
                "set; set it to the robot's webhook URL"
            )
        secret = None
        if robot.secret_env is not None:
            secret = environ.get(robot.secret_env, "").strip()
            if not secret:
                raise RobotSetupError(
                    f"robot {robot.name!r}: environment variable {robot.secret_env} "
                    "is not set; set it to the robot's signing secret"
                )
        return cls(
            robot.name, robot.kind, url, http=http, timezone=timezone, secret=secret
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RobotSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send_card(self, card: AlertCard) -> RobotResult:
        """Format ``card`` for this robot and post it."""
        return self.send(format_card(self.kind, card, self.timezone))

    def send(self, payload: Mapping[str, Any]) -> RobotResult:
        """Sign and post one payload once, and return the classified outcome."""
        url, body = self._signed(payload)
        try:
            response = self._client.post(url, content=body, headers=_JSON_HEADERS)
        except httpx.TimeoutException as exc:
            result = self._failure(True, f"timed out ({type(exc).__name__})")
        except httpx.TransportError as exc:
            reason = self._redact(str(exc)) or type(exc).__name__
            result = self._failure(True, f"network error: {reason}")
        else:
            result = self._classify(response)
        self._log(result)
        return result

    def _signed(self, payload: Mapping[str, Any]) -> tuple[str, bytes]:
        body = dict(payload)
        url = self._url
        if self._secret and self.kind == "dingtalk":
            url = dingtalk_signed_url(url, self._secret, int(self._clock() * 1000))
        elif self._secret and self.kind == "feishu":
            timestamp = int(self._clock())
            body["timestamp"] = str(timestamp)
            body["sign"] = feishu_sign(self._secret, timestamp)
        return url, _json_bytes(body)

    def _classify(self, response: httpx.Response) -> RobotResult:
        status = response.status_code
        answer = _read_answer(response)
        code, message = answer if answer else (None, "")
        message = self._redact(message)
        if status in (408, 429) or status >= 500:
            retry_after = _retry_after(response, self._clock)
            detail = f"HTTP {status} {message}".strip()
            return self._failure(True, detail, status, code, retry_after)
        if not 200 <= status < 300:
            detail = f"HTTP {status} {message}".strip()
            return self._failure(False, detail, status, code)
        if answer is None:
            # A response without errcode or code may come from a proxy in
            # between, so a later attempt can still reach the robot.
            return self._failure(True, f"HTTP {status}, unreadable answer", status)
        if code == 0:
            return RobotResult(self.name, self.kind, True, status=status, code=0)
        temporary = code in _TEMPORARY_CODES[self.kind]
        return self._failure(temporary, f"error {code}: {message}", status, code)

    def _failure(
        self,
        temporary: bool,
        detail: str,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> RobotResult:
        return RobotResult(
            robot=self.name,
            kind=self.kind,
            ok=False,
            temporary=temporary,
            status=status,
            code=code,
            detail=detail[:DETAIL_CHARS],
            retry_after=retry_after,
        )

    def _redact(self, text: str) -> str:
        for part in self._hidden:
            text = text.replace(part, "***")
        return text

    def _log(self, result: RobotResult) -> None:
        if result.ok:
            logger.info("robot alert sent robot=%s kind=%s", self.name, self.kind)
            return
        log = logger.warning if result.temporary else logger.error
        log(
            "robot alert failed robot=%s kind=%s outcome=%s status=%s code=%s detail=%s",
            self.name,
            self.kind,
            result.outcome,
            result.status,
            result.code,
            result.detail,
        )


def _check_setup(
    name: str, kind: str, url: str, secret: str | None, timezone: str
) -> None:
    if kind not in ROBOT_KINDS:
        raise RobotSetupError(
            f"robot {name!r}: unknown kind {kind!r}; expected one of "
            f"{', '.join(ROBOT_KINDS)}"
        )
    # The URL carries the robot's key, so the messages never show it.
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise RobotSetupError(
            f"robot {name!r}: invalid webhook URL; expected http:// or https:// "
            "and a host"
        )
    if kind == "wecom" and secret:
        raise RobotSetupError(
            f"robot {name!r}: 企业微信 group robots do not sign requests; "
            "give no secret"
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise RobotSetupError(
            f"robot {name!r}: unknown time zone {timezone!r}; expected an IANA "
            "name such as Asia/Shanghai"
        ) from None


def _secret_parts(url: str, secret: str | None) -> tuple[str, ...]:
    """Return the strings that must not appear in details: URL, key, token, secret."""
    split = urlsplit(url)
    parts = [url, secret or "", split.path.rstrip("/").rpartition("/")[2]]
    for pair in split.query.split("&"):
        parts.append(pair.partition("=")[2])
    # Short parts such as "send" are path words, not keys.
    return tuple(sorted({p for p in parts if len(p) >= 8}, key=len, reverse=True))


def _read_answer(response: httpx.Response) -> tuple[int, str] | None:
    """Return a robot's (code, message), or None when the body has no code."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    # 企业微信 and 钉钉 return errcode/errmsg and 飞书 code/msg. Older 飞书
    # responses carried only StatusCode/StatusMessage.
    for code_key, message_key in (
        ("errcode", "errmsg"),
        ("code", "msg"),
        ("StatusCode", "StatusMessage"),
    ):
        code = body.get(code_key)
        if isinstance(code, int) and not isinstance(code, bool):
            message = body.get(message_key)
            return code, str(message or "")[:DETAIL_CHARS]
    return None


def _retry_after(response: httpx.Response, clock: Callable[[], float]) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(moment.timestamp() - clock(), 0.0)
