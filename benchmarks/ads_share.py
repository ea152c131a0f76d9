"""An Ads Manager share for the generated log (``generate.py --ads N``; off by default).

Campaigns of ad groups of ads, seeded apart from the rest of the log (so the default
log stays byte for byte what it was): each campaign is created with a campaign or
ad-group budget, toggled at random at every level, spent on while its ads are
effectively active (never past an owner's budget, so nothing is refused), sometimes
deleted, otherwise completed by its end timer. The generator follows the spec's
effective-status rules itself to keep to them; the engine is not consulted.

The peers of ``run.py`` know no Ads Manager: this share is for replays of our engine
only (``replay``, ``--workers``, the profilers).
"""

from __future__ import annotations

import calendar
import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator

__all__ = ["ads_events", "mixed"]

MINUTE = 60
HOUR = 3600
DAY = 86400

Timed = tuple[int, str, str, "dict | None"]


def _cents(units: int) -> str:
    return f"{units // 100}.{units % 100:02d}"


def _campaign(rng: random.Random, number: int, created: int) -> list[Timed]:
    cid = f"C-{number}"
    level = rng.choice(("campaign", "ad_group"))
    end = created + rng.randint(10, 30) * DAY
    out: list[Timed] = []
    data: dict = {"currency": "USD", "budget_level": level,
                  "end": _stamp(end)}
    budget: dict[str, int] = {}
    spent: dict[str, int] = {}
    if level == "campaign":
        budget[f"campaign/{cid}"] = rng.randint(50, 500) * 100
        data["budget"] = _cents(budget[f"campaign/{cid}"])
    out.append((created, "campaign.created", f"campaign/{cid}", data))
    on = {f"campaign/{cid}": True}
    groups: list[str] = []
    ads: dict[str, str] = {}  # ad -> its ad group
    t = created
    for g in range(rng.randint(1, 3)):
        gid = f"G-{number}-{g}"
        t += MINUTE
        gdata: dict = {"campaign": cid}
        if level == "ad_group":
            budget[f"ad_group/{gid}"] = rng.randint(20, 200) * 100
            gdata["budget"] = _cents(budget[f"ad_group/{gid}"])
        out.append((t, "ad_group.created", f"ad_group/{gid}", gdata))
        groups.append(f"ad_group/{gid}")
        on[f"ad_group/{gid}"] = True
        for a in range(rng.randint(1, 3)):
            aid = f"A-{number}-{g}-{a}"
            t += MINUTE
            out.append((t, "ad.created", f"ad/{aid}", {"ad_group": gid}))
            ads[f"ad/{aid}"] = f"ad_group/{gid}"
            on[f"ad/{aid}"] = True
    spent.update(dict.fromkeys(budget, 0))
    campaign = f"campaign/{cid}"

    def owner(ad: str) -> str:
        return campaign if level == "campaign" else ads[ad]

    def active(ad: str) -> bool:
        return (on[campaign] and on[ads[ad]] and on[ad]
                and spent[owner(ad)] < budget[owner(ad)])

    for _ in range(rng.randint(5, 40)):
        t += rng.randint(10, 600) * MINUTE
        if t >= end - HOUR:
            break
        roll = rng.random()
        if roll < 0.6:
            live = [ad for ad in ads if active(ad)]
            if not live:
                continue
            ad = rng.choice(live)
            left = budget[owner(ad)] - spent[owner(ad)]
            amount = left if rng.random() < 0.05 else rng.randint(1, max(1, left // 4))
            spent[owner(ad)] += amount
            out.append((t, "ad.spent", ad, {"amount": _cents(amount)}))
        elif roll < 0.97:
            subject = rng.choice([campaign, *groups, *ads])
            on[subject] = not on[subject]
            kind = subject.partition("/")[0]
            out.append((t, f"{kind}.turned_{'on' if on[subject] else 'off'}", subject, None))
        else:
            out.append((t, "campaign.deleted", campaign, None))  # its end timer: never due
            break
    return out


def _stamp(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def ads_events(campaigns: int, seed: int, start: int, span: int) -> list[Timed]:
    """``campaigns`` campaigns created over ``[start, start + span)``, in time order."""
    rng = random.Random(seed * 104729 + 14)
    events: list[Timed] = []
    for number in range(1, campaigns + 1):
        events += _campaign(rng, number, start + rng.randrange(max(1, span)))
    events.sort(key=lambda e: e[0])
    return events


def _moment(raw: bytes) -> int:
    stamp = json.loads(raw)["time"]
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))


def mixed(lines: Iterable[bytes], campaigns: int, seed: int) -> Iterator[bytes]:
    """The log's ``lines`` with ``campaigns`` Ads Manager campaigns merged in by time (a
    log line first on a tie), created over the log's first day to its last line."""
    lines = list(lines)
    if not lines:
        return iter(())
    first, last = _moment(lines[0]), _moment(lines[-1])
    events = ads_events(campaigns, seed, first, max(1, last - first - 31 * DAY))
    ids = random.Random(seed * 15485863 + 14)

    def line(moment: int, kind: str, subject: str, data: dict | None) -> bytes:
        envelope = {"specversion": "1.0", "id": str(uuid.UUID(int=ids.getrandbits(128), version=4)),
                    "source": "ads-manager", "time": _stamp(moment), "type": kind,
                    "subject": subject}
        if data is not None:
            envelope["data"] = data
        return json.dumps(envelope, separators=(",", ":")).encode()

    def merged() -> Iterator[bytes]:
        ads = iter(events)
        pending = next(ads, None)
        for raw in lines:
            moment = _moment(raw)
            while pending is not None and pending[0] < moment:
                yield line(*pending)
                pending = next(ads, None)
            yield raw
        while pending is not None:
            yield line(*pending)
            pending = next(ads, None)

    return merged()
