"""Replay of JSONL and CSV files: backfill, demos and tests.

Records become items through the field mapping of the source's config, so a
corpus loads without conversion code. A record that cannot be used is set
aside with its file and line, and the run goes on. The cursor is the number
of records already consumed, so an appended file resumes where it stopped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from collectors.base import Batch, CollectorError, RecordError, Rejected
from collectors.records import MAX_RECORD_BYTES, record_to_item
from config import Source
from items import Item

logger = logging.getLogger(__name__)

BATCH_SIZE = 500

# A CSV cell may be as large as a JSONL record (the csv module's default
# limit is 128 KiB).
csv.field_size_limit(min(sys.maxsize, MAX_RECORD_BYTES))


class ReplayCollector:
    """Read a JSONL or CSV file through a field mapping."""

    def __init__(
        self,
        source: Source,
        path: Path,
        default_timezone: str,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.name = source.name
        self.source = source
        self.path = path
        self.format = _detect_format(source.format, path)
        self.zone = ZoneInfo(source.timezone or default_timezone)
        self.batch_size = batch_size

    def estimate_total(self, cursor: str | None) -> int | None:
        try:
            with self.path.open("rb") as handle:
                lines = sum(
                    chunk.count(b"\n")
                    for chunk in iter(lambda: handle.read(1 << 20), b"")
                )
        except OSError:
            return None
        if self.format == "csv":
            lines -= 1
        if self.source.limit is not None:
            lines = min(lines, self.source.limit)
        return max(lines - _records_done(cursor), 0)

    def collect(self, cursor: str | None) -> Iterator[Batch]:
        identity, done = self._resume_point(cursor)
        records = self._records(skip=done)
        position = 0
        items: list[Item] = []
        rejected: list[Rejected] = []
        collected_at = datetime.now(UTC)

        for position, (location, record) in enumerate(records, start=1):
            if position <= done:
                continue
            if self.source.limit is not None and position > self.source.limit:
                position -= 1
                break
            try:
                if isinstance(record, RecordError):
                    raise record
                items.append(self._to_item(record, location, collected_at))
            except RecordError as exc:
                logger.warning(
                    "record rejected source=%s location=%s reason=%s",
                    self.name,
                    location,
                    exc,
                )
                rejected.append(Rejected(location, str(exc)))
            if len(items) + len(rejected) >= self.batch_size:
                yield Batch(items, _cursor(position, identity), rejected)
                items, rejected = [], []
                collected_at = datetime.now(UTC)

        if position < done:
            logger.warning(
                "replay file shorter than cursor, reading from the start "
                "source=%s records=%s cursor=%s",
                self.name,
                position,
                done,
            )
            yield from self.collect(None)
            return
        if items or rejected:
            yield Batch(items, _cursor(position, identity), rejected)

    def _resume_point(self, cursor: str | None) -> tuple[str, int]:
        """Return the file's identity and how many of its records are done."""
        if self.path.is_dir():
            raise CollectorError(
                f"source {self.name}: replay path is a folder: {self.path}"
            )
        if not self.path.is_file():
            raise CollectorError(
                f"source {self.name}: replay file not found: {self.path}"
            )
        identity = _file_identity(self.path)
        done = _records_done(cursor)
        if done and _cursor_identity(cursor) not in (None, identity):
            # The file was replaced (rotated, or rewritten by an export): read it
            # from the start. Records already stored are recognised by their ids.
            logger.warning(
                "replay file replaced, reading from the start source=%s path=%s",
                self.name,
                self.path,
            )
            done = 0
        return identity, done

    def _records(self, skip: int) -> Iterator[tuple[str, dict[str, Any] | RecordError]]:
        """Yield every record with its location; the first ``skip`` JSONL
        records are yielded as placeholders without being decoded again."""
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise CollectorError(
                f"source {self.name}: cannot open {self.path}: {exc}"
            ) from None
        with handle:
            if self.format == "jsonl":
                yield from self._jsonl_records(handle, skip)
            else:
                yield from self._csv_records(handle)

    def _jsonl_records(
        self, handle, skip: int
    ) -> Iterator[tuple[str, dict[str, Any] | RecordError]]:
        seen = 0
        for number, line in enumerate(handle, start=1):
            location = f"{self.path.name}:{number}"
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line.strip():
                continue
            seen += 1
            if seen <= skip:
                yield location, _SKIPPED
                continue
            if len(line) > MAX_RECORD_BYTES:
                yield (
                    location,
                    RecordError(f"record larger than {MAX_RECORD_BYTES} bytes"),
                )
                continue
            if not line.endswith(b"\n") and not _is_complete_json(
                line, self.source.encoding
            ):
                # A last line without its newline may still be being written,
                # perhaps cut inside a character: leave it, uncounted, for the
                # next run.
                logger.info(
                    "incomplete last line left for the next run source=%s location=%s",
                    self.name,
                    location,
                )
                return
            try:
                # NaN and Infinity are not JSON, and PostgreSQL rejects them in a
                # JSON column; Python's reader accepts them, so they become null.
                record = json.loads(
                    self._decode(line, location), parse_constant=_no_constant
                )
            except RecordError as exc:
                yield location, exc
                continue
            except json.JSONDecodeError as exc:
                yield (
                    location,
                    RecordError(f"invalid JSON: {exc.msg} (column {exc.colno})"),
                )
                continue
            except (RecursionError, ValueError) as exc:
                # Nesting too deep for the parser, or an integer of thousands
                # of digits (Python refuses to convert those).
                yield location, RecordError(f"invalid JSON: {type(exc).__name__}")
                continue
            if not isinstance(record, dict):
                yield (
                    location,
                    RecordError(f"expected a JSON object, got {type(record).__name__}"),
                )
                continue
            yield location, record

    def _csv_records(
        self, handle
    ) -> Iterator[tuple[str, dict[str, Any] | RecordError]]:
        undecodable: dict[int, str] = {}
        reader = csv.reader(self._csv_lines(handle, undecodable))
        try:
            header = [name.strip().lstrip("\ufeff") for name in next(reader)]
        except StopIteration:
            return
        except csv.Error as exc:
            raise CollectorError(
                f"source {self.name}: unreadable CSV header in {self.path}: {exc}"
            ) from None
        last_line = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row, error = None, RecordError(str(exc))
            else:
                error = None
            first_line, last_line = last_line + 1, reader.line_num
            location = f"{self.path.name}:{first_line}"
            bad = [
                undecodable.pop(n)
                for n in range(first_line, last_line + 1)
                if n in undecodable
            ]
            if error is None and bad:
                error = RecordError(bad[0])
            if error is None and row and len(row) != len(header):
                error = RecordError(f"expected {len(header)} columns, got {len(row)}")
            if error is not None:
                yield location, error
            elif row:
                yield location, dict(zip(header, row, strict=True))

    def _csv_lines(self, handle, undecodable: dict[int, str]) -> Iterator[str]:
        # csv.reader cannot skip a line it failed to read, so an undecodable
        # line is passed on with replacement characters and its number kept,
        # and the row that contains it is rejected afterwards.
        for number, line in enumerate(handle, start=1):
            try:
                text = self._decode(line, f"{self.path.name}:{number}")
            except RecordError as exc:
                undecodable[number] = str(exc)
                text = line.decode(self.source.encoding, errors="replace")
            yield text.replace("\x00", "")

    def _decode(self, line: bytes, location: str) -> str:
        try:
            return line.decode(self.source.encoding)
        except UnicodeDecodeError:
            pass
        # Chinese exports often mix GBK lines into a UTF-8 file; GB18030 is the
        # superset that reads them. Accept it only when the result has Chinese
        # text, since GB18030 also "decodes" arbitrary binary garbage.
        try:
            text = line.decode("gb18030")
        except UnicodeDecodeError:
            raise RecordError(f"invalid {self.source.encoding} text") from None
        if not any("\u4e00" <= ch <= "\u9fff" for ch in text):
            raise RecordError(f"invalid {self.source.encoding} text")
        logger.warning(
            "record decoded as GB18030 source=%s location=%s", self.name, location
        )
        return text

    def _to_item(
        self, record: dict[str, Any], location: str, collected_at: datetime
    ) -> Item:
        return record_to_item(record, self.source, self.zone, location, collected_at)


# Placeholder for a record before the cursor, which is counted, not read.
_SKIPPED: dict[str, Any] = {}


def _is_complete_json(line: bytes, encoding: str) -> bool:
    try:
        json.loads(line.decode(encoding))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        return False
    return True


def _no_constant(name: str) -> None:
    return None


def _detect_format(declared: str, path: Path) -> str:
    if declared != "auto":
        return declared
    return "csv" if path.suffix.lower() in (".csv", ".tsv") else "jsonl"


def _records_done(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(json.loads(cursor)["records"])
    except (ValueError, KeyError, TypeError):
        logger.warning("unreadable replay cursor, starting over cursor=%r", cursor[:80])
        return 0


def _cursor(records: int, identity: str | None = None) -> str:
    value: dict[str, Any] = {"records": records}
    if identity is not None:
        value["file"] = identity
    return json.dumps(value)


def _cursor_identity(cursor: str | None) -> str | None:
    try:
        return json.loads(cursor).get("file")
    except (ValueError, TypeError, AttributeError):
        return None


def _file_identity(path: Path) -> str:
    """Return an identity that differs for a file replaced under the same name.

    The inode alone is not enough, because a file system reuses the inode of a
    deleted file at once, so the hash of the first line is part of it: appending
    keeps both, replacing the file changes one or the other.
    """
    status = path.stat()
    with path.open("rb") as handle:
        first_line = handle.readline(4096)
    digest = hashlib.sha1(first_line).hexdigest()[:16]
    return f"{status.st_dev}:{status.st_ino}:{digest}"
