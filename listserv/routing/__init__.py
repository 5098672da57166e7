# SPDX-License-Identifier: Apache-2.0
"""Routing: from a stored inbound message to the stage each of its recipients names.

`delivery` is the type every stage receives (it imports no stage), `router`
the table of destinations, `processing` the loop that claims stored messages.
"""
