"""The outcome letter of a person's request, from plain-text templates: one opening per kind of
request, one body per decision, the reasons in words, the requester's own records found (and
nothing of anyone else's), what the system keeps of people who do not match, and how to complain.

The letter is generated when the request is decided and kept sealed under the request's key;
its SHA-256 is in the ``request.decide`` audit event, so the letter sent can be proved later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from string import Template

#: what each kind of request asks, in the letter's first line
ASKED = {
    "access": "asked whether we hold personal data about you from our live facial recognition system, and for a copy",
    "erasure": "asked us to erase personal data about you held by our live facial recognition system",
    "restriction": "asked us to restrict our use of personal data about you in our live facial recognition system",
    "objection": "objected to our use of personal data about you in our live facial recognition system",
    "complaint": "made a complaint about our use of live facial recognition",
}

#: the reasons a decision may give, in words
REASON_TEXT = {
    "avoid_obstructing_inquiry": "to avoid obstructing an official or legal inquiry, investigation or procedure "
                                 "(Data Protection Act 2018, section 45(4)(a))",
    "avoid_prejudicing_crime": "to avoid prejudicing the prevention, detection, investigation or prosecution of "
                               "criminal offences or the execution of criminal penalties (section 45(4)(b))",
    "public_security": "to protect public security (section 45(4)(c))",
    "national_security": "to protect national security (section 45(4)(d))",
    "rights_of_others": "to protect the rights and freedoms of other people (UK GDPR Article 15(4); "
                        "Data Protection Act 2018, section 45(4)(e))",
    "manifestly_unfounded": "the request is manifestly unfounded or excessive (UK GDPR Article 12(5); "
                            "Data Protection Act 2018, section 53)",
    "legal_claims": "some records are kept for legal proceedings (a legal hold) and cannot be erased until the "
                    "proceedings end (UK GDPR Article 17(3)(e))",
    "identity_not_verified": "we could not verify your identity, so we cannot disclose or change personal data "
                             "in your name",
    "not_held_by_us": "some records are held by another controller (the police force that supplied them), "
                      "who decides on them: we have passed your request on, and you may also write to them",
}

#: what was done, by kind and decision ("*": any kind)
BODY = {
    ("access", "granted"): "We searched our records with the photo you gave us. We found the records listed below, "
                           "which a member of our staff confirmed are of you.",
    ("access", "partly"): "We searched our records with the photo you gave us. We found the records of you listed "
                          "below; some of the information about them is withheld, for the reasons given.",
    ("erasure", "granted"): "We erased every record that our search by face found and a member of our staff "
                            "confirmed is of you. They are listed below.",
    ("erasure", "partly"): "We erased the records of you listed below, found by our search by face and confirmed by a "
                           "member of our staff. We could not erase the others, for the reasons given.",
    ("restriction", "granted"): "We have recorded your request for restriction against the records of you listed "
                                "below.",
    ("restriction", "partly"): "We have recorded your request for restriction against some of the records of you, "
                               "for the reasons given.",
    ("objection", "granted"): "We have upheld your objection and recorded it against the records of you listed below.",
    ("objection", "partly"): "We have upheld your objection in part, for the reasons given.",
    ("complaint", "granted"): "We have upheld your complaint.",
    ("complaint", "partly"): "We have upheld your complaint in part.",
    ("*", "refused"): "We have decided not to act on your request, for the reasons given below.",
    ("*", "nothing_held"): "We searched our records with the photo you gave us. We found nothing of you.",
}

NOTHING_KEPT = ("This system keeps nothing of people who do not match a watchlist: when a camera sees a face "
                "that does not match, it keeps no image of it and no face template, only a count of faces seen.")

PHOTO_DELETED = "The photo you gave us was held, encrypted, only for this request, and has now been deleted."

COMPLAIN = {
    "uk_gdpr": ("If you are unhappy with this answer, please tell us first. You may also complain to the "
                "Information Commissioner's Office (ICO): ico.org.uk/make-a-complaint, telephone 0303 123 1113, "
                "or write to Wycliffe House, Water Lane, Wilmslow, Cheshire SK9 5AF (UK GDPR Article 77). "
                "You may also apply to a court (Data Protection Act 2018, section 167)."),
    "dpa_part3": ("If you are unhappy with this answer, please tell us first. You may also complain to the "
                  "Information Commissioner's Office (ICO): ico.org.uk/make-a-complaint, telephone 0303 123 1113, "
                  "or write to Wycliffe House, Water Lane, Wilmslow, Cheshire SK9 5AF (Data Protection Act 2018, "
                  "section 165). Where we have restricted your rights you may ask the Commissioner to check that "
                  "the restriction is lawful (section 51). You may also apply to a court (section 167)."),
}

LETTER = Template("""$organisation
$date

To: $name
$contact

Your request, our reference R-$id, received $received

You $asked.

$body
$records$reasons
$kept
$complain
""")


@dataclass(frozen=True)
class LetterData:
    """What a letter says, gathered by the requests service."""

    id: int
    organisation: str
    regime: str
    kind: str
    decision: str
    name: str
    contact: str
    received_at: datetime
    decided_at: datetime
    reasons: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)  # the requester's own records (confirmed findings)
    withheld: list[str] = field(default_factory=list)  # of those, the ones kept (legal hold, another controller)
    searched: bool = False  # whether the requester's photo was held (and searched with)
    note: str = ""  # the officer's words to the requester, if any


def render(data: LetterData) -> str:
    """The letter, as plain text."""
    body = BODY.get((data.kind, data.decision)) or BODY.get(("*", data.decision)) or ""
    if data.note:
        body += f"\n\n{data.note}"
    records = ""
    if data.records:
        records = "\nRecords of you that we found:\n" + "".join(f"  - {r}\n" for r in data.records)
    if data.withheld:
        records += "\nRecords of you that we have not erased or given:\n" + "".join(f"  - {r}\n" for r in data.withheld)
    reasons = ""
    if data.reasons:
        reasons = "\nOur reasons:\n" + "".join(f"  - {REASON_TEXT.get(r, r)}\n" for r in data.reasons)
    kept = ""
    if data.searched:
        kept = (f"\n{NOTHING_KEPT}\n" if data.decision == "nothing_held" else "") + f"{PHOTO_DELETED}\n"
    return LETTER.substitute(
        organisation=data.organisation, date=f"{data.decided_at:%d %B %Y}", name=data.name, contact=data.contact,
        id=data.id, received=f"{data.received_at:%d %B %Y}", asked=ASKED.get(data.kind, "made a request"),
        body=body, records=records, reasons=reasons, kept=kept, complain=COMPLAIN.get(data.regime, COMPLAIN["uk_gdpr"]),
    )


__all__ = ["NOTHING_KEPT", "REASON_TEXT", "LetterData", "render"]
