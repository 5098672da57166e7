# SPDX-License-Identifier: Apache-2.0
"""Members through the API: eligibility, conflicts, scope, pages by cursor, history, audit."""

from __future__ import annotations

import asyncio

from listserv.config import Settings
from listserv.models import utcnow
from tests.api_helpers import BASE, OTHER_LIST, add_members, bearer, open_api, problem
from tests.conftest import make_settings

MEMBERS = f"{BASE}/lists/sm-cop/members"


def two_lists(settings: Settings) -> Settings:
    """The shipped SM-COP list and a second list, RECORDS."""
    first = {
        "name": "sm-cop",
        "display_name": "SM-COP",
        "owners": ["owner@digital.gov"],
        "eligible_domains": ["gov", "mil"],
    }
    return make_settings(settings.database_url, settings.site.var_dir, lists=[first, OTHER_LIST])


async def test_add_member_is_the_act_audited_as_the_token(settings: Settings) -> None:
    async with open_api(settings) as site:
        token = site.issue("owner", ("sm-cop",), name="hr-sync")
        response = await site.client.post(
            MEMBERS,
            json={"address": "Jane.Doe@Agency.gov", "name": "Jane Doe", "title": "Analyst"},
            headers=bearer(token),
        )
        assert response.status_code == 201, response.text
        member = response.json()
        # Stored as the roster stores every address: the local part as given, the domain folded.
        assert member["address"] == "Jane.Doe@agency.gov" and member["delivery"] == "mail"
        assert member["joined_at"].endswith("Z")
        assert response.headers["location"].endswith("/members/Jane.Doe@agency.gov")
        [row] = site.audit("member-add")[-1:]
        assert (row.channel, row.actor, row.auth, row.target) == (
            "api",
            "hr-sync",
            "token",
            "Jane.Doe@agency.gov",
        )
        assert row.source.startswith("api ")


async def test_ineligible_is_422_naming_the_reason_and_existing_is_409(settings: Settings) -> None:
    async with open_api(settings) as site:
        headers = bearer(site.issue("owner", ("sm-cop",)))
        refused = problem(
            await site.client.post(MEMBERS, json={"address": "x@evil.com"}, headers=headers), 422
        )
        assert refused["field"] == "address" and refused["code"] == "domain-not-eligible"
        assert ".gov" in refused["detail"]
        lookalike = problem(
            await site.client.post(
                MEMBERS, json={"address": "x@agency.gov.evil.com"}, headers=headers
            ),
            422,
        )
        assert lookalike["field"] == "address"
        missing = problem(await site.client.post(MEMBERS, json={}, headers=headers), 422)
        assert missing["field"] == "address"
        unknown = problem(
            await site.client.post(
                MEMBERS, json={"address": "a@agency.gov", "colour": "red"}, headers=headers
            ),
            422,
        )
        assert unknown["field"] == "colour"
        ok = await site.client.post(MEMBERS, json={"address": "a@agency.gov"}, headers=headers)
        assert ok.status_code == 201
        again = problem(
            await site.client.post(MEMBERS, json={"address": "A@agency.gov"}, headers=headers), 409
        )
        assert again["code"] == "already-member"
        bad_json = await site.client.post(
            MEMBERS, content=b"{", headers={**headers, "content-type": "application/json"}
        )
        problem(bad_json, 400)
        as_form = await site.client.post(
            MEMBERS, content=b"address=a", headers={**headers, "content-type": "text/plain"}
        )
        problem(as_form, 415)


async def test_scope_role_is_403_and_other_lists_are_404(settings: Settings) -> None:
    async with open_api(two_lists(settings)) as site:
        records_owner = bearer(site.issue("owner", ("records",)))
        reader = bearer(site.issue("reader", ("sm-cop",)))
        moderator = bearer(site.issue("moderator", ("sm-cop",)))
        hidden = problem(await site.client.get(MEMBERS, headers=records_owner), 404)
        assert "no list named sm-cop" in hidden["detail"]
        lists = (await site.client.get(f"{BASE}/lists", headers=records_owner)).json()
        assert [item["name"] for item in lists["items"]] == ["records"]
        assert (await site.client.get(MEMBERS, headers=reader)).status_code == 200
        for headers in (reader, moderator):
            forbidden = problem(
                await site.client.post(MEMBERS, json={"address": "b@agency.gov"}, headers=headers),
                403,
            )
            assert "owners" in forbidden["detail"]
        problem(await site.client.get(f"{BASE}/lists/nosuch/members", headers=reader), 404)


async def test_pages_by_cursor_cover_the_roster_once(settings: Settings) -> None:
    async with open_api(settings) as site:
        addresses = [f"member{i:03d}@agency.gov" for i in range(57)]
        add_members(site, addresses)
        headers = bearer(site.issue("reader", ("sm-cop",)))
        seen: list[str] = []
        url = f"{MEMBERS}?role=member&limit=20"
        pages = 0
        while url:
            page = (await site.client.get(url, headers=headers)).json()
            seen.extend(item["address"] for item in page["items"])
            pages += 1
            cursor = page["next_cursor"]
            url = f"{MEMBERS}?role=member&limit=20&cursor={cursor}" if cursor else ""
        assert pages == 3 and seen == sorted(addresses)
        problem(await site.client.get(f"{MEMBERS}?limit=501", headers=headers), 422)
        problem(await site.client.get(f"{MEMBERS}?limit=0", headers=headers), 422)
        bad = problem(await site.client.get(f"{MEMBERS}?cursor=bm9wZQ", headers=headers), 422)
        assert bad["field"] == "cursor"
        problem(await site.client.get(f"{MEMBERS}?colour=red", headers=headers), 422)


async def test_filters_change_delete_and_history(settings: Settings) -> None:
    async with open_api(settings) as site:
        headers = bearer(site.issue("owner", ("sm-cop",)))
        for address, name in (("ann@agency.gov", "Ann Lee"), ("ben@army.mil", "Ben Ford")):
            await site.client.post(
                MEMBERS, json={"address": address, "name": name}, headers=headers
            )
        await asyncio.sleep(0.01)
        before = utcnow().isoformat()
        await asyncio.sleep(0.01)
        changed = await site.client.patch(
            f"{MEMBERS}/ben@army.mil", json={"delivery": "digest"}, headers=headers
        )
        assert changed.status_code == 200 and changed.json()["delivery"] == "digest"
        problem(
            await site.client.patch(
                f"{MEMBERS}/ben@army.mil", json={"delivery": "sometimes"}, headers=headers
            ),
            422,
        )
        digest = (await site.client.get(f"{MEMBERS}?delivery=digest", headers=headers)).json()
        assert [m["address"] for m in digest["items"]] == ["ben@army.mil"]
        by_name = (await site.client.get(f"{MEMBERS}?q=lee", headers=headers)).json()
        assert [m["address"] for m in by_name["items"]] == ["ann@agency.gov"]
        owners = (await site.client.get(f"{MEMBERS}?role=owner", headers=headers)).json()
        assert [m["address"] for m in owners["items"]] == ["owner@digital.gov"]
        one = await site.client.get(f"{MEMBERS}/ann@agency.gov", headers=headers)
        assert one.json()["name"] == "Ann Lee"
        gone = await site.client.delete(f"{MEMBERS}/ann@agency.gov", headers=headers)
        assert gone.status_code == 204
        problem(await site.client.get(f"{MEMBERS}/ann@agency.gov", headers=headers), 404)
        problem(await site.client.delete(f"{MEMBERS}/ann@agency.gov", headers=headers), 404)
        last_owner = problem(
            await site.client.delete(f"{MEMBERS}/owner@digital.gov?role=owner", headers=headers),
            409,
        )
        assert "configuration file" in last_owner["detail"]
        then = (await site.client.get(MEMBERS, params={"at": before}, headers=headers)).json()
        assert sorted(m["address"] for m in then["items"]) == ["ann@agency.gov", "ben@army.mil"]
        assert {m["delivery"] for m in then["items"]} == {"mail"}
        [left] = site.audit("member-remove")
        assert (left.channel, left.target) == ("api", "ann@agency.gov")
