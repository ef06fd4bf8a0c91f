"""The quality gate: a poll far worse than the last good one is not applied.

A DMS fault can send a whole answer of undocumented enum words, dropped fields or wrong JSON
types. Taken as the truth, it would move every device to ``other`` and make every active alarm
vanish, so alerts resolve in the middle of a DMS fault. ``judge`` compares a poll's ``Quality``
with the last applied one: more than ``skipped_above`` of its items skipped, or more than
``bad_values_above`` of its items with an unknown or wrongly typed value in any one field, while
the last good poll had under ``last_good_below`` of that, makes the poll *suspect*. The poller
then keeps the last good table and reports the endpoint down with reason ``suspect``. A poll with
no last good one to compare with is always applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config import GateSettings
from ..vocabulary import Parsed

__all__ = ["GateSettings", "Quality", "judge"]


@dataclass(frozen=True, slots=True)
class Quality:
    """How much of one poll's answer was usable."""

    items: int
    skipped: int
    issues: Mapping[str, int] = field(default_factory=dict)  # field -> rows with a bad value

    @classmethod
    def of(cls, parsed: Parsed) -> Quality:
        return cls(items=parsed.items, skipped=parsed.skipped, issues=parsed.issues)

    def share(self, count: int) -> float:
        return count / self.items if self.items else 0.0


def judge(new: Quality, last_good: Quality | None, settings: GateSettings) -> str | None:
    """Why ``new`` is suspect (one line naming the field and the counts), or None to apply it."""
    if last_good is None or not settings.enabled:
        return None
    if new.share(new.skipped) > settings.skipped_above and (
        last_good.share(last_good.skipped) < settings.last_good_below
    ):
        return (
            f"{new.skipped} of {new.items} rows skipped (no usable id), the last good poll "
            f"skipped {last_good.skipped} of {last_good.items}"
        )
    worse = [
        (name, count)
        for name, count in sorted(new.issues.items(), key=lambda kv: (-kv[1], kv[0]))
        if new.share(count) > settings.bad_values_above
        and last_good.share(last_good.issues.get(name, 0)) < settings.last_good_below
    ]
    if not worse:
        return None
    name, count = worse[0]
    more = f" (and {len(worse) - 1} more field{'s' if len(worse) > 2 else ''})" if worse[1:] else ""
    return (
        f"field {name}: {count} of {new.items} rows with an unknown or wrongly typed value, "
        f"the last good poll had {last_good.issues.get(name, 0)} of {last_good.items}{more}"
    )
