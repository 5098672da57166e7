# SPDX-License-Identifier: Apache-2.0
"""The acts: one typed function for each thing a person can do to a list.

Email commands, the CLI, the web console and the API only parse input and
present results; every change of state is one of these functions. Each takes
a `Context` (session, settings, clock), an `Actor` (who, through which
channel, proved how) and typed arguments; checks permission once
(`permissions.require`); writes its audit record once; queues its mail in the
same transaction; and returns a typed result or raises an `ActError` whose
words every channel shows. One module per noun: members, conduct, held,
requests, subscriptions, bans, lists, owners, archive, records.
"""
