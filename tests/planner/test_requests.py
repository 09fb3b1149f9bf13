"""How requests are read: questions change nothing, idioms of request, context, chains.

Wording outside the planning corpus (issue 15): each test names the general mechanism.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from orra_planner import OfflinePlanner, Planned, PlanRejected, ServiceCatalog
from orra_planner.parts import request_parts
from orra_planner.strategy import finalize
from tests.planner.catalog import catalog_of, string
from tests.planner.catalog import request as make_request
from tests.planner.domains import service

PLANNER = OfflinePlanner()


def outcome(catalog: ServiceCatalog, action: str, **fields: Any) -> Planned | PlanRejected:
    req = dataclasses.replace(make_request(action, catalog, **fields), allow_partial=False)
    return finalize(PLANNER.plan_now(req), req)


def services(result: Planned | PlanRejected) -> list[str]:
    assert isinstance(result, Planned), result
    return sorted(t.service for t in result.plan.tasks)


def purchasing() -> ServiceCatalog:
    """Bills from vendors: one service reads a bill, one pays the vendor."""
    return catalog_of(
        [
            service(
                "BillLookup",
                "Fetches a bill by number: who sent it, its total and due date.",
                {"billId": string()},
                {"payeeId": string(), "total": {"type": "number"}, "dueDate": string()},
                examples=("get the bill",),
            ),
            service(
                "PayVendor",
                "Sends a bank transfer to a vendor to settle a bill.",
                {"billId": string(), "payeeId": string(), "total": {"type": "number"}},
                {"transferId": string()},
                examples=("pay the vendor", "settle a bill with a vendor"),
            ),
        ]
    )


def test_a_question_never_selects_a_service_that_acts() -> None:
    # "vendor" is in PayVendor's name: a question about the vendor of a bill reads it
    result = outcome(
        purchasing(), "Which vendor sent bill B-77 and how much is it for?", billId="B-77"
    )
    assert services(result) == ["BillLookup"]


def test_a_request_to_act_still_selects_it() -> None:
    result = outcome(purchasing(), "Pay the vendor of bill B-77", billId="B-77")
    assert services(result) == ["BillLookup", "PayVendor"]


def test_a_noun_before_a_person_is_a_verb() -> None:
    # "text" is a noun to the lexicon; "text him ..." asks to text him
    parts = request_parts("Cancel the booking and text him the refund details")
    assert [(p.text, p.head_term and p.head_term.lemma) for p in parts] == [
        ("Cancel the booking", "cancel"),
        ("text him the refund details", "text"),
    ]
