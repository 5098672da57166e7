# SPDX-License-Identifier: Apache-2.0
"""The posting pipeline: mail to a list's posting address, from the rules to the outbox.

`receive` stores every message as a post and acts on the rules' verdict
(`rules`); `moderation` holds posts for the moderators; `fanout` turns an
accepted post into one outbox job. The moderators' decisions are acts
(`acts/held.py`).
"""
