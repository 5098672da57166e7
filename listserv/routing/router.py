# SPDX-License-Identifier: Apache-2.0
"""Routing: which stage handles a stored message, by the address it was sent to.

Input is one processed recipient (`Recipient`) of an inbound message; output
is the call of the stage for its `Destination`. The table below is the whole
map of the service's addresses, so a reader sees in one place where mail goes.
"""

from __future__ import annotations

from collections.abc import Callable

from listserv.addresses import Destination
from listserv.context import Context
from listserv.routing.delivery import Delivery

#: A stage's entry point; returns a short note for the inbound row's reason.
Stage = Callable[[Context, Delivery], str]


def _commands(ctx: Context, delivery: Delivery) -> str:
    from listserv.commands.mail import receive_command_mail

    return receive_command_mail(ctx, delivery)


def _post(ctx: Context, delivery: Delivery) -> str:
    from listserv.posting import receive_post

    return receive_post(ctx, delivery)


def _owner(ctx: Context, delivery: Delivery) -> str:
    from listserv.routing.owners import relay_to_owners

    return relay_to_owners(ctx, delivery)


def _bounce(ctx: Context, delivery: Delivery) -> str:
    from listserv.bounces import receive_bounce

    return receive_bounce(ctx, delivery)


ROUTES: dict[Destination, Stage] = {
    Destination.POST: _post,
    Destination.REQUEST: _commands,
    Destination.JOIN: _commands,
    Destination.LEAVE: _commands,
    Destination.CONFIRM: _commands,
    Destination.SITE: _commands,
    Destination.OWNER: _owner,
    Destination.BOUNCES: _bounce,
}


def route(ctx: Context, delivery: Delivery) -> str:
    return ROUTES[delivery.recipient.destination](ctx, delivery)
