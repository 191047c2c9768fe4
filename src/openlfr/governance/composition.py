"""What a watchlist is made of, as the authorising officer sees it before authorising.

The summary holds counts and dates only: no labels, reasons, subject references or images.
It is computed live for a requested deployment and frozen with the authority.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from openlfr.governance.context import Ctx
from openlfr.governance.grounds import WatchlistCategory
from openlfr.store.models import Deployment, WatchlistEntry

# a category stored before the fixed list existed (free text) has no rule to show
LEGACY = ("a free-text category from before the fixed list", "not classified")


def category_words(category: str) -> tuple[str, str]:
    """(the category in words, its seriousness) for a stored category string."""
    try:
        rule = WatchlistCategory(category).rule
    except ValueError:
        return LEGACY
    return rule.words, rule.seriousness


def composition(ctx: Ctx, watchlist_id: int) -> dict[str, Any]:
    """The watchlist's composition now: entries per category (with its words and seriousness),
    under-18 entries, total entries, the oldest image's date and the entries due for review
    within ``policy.entry_review_warning_days`` (ids and dates only). JSON-ready."""
    entries = ctx.session.execute(
        select(WatchlistEntry).where(WatchlistEntry.watchlist_id == watchlist_id, WatchlistEntry.removed_at.is_(None))
        .order_by(WatchlistEntry.id)).scalars().all()
    now = ctx.now()
    warn = ctx.policy.entry_review_warning_days
    horizon = now.date() + timedelta(days=warn)
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.shared_image.category] = counts.get(e.shared_image.category, 0) + 1
    categories = []
    for category, n in sorted(counts.items()):
        words, seriousness = category_words(category)
        categories.append({"category": category, "words": words, "seriousness": seriousness, "entries": n})
    oldest = min((e.shared_image.image_date for e in entries), default=None)
    due = sorted((e.review_date, e.id) for e in entries if e.review_date <= horizon)
    return {
        "at": now.isoformat(), "watchlist_id": watchlist_id, "entries": len(entries),
        "under_18": sum(1 for e in entries if e.under_18 or e.shared_image.under_18),
        "oldest_image": oldest.isoformat() if oldest else None, "categories": categories,
        "review_warning_days": warn,
        "review_due": [{"entry_id": i, "review_date": d.isoformat()} for d, i in due],
    }


__all__ = ["category_words", "composition"]


def deployment_composition(dep: Deployment, ctx: Ctx | None) -> dict[str, Any] | None:
    """The composition an officer sees: frozen at authorisation, else (while requested, given
    ``ctx``) the watchlist's now."""
    if dep.composition is not None:
        return dep.composition
    if ctx is not None and dep.status == "requested":
        return composition(ctx, dep.watchlist_id)
    return None
