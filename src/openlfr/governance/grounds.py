"""The fixed lists a deployment's record is made of: legal bases, watchlist categories and
the results of an engagement after an alert.

Free text cannot be checked or counted; these lists can. Each value is a short stable code
(stored and audited) with the words shown to people.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LegalBasis(StrEnum):
    """The legal basis of a deployment.

    A police force processes biometric data for law enforcement under DPA 2018 Part 3: s.35
    (sensitive processing strictly necessary) with a condition of Schedule 8. Anyone else (a
    site operator) processes it under UK GDPR Art. 6 and Art. 9 with a condition of DPA 2018
    Schedule 1.
    """

    S35_SCH8_STATUTORY = "dpa2018_s35_sch8_para1"
    S35_SCH8_JUSTICE = "dpa2018_s35_sch8_para2"
    S35_SCH8_VITAL_INTERESTS = "dpa2018_s35_sch8_para3"
    S35_SCH8_SAFEGUARDING = "dpa2018_s35_sch8_para4"
    GDPR_UNLAWFUL_ACTS = "ukgdpr_a6_1f_a9_2g_sch1_para10"
    GDPR_STATUTORY = "ukgdpr_a6_1e_a9_2g_sch1_para6"

    @property
    def law_enforcement(self) -> bool:
        """Whether this is a DPA 2018 Part 3 (police) basis."""
        return self.value.startswith("dpa2018_s35")

    @property
    def words(self) -> str:
        """The basis in words, as published."""
        return _BASIS_WORDS[self]


_BASIS_WORDS = {
    LegalBasis.S35_SCH8_STATUTORY: "DPA 2018 s.35(5), Schedule 8 para 1: statutory purposes (preventing and "
                                   "detecting crime)",
    LegalBasis.S35_SCH8_JUSTICE: "DPA 2018 s.35(5), Schedule 8 para 2: administration of justice",
    LegalBasis.S35_SCH8_VITAL_INTERESTS: "DPA 2018 s.35(5), Schedule 8 para 3: protecting someone's vital interests",
    LegalBasis.S35_SCH8_SAFEGUARDING: "DPA 2018 s.35(5), Schedule 8 para 4: safeguarding children and individuals "
                                      "at risk",
    LegalBasis.GDPR_UNLAWFUL_ACTS: "UK GDPR Art. 6(1)(f) and Art. 9(2)(g), DPA 2018 Schedule 1 para 10: preventing "
                                   "or detecting unlawful acts",
    LegalBasis.GDPR_STATUTORY: "UK GDPR Art. 6(1)(e) and Art. 9(2)(g), DPA 2018 Schedule 1 para 6: statutory "
                               "purposes",
}


@dataclass(frozen=True)
class CategoryRule:
    """What a watchlist category means and needs."""

    words: str
    seriousness: str  # how serious the matter behind it is, for the composition summary
    needs_reference: bool  # a warrant or court reference must be recorded with each image


class WatchlistCategory(StrEnum):
    """Why a person may be on a watchlist: each tied to how serious the matter is. The
    "wanted" categories and court orders need a warrant or court reference per image."""

    WANTED_BY_COURT = "wanted_by_court"
    WANTED_SERIOUS = "wanted_serious_offence"
    WANTED_IMPRISONABLE = "wanted_imprisonable_offence"
    COURT_ORDER = "court_order"
    MISSING_AT_RISK = "missing_at_risk"

    @property
    def rule(self) -> CategoryRule:
        """Its meaning, seriousness and whether a reference is required."""
        return _CATEGORY_RULES[self]


_CATEGORY_RULES = {
    WatchlistCategory.WANTED_BY_COURT: CategoryRule("wanted by a court (warrant issued)", "court warrant", True),
    WatchlistCategory.WANTED_SERIOUS: CategoryRule("wanted for a serious (indictable-only) offence", "serious", True),
    WatchlistCategory.WANTED_IMPRISONABLE: CategoryRule("wanted for an imprisonable offence", "imprisonable", True),
    WatchlistCategory.COURT_ORDER: CategoryRule("in breach of a court order or bail conditions", "court order", True),
    WatchlistCategory.MISSING_AT_RISK: CategoryRule("missing and at risk of harm (protective)", "protective", False),
}


class EngagementResult(StrEnum):
    """What happened when officers acted on a verified alert."""

    SPOKEN_TO = "spoken_to"
    ARRESTED = "arrested"
    NO_FURTHER_ACTION = "no_further_action"
    NOT_FOUND = "not_found"
    MISTAKEN_IDENTITY = "mistaken_identity"


__all__ = ["CategoryRule", "EngagementResult", "LegalBasis", "WatchlistCategory"]
