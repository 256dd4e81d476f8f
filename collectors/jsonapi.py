"""Generic JSON HTTP APIs, read through the source's field mapping.

Each run reads from the first page, up to ``pagination.max_pages`` pages, in
one of the styles of :class:`config.Pagination`. Posts already stored are
recognised by their ids. A record that cannot be used is set aside with its
page and position, and the run goes on. An error status or a body that is not
JSON fails the run with the URL and the reason, keeping the pages before it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from collectors.base import Batch, CollectorError, RecordError, Rejected, clean_text
from collectors.http import HttpClient, HttpRun, Response
from collectors.records import MAX_RECORD_BYTES, lookup, record_to_item
from config import JsonOptions, Source
from items import Item

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass(slots=True)
class _Page:
    """Paging state: pages and records read, and the next and last cursor values."""

    number: int = 0
    records_read: int = 0
    next_value: str | None = None
    sent_value: str | None = None


class JsonCollector:
    """Read one JSON API page by page and map its records to items."""

    def __init__(
        self,
        source: Source,
        client: HttpClient,
        default_timezone: str,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if source.json is None:
            raise CollectorError(f"source {source.name}: missing the json section")
        self.name = source.name
        self.source = source
        self.options: JsonOptions = source.json
        self.client = client
        self.zone = ZoneInfo(source.timezone or default_timezone)
        self.batch_size = batch_size
        pagination = self.options.pagination
        if pagination.style == "cursor" and not pagination.next_field:
            raise CollectorError(
                f"source {self.name}: json.pagination.next_field is missing; the "
                "cursor style needs the dotted path of the next-page value"
            )

    def estimate_total(self, cursor: str | None) -> int | None:
        return None

    def collect(self, cursor: str | None) -> Iterator[Batch]:
        """Yield one batch per page until the last page or ``max_pages``."""
        headers = self.request_headers()
        run = self.client.start_run(self.name)
        pagination = self.options.pagination
        page = _Page()
        remaining = self.source.limit
        while page.number < pagination.max_pages:
            params = self._params(page)
            location = f"{self.options.url} page {page.number + 1}"
            data = self._fetch(run, params, headers, location)
            records = self._records(data, location)
            items, rejected = self._map(records[:remaining], location)
            if remaining is not None:
                remaining -= len(items)

            page.number += 1
            page.records_read += len(records)
            page.sent_value = page.next_value
            page.next_value = self._next_value(data)
            yield Batch(items, json.dumps({"pages": page.number}), rejected)
            if self._last_page(records, page, remaining):
                return
        logger.info(
            "json page limit reached source=%s max_pages=%s",
            self.name,
            pagination.max_pages,
        )

    def request_headers(self) -> dict[str, str]:
        """Return the configured headers with the values read from the environment."""
        headers = dict(self.options.headers)
        for header, variable in self.options.headers_env.items():
            value = os.environ.get(variable)
            if not value:
                raise CollectorError(
                    f"source {self.name}: environment variable {variable} is not "
                    f"set; it holds the value of the {header} header"
                )
            headers[header] = value
        for header, value in headers.items():
            if "\r" in value or "\n" in value:
                raise CollectorError(
                    f"source {self.name}: the value of the {header} header contains "
                    "a line break; remove it"
                )
        return headers

    def _params(self, page: _Page) -> dict[str, str]:
        pagination = self.options.pagination
        params = dict(self.options.params)
        if pagination.size_param and pagination.size:
            params[pagination.size_param] = str(pagination.size)
        if pagination.style == "page":
            params[pagination.param] = str(pagination.start + page.number)
        elif pagination.style == "offset":
            params[pagination.param] = str(page.records_read)
        elif pagination.style == "cursor" and page.next_value is not None:
            params[pagination.param] = page.next_value
        return params

    def _fetch(
        self,
        run: HttpRun,
        params: dict[str, str],
        headers: dict[str, str],
        location: str,
    ) -> Any:
        response = run.get(self.options.url, params=params, headers=headers)
        if not 200 <= response.status_code <= 299:
            raise CollectorError(
                f"source {self.name}: GET {location} failed: HTTP "
                f"{response.status_code}{_excerpt(response)}"
            )
        try:
            # NaN and Infinity are not JSON; Python's reader accepts them, and
            # they become null as in the replay collector.
            return json.loads(response.content, parse_constant=_no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else exc
            raise CollectorError(
                f"source {self.name}: GET {location} failed: the response is not "
                f"JSON (content type {response.content_type or 'missing'}): {reason}"
            ) from None
        except ValueError as exc:
            raise CollectorError(
                f"source {self.name}: GET {location} failed: the response is not "
                f"usable JSON: {type(exc).__name__}"
            ) from None

    def _records(self, data: Any, location: str) -> list[Any]:
        path = self.options.items
        records = data if not path else None
        if path and isinstance(data, dict):
            records = lookup(data, path)
        if not isinstance(records, list):
            where = f"at {path!r}" if path else "at the top level"
            raise CollectorError(
                f"source {self.name}: GET {location} failed: expected a list of "
                f"records {where}, got {_describe(records)}; check json.items"
            )
        return records

    def _map(
        self, records: list[Any], location: str
    ) -> tuple[list[Item], list[Rejected]]:
        collected_at = datetime.now(UTC)
        items: list[Item] = []
        rejected: list[Rejected] = []
        for index, record in enumerate(records, start=1):
            record_location = f"{location} record {index}"
            try:
                items.append(self._to_item(record, record_location, collected_at))
            except RecordError as exc:
                logger.warning(
                    "record rejected source=%s location=%s reason=%s",
                    self.name,
                    record_location,
                    exc,
                )
                rejected.append(Rejected(record_location, str(exc)))
        return items, rejected

    def _to_item(self, record: Any, location: str, collected_at: datetime) -> Item:
        if not isinstance(record, dict):
            raise RecordError(f"expected a JSON object, got {_describe(record)}")
        size = len(json.dumps(record, ensure_ascii=False).encode("utf-8", "replace"))
        if size > MAX_RECORD_BYTES:
            raise RecordError(f"record larger than {MAX_RECORD_BYTES} bytes")
        item = record_to_item(record, self.source, self.zone, location, collected_at)
        # An unmapped id can be a hash of the text, which no other source would
        # give, and an id names one post only on a known platform.
        item.native = "id" in self.source.fields and item.platform != "unknown"
        return item

    def _next_value(self, data: Any) -> str | None:
        field = self.options.pagination.next_field
        if not field or not isinstance(data, dict):
            return None
        value = lookup(data, field)
        if value is None or isinstance(value, (bool, dict, list)) or value == "":
            return None
        return clean_text(str(value))

    def _last_page(
        self, records: list[Any], page: _Page, remaining: int | None
    ) -> bool:
        pagination = self.options.pagination
        if pagination.style == "none" or not records:
            return True
        if remaining is not None and remaining <= 0:
            return True
        if pagination.style == "cursor":
            # A server that returns the value it was sent would loop forever.
            return page.next_value is None or page.next_value == page.sent_value
        return pagination.size is not None and len(records) < pagination.size


def _no_constant(name: str) -> None:
    return None


def _excerpt(response: Response) -> str:
    """Return the start of an error body for the message ("" when empty)."""
    text = clean_text(response.content[:300].decode("utf-8", "replace")).strip()
    text = " ".join(text.split())[:200]
    return f": {text}" if text else ""


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
