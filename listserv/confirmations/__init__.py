# SPDX-License-Identifier: Apache-2.0
"""Confirmations: the requests that wait for a token to come back, and what each does.

`pending` makes and finds the rows (the token is stored only as its SHA-256);
`dispatch` carries out the request a returned token names, by its kind: one
table for every kind of confirmation the service sends.
"""
