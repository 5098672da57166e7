# SPDX-License-Identifier: Apache-2.0
"""Every endpoint of /api/v1, in one ordered list: the app serves it, the document describes it.

Read the table to know the API: method, path, handler, what it answers and
which errors it may give besides 401 (no usable token) and 429 (over the
rate), which every endpoint may. POSTs that create or decide honour
`Idempotency-Key`; the PATCH of settings honours `If-Match`.
"""

from __future__ import annotations

from listserv.api import bans, lists, members, moderation, pagination, records, webhooks
from listserv.api.spec import Endpoint, Param, page_of, ref

L = lists.LIST_PARAM
ID = moderation.ID_PARAM
PAGE = pagination.PARAMS
IF_MATCH = Param("If-Match", "header", {"type": "string"}, "the ETag a GET returned")

#: Reusable schemas, published under components/schemas by name.
SCHEMAS = {
    "ListSummary": lists.SUMMARY,
    "List": lists.LIST,
    "ListSettings": lists.SETTINGS,
    "ListSettingsPatch": lists.SETTINGS_PATCH,
    "Member": members.MEMBER,
    "HistoricMember": members.HISTORIC_MEMBER,
    "NewMember": members.NEW_MEMBER,
    "MemberPatch": members.MEMBER_PATCH,
    "Request": moderation.REQUEST,
    "HeldPost": moderation.HELD,
    "HeldPostDetail": moderation.HELD_DETAIL,
    "Decision": moderation.DECISION,
    "Reason": moderation.REASON_BODY,
    "Ban": bans.BAN,
    "NewBan": bans.NEW_BAN,
    "Bounce": records.BOUNCE,
    "ArchivedPost": records.ARCHIVED,
    "ArchivedPostDetail": records.ARCHIVED_DETAIL,
    "AuditEvent": records.AUDIT,
    "OutboxJob": records.OUTBOX_JOB,
    "Webhook": webhooks.WEBHOOK,
    "WebhookDelivery": webhooks.DELIVERY,
}

#: Today's roster, or (with `at`) the history's; an empty page is both, hence anyOf.
MEMBERS_PAGE = {"anyOf": [page_of(ref("Member")), page_of(ref("HistoricMember"))]}
NOT_FOUND = (404,)
ON_LIST = (403, 404)
CHANGE = (403, 404, 422)

# fmt: off
ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/lists", lists.get_lists, "Lists", "lists", page_of(ref("ListSummary")),
             params=PAGE, errors=(422,)),
    Endpoint("GET", "/lists/{list}", lists.get_list_settings, "A list and its settings", "lists",
             ref("List"), params=(L,), errors=NOT_FOUND),
    Endpoint("PATCH", "/lists/{list}", lists.patch_list_settings, "Change settings", "lists",
             ref("List"), params=(L, IF_MATCH), body=ref("ListSettingsPatch"),
             errors=(403, 404, 412, 422)),
    Endpoint("GET", "/lists/{list}/members", members.get_members, "Members", "members",
             MEMBERS_PAGE, params=(L, *members.LIST_QUERY), errors=(404, 422)),
    Endpoint("POST", "/lists/{list}/members", members.post_member, "Add a member", "members",
             ref("Member"), status=201, params=(L,), body=ref("NewMember"),
             errors=(403, 404, 409, 422)),
    Endpoint("GET", "/lists/{list}/members/{address}", members.get_member, "A member", "members",
             ref("Member"), params=(L, members.ADDRESS_PARAM, members.ROLE_PARAM),
             errors=(404, 422)),
    Endpoint("PATCH", "/lists/{list}/members/{address}", members.patch_member,
             "Change a member", "members", ref("Member"), params=(L, members.ADDRESS_PARAM),
             body=ref("MemberPatch"), errors=CHANGE),
    Endpoint("DELETE", "/lists/{list}/members/{address}", members.delete_member,
             "Remove a member", "members", None, status=204,
             params=(L, members.ADDRESS_PARAM, members.ROLE_PARAM), errors=(403, 404, 409, 422)),
    Endpoint("GET", "/lists/{list}/requests", moderation.get_requests, "Subscription requests",
             "requests", page_of(ref("Request")),
             params=(L, Param("status", "query", {"type": "string",
                                                  "enum": moderation.REQUEST_STATUSES},
                              "default awaiting-approval"), *PAGE), errors=(403, 404, 422)),
    Endpoint("POST", "/lists/{list}/requests/{id}/approve", moderation.approve_request,
             "Approve a request", "requests", ref("Decision"), params=(L, ID),
             errors=(403, 404, 409)),
    Endpoint("POST", "/lists/{list}/requests/{id}/reject", moderation.reject_request,
             "Reject a request", "requests", ref("Decision"), params=(L, ID), body=ref("Reason"),
             errors=(403, 404, 409, 422)),
    Endpoint("GET", "/lists/{list}/held", moderation.get_held, "Held posts", "held",
             page_of(ref("HeldPost")), params=(L, *PAGE), errors=(403, 404, 422)),
    Endpoint("GET", "/lists/{list}/held/{id}", moderation.get_held_post, "A held post", "held",
             ref("HeldPostDetail"), params=(L, ID), errors=ON_LIST),
    Endpoint("GET", "/lists/{list}/held/{id}/raw", moderation.get_held_raw,
             "A held post's original bytes", "held", {"type": "string"}, params=(L, ID),
             errors=ON_LIST, media_type="message/rfc822", slow=True),
    Endpoint("POST", "/lists/{list}/held/{id}/approve", moderation.approve_post,
             "Approve a held post", "held", ref("Decision"), params=(L, ID),
             errors=(403, 404, 409)),
    Endpoint("POST", "/lists/{list}/held/{id}/reject", moderation.reject_post,
             "Reject a held post", "held", ref("Decision"), params=(L, ID), body=ref("Reason"),
             errors=(403, 404, 409, 422)),
    Endpoint("POST", "/lists/{list}/held/{id}/discard", moderation.discard_post,
             "Discard a held post", "held", ref("Decision"), params=(L, ID),
             errors=(403, 404, 409)),
    Endpoint("GET", "/lists/{list}/bans", bans.get_bans, "Bans", "bans", page_of(ref("Ban")),
             params=(L, *PAGE), errors=(404, 422)),
    Endpoint("POST", "/lists/{list}/bans", bans.post_ban, "Ban an address or pattern", "bans",
             ref("Ban"), status=201, params=(L,), body=ref("NewBan"),
             errors=(403, 404, 409, 422)),
    Endpoint("DELETE", "/lists/{list}/bans", bans.delete_ban, "Lift a ban", "bans", None,
             status=204, params=(L, bans.PATTERN_PARAM), errors=(403, 404, 422)),
    Endpoint("GET", "/lists/{list}/bounces", records.get_bounces, "Bounces", "records",
             page_of(ref("Bounce")), params=(L, *PAGE), errors=(404, 422)),
    Endpoint("GET", "/lists/{list}/archive", records.get_archive, "The archive", "records",
             page_of(ref("ArchivedPost")), params=(L, *records.ARCHIVE_QUERY),
             errors=(404, 422), slow=True),
    Endpoint("GET", "/lists/{list}/archive/{id}", records.get_archived_post, "An archived post",
             "records", ref("ArchivedPostDetail"), params=(L, ID), errors=NOT_FOUND,
             slow=True),
    Endpoint("GET", "/audit", records.get_audit, "The audit log", "records",
             page_of(ref("AuditEvent")), params=records.AUDIT_QUERY, errors=(403, 404, 422)),
    Endpoint("GET", "/outbox", records.get_outbox, "The outbox", "records",
             page_of(ref("OutboxJob")), params=PAGE, errors=(403, 422)),
    Endpoint("GET", "/webhooks", webhooks.get_webhooks, "Webhooks", "webhooks",
             page_of(ref("Webhook")), params=PAGE, errors=(422,)),
    Endpoint("GET", "/webhooks/{id}/deliveries", webhooks.get_deliveries,
             "A webhook's deliveries", "webhooks", page_of(ref("WebhookDelivery")),
             params=(ID, *PAGE), errors=(403, 404, 422)),
]
# fmt: on
