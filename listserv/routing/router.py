# SPDX-License-Identifier: Apache-2.0
"""Routing: which stage handles a stored message, by the address it was sent to.

Input is one processed recipient (`Recipient`) of an inbound message; output
is the call of the stage for its `Destination`. The table below is the whole
map of the service's addresses, so a reader sees in one place where mail goes.
"""

from __future__ import annotations

from collections.abc import Callable

from listserv.addresses import Destination
from listserv.bounces import receive_bounce
from listserv.commands.mail import receive_command_mail
from listserv.context import Context
from listserv.posting.receive import receive_post
from listserv.routing.delivery import Delivery
from listserv.routing.owners import relay_to_owners

#: A stage's entry point; returns a short note for the inbound row's reason.
Stage = Callable[[Context, Delivery], str]


def _post(ctx: Context, delivery: Delivery) -> str:
    return receive_post(ctx, delivery, forward=route)


ROUTES: dict[Destination, Stage] = {
    Destination.POST: _post,
    Destination.REQUEST: receive_command_mail,
    Destination.JOIN: receive_command_mail,
    Destination.LEAVE: receive_command_mail,
    Destination.CONFIRM: receive_command_mail,
    Destination.SITE: receive_command_mail,
    Destination.OWNER: relay_to_owners,
    Destination.BOUNCES: receive_bounce,
}


def route(ctx: Context, delivery: Delivery) -> str:
    """Hand one recipient of a stored message to the stage its address names."""
    return ROUTES[delivery.recipient.destination](ctx, delivery)
