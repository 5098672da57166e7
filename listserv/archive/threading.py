# SPDX-License-Identifier: Apache-2.0
"""Threads of posts by Jamie Zawinski's algorithm (References, In-Reply-To, then subject).

Input: posts as `Item`s (a key, the Message-ID, the Message-IDs it refers to
oldest first, the subject, the date). Output: `Node` trees, one per thread,
oldest thread first, children in date order. Nodes whose post is missing (a
reply's parent that is not in the set) are kept only where they join
siblings, as the algorithm says. Pure: no database, no I/O.

`base_subject` is the one definition of "the same subject" for the archive:
`Re:`, `Fwd:` (in several languages) and a bracketed list tag are removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

#: Reply and forward markers, with an optional count (`Re[2]:`), and list tags.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|ref|fwd?|wg|tr|rv)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]|\[[^\]]{1,40}\])\s*",
    re.IGNORECASE,
)
_REPLY = re.compile(r"^\s*(?:\[[^\]]{1,40}\]\s*)*(?:re|aw|sv|vs|antw)\s*(?:\[\d+\])?\s*[:：]", re.I)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


def base_subject(subject: str) -> str:
    """The subject without reply/forward markers and list tags, folded, white space single.

    >>> base_subject("Re: [SM-COP] RE: Fwd: Records  schedules")
    'records schedules'
    """
    text = " ".join(subject.split())
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return text.casefold()[:200]


def is_reply_subject(subject: str) -> bool:
    """Whether the subject says it is a reply (`Re:`), which subject threading needs."""
    return bool(_REPLY.match(subject))


def message_ids(header: str) -> list[str]:
    """The Message-IDs in a References or In-Reply-To header, in order, angle brackets kept.

    >>> message_ids("<a@x> junk <b@y>")
    ['<a@x>', '<b@y>']
    """
    return _MESSAGE_ID.findall(header)


def references_of(references: str, in_reply_to: str) -> list[str]:
    """What a post refers to, oldest first: References, then In-Reply-To if not last already."""
    refs = message_ids(references)
    for mid in message_ids(in_reply_to)[:1]:
        if not refs or refs[-1] != mid:
            refs = [r for r in refs if r != mid] + [mid]
    return refs


@dataclass(frozen=True)
class Item:
    key: int
    message_id: str
    references: Sequence[str]
    subject: str
    date: datetime


@dataclass(eq=False)
class Node:
    """A place in a thread: a post (`item`), or a missing one that joins its children."""

    item: Item | None = None
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    def walk(self, depth: int = 0) -> Iterable[tuple[int, Item]]:
        """Every post under this node, depth first, with its depth."""
        if self.item is not None:
            yield depth, self.item
            depth += 1
        for child in self.children:
            yield from child.walk(depth)

    def items(self) -> list[Item]:
        return [item for _, item in self.walk()]

    def first_date(self) -> datetime:
        return min(item.date for item in self.items())

    def last_date(self) -> datetime:
        return max(item.date for item in self.items())

    def subject(self) -> str:
        items = self.items()
        return min(items, key=lambda i: i.date).subject if items else ""

    def _has_descendant(self, other: Node) -> bool:
        stack = list(self.children)
        while stack:
            node = stack.pop()
            if node is other:
                return True
            stack.extend(node.children)
        return False

    def adopt(self, child: Node) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)


def _link(table: dict[str, Node], items: Sequence[Item]) -> None:
    for item in items:
        node = table.get(item.message_id) if item.message_id else None
        if node is not None and node.item is None:
            node.item = item  # a post we had only seen referred to
        else:
            # New, or a duplicate Message-ID: the post gets a node of its own.
            node = Node(item)
            fresh = item.message_id and item.message_id not in table
            table[item.message_id if fresh else f"\0{item.key}"] = node
        parent: Node | None = None
        for ref in item.references:
            ref_node = table.get(ref)
            if ref_node is None:
                ref_node = table[ref] = Node()
            if (
                parent is not None
                and ref_node.parent is None
                and ref_node is not parent
                and not ref_node._has_descendant(parent)
            ):
                parent.adopt(ref_node)
            parent = ref_node
        # The post's own parent is the last reference, whatever was guessed before.
        if parent is not None and (parent is node or node._has_descendant(parent)):
            parent = None
        if node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
        if parent is not None:
            parent.adopt(node)


def _prune(node: Node) -> list[Node]:
    """The nodes that take `node`'s place: itself, or an empty node's children."""
    kept: list[Node] = []
    for child in list(node.children):
        kept.extend(_prune(child))
    node.children = kept
    for child in kept:
        child.parent = node
    if node.item is None and (node.parent is not None or len(kept) <= 1):
        return kept
    return [node]


def _group_by_subject(roots: list[Node]) -> list[Node]:
    """Threads with the same base subject join: under a post that is not a reply, if any."""
    subjects = {id(root): base_subject(root.subject()) for root in roots}
    by_subject: dict[str, Node] = {}
    for root in roots:
        subject = subjects[id(root)]
        if not subject:
            continue
        other = by_subject.get(subject)
        if other is None or _prefer(root, other):
            by_subject[subject] = root
    merged: list[Node] = []
    for root in roots:
        subject = subjects[id(root)]
        keeper = by_subject.get(subject) if subject else None
        if keeper is None or keeper is root:
            merged.append(root)
        elif keeper.item is None and root.item is None:
            for child in list(root.children):
                keeper.adopt(child)
        elif keeper.item is None:
            keeper.adopt(root)
        elif root.item is not None and not is_reply_subject(root.item.subject):
            # Two posts that both began a thread with the same subject: siblings.
            container = Node()
            index = merged.index(keeper)
            container.adopt(keeper)
            container.adopt(root)
            merged[index] = container
            by_subject[subject] = container
        else:
            keeper.adopt(root)
    return merged


def _prefer(candidate: Node, current: Node) -> bool:
    """The better head for a subject: an empty container, else a post that is not a reply."""
    if current.item is None:
        return False
    if candidate.item is None:
        return True
    return is_reply_subject(current.item.subject) and not is_reply_subject(candidate.item.subject)


def _sort(node: Node) -> tuple[datetime, int]:
    """Children in order of their earliest post, at every level; the node's own earliest."""
    firsts = {id(child): _sort(child) for child in node.children}
    node.children.sort(key=lambda n: firsts[id(n)])
    own = [(node.item.date, node.item.key)] if node.item is not None else []
    return min([*own, *firsts.values()])


def thread(items: Sequence[Item]) -> list[Node]:
    """The threads of these posts, oldest first (JWZ: link, prune, group by subject, sort)."""
    ordered = sorted(items, key=lambda i: (i.date, i.key))
    table: dict[str, Node] = {}
    _link(table, ordered)
    roots: list[Node] = []
    seen: set[int] = set()
    for node in table.values():
        if node.parent is None and id(node) not in seen:
            seen.add(id(node))
            roots.append(node)
    pruned: list[Node] = []
    for root in roots:
        pruned.extend(_prune(root))
    for root in pruned:
        root.parent = None
    threads = _group_by_subject([r for r in pruned if r.item is not None or r.children])
    firsts = {id(root): _sort(root) for root in threads}
    threads.sort(key=lambda n: firsts[id(n)])
    return threads
