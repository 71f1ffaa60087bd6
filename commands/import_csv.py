"""Reading an import CSV: BOM, header, physical line numbers, invalid UTF-8."""
from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, order=True)
class Problem:
    """One bad cell (or row, or header) of an import file."""

    line: int
    column: str
    reason: str

    def format(self, file: str) -> str:
        return f"{file}:{self.line}: {self.column}: {self.reason}"


@dataclass(frozen=True)
class Record:
    """One CSV record: the physical line it starts on and its raw values by column."""

    line: int
    values: dict[str, str]
    #: Columns already reported while reading (e.g. invalid UTF-8): not checked again.
    reported: frozenset[str] = frozenset()


@dataclass
class CsvFile:
    """The records that have the header's shape, and what was wrong with the rest."""

    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _has_bad_bytes(value: str) -> bool:
    # surrogateescape turns each undecodable byte into a lone surrogate U+DC80..U+DCFF.
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def read_csv(path: Path, *, columns: tuple[str, ...]) -> CsvFile:
    """Parse `path` against the expected `columns`, reporting every problem found."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
        suspicious = "\x00" in text
    except UnicodeDecodeError:
        # Keep going so that every bad line is reported, not just the first.
        text = data.decode("utf-8", "surrogateescape")
        suspicious = True

    result = CsvFile()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        result.problems.append(Problem(1, "header", f"not valid CSV: {exc}"))
        return result
    if header is None or header == []:
        result.problems.append(Problem(1, "header", f"missing; expected {','.join(columns)}"))
        return result
    if not _header_ok(header, columns, result.problems):
        return result

    width = len(header)
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The quoting is broken from here on; nothing after it can be trusted.
            result.problems.append(Problem(line, "row", f"not valid CSV: {exc}"))
            break
        start, line = line, reader.line_num + 1
        if not row:
            continue  # a blank line
        if len(row) != width:
            column = header[len(row)] if len(row) < width else "row"
            result.problems.append(Problem(start, column, f"has {len(row)} values, the header has {width} columns"))
            continue
        values = dict(zip(header, row))
        reported: set[str] = set()
        if suspicious:
            for name, value in values.items():
                if _has_bad_bytes(value):
                    result.problems.append(Problem(start, name, "invalid UTF-8"))
                    reported.add(name)
                elif "\x00" in value:
                    result.problems.append(Problem(start, name, "contains a NUL character"))
                    reported.add(name)
        result.records.append(Record(start, values, frozenset(reported)))
    return result


def _header_ok(header: list[str], columns: tuple[str, ...], problems: list[Problem]) -> bool:
    seen: set[str] = set()
    for name in header:
        if _has_bad_bytes(name):
            problems.append(Problem(1, "header", "invalid UTF-8"))
        elif name in seen:
            problems.append(Problem(1, name, "duplicate column"))
        elif name not in columns:
            problems.append(Problem(1, name, f"unknown column; expected {','.join(columns)}"))
        seen.add(name)
    for name in columns:
        if name not in seen:
            problems.append(Problem(1, name, "missing column"))
    return not problems
