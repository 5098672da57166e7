# SPDX-License-Identifier: Apache-2.0
"""Webhooks: other systems told of what happens on a list, signed, durable, retried.

`events` queues one `webhook_deliveries` row per event and subscribed
webhook, in the transaction of the act that caused it (the audit writer and
the two acts without an audit row call it), so an event is never sent for a
change that rolled back, nor lost for one that committed. `signing` is the
`Listserv-Signature` header; `sender` claims due rows, POSTs them and
settles each with the receiver's answer, backing off for three days.
"""
