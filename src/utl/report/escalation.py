"""Which breaks middle office must look at first (report.md, "Escalation")."""

from __future__ import annotations

from decimal import Decimal


def is_escalated(age_days: int, diff_value: Decimal | None, after_days: int, value: Decimal) -> bool:
    """Older than ``after_days`` or worth more than ``value`` at mark (either sign).

    An unpriced break (no mark, ``diff_value`` null) escalates by age only: its value is
    unknown, not zero.
    """
    # copy_abs, not abs(): abs() rounds to the thread's 28 digits, and a value can have 38.
    return age_days > after_days or (diff_value is not None and diff_value.copy_abs() > value)
