"""The statutory clock of a request: one calendar month from receipt, extendable where the law allows.

A month is counted as the ICO counts it: from the day of receipt to the same day of the next
month (received 3 March, due 3 April); where the next month has no such day, the last day of
that month (received 31 January, due 28 or 29 February). The time of day is kept, so a request
received at 15:00 is due at 15:00.

Extensions (:data:`EXTENSION_MONTHS`): UK GDPR Art. 12(3) allows two further months for complex
or numerous requests; the extended date is counted from receipt (three months), so a month-end
receipt keeps its month end (31 January -> 30 April, not 28 April). DPA 2018 Part 3 (s.45 and
s.54) gives a controller one month with no extension, so a police force's request cannot be extended.
"""

from __future__ import annotations

import calendar
from datetime import datetime

#: the months a regime's clock may be extended by (0: no extension)
EXTENSION_MONTHS = {"uk_gdpr": 2, "dpa_part3": 0}
#: the law each regime's clock comes from, for messages and letters
CLOCK_LAW = {"uk_gdpr": "UK GDPR Art. 12(3)", "dpa_part3": "DPA 2018 s.45(3) and s.54"}


def add_months(at: datetime, months: int) -> datetime:
    """``at`` moved ``months`` calendar months on: the same day of the month, or the month's
    last day where it has no such day."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def due_date(received_at: datetime, extended: bool = False, regime: str = "uk_gdpr") -> datetime:
    """When a request received at ``received_at`` must be answered."""
    return add_months(received_at, 1 + (EXTENSION_MONTHS.get(regime, 0) if extended else 0))


def days_left(due_at: datetime, now: datetime) -> int:
    """Whole calendar days (UTC) from ``now`` to the due date: 0 on the day it is due,
    negative once it has passed."""
    return (due_at.date() - now.date()).days


__all__ = ["CLOCK_LAW", "EXTENSION_MONTHS", "add_months", "days_left", "due_date"]
