"""RSS and Atom feeds, RSSHub routes included, read with conditional GET.

The collector fetches each configured URL through the shared polite client
and hands the bytes to feedparser, which never fetches anything itself. The
cursor stores each URL's ETag and Last-Modified, so an unchanged feed costs
one 304. A feed that responds with an error status, an empty body, an HTML
page (a login wall or an error page) or text that does not decode cleanly
fails with the URL and the reason. The source's other URLs are read first,
and their items are kept.

Each entry's id comes from its link (Weibo, Zhihu, Bilibili and Xiaohongshu
post ids), so it is the same whichever RSSHub instance served it.
"""

from __future__ import annotations

import codecs
import email.utils
import html
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import feedparser

from collectors.base import (
    Batch,
    CollectorError,
    RecordError,
    Rejected,
    clean_raw,
    clean_text,
    parse_time,
)
from collectors.http import DeadlineExceeded, HttpClient, HttpRun, Response
from collectors.records import make_external_id
from config import Source
from items import Author, Item

logger = logging.getLogger(__name__)

BATCH_SIZE = 500

_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
    "text/xml;q=0.9, */*;q=0.5"
)
# Validators longer than this are not stored: no server needs one, and a
# hostile one would bloat every cursor.
MAX_VALIDATOR_CHARS = 512


class FeedError(CollectorError):
    """One feed URL that could not be read; the message names it and the reason."""


class FeedCollector:
    """Read the RSS and Atom feeds of one source."""

    def __init__(
        self,
        source: Source,
        client: HttpClient,
        default_timezone: str,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if source.feed is None:
            raise CollectorError(f"source {source.name}: missing the feed section")
        self.name = source.name
        self.source = source
        self.urls = source.feed.urls
        self.client = client
        self.zone = ZoneInfo(source.timezone or default_timezone)
        self.batch_size = batch_size

    def estimate_total(self, cursor: str | None) -> int | None:
        return None

    def collect(self, cursor: str | None) -> Iterator[Batch]:
        """Yield each changed feed's entries, with the validators in the cursor.

        Raises FeedError after the last URL when any URL failed, and
        DeadlineExceeded at once when the run's deadline passes.
        """
        validators = self._load_cursor(cursor)
        run = self.client.start_run(self.name)
        seen: set[str] = set()
        failures: list[str] = []
        remaining = self.source.limit
        for url in self.urls:
            if remaining is not None and remaining <= 0:
                break
            try:
                fetched = self._fetch(run, url, validators.get(url, {}))
            except DeadlineExceeded:
                raise
            except CollectorError as exc:
                logger.warning(
                    "feed failed, reading the others source=%s url=%s error=%s",
                    self.name,
                    url,
                    exc,
                )
                failures.append(str(exc))
                continue
            if fetched is None:
                logger.info("feed not modified source=%s url=%s", self.name, url)
                continue

            response, parsed = fetched
            items, rejected = self._entries(url, parsed, seen, remaining)
            if remaining is not None:
                remaining -= len(items)
            before = _cursor(validators)
            validators.pop(url, None)
            if stored := _validators(response):
                validators[url] = stored
            yield from self._batches(items, rejected, before, _cursor(validators))

        if failures:
            raise FeedError("; ".join(failures))

    def _load_cursor(self, cursor: str | None) -> dict[str, dict[str, str]]:
        """Return the stored validators of the configured URLs."""
        if not cursor:
            return {}
        try:
            stored = json.loads(cursor)["feeds"]
        except (ValueError, KeyError, TypeError):
            logger.warning(
                "unreadable feed cursor, fetching in full source=%s", self.name
            )
            return {}
        if not isinstance(stored, dict):
            return {}
        return {
            url: value
            for url, value in stored.items()
            if url in self.urls and isinstance(value, dict)
        }

    def _fetch(
        self, run: HttpRun, url: str, validators: dict[str, str]
    ) -> tuple[Response, feedparser.FeedParserDict] | None:
        """Fetch and parse one feed; return None when the server reports no change."""
        headers = {"Accept": _ACCEPT}
        if isinstance(validators.get("etag"), str):
            headers["If-None-Match"] = validators["etag"]
        if isinstance(validators.get("last_modified"), str):
            headers["If-Modified-Since"] = validators["last_modified"]
        response = run.get(url, headers=headers)
        if response.status_code == 304:
            return None

        try:
            _check_response(response)
            decoded = decode_document(response.content, response.charset)
            parsed = _parse(decoded.text, response)
            _check_entries(parsed)
        except ValueError as exc:
            raise FeedError(f"source {self.name}: feed {url} failed: {exc}") from None
        if decoded.guessed:
            logger.warning(
                "feed charset guessed source=%s url=%s encoding=%s",
                self.name,
                url,
                decoded.encoding,
            )
        return response, parsed

    def _entries(
        self,
        url: str,
        parsed: feedparser.FeedParserDict,
        seen: set[str],
        limit: int | None,
    ) -> tuple[list[Item], list[Rejected]]:
        """Turn a feed's entries into items, skipping ids seen earlier in the run."""
        collected_at = datetime.now(UTC)
        items: list[Item] = []
        rejected: list[Rejected] = []
        for number, entry in enumerate(parsed.entries, start=1):
            location = f"{url} entry {number}"
            try:
                # A plain dict: FeedParserDict maps a missing "updated" to
                # "published" with a DeprecationWarning, and the times are
                # read here with their own fallback.
                item = self._entry_to_item(dict(entry), location, collected_at)
            except RecordError as exc:
                logger.warning(
                    "entry rejected source=%s location=%s reason=%s",
                    self.name,
                    location,
                    exc,
                )
                rejected.append(Rejected(location, str(exc)))
                continue
            if item.external_id in seen:
                logger.debug(
                    "entry repeated source=%s id=%s", self.name, item.external_id
                )
                continue
            seen.add(item.external_id)
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
        return items, rejected

    def _entry_to_item(
        self, entry: dict[str, Any], location: str, collected_at: datetime
    ) -> Item:
        link = _text(entry.get("link"))
        guid = _text(entry.get("id"))
        identity = identify_link(link) or identify_link(guid)
        platform = identity.platform if identity else self.source.platform

        body = _entry_body(entry)
        if _has_replacement(entry):
            raise RecordError(
                "the entry contains replacement characters (U+FFFD), text that "
                "the feed's server decoded with the wrong encoding"
            )
        plain = plain_text(body)
        title = clean_title(_text(entry.get("title")), plain)
        text = clean_text(body).strip() or title or ""
        if not text:
            raise RecordError("entry has no text and no title")
        if not plain:
            title = None

        raw = _entry_raw(entry, location, identity)
        if platform == "weibo" and is_weibo_truncated(plain):
            raw["truncated"] = True
        created_at = entry_time(entry, self.zone)
        estimated = created_at is None
        if created_at is None:
            created_at = collected_at

        return Item(
            source=self.name,
            platform=platform[:40],
            external_id=_external_id(identity, guid, link, text),
            text=text,
            collected_at=collected_at,
            created_at=created_at,
            title=title,
            url=link or None,
            lang=self.source.lang,
            author=Author(
                name=_text(entry.get("author")) or None,
                id=identity.author_id if identity else None,
            ),
            raw=raw,
            location=location,
            time_estimated=estimated,
            native=identity is not None,
        )

    def _batches(
        self, items: list[Item], rejected: list[Rejected], before: str, after: str
    ) -> Iterator[Batch]:
        """Yield one feed's items in batches; only the last carries its validators.

        A run stopped between two batches of a feed therefore fetches that
        feed in full next time. A feed without entries still yields one empty
        batch, so that its validators are stored.
        """
        for start in range(0, max(len(items), 1), self.batch_size):
            last = start + self.batch_size >= len(items)
            yield Batch(
                items[start : start + self.batch_size],
                after if last else before,
                rejected if last else [],
            )


def _cursor(validators: dict[str, dict[str, str]]) -> str:
    return json.dumps({"feeds": validators}, ensure_ascii=False)


def _check_response(response: Response) -> None:
    """Raise ValueError for a response that cannot be a feed."""
    status = response.status_code
    if status == 403:
        raise ValueError(
            "HTTP 403 Forbidden: the server rejects this client, because it is "
            "blocked or the route needs a login or a key"
        )
    if not 200 <= status <= 299:
        raise ValueError(f"HTTP {status}")
    if not response.content.strip():
        raise ValueError(f"HTTP {status} with an empty body")


_XML_DECLARATION = re.compile(
    rb"^\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']"
)
_META_CHARSET = re.compile(
    rb"<meta\b[^>]{0,300}?charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE
)
# Servers often send ISO-8859-1 by default whatever the document is, and
# those single-byte codecs decode any bytes without a replacement character,
# so a header naming one is ignored when the body is valid UTF-8.
_SINGLE_BYTE_DEFAULTS = ("latin-1", "iso8859-1", "cp1252", "ascii")


class Decoded(NamedTuple):
    """A decoded document, the codec used, and whether it was a guess."""

    text: str
    encoding: str
    guessed: bool = False


def decode_document(content: bytes, header_charset: str | None) -> Decoded:
    """Decode a feed's bytes, or raise ValueError when they do not decode cleanly.

    A byte order mark wins, then the HTTP header's charset, the XML
    declaration, and a ``<meta charset>``. GB2312 and GBK are read as their
    superset GB18030. Undeclared bytes are read as UTF-8, or as GB18030 when
    they are not UTF-8 and decode to Chinese text.
    """
    for mark, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if content.startswith(mark):
            return _decode_strictly(content, codec, "byte order mark")

    declarations = [
        ("HTTP header", header_charset),
        ("XML declaration", _first_group(_XML_DECLARATION, content[:512])),
        ("meta charset", _first_group(_META_CHARSET, content[:4096])),
    ]
    for where, declared in declarations:
        if not declared:
            continue
        codec = _codec(declared, where)
        if where == "HTTP header" and codec in _SINGLE_BYTE_DEFAULTS:
            if _is_utf8(content) and not content.isascii():
                continue
        return _decode_strictly(content, codec, f"{where} {declared!r}")
    return _decode_undeclared(content)


def _first_group(pattern: re.Pattern, content: bytes) -> str | None:
    match = pattern.search(content)
    return match.group(1).decode("ascii") if match else None


def _codec(declared: str, where: str) -> str:
    try:
        codec = codecs.lookup(declared.strip()).name
    except LookupError:
        raise ValueError(f"unknown charset {declared!r} in the {where}") from None
    return "gb18030" if codec in ("gb2312", "gbk") else codec


def _decode_strictly(
    content: bytes, codec: str, declared_by: str, guessed: bool = False
) -> Decoded:
    """Decode, or raise ValueError for bytes that are not valid in ``codec``.

    Replacement characters (U+FFFD) written in the document itself are the
    server's own decoding error; :func:`_check_entries` deals with them.
    """
    try:
        text = content.decode(codec)
    except UnicodeDecodeError:
        raise ValueError(
            f"the text does not decode as {codec} (chosen by the {declared_by}): "
            "it would be stored as mojibake, with replacement characters (U+FFFD); "
            "check the feed's encoding"
        ) from None
    return Decoded(text, codec, guessed)


def _is_utf8(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode_undeclared(content: bytes) -> Decoded:
    if _is_utf8(content):
        return _decode_strictly(content, "utf-8", "XML default")
    # GB18030 also "decodes" many byte strings that are not Chinese text, so
    # it is accepted only when the result contains Chinese characters.
    try:
        text = content.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return _decode_strictly(content, "gb18030", "Chinese text guess", True)
    raise ValueError(
        "the text declares no charset and is neither UTF-8 nor GB18030 Chinese "
        "text; check the feed's encoding"
    )


_XML_DECLARATION_TEXT = re.compile(
    r"^(\s*<\?xml[^>]{0,200}?encoding\s*=\s*)([\"'])[^\"']*\2"
)
_HTML_START = re.compile(r"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I)
_HTML_TITLE = re.compile(r"<title[^>]*>(.{0,200}?)</title>", re.IGNORECASE | re.DOTALL)


def _parse(text: str, response: Response) -> feedparser.FeedParserDict:
    """Parse decoded feed text; raise ValueError when it is not a feed."""
    # The text is handed over as UTF-8 bytes in a stream: given a string,
    # feedparser may treat it as a URL or a file name and open it.
    text = _CHARACTER_REFERENCE.sub(_no_surrogate, text)
    utf8 = _XML_DECLARATION_TEXT.sub(r'\1"utf-8"', text, count=1).encode("utf-8")
    parsed = feedparser.parse(
        io.BytesIO(utf8),
        response_headers={
            "content-type": "application/xml; charset=utf-8",
            "content-location": response.url,
        },
    )
    if not parsed.get("version"):
        raise ValueError(_not_a_feed(text, response.content_type))
    if parsed.get("bozo"):
        logger.debug(
            "feed parsed with errors url=%s error=%s",
            response.url,
            parsed.get("bozo_exception"),
        )
    return parsed


# A numeric character reference such as &#xD800; names a lone surrogate,
# which feedparser cannot encode: the whole feed would fail on one entry.
_CHARACTER_REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")


def _no_surrogate(match: re.Match) -> str:
    code = int(match.group(1), 16) if match.group(1) else int(match.group(2))
    return "&#xFFFD;" if 0xD800 <= code <= 0xDFFF else match.group(0)


def _check_entries(parsed: feedparser.FeedParserDict) -> None:
    """Raise ValueError when every entry carries replacement characters (U+FFFD).

    The feed's server then decoded its posts with the wrong encoding, and
    the fetch fails. When only some entries carry them, those are set aside
    one by one and the others are stored.
    """
    entries = parsed.entries
    broken = sum(_has_replacement(dict(entry)) for entry in entries)
    if entries and broken == len(entries):
        raise ValueError(
            "every entry contains replacement characters (U+FFFD): the feed's "
            "server decoded its posts with the wrong encoding, and they would be "
            "stored as mojibake; check the feed"
        )


def _has_replacement(entry: dict[str, Any]) -> bool:
    return "\ufffd" in _entry_body(entry) or "\ufffd" in _text(entry.get("title"))


def _not_a_feed(text: str, content_type: str) -> str:
    if "html" in content_type or _HTML_START.match(text[:4096]):
        title = _HTML_TITLE.search(text[:65536])
        shown = plain_text(title.group(1))[:80] if title else ""
        return (
            f"expected an RSS or Atom feed, got an HTML page titled {shown!r} "
            "(a login wall or an error page)"
        )
    return (
        f"expected an RSS or Atom feed, got {content_type or 'a document'} "
        "that is neither"
    )


def _validators(response: Response) -> dict[str, str]:
    stored = {}
    for header, key in (("etag", "etag"), ("last-modified", "last_modified")):
        value = response.headers.get(header)
        # Sent back as a header later, so only printable ASCII is kept.
        if (
            value
            and len(value) <= MAX_VALIDATOR_CHARS
            and value.isascii()
            and value.isprintable()
        ):
            stored[key] = value
    return stored


def _text(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return clean_text(value).strip()


def _entry_body(entry: dict[str, Any]) -> str:
    """Return the fullest text of an entry: content, else summary ("" when none)."""
    for content in entry.get("content") or ():
        value = content.get("value") if isinstance(content, dict) else None
        if isinstance(value, str) and value.strip():
            return value
    summary = entry.get("summary")
    return summary if isinstance(summary, str) else ""


_TAG = re.compile(r"<[^<>]{0,2000}>")
_SPACES = re.compile(r"\s+")


def plain_text(markup: str) -> str:
    """Return the text of an HTML fragment with its whitespace collapsed.

    Only for comparisons and marks: items keep the feed's HTML, which the
    nlp stage strips with its own rules.
    """
    text = html.unescape(_TAG.sub(" ", markup))
    return _SPACES.sub(" ", clean_text(text)).strip()


_ELLIPSIS = re.compile(r"(?:…|\.{3})\s*$")


def clean_title(title: str, plain_body: str) -> str | None:
    """Return the entry title with whitespace collapsed, or None when it only
    repeats the start of the body, as RSSHub's Weibo and Xiaohongshu titles do.
    """
    title = _SPACES.sub(" ", title).strip()
    if not title:
        return None
    head = _ELLIPSIS.sub("", title).strip()
    if head and plain_body.startswith(head):
        return None
    return title


_WEIBO_TRUNCATED = re.compile(r"(?:(?:…|\.{3})\s*全文|展开全文)\s*[>》]?\s*$")


def is_weibo_truncated(plain_body: str) -> bool:
    """Tell whether a Weibo post's text ends at the "…全文" cut of long posts."""
    return bool(_WEIBO_TRUNCATED.search(plain_body[-32:]))


def entry_time(entry: dict[str, Any], zone: ZoneInfo) -> datetime | None:
    """Return the entry's published (else updated) time in UTC, or None.

    feedparser's own parsed times read a time without a zone as UTC, so the
    strings are parsed here: RFC 822 dates, ISO 8601 and the formats of
    :func:`~collectors.base.parse_time`, naive ones in ``zone``.
    """
    for key in ("published", "updated"):
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        parsed = _rfc822_time(value, zone) or parse_time(value, zone)
        if parsed is not None:
            return parsed
    return None


def _rfc822_time(value: str, zone: ZoneInfo) -> datetime | None:
    value = value.strip()
    # Chinese sites write CST for China Standard Time, which the email module
    # reads as US Central time, so CST is read as the source's zone instead.
    local = value.endswith(" CST")
    try:
        parsed = email.utils.parsedate_to_datetime(value.removesuffix(" CST"))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        # "-0000" means UTC with no local offset known; no zone at all means
        # the source's local time.
        utc = value.endswith("-0000") and not local
        parsed = parsed.replace(tzinfo=UTC if utc else zone)
    return parse_time(parsed.isoformat(), zone)


def _external_id(identity: PostIdentity | None, guid: str, link: str, text: str) -> str:
    if identity is not None:
        return identity.external_id
    return make_external_id(guid or link or None, False, text)


def _entry_raw(
    entry: dict[str, Any], location: str, identity: PostIdentity | None
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        key: entry.get(key)
        for key in ("id", "link", "title", "published", "updated", "author")
        if isinstance(entry.get(key), str)
    }
    tags = [tag.get("term") for tag in entry.get("tags") or () if isinstance(tag, dict)]
    if tags:
        raw["tags"] = [tag for tag in tags if isinstance(tag, str)]
    raw["feed_entry"] = location
    if identity is not None:
        raw["native_id"] = identity.native_id
    return clean_raw(raw)


@dataclass(frozen=True, slots=True)
class PostIdentity:
    """A post's platform and native id, read from its link.

    ``native_id`` carries the kind of post where a platform has several
    (``answer:123`` on Zhihu, ``video:BV1...`` on Bilibili).
    """

    platform: str
    native_id: str
    author_id: str | None = None

    @property
    def external_id(self) -> str:
        return f"{self.platform}:{self.native_id}"


_DIGITS = re.compile(r"^[0-9]{1,25}$")
# A base62 Weibo id of a 16- or 17-digit mid has 9 or 10 characters, and 8 for
# the oldest posts. Shorter words in that position are pages, not posts.
_WEIBO_BID = re.compile(r"^[0-9A-Za-z]{8,10}$")
_BILIBILI_VIDEO = re.compile(r"^(?:[Bb][Vv][0-9A-Za-z]{10}|[Aa][Vv][0-9]{1,20})$")
_XHS_NOTE = re.compile(r"^[0-9a-f]{24}$")
_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def identify_link(url: str) -> PostIdentity | None:
    """Return the identity a post link gives, or None for any other URL."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    host = host.removeprefix("www.")
    segments = [segment for segment in parts.path.split("/") if segment]
    for suffixes, reader in _PLATFORM_READERS:
        if any(host == s or host.endswith("." + s) for s in suffixes):
            return reader(host, segments)
    return None


def _weibo(host: str, segments: list[str]) -> PostIdentity | None:
    """Read weibo.com/UID/BID, weibo.com/UID/MID and m.weibo.cn/status/ID."""
    if len(segments) < 2:
        return None
    first, second = segments[0], segments[1]
    author_id = None
    if first in ("status", "detail", "statuses"):
        post = second
    elif _DIGITS.match(first):
        author_id, post = first, second
    else:
        return None
    mid = post if _DIGITS.match(post) else weibo_bid_to_mid(post)
    if mid is None:
        return None
    return PostIdentity("weibo", mid, author_id)


def weibo_bid_to_mid(bid: str) -> str | None:
    """Convert a Weibo base62 post id (as in links) to its numeric mid.

    The mid's decimal digits form groups of seven from the right, and each
    group is written as four base62 characters. Every group but the first is
    zero-padded to seven digits.
    """
    if not _WEIBO_BID.match(bid):
        return None
    groups = []
    end = len(bid)
    while end > 0:
        start = max(end - 4, 0)
        number = 0
        for char in bid[start:end]:
            number = number * 62 + _BASE62.index(char)
        groups.append(str(number) if start == 0 else f"{number:07d}")
        end = start
    mid = "".join(reversed(groups)).lstrip("0")
    return mid or None


def _zhihu(host: str, segments: list[str]) -> PostIdentity | None:
    """Read Zhihu answer, question, article and pin links."""
    if host == "zhuanlan.zhihu.com" and len(segments) >= 2 and segments[0] == "p":
        kind, number = "article", segments[1]
    elif "answer" in segments[:-1]:
        kind, number = "answer", segments[segments.index("answer") + 1]
    elif len(segments) >= 2 and segments[0] in ("question", "pin"):
        kind, number = segments[0], segments[1]
    else:
        return None
    if not _DIGITS.match(number):
        return None
    return PostIdentity("zhihu", f"{kind}:{number}")


def _bilibili(host: str, segments: list[str]) -> PostIdentity | None:
    """Read Bilibili video, dynamic (opus) and article links."""
    if host == "t.bilibili.com" and segments and _DIGITS.match(segments[0]):
        return PostIdentity("bilibili", f"dynamic:{segments[0]}")
    if len(segments) < 2:
        return None
    kind, value = segments[0], segments[1]
    if kind == "video" and _BILIBILI_VIDEO.match(value):
        # BV ids are case-sensitive after their prefix; av ids are numbers.
        prefix = "BV" if value[:2].lower() == "bv" else "av"
        return PostIdentity("bilibili", f"video:{prefix}{value[2:]}")
    if kind in ("opus", "dynamic") and _DIGITS.match(value):
        return PostIdentity("bilibili", f"dynamic:{value}")
    if kind == "read" and re.match(r"^cv[0-9]{1,20}$", value, re.IGNORECASE):
        return PostIdentity("bilibili", f"article:{value.lower()}")
    return None


def _xiaohongshu(host: str, segments: list[str]) -> PostIdentity | None:
    """Read Xiaohongshu note links (explore, discovery and profile forms)."""
    candidates = []
    if len(segments) >= 2 and segments[0] == "explore":
        candidates.append(segments[1])
    if len(segments) >= 3 and segments[:2] == ["discovery", "item"]:
        candidates.append(segments[2])
    if len(segments) >= 4 and segments[:2] == ["user", "profile"]:
        candidates.append(segments[3])
    for note in candidates:
        if _XHS_NOTE.match(note):
            return PostIdentity("xiaohongshu", f"note:{note}")
    return None


_PLATFORM_READERS = (
    (("weibo.com", "weibo.cn"), _weibo),
    (("zhihu.com",), _zhihu),
    (("bilibili.com",), _bilibili),
    (("xiaohongshu.com",), _xiaohongshu),
)
