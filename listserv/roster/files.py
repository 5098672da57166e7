# SPDX-License-Identifier: Apache-2.0
"""Roster files in: the four shapes an operator's import comes in, read line by line.

The shape is detected from the lines (or named with `--format`):

- `csv`: address, name, title; a header row is optional and, when present,
  names the columns (`email`, `full name`, `first name` + `last name`, …);
- `plain`: one address per line, optionally followed by a name;
- `listserv`: the output of LISTSERV's `REVIEW` (`jane.doe@AGENCY.GOV   Jane
  Doe`), whose `*` header lines and `Total number of …` footer are skipped;
- `mailman`: Mailman's `list_members -f` / `mailman members` output
  (`Jane Doe <jane@agency.gov>` or bare addresses).

Nothing is decided here: `plan.py` judges every record.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

FORMATS = ("csv", "plain", "listserv", "mailman")

_ADDRESS_HEADERS = {"address", "email", "e-mail", "email address", "email_address", "mail"}
_NAME_HEADERS = {"name", "full name", "full_name", "fullname", "display name", "display_name"}
_FIRST_HEADERS = {"first name", "first_name", "firstname", "given name"}
_LAST_HEADERS = {"last name", "last_name", "lastname", "surname", "family name"}
_TITLE_HEADERS = {"title", "job title", "job_title", "position"}
_ROLE_HEADERS = {"role"}

# LISTSERV REVIEW framing: "* SM-COP ..." header lines and the totals footer.
_LISTSERV_FRAME = re.compile(r"^\s*(\*|Total number of\b|>\s*review\b)", re.IGNORECASE)
# Mailman: `Jane Doe <jane@agency.gov>` or `"Doe, Jane" <jane@agency.gov>`.
_MAILMAN_LINE = re.compile(
    r'^\s*(?:"(?:[^"\\]|\\.)*"|[^<>",]*?)\s*<[^<>\s@]+@[^<>\s]+>\s*$', re.IGNORECASE
)


class RosterFileError(ValueError):
    """A file that cannot be read as a roster at all (the message says why)."""


@dataclass(slots=True)
class Entry:
    """One record of an import file: where it was, and what it says."""

    line: int
    text: str
    address: str
    name: str = ""
    title: str = ""
    role: str = ""


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252 as spreadsheets write it."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def detect_format(lines: Sequence[str]) -> str:
    """Guess the file's shape from its first meaningful lines."""
    sample = [ln for ln in lines[:1000] if ln.strip() and not ln.lstrip().startswith("#")]
    if not sample:
        return "plain"
    if any(_LISTSERV_FRAME.match(ln) for ln in sample):
        return "listserv"
    angled = sum(1 for ln in sample if _MAILMAN_LINE.match(ln))
    if angled and all(_MAILMAN_LINE.match(ln) or len(ln.split()) == 1 for ln in sample):
        return "mailman"
    first = sample[0]
    if any(d in first for d in (",", "\t", ";")):
        return "csv"
    if _is_header(_split_cells(first)):
        return "csv"
    return "plain"


def _split_cells(line: str) -> list[str]:
    delimiter = _delimiter(line)
    return next(csv.reader([line], delimiter=delimiter), [])


def _delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _is_header(cells: Sequence[str]) -> bool:
    names = {c.strip().lower() for c in cells}
    return not any("@" in c for c in cells) and bool(names & (_ADDRESS_HEADERS | _NAME_HEADERS))


def _split_name_address(cell: str) -> tuple[str, str]:
    """(name, address) from `Jane Doe <jane@x.gov>`, `mailto:jane@x.gov` or a bare address."""
    text = cell.strip()
    if "<" in text and ">" in text:
        name, address = parseaddr(text)
        return name.strip(), address.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return "", text.strip().strip("<>").rstrip(",;")


@dataclass(frozen=True)
class _CsvLayout:
    start: int  # index of the first data row
    delimiter: str
    columns: dict[str, int]
    first_last: tuple[int, int] | None = None
    role: int | None = None


def _csv_layout(lines: Sequence[str]) -> _CsvLayout | None:
    """Where the data starts and which column holds what (None: no rows at all)."""
    start = next((i for i, ln in enumerate(lines) if ln.strip()), len(lines))
    if start == len(lines):
        return None
    delimiter = _delimiter(lines[start])
    cells = next(csv.reader([lines[start]], delimiter=delimiter), [])
    if not _is_header(cells):
        return _CsvLayout(start, delimiter, {"address": 0, "name": 1, "title": 2})
    names = [c.strip().lower() for c in cells]
    columns: dict[str, int] = {}
    role: int | None = None
    for i, name in enumerate(names):
        for key, known in (
            ("address", _ADDRESS_HEADERS),
            ("name", _NAME_HEADERS),
            ("title", _TITLE_HEADERS),
        ):
            if name in known and key not in columns:
                columns[key] = i
        if name in _ROLE_HEADERS:
            role = i
    if "address" not in columns:
        raise RosterFileError("the CSV header names no address column (address or email)")
    firsts = [i for i, n in enumerate(names) if n in _FIRST_HEADERS]
    lasts = [i for i, n in enumerate(names) if n in _LAST_HEADERS]
    first_last = (firsts[0], lasts[0]) if "name" not in columns and firsts and lasts else None
    return _CsvLayout(start + 1, delimiter, columns, first_last, role)


class _Numbered:
    """Lines with the number and text of the last one handed out (for csv.reader)."""

    def __init__(self, lines: Iterator[str], first: int) -> None:
        self.lines = lines
        self.number = first
        self.text = ""

    def __iter__(self) -> _Numbered:
        return self

    def __next__(self) -> str:
        self.text = next(self.lines)
        self.number += 1
        return self.text


def _scan(path: Path) -> tuple[str, int]:
    """The file's encoding (as `decode` would choose it) and its number of lines, in one pass.

    Read in 1 MB chunks, so a 1,000,000-line roster is judged without holding it.
    """
    utf8 = codecs.getincrementaldecoder("utf-8-sig")()
    utf8_ok = True
    cp1252_ok = True
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            if utf8_ok:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    utf8_ok = False
            if cp1252_ok and any(b in chunk for b in _CP1252_UNDEFINED):
                cp1252_ok = False
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if utf8_ok:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    encoding = "utf-8-sig" if utf8_ok else "cp1252" if cp1252_ok else "latin-1"
    return encoding, lines + (last != b"\n")


#: Bytes Windows-1252 leaves undefined (Python's cp1252 codec refuses them).
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


class RosterFile:
    """An import file: its format, and its records, read lazily.

    Records are produced one at a time, and a file is read from disk as they
    are (`from_path`), so a 1,000,000-line import never holds the file or its
    records; `ignored` counts LISTSERV framing lines once they are read.
    """

    def __init__(self, text: str, fmt: str = "auto") -> None:
        self._init(lambda: iter(text.splitlines()), fmt, len(text.splitlines()))

    @classmethod
    def from_path(cls, path: Path, fmt: str = "auto") -> RosterFile:
        """A roster read from `path` as it is judged (UTF-8, else Windows-1252)."""
        encoding, lines = _scan(path)

        def open_lines() -> Iterator[str]:
            with path.open(encoding=encoding, newline=None) as handle:
                for line in handle:
                    yield line.rstrip("\n")

        roster = cls.__new__(cls)
        roster._init(open_lines, fmt, lines)
        return roster

    def _init(self, open_lines: Callable[[], Iterator[str]], fmt: str, lines: int) -> None:
        self._open = open_lines
        self.lines = lines  # the progress bar's total
        sample: list[str] = []
        shown = 0
        for line in self._open():
            sample.append(line)
            shown += bool(line.strip())
            if shown >= 1000:
                break
        self.format = detect_format(sample) if fmt == "auto" else fmt
        if self.format not in FORMATS:
            raise RosterFileError(
                f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)} or auto"
            )
        self.layout = _csv_layout(sample) if self.format == "csv" else None
        self.ignored = 0
        self._titles: dict[str, str] = {}

    @property
    def size(self) -> int:
        """Lines in the file: the progress bar's total."""
        return self.lines

    def entries(self) -> Iterator[Entry]:
        if self.format == "csv":
            return self._csv()
        return self._plain()

    def _title(self, title: str) -> str:
        # Job titles repeat ("Public Affairs Specialist"): keep one copy of each.
        return self._titles.setdefault(title, title)

    def _csv(self) -> Iterator[Entry]:
        layout = self.layout
        if layout is None:
            return
        lines = self._open()
        for _ in range(layout.start):
            next(lines, None)
        numbered = _Numbered(lines, layout.start)
        reader = csv.reader(numbered, delimiter=layout.delimiter)
        columns = layout.columns
        for cells in reader:
            if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue

            def cell(i: int | None, cells: list[str] = cells) -> str:
                return cells[i].strip() if i is not None and i < len(cells) else ""

            name, address = _split_name_address(cell(columns.get("address")))
            if "name" in columns and cell(columns["name"]):
                name = cell(columns["name"])
            elif layout.first_last is not None:
                name = f"{cell(layout.first_last[0])} {cell(layout.first_last[1])}".strip()
            yield Entry(
                numbered.number,
                numbered.text,
                address,
                name,
                self._title(cell(columns.get("title"))),
                cell(layout.role).lower(),
            )

    def _plain(self) -> Iterator[Entry]:
        fmt = self.format
        for number, raw in enumerate(self._open(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if fmt == "listserv" and (_LISTSERV_FRAME.match(line) or "@" not in line.split()[0]):
                self.ignored += 1  # REVIEW's header, footer and command echo
                continue
            if fmt == "mailman" or ("<" in line and ">" in line):
                name, address = _split_name_address(line)
                yield Entry(number, line, address, name)
                continue
            first, _, rest = line.partition(" ")
            if "\t" in first:
                first, _, more = first.partition("\t")
                rest = f"{more} {rest}"
            yield Entry(number, line, first.strip().rstrip(",;"), " ".join(rest.split()))


def read_roster(text: str, fmt: str = "auto") -> tuple[str, list[Entry], int]:
    """(format, records, lines ignored) of an import file's text, all at once."""
    source = RosterFile(text, fmt)
    entries = list(source.entries())
    return source.format, entries, source.ignored
