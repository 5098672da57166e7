# SPDX-License-Identifier: Apache-2.0
"""Rosters too big to hold: imports read as they are judged, exports and listings streamed.

The progress bar is read from a real pseudo-terminal, as an operator sees it.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from listserv.roster.bulk import NewMember
from listserv.roster.files import RosterFile
from listserv.roster.plan import LineProblems, NewMembers, Problem
from tests.admin_helpers import run_cli, write_config

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def config(sqlite_url: str, tmp_path: Path) -> Path:
    return write_config(tmp_path / "listserv.toml", sqlite_url, tmp_path / "var")


def roster_csv(path: Path, count: int) -> Path:
    lines = ["address,name,title"]
    lines += [f"user{i}@agency{i % 13}.gov,User {i},Analyst" for i in range(count)]
    lines += ["someone@example.com,Outsider,"]  # refused (exit 3); the bar ends at the end
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_on_terminal(config: Path, *args: str) -> tuple[int, str]:
    """`listserv ARGS` with standard error on a pseudo-terminal; (exit code, what it showed)."""
    master, slave = pty.openpty()
    env = {
        **os.environ,
        "LISTSERV_CONFIG": str(config),
        "COLUMNS": "120",
        "TERM": "xterm",
    }
    env.pop("LISTSERV_DATABASE_URL", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "listserv", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            shown += data
        elif child.poll() is not None:
            break
    os.close(master)
    code = child.wait(timeout=30)
    return code, ANSI.sub("", shown.decode("utf-8", "replace").replace("\r", "\n"))


def last_count(shown: str, label: str) -> tuple[int, int]:
    found = re.findall(rf"{label}\s.*?(\d+)/(\d+)", shown)
    assert found, shown[-2000:]
    done, total = found[-1]
    return int(done), int(total)


def test_the_import_progress_bars_end_at_n_of_n_on_a_terminal(config: Path, tmp_path: Path) -> None:
    path = roster_csv(tmp_path / "roster.csv", 2500)  # 2,502 lines: header, 2,500, one refused
    code, shown = run_on_terminal(config, "members", "import", "sm-cop", str(path))
    assert code == 3, shown[-2000:]
    assert last_count(shown, "checking") == (2502, 2502)
    assert last_count(shown, "adding") == (2500, 2500)


def test_no_bar_when_standard_error_is_not_a_terminal(config: Path, tmp_path: Path) -> None:
    path = roster_csv(tmp_path / "roster.csv", 10)
    result = run_cli(config, "members", "import", "sm-cop", str(path), "--json")
    assert result.code == 3 and result.json()["added"] == 10
    assert "checking" not in result.stderr


def test_import_from_standard_input(config: Path, tmp_path: Path) -> None:
    data = roster_csv(tmp_path / "roster.csv", 30).read_bytes()
    result = run_cli(config, "members", "import", "sm-cop", "-", "--json", input=data)
    assert result.code == 3, result.stderr
    assert (result.json()["added"], result.json()["refused"]) == (30, 1)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ("Zoë Café <zoe@agency.gov>\n".encode(), "Zoë Café"),  # UTF-8
        ("\ufeffZoë Café <zoe@agency.gov>\n".encode(), "Zoë Café"),  # UTF-8 with a BOM
        ("Zoë Café – <zoe@agency.gov>\n".encode("cp1252"), "Zoë Café –"),  # a spreadsheet's
        (b"Zo\xeb \x81 <zoe@agency.gov>\n", "Zoë \x81"),  # not even Windows-1252: Latin-1
    ],
)
def test_a_file_is_decoded_as_it_is_read(tmp_path: Path, data: bytes, name: str) -> None:
    path = tmp_path / "roster.txt"
    path.write_bytes(data)
    source = RosterFile.from_path(path)
    [entry] = list(source.entries())
    assert (entry.address, entry.name) == ("zoe@agency.gov", name)
    assert source.size == 1


def test_members_to_add_wait_on_disk_in_order() -> None:
    members = NewMembers()
    for i in range(12_345):
        address = f"User{i}@agency.gov"
        members.append(NewMember(address, address.lower(), f"User {i}", "Analyst"))
    assert len(members) == 12_345
    for _ in range(2):  # read back as often as needed
        listed = list(members)
        assert [m.key for m in listed] == [f"user{i}@agency.gov" for i in range(12_345)]
        assert listed[7] == NewMember("User7@agency.gov", "user7@agency.gov", "User 7", "Analyst")
    kept, left = members.without({"user3@agency.gov", "user12000@agency.gov"})
    assert len(kept) == 12_343 and [m.key for m in left] == [
        "user3@agency.gov",
        "user12000@agency.gov",
    ]
    members.close()


def test_already_members_are_kept_as_line_numbers() -> None:
    already = LineProblems("already a member")
    for line in (3, 9):
        already.add_line(line)
    already.append(Problem(0, "x@agency.gov", "joined during the import", "x@agency.gov"))
    assert len(already) == 3
    assert [(p.line, p.reason) for p in already] == [
        (3, "already a member"),
        (9, "already a member"),
        (0, "joined during the import"),
    ]


def test_list_json_and_export_stream_the_whole_roster(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    path = roster_csv(tmp_path / "roster.csv", 12_001)
    assert run_cli(config, "members", "import", "sm-cop", str(path)).code == 3
    listing = run_cli(config, "members", "list", "sm-cop", "--json")
    assert listing.code == 0, listing.stderr
    rows = listing.json()
    addresses = [r["address"] for r in rows if r["role"] == "member"]
    assert len(addresses) == 12_001 and addresses == sorted(addresses)
    assert set(rows[0]) == {"address", "name", "title", "role", "delivery", "status", "joined"}
    assert listing.stdout.startswith("[\n  {\n    ")  # the same layout as every --json
    exported = run_cli(config, "members", "export", "sm-cop")
    lines = exported.stdout.splitlines()
    assert lines[0] == "address,name,title,role,delivery,status,joined"
    assert sum(1 for line in lines[1:] if ",member," in line) == 12_001
    empty = run_cli(config, "members", "list", "sm-cop", "--json", "--role", "moderator")
    assert json.loads(empty.stdout) == [] and empty.stdout == "[]\n"
