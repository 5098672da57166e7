# SPDX-License-Identifier: Apache-2.0
"""`members import` and `members export`: formats, exact counts, all or nothing."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import func, select

from listserv import roster
from listserv.acts import bans as ban_acts
from listserv.context import Context
from listserv.eligibility import EligibilityRule, Eligible, check_address
from listserv.lists import get_list
from listserv.models import AuditEvent, Member, MembershipEvent, Role
from listserv.roster import files as roster_files
from listserv.roster import plan as roster_plan
from tests.actors import as_actor
from tests.admin_helpers import run_cli, write_config

RULE = EligibilityRule(suffixes=("gov", "mil"), allowed_addresses=("partner@vendor.com",))

LISTSERV_REVIEW = """\
> review sm-cop
* SM-COP  Social Media Community of Practice
*
* Review= Private
* Subscription= By_Owner
* Owner= owner@DIGITAL.GOV
*
JANE.DOE@AGENCY.GOV                   Jane Doe
john.smith@ARMY.MIL                   John Smith
bob@EXAMPLE.COM                       Bob Outsider

Total number of "concealed" subscribers:           0
Total number of users subscribed to the list:      3
Total number of local host users on the list:      0
"""

MAILMAN = """\
Jane Doe <jane.doe@agency.gov>
"Smith, John" <john.smith@army.mil>
solo@agency.gov
"""


def plan(
    text: str, fmt: str = "auto", existing: set[str] | None = None, force: bool = False
) -> roster_plan.ImportPlan:
    detected, entries, ignored = roster_files.read_roster(text, fmt)
    return roster_plan.plan_import(
        entries,
        fmt=detected,
        rule=RULE,
        label="SM-COP",
        existing=existing or set(),
        force=force,
        ignored=ignored,
    )


def test_listserv_review_output_is_read_without_its_header_and_footer() -> None:
    result = plan(LISTSERV_REVIEW)
    assert result.format == "listserv"
    assert [(m.address, m.key, m.name) for m in result.to_add] == [
        ("JANE.DOE@agency.gov", "jane.doe@agency.gov", "Jane Doe"),
        ("john.smith@army.mil", "john.smith@army.mil", "John Smith"),
    ]
    assert [(p.line, p.address) for p in result.refused] == [(10, "bob@EXAMPLE.COM")]
    assert "Only addresses at .gov or .mil" in result.refused[0].reason
    assert result.ignored == 10  # the command echo, 6 header lines and 3 totals
    assert result.records == 3


def test_mailman_list_members_output() -> None:
    result = plan(MAILMAN)
    assert result.format == "mailman"
    assert [(m.key, m.name) for m in result.to_add] == [
        ("jane.doe@agency.gov", "Jane Doe"),
        ("john.smith@army.mil", "Smith, John"),
        ("solo@agency.gov", ""),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "email,full name,job title\njane@agency.gov,Jane Doe,Analyst\n",
            [("jane@agency.gov", "Jane Doe", "Analyst")],
        ),
        (
            "Address;Title;Name\njane@agency.gov;Analyst;Jane Doe\n",
            [("jane@agency.gov", "Jane Doe", "Analyst")],
        ),
        (
            "First Name,Last Name,Email\nJane,Doe,jane@agency.gov\n",
            [("jane@agency.gov", "Jane Doe", "")],
        ),
        (
            'jane@agency.gov,"Doe, Jane",Analyst\njohn@army.mil,John\n',
            [("jane@agency.gov", "Doe, Jane", "Analyst"), ("john@army.mil", "John", "")],
        ),
        ("jane@agency.gov\tJane Doe\tAnalyst\n", [("jane@agency.gov", "Jane Doe", "Analyst")]),
    ],
)
def test_csv_with_and_without_a_header(text: str, expected: list[tuple[str, str, str]]) -> None:
    result = plan(text)
    assert result.format == "csv"
    assert [(m.key, m.name, m.title) for m in result.to_add] == expected
    assert result.records == len(expected)


def test_csv_rows_for_owners_are_refused_not_made_members() -> None:
    text = "address,name,role\njane@agency.gov,Jane,member\nboss@agency.gov,Boss,owner\n"
    result = plan(text)
    assert [m.key for m in result.to_add] == ["jane@agency.gov"]
    assert "role owner" in result.refused[0].reason


def test_plain_file_with_comments_names_and_blank_lines() -> None:
    text = "# exported 2025-01-01\n\njane@agency.gov\njohn@army.mil John Smith\n<x@navy.mil>\n"
    result = plan(text)
    assert result.format == "plain"
    assert [(m.key, m.name) for m in result.to_add] == [
        ("jane@agency.gov", ""),
        ("john@army.mil", "John Smith"),
        ("x@navy.mil", ""),
    ]


def test_windows_1252_files_are_decoded() -> None:
    data = "jane@agency.gov,Zoë Doe\n".encode("cp1252")
    fmt, entries, _ = roster_files.read_roster(roster_files.decode(data))
    assert (fmt, entries[0].name) == ("csv", "Zoë Doe")


def test_each_record_lands_in_exactly_one_count() -> None:
    text = "\n".join(
        [
            "a@agency.gov",  # added
            "A@Agency.GOV",  # duplicate of line 1
            "old@agency.gov",  # already a member
            "x@example.com",  # ineligible
            "partner@vendor.com",  # allowed by address
            "not an address",  # invalid
            "spam1@spam.gov",  # banned
        ]
    )
    from listserv.bans import compile_pattern

    detected, entries, _ = roster_files.read_roster(text)
    result = roster_plan.plan_import(
        entries,
        fmt=detected,
        rule=RULE,
        label="SM-COP",
        existing={"old@agency.gov"},
        bans=[compile_pattern("^spam[0-9]+@")],
    )
    assert [m.key for m in result.to_add] == ["a@agency.gov", "partner@vendor.com"]
    assert [(p.line, p.reason) for p in result.duplicates] == [(2, "same address as line 1")]
    assert [p.line for p in result.already] == [3]
    assert [p.line for p in result.refused] == [4, 6, 7]
    assert "--force" in result.refused[0].reason
    assert result.refused[2].reason == "banned (^spam[0-9]+@)"
    summary = result.summary()
    assert (
        summary["records"]
        == 7
        == (
            summary["added"]
            + summary["already_members"]
            + summary["duplicates"]
            + summary["refused"]
        )
    )
    forced = plan("x@example.com\n", force=True)
    assert [m.key for m in forced.to_add] == ["x@example.com"]


@pytest.mark.parametrize(
    "address",
    [
        "jane.doe@agency.gov",
        "Jane.Doe+tag@Sub.Agency.GOV",
        "a@b.mil",
        "x@agency.gov.evil.com",
        "x@xn--gency-3ve.gov",
        "user@localhost.gov",
        ".lead@agency.gov",
        "double..dot@agency.gov",
        "x@-bad-.gov",
        "x@agency.gov.",
        ("l" * 65) + "@agency.gov",
        "partner@vendor.com",
        "other@vendor.com",
        "x@agency.invalid",
        "jané@agency.gov",
    ],
)
def test_the_cached_checker_agrees_with_check_address(address: str) -> None:
    fast = roster_plan.AddressChecker(RULE, "SM-COP")
    fast.check("warm@agency.gov")  # the domain cache is in use
    fast.check("warm@sub.agency.gov")
    expected = check_address(address, RULE, "SM-COP")
    got = fast.check(address)
    assert type(got) is type(expected)
    if isinstance(expected, Eligible):
        assert got == expected
    else:
        assert got.code == expected.code  # type: ignore[union-attr]


# -- the 5,000-line file --------------------------------------------------------

GOOD, ALREADY, DUPLICATES, INELIGIBLE, INVALID, BANNED = 4700, 100, 80, 60, 40, 20


def five_thousand_lines() -> tuple[str, list[str]]:
    """A CSV of 5,000 records: the counts above, shuffled; and the existing members."""
    rng = random.Random(4)
    good = [f"user{i}@agency{i % 37}.gov" for i in range(GOOD)]
    existing = [f"member{i}@army.mil" for i in range(ALREADY)]
    rows = [(a, f"User {i}", "Analyst") for i, a in enumerate(good)]
    rows += [(a.upper(), "Member", "") for a in existing]
    rows += [(good[i * 7].replace("user", "USER"), "Again", "") for i in range(DUPLICATES)]
    rows += [(f"person{i}@example.com", "Outsider", "") for i in range(INELIGIBLE)]
    rows += [(f"broken{i}.agency.gov", "No At", "") for i in range(INVALID // 2)]
    rows += [(f"two@@at{i}.gov", "Bad", "") for i in range(INVALID - INVALID // 2)]
    rows += [(f"bot{i}@spam.gov", "Bot", "") for i in range(BANNED)]
    first = rows[:GOOD]
    rest = rows[GOOD:]
    rng.shuffle(rest)
    # Duplicates must come after their first occurrence: keep the good rows first.
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["address", "name", "title"])
    writer.writerows(first + rest)
    return buffer.getvalue(), existing


@pytest.fixture
def roster_config(ctx_factory: Callable[..., Context], db_url: str, tmp_path: Path) -> Path:
    ctx = ctx_factory()
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    _, existing = five_thousand_lines()
    for address in existing:
        roster.add_member(ctx.session, mlist, address, actor=as_actor("test", "cli"))
    ban_acts.ban(ctx, as_actor("root@host", "cli", "host"), mlist, "*@spam.gov")
    ctx.session.commit()
    ctx.session.close()
    return write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")


def _counts(ctx_factory: Callable[..., Context]) -> tuple[int, int, int]:
    session = ctx_factory().session
    members = session.scalar(
        select(func.count()).select_from(Member).where(Member.role == Role.MEMBER)
    )
    joins = session.scalar(select(func.count()).where(MembershipEvent.event == "join"))
    adds = session.scalar(select(func.count()).where(AuditEvent.action == "member-add"))
    session.close()
    return int(members or 0), int(joins or 0), int(adds or 0)


@pytest.mark.slow
def test_a_5000_line_import_counts_exactly(
    roster_config: Path, ctx_factory: Callable[..., Context], tmp_path: Path
) -> None:
    text, _ = five_thousand_lines()
    path = tmp_path / "roster.csv"
    path.write_text(text)
    before = _counts(ctx_factory)

    dry = run_cli(roster_config, "members", "import", "sm-cop", str(path), "--dry-run", "--json")
    assert dry.code == 3, dry.stderr  # some lines refused: a script can tell
    expected = {
        "records": 5000,
        "added": GOOD,
        "already_members": ALREADY,
        "duplicates": DUPLICATES,
        "refused": INELIGIBLE + INVALID + BANNED,
    }
    assert {k: dry.json()[k] for k in expected} == expected
    assert dry.json()["dry_run"] is True
    assert _counts(ctx_factory) == before

    done = run_cli(roster_config, "members", "import", "sm-cop", str(path), "--json")
    assert done.code == 3, done.stderr  # the good lines were still added (counted below)
    summary = done.json()
    assert {k: summary[k] for k in expected} == expected
    reasons = [r["reason"] for r in summary["refused_lines"]]
    assert len(reasons) == INELIGIBLE + INVALID + BANNED
    assert sum("Only addresses at .gov or .mil" in r for r in reasons) == INELIGIBLE
    assert sum(r == "banned (*@spam.gov)" for r in reasons) == BANNED
    assert sum("not a valid email address" in r for r in reasons) == INVALID
    assert all(r["line"] > 1 and r["text"] for r in summary["refused_lines"])
    assert len(summary["duplicate_lines"]) == DUPLICATES

    members, joins, adds = _counts(ctx_factory)
    assert members == before[0] + GOOD
    assert joins == before[1] + GOOD
    assert adds == before[2] + GOOD
    session = ctx_factory().session
    jane = session.scalar(select(Member).where(Member.address_key == "user5@agency5.gov"))
    assert jane is not None and (jane.display_name, jane.job_title) == ("User 5", "Analyst")
    assert jane.unsubscribe_nonce
    summary_audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "members-import")
    ).all()
    assert len(summary_audit) == 1
    assert summary_audit[0].detail["added"] == GOOD
    assert summary_audit[0].channel == "cli" and summary_audit[0].auth == "host"
    session.close()

    # Importing the same file again adds nobody.
    again = run_cli(roster_config, "members", "import", "sm-cop", str(path), "--json").json()
    assert (again["added"], again["already_members"]) == (0, GOOD + ALREADY)

    # The human-readable report names the counts and each refused line.
    shown = run_cli(roster_config, "members", "import", "sm-cop", str(path), "--dry-run")
    assert "would add 0" in shown.stdout and "refused 120" in shown.stdout
    assert "bot0@spam.gov" in shown.stdout


def test_a_failure_mid_import_leaves_nothing_half_imported(
    roster_config: Path,
    ctx_factory: Callable[..., Context],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text, _ = five_thousand_lines()
    path = tmp_path / "roster.csv"
    path.write_text(text)
    before = _counts(ctx_factory)
    real = roster.add_members_bulk

    def crash_after_two_batches(*args, **kwargs):  # type: ignore[no-untyped-def]
        def on_batch(total: int) -> None:
            if total >= 2000:
                raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

        return real(*args, **{**kwargs, "batch": 1000, "on_batch": on_batch})

    monkeypatch.setattr(roster, "add_members_bulk", crash_after_two_batches)
    result = run_cli(roster_config, "members", "import", "sm-cop", str(path))
    assert result.code == 1
    assert result.stderr.strip() == "listserv: import failed, nobody was added: disk I/O error"
    assert _counts(ctx_factory) == before
    session = ctx_factory().session
    assert session.scalar(select(func.count()).where(AuditEvent.action == "members-import")) == 0
    session.close()


def test_a_constraint_violation_in_a_late_batch_rolls_back_every_batch(
    ctx_factory: Callable[..., Context],
) -> None:
    ctx = ctx_factory()
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    roster.add_member(ctx.session, mlist, "taken@agency.gov", actor=as_actor("test", "cli"))
    ctx.session.commit()
    rows = [roster.NewMember(f"n{i}@agency.gov", f"n{i}@agency.gov") for i in range(2500)]
    rows.append(roster.NewMember("taken@agency.gov", "taken@agency.gov"))
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        roster.add_members_bulk(ctx.session, mlist, rows, batch=1000, actor=as_actor("x", "cli"))
    ctx.session.rollback()
    assert (
        ctx.session.scalar(
            select(func.count()).select_from(Member).where(Member.role == Role.MEMBER)
        )
        == 1
    )


def test_import_cli_errors_are_one_line(roster_config: Path, tmp_path: Path) -> None:
    missing = run_cli(roster_config, "members", "import", "sm-cop", str(tmp_path / "nope.csv"))
    assert missing.code == 1 and "cannot read" in missing.stderr
    assert missing.stderr.count("\n") == 1
    path = tmp_path / "r.csv"
    path.write_text("name,title\nJane,Analyst\n")
    headless = run_cli(roster_config, "members", "import", "sm-cop", str(path))
    assert headless.code == 1 and "no address column" in headless.stderr
    wrong = run_cli(roster_config, "members", "import", "sm-cop", str(path), "--format", "xls")
    assert wrong.code == 1 and "--format must be" in wrong.stderr
    path.write_text("jane@agency.gov\n")
    nolist = run_cli(roster_config, "members", "import", "no-such-list", str(path))
    assert nolist.code == 1 and "no list named" in nolist.stderr


def test_each_format_imports_from_the_command_line(roster_config: Path, tmp_path: Path) -> None:
    for name, text in (("review.txt", LISTSERV_REVIEW), ("mailman.txt", MAILMAN)):
        path = tmp_path / name
        path.write_text(text)
        result = run_cli(roster_config, "members", "import", "sm-cop", str(path), "--json")
        # bob@EXAMPLE.COM in the REVIEW output is not eligible: refused, the others added
        assert result.code == (3 if result.json()["refused"] else 0), result.stderr
        assert result.json()["added"] >= 1
    stdin = run_cli(
        roster_config,
        "members",
        "import",
        "sm-cop",
        "-",
        "--json",
        input="new.person@navy.mil\n",
    )
    assert stdin.json()["format"] == "plain" and stdin.json()["added"] == 1
    listed = run_cli(roster_config, "members", "list", "sm-cop", "--json").json()
    addresses = {m["address"] for m in listed}
    assert {
        "JANE.DOE@agency.gov",
        "john.smith@army.mil",
        "solo@agency.gov",
        "new.person@navy.mil",
    } <= addresses
    # jane.doe from the Mailman file was a duplicate of the LISTSERV one.
    assert sum(1 for a in addresses if a.lower() == "jane.doe@agency.gov") == 1


def test_export_writes_csv_that_imports_again(roster_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    result = run_cli(roster_config, "members", "export", "sm-cop", "--out", str(out))
    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["address", "name", "title", "role", "delivery", "status", "joined"]
    assert len(rows) == ALREADY + 1  # the members and the configured owner
    assert {r["role"] for r in rows} == {"member", "owner"}
    assert all(r["joined"] and r["delivery"] == "mail" and r["status"] == "enabled" for r in rows)
    members_only = run_cli(roster_config, "members", "export", "sm-cop", "--role", "member")
    assert members_only.stdout.count("\n") == ALREADY + 1
    again = run_cli(roster_config, "members", "import", "sm-cop", str(out), "--json").json()
    assert (again["added"], again["already_members"], again["refused"]) == (0, ALREADY, 1)
