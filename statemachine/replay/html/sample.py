"""Which entities a bounded report shows: a sample that keeps every kind and state.

A report of a million events cannot carry every entity's diagram (nor, past a point,
every entity's name) and stay a file people can open. A plain "the first N" would show
only the log's opening days, and a random sample would miss the rare outcomes (the one
expired order) that people most want to see. So the sample is *stratified*: the
entities are grouped by kind and final state, every group gets an equal share of the
bound (a small group's unused share goes to the larger ones), and within a group the
chosen ones are spread evenly over the order of creation. It is deterministic: the same
report gives the same sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["group_by_kind_and_state", "quotas", "stratified"]


def group_by_kind_and_state(entities: Mapping[str, str]) -> dict[tuple[str, str], list[str]]:
    """``(kind, state) -> subjects`` in creation order (the report's order)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for subject, state in entities.items():
        groups.setdefault((subject.partition("/")[0], state), []).append(subject)
    return groups


def quotas(sizes: Sequence[int], limit: int) -> list[int]:
    """How many of each group to take: at most ``limit`` in all, as even as the group
    sizes allow (water-filling: a group smaller than its share takes all it has)."""
    if limit < 0:
        raise ValueError(f"a sample bound cannot be negative: {limit}")
    taken = [0] * len(sizes)
    left = limit
    open_groups = [i for i, size in enumerate(sizes) if size > 0]
    while left > 0 and open_groups:
        share = max(left // len(open_groups), 1)
        for i in list(open_groups):
            if left == 0:
                break
            more = min(share, sizes[i] - taken[i], left)
            taken[i] += more
            left -= more
            if taken[i] == sizes[i]:
                open_groups.remove(i)
    return taken


def _spread(items: Sequence[str], count: int) -> list[str]:
    """``count`` of ``items``, evenly spaced, the first always among them."""
    if count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def stratified(entities: Mapping[str, str], limit: int) -> list[str]:
    """At most ``limit`` subjects of ``entities`` (subject -> state), every (kind,
    state) group represented while the bound allows, in the report's order."""
    if len(entities) <= limit:
        return list(entities)
    groups = group_by_kind_and_state(entities)
    members = list(groups.values())
    chosen: set[str] = set()
    for items, count in zip(members, quotas([len(m) for m in members], limit), strict=True):
        chosen.update(_spread(items, count))
    return [subject for subject in entities if subject in chosen]
