"""The references recorded with a shared image: the subject reference (a pseudonymous code,
never a name or a date of birth) and the warrant or court reference.

A shared image carries a subject reference so that the supplying force can find its own
record again; the operator and everyone downstream must not learn who the person is from it.
:func:`check_subject_ref` refuses a reference that looks like a name or carries a date of birth.

The rule (a heuristic: it reads the shape of the text, it knows no names):

- **It must be a code with a serial number**: at least one digit, and only letters, digits,
  spaces and ``- / _ . :  #``. ``MPS-2026-000123``, ``SUBJ-0001``, ``CR/01/4567/26`` pass;
  ``RIDGE`` does not.
- **Letters are code letters**: a run of two or more letters with a lower-case letter in it
  (``Tom``, ``ridge``, ``McDonald``, ``Li``) is read as a word of a name; codes are written in
  capitals. A single lower-case letter (``S-a``) is allowed.
- **No two words**: two runs of two or more letters separated by a space, comma, underscore
  or full stop (``TOM RIDGE``, ``RIDGE, TOM``, ``TOM_RIDGE``) are read as a name.
- **No date**: ISO dates (``1945-08-26``, ``1945/08/26``), day-month-year or month-day-year in
  digits (``26/08/1945``, ``26.8.45``, ``8-26-1945``), and dates with a month name (``26 Aug
  1945``, ``August 26, 1945``, ``26AUG45``) are refused, whatever they are the date of; the
  digit forms only when the day and month are possible (so ``CR/01/4567/26`` is not a date).
- **No birth words**: ``dob``, ``d.o.b``, ``born``, ``birth``, ``b. 1945``, ``née``.

What it cannot catch: a surname in capitals next to a number (``RIDGE-0001``; a bare year is
allowed too, so ``RIDGE-1945`` passes), initials (``TR-0001``), a name hidden in a code
(``TRIDGE-01``), a date of birth written as digits without separators (``19450826``), or a
reference that is itself an identifying number (a Police National Computer ID, a passport
number). It also refuses a few harmless codes (a code with a lower-case word, or whose digit
groups happen to form a possible date, such as ``REF-01-02-03``). It is a net for mistakes, not
a guarantee: the supplier remains responsible for what the reference reveals.

A **warrant or court reference** (required for the categories whose rule says so, see
:class:`openlfr.governance.grounds.WatchlistCategory`) is checked only for a plausible shape
(:func:`check_warrant_ref`): 4 to 60 characters of capitals, digits, spaces and ``- / . : #``,
starting with a letter or digit, with at least two digits, and no word of a name in it (the
same lower-case word rule as above). Dates are allowed there (a warrant number may carry its
date of issue). Whether the warrant exists is for the supplying force to answer for.
"""

from __future__ import annotations

import re

from openlfr.errors import InputError

_ALLOWED = re.compile(r"[A-Za-z0-9 /\-_.:#]+")
_LETTERS = re.compile(r"[A-Za-z]+")
_TWO_WORDS = re.compile(r"[A-Za-z]{2,}[ ,_.]+[A-Za-z]{2,}")
_BIRTH = re.compile(r"\bd\.?\s*o\.?\s*b\b|\bborn\b|birth|\bb\.\s*\d|\bn[ée]e\b", re.IGNORECASE)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = r"(?:" + "|".join(_MONTHS) + r")[a-z]*\.?"
# 26 Aug 1945, 26th August 1945, 26-AUG-45, 26AUG45, Aug 26, 1945, August 1945
_NAMED_DATE = re.compile(
    r"(?<![A-Za-z])(?:\d{1,2}(?:st|nd|rd|th)?[\s\-/.]*" + _MONTH + r"[\s\-/.,]*\d{2,4}"
    r"|" + _MONTH + r"[\s\-/.]*\d{1,2}(?:st|nd|rd|th)?,?[\s\-/.]*\d{2,4}"
    r"|" + _MONTH + r"[\s\-/.,]*\d{4})(?!\d)",
    re.IGNORECASE)
# three digit groups with one kind of separator; checked for a possible day and month below
_ISO = re.compile(r"(?<!\d)(\d{4})([\-/.])(\d{1,2})\2(\d{1,2})(?!\d)")
_DMY = re.compile(r"(?<!\d)(\d{1,2})([\-/. ])(\d{1,2})\2(\d{2}|\d{4})(?!\d)")


def _possible(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


def _has_date(text: str) -> bool:
    if _NAMED_DATE.search(text):
        return True
    for m in _ISO.finditer(text):
        if _possible(int(m.group(4)), int(m.group(3))):
            return True
    for m in _DMY.finditer(text):
        a, b = int(m.group(1)), int(m.group(3))
        if _possible(a, b) or _possible(b, a):  # day/month or month/day
            return True
    return False


def name_or_birth_date(ref: str) -> str | None:
    """Why ``ref`` looks like a name or a date of birth, or None when it looks like a code."""
    text = ref.strip()
    if not text:
        return "it is empty"
    if _BIRTH.search(text):
        return "it mentions a birth or date of birth"
    if _has_date(text):
        return "it contains a date"
    if _TWO_WORDS.search(text):
        return "it has two words, as a name does"
    for run in _LETTERS.findall(text):
        if len(run) >= 2 and any(c.islower() for c in run):
            return f"{run!r} reads as a word of a name (write codes in capitals)"
    if not _ALLOWED.fullmatch(text):
        return "it has characters other than letters, digits, spaces and - / _ . : #"
    if not any(c.isdigit() for c in text):
        return "it has no serial number (no digit)"
    return None


def check_subject_ref(ref: str) -> str:
    """``ref`` stripped, or an :class:`InputError` saying why it looks like a name or a date of birth."""
    why = name_or_birth_date(ref)
    if why is not None:
        raise InputError(f"subject reference refused: {why}; use a pseudonymous code such as "
                         f"MPS-2026-000123, never a name or a date of birth")
    return ref.strip()


_WARRANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 /\-.:#]{3,59}")


def warrant_ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not a plausible warrant or court reference, or None."""
    text = ref.strip()
    if not text:
        return "it is missing"
    if not _WARRANT.fullmatch(text):
        return "it must be 4 to 60 letters, digits, spaces and - / . : #, starting with a letter or digit"
    if sum(c.isdigit() for c in text) < 2:
        return "it has fewer than two digits (a warrant or court reference is numbered)"
    for run in _LETTERS.findall(text):
        if len(run) >= 2 and any(c.islower() for c in run):
            return f"{run!r} reads as a word, not a reference (write references in capitals)"
    return None


def check_warrant_ref(ref: str) -> str:
    """``ref`` stripped, or an :class:`InputError` saying why it is not a plausible warrant or court reference."""
    why = warrant_ref_problem(ref)
    if why is not None:
        raise InputError(f"warrant or court reference refused: {why} (e.g. WA/2026/00123)")
    return ref.strip()


__all__ = ["check_subject_ref", "check_warrant_ref", "name_or_birth_date", "warrant_ref_problem"]
