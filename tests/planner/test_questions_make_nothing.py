"""A question reads: it never runs a service that sends or makes something (issue 15).

Wording outside the planning corpus, on a veterinary catalogue it does not have.
"""

from __future__ import annotations

from orra_planner import PlanRejected, ServiceCatalog
from tests.planner.catalog import catalog_of, string
from tests.planner.domains import service
from tests.planner.test_verb_classes import outcome, services


def clinic(sent: str = "sentAt") -> ServiceCatalog:
    return catalog_of(
        [
            service(
                "PetFile",
                "Returns a pet's file: its owner, the owner's latest note and the visit history.",
                {"petId": string()},
                {"owner": string(), "note": string(), "history": {"type": "array"}},
                required=["petId"],
                examples=("look up a pet", "open a pet's file"),
            ),
            service(
                "SendNote",
                "Posts a note to the owner's app and emails it to them.",
                {"petId": string(), "note": string()},
                {sent: string()},
                required=["petId", "note"],
                examples=("message the owner", "tell the owner"),
            ),
            service(
                "DraftNote",
                "Writes a suggested note to an owner for a vet to review.",
                {"history": {"type": "array"}},
                {"note": string()},
                required=["history"],
                examples=("suggest a note", "prepare a note for the owner"),
            ),
        ]
    )


def test_a_question_about_a_note_reads_it_and_sends_nothing() -> None:
    asked = "What did the owner's last note on PET-7 say?"
    assert services(outcome(clinic(), asked, petId="PET-7")) == ["PetFile"]
    # a sender whose output names the note (its id) may answer too: then the planner asks
    # which one is meant rather than send anything
    unsure = outcome(clinic(sent="noteId"), asked, petId="PET-7")
    assert isinstance(unsure, PlanRejected)
    assert "too vague to choose among PetFile, SendNote" in unsure.reasons[0]


def test_a_request_to_write_one_still_makes_it() -> None:
    result = outcome(clinic(), "Draft a note for the owner of PET-7", petId="PET-7")
    assert "DraftNote" in services(result)
    assert "SendNote" not in services(result)
