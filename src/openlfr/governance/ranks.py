"""Police ranks in England and Wales, lowest first, with the Metropolitan Police's own names.

Agreements are approved and deployments authorised only by an authorising officer of at
least :attr:`Policy.min_authorising_rank` (superintendent by default, after the College of
Policing's authorised professional practice on live facial recognition).
"""

from __future__ import annotations

from openlfr.errors import InputError

# rank -> level; ranks of the same level are equivalent (Met names beside the county ones)
RANKS: dict[str, int] = {
    "constable": 1,
    "sergeant": 2,
    "inspector": 3,
    "chief_inspector": 4,
    "superintendent": 5,
    "chief_superintendent": 6,
    "assistant_chief_constable": 7, "commander": 7,
    "deputy_chief_constable": 8, "deputy_assistant_commissioner": 8,
    "chief_constable": 9, "assistant_commissioner": 9,
    "deputy_commissioner": 10,
    "commissioner": 11,
}


def check_rank(rank: str) -> str:
    """``rank`` if it is known, else a clear :class:`InputError`."""
    if rank not in RANKS:
        raise InputError(f"unknown police rank {rank!r}; known ranks: {', '.join(RANKS)}")
    return rank


def at_least(rank: str | None, minimum: str) -> bool:
    """Whether ``rank`` is at or above ``minimum`` (no rank never is)."""
    return rank is not None and rank in RANKS and RANKS[rank] >= RANKS[check_rank(minimum)]
