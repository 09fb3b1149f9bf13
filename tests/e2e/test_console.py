"""The web console (``/ui``) in a real browser against a real stack.

Playwright for Python drives Debian's ``chromium`` (``make test`` installs it when it is
missing; nothing downloads a browser build). One stack serves the whole module: the
example services and the slow ``ArchiveVault`` of :mod:`tests.e2e.stack_fixtures`.

``ORRA_CONSOLE_SCREENSHOTS=<dir>`` saves the screenshots shown in README.md
(``docs/console/*.png``) while the tests run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from orra_events import Bus, Topology
from orra_gateway import create_app
from tests.e2e.stack_fixtures import StackHandle, free_port
from tests.gateway.conftest import BOOTSTRAP_KEY, ServerThread, gateway_settings
from tests.gateway.test_search import NEWER, submitted

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

pytestmark = pytest.mark.e2e

ORDER = "Process new order and arrange optimal delivery"
ITEMS = '[{"id":"PROD789","quantity":2}]'
ARCHIVE = "Archive the ledger snapshot"
SHOTS = os.environ.get("ORRA_CONSOLE_SCREENSHOTS")


def chromium_path() -> str:
    """Debian's chromium; ``make test`` installs it (``apt-get install chromium``)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not installed: run `make test` as root (it installs Debian's "
            "chromium) or `apt-get install -y --no-install-recommends chromium`"
        )
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    base = tmp_path_factory.mktemp("orra-console")
    handle = StackHandle(
        data_dir=base / "data",
        cli_config=base / "cli-config.json",
        extra_env={
            "ORRA_EXAMPLES_LATENCY_SCALE": "0.3",
            # every payment's first attempt fails: the timeline shows the retry on its row
            "ORRA_EXAMPLES_FAIL": "PaymentService:1",
            # a refused webhook is tried again within a second, not five
            "ORRA_NOTIFIER_BACKOFF_BASE_S": "0.2",
            "ORRA_NOTIFIER_BACKOFF_MAX_S": "0.5",
            # a payment cannot be refunded, and its compensation is given up after two
            # attempts: an aborted order leaves a failed compensation for an operator
            "ORRA_EXAMPLES_FAIL_REVERT": "PaymentService:always",
            "ORRA_DISPATCHER_COMP_MAX_ATTEMPTS": "2",
        },
    )
    try:
        handle.start(demo=True)
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root in CI, where chromium's sandbox cannot start
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def open_page(browser: Browser, stack: StackHandle) -> Iterator[Callable[..., Page]]:
    """A new page (own context) whose session storage holds ``key`` (none: signed out)."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(key: str | None = stack.api_key) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        if key is not None:
            context.add_init_script(f"sessionStorage.setItem('orra.apiKey', {key!r});")
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert errors == [], errors  # no uncaught error in the console's scripts


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def submit(stack: StackHandle, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    resp = httpx.post(
        f"{stack.gateway_url}/orchestrations",
        headers={"Authorization": f"Bearer {key or stack.api_key}"},
        json=body,
        timeout=30,
    )
    assert resp.status_code in (201, 202), resp.text
    created: dict[str, Any] = resp.json()
    return created


def archive(stack: StackHandle, hold_s: float, **extra: Any) -> str:
    body = {
        "action": {"content": ARCHIVE},
        "data": [{"field": "ledgerId", "value": "L1"}, {"field": "holdSeconds", "value": hold_s}],
        **extra,
    }
    return str(submit(stack, body)["orchestrationId"])


def detail(page: Page, stack: StackHandle, orch: str) -> None:
    page.goto(f"{stack.gateway_url}/ui/orchestrations/{orch}")
    page.wait_for_selector("main[data-loaded=detail]")


def member_key(stack: StackHandle, project: str = "default") -> str:
    resp = httpx.post(
        f"{stack.gateway_url}/api-keys",
        headers={"Authorization": f"Bearer {stack.api_key}"},
        json={"project": project, "role": "member", "name": f"console-{project}"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["apiKey"])


def until(check: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return result


# --- tests ---------------------------------------------------------------------------------


def test_an_invalid_key_gets_a_clear_message_and_no_data(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    orch = archive(stack, 0)
    page = open_page(None)
    page.goto(f"{stack.gateway_url}/ui/orchestrations")
    page.fill("#api-key", "orra_this-key-does-not-exist")
    page.click("text=Open the console")
    error = page.wait_for_selector("#key-error")
    assert "refused" in error.inner_text()
    assert page.locator("table.list").count() == 0
    assert orch not in page.content()
    assert page.evaluate("sessionStorage.getItem('orra.apiKey')") is None
    shot(page, "invalid-key")
    # the right key, entered once, opens the list
    page.fill("#api-key", stack.api_key)
    page.click("text=Open the console")
    page.wait_for_selector(f"table.list a:text('{orch}')")
    assert page.locator("#who").inner_text().startswith("Project default · admin")


def test_the_seed_order_submitted_from_the_form_runs_as_two_groups_of_two(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    page = open_page()
    page.goto(f"{stack.gateway_url}/ui/submit")
    page.fill("#action", ORDER)
    page.fill("#field-0", "orderId")
    page.fill("#value-0", "ORD123")
    for i, (field, value) in enumerate([("customerId", "CUST456"), ("items", ITEMS)], 1):
        page.click("#add-field")
        page.fill(f"#field-{i}", field)
        page.fill(f"#value-{i}", value)
    shot(page, "submit")
    page.click("#submit")
    plan = page.wait_for_selector("#plan")
    groups = [li.inner_text() for li in plan.query_selector_all("ol.groups > li")]
    assert len(groups) == 2, groups
    assert sorted(groups[0].replace("(", "").split(", ")) == [
        "inventory InventoryService)",
        "payment PaymentService)",
    ]
    orch = page.inner_text("#plan-link")
    page.click("#plan-link")
    page.wait_for_selector("main[data-status=completed]")
    page.wait_for_selector(".tl-row .bar.k-run.o-completed")
    rows = page.eval_on_selector_all(
        ".tl-group",
        "gs => gs.map(g => [...g.querySelectorAll('.tl-row')].map(r => r.dataset.task).sort())",
    )
    assert rows == [["inventory", "payment"], ["delivery", "notification"]]
    assert page.locator(".tl-row .bar.k-run.o-completed").count() == 4
    # the payment's failed first attempt, the wait and the retry that worked: one row
    payment = page.locator(".tl-row[data-task=payment] .bar")
    assert [payment.nth(i).get_attribute("class") for i in range(payment.count())] == [
        "bar k-run o-failed",
        "bar k-wait o-retrying",
        "bar k-run o-completed",
    ]
    # the plan graph: the delivery and the notification wait on the first group's outputs,
    # each edge labelled with the fields it carries
    assert page.locator(".graph .node").count() == 4
    page.wait_for_selector(".graph .edge-label")  # from plan.created, read off the stream
    labels = page.eval_on_selector_all(".graph .edge-label", "ls => ls.map(l => l.textContent)")
    assert sorted(labels) == ["inStock", "paymentStatus"], page.inner_text("#graph-desc")
    # the items were sent as JSON, not as text
    view = stack.get(f"/orchestrations/{orch}")
    assert {d["field"]: d["value"] for d in view["data"]}["items"] == [
        {"id": "PROD789", "quantity": 2}
    ]
    shot(page, "orchestration")
    # the list has it, newest first; the filter and the search find it
    page.click("header nav >> text=Orchestrations")
    page.wait_for_selector(f"table.list a:text('{orch}')")
    page.select_option("#status-filter", "completed")
    # (selectors, not wait_for_function: the console's CSP forbids eval)
    page.wait_for_selector("main[data-filter='completed|'] table.list td .badge")
    statuses = page.eval_on_selector_all("table.list td .badge", "bs => bs.map(b => b.innerText)")
    assert statuses
    assert all(s.endswith("completed") for s in statuses), statuses
    page.fill("#search", "arrange optimal")
    page.press("#search", "Enter")
    page.wait_for_selector("#list-info:has-text('match')")
    assert page.locator(f"table.list a:text('{orch}')").count() == 1
    assert all(
        ORDER in a for a in page.eval_on_selector_all("td.action", "t => t.map(x => x.textContent)")
    )
    page.fill("#search", "")
    page.select_option("#status-filter", "")
    page.press("#search", "Enter")
    page.wait_for_selector(f"table.list a:text('{orch}')")
    shot(page, "orchestrations")
    page.click("header nav >> text=Services")
    page.wait_for_selector("main[data-loaded=services]")
    assert page.locator("#svc-PaymentService").count() == 1
    assert "healthy" in page.inner_text("section.service:has(#svc-PaymentService) .badge")
    shot(page, "services")


def test_a_live_orchestration_is_followed_to_its_end_without_reloading(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    orch = archive(stack, 8)  # long enough to be running when the page opens on a busy machine
    page = open_page()
    detail(page, stack, orch)
    page.evaluate("window.__samePage = true")
    page.wait_for_selector("main[data-status=running]")
    page.wait_for_selector(".bar.k-run.o-running.live")
    page.click("details[data-task=archiveVault] > summary")  # opened while it runs
    # the running attempt's bar grows while it runs (redrawn twice a second)
    widths: list[float] = []
    for _ in range(10):
        widths.append(page.eval_on_selector(".bar.live", "b => b.getBoundingClientRect().width"))
        if widths[-1] > widths[0]:
            break
        page.wait_for_timeout(300)
    assert widths[-1] > widths[0], widths
    page.wait_for_selector("main[data-status=completed]", timeout=30_000)
    assert page.evaluate("window.__samePage") is True
    assert page.locator(".bar.k-run.o-completed").count() == 1
    assert page.locator("#abort").count() == 0
    # still open after the redraws, now with the output and the attempt
    task = page.locator("details[data-task=archiveVault]")
    assert task.get_attribute("open") is not None
    assert '"archiveStatus": "archived"' in task.inner_text()
    assert "#1" in task.locator("table.attempts").inner_text()


def test_the_event_stream_resumes_after_the_last_event_id(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    """The connection drops after two events (as when the gateway restarts): the console
    reconnects with ``Last-Event-ID`` and carries on from there."""
    orch = archive(stack, 1)
    stack.wait_status(orch, {"completed"})
    history = stack.get(f"/orchestrations/{orch}/history")["items"]
    first_two = "".join(
        f"id: {item['seq']}\nevent: {item['type']}\ndata: {json.dumps(item['event'])}\n\n"
        for item in history[:2]
    )
    sent: list[str | None] = []

    def events(route: Route) -> None:
        sent.append(route.request.headers.get("last-event-id"))
        if len(sent) == 1:  # the first connection ends after two events
            route.fulfill(status=200, content_type="text/event-stream", body=first_two)
        else:
            route.continue_()

    page = open_page()
    page.route(f"**/orchestrations/{orch}/events", events)
    detail(page, stack, orch)
    # the second connection asked for what follows the second event, and got it all
    page.wait_for_selector(f"main[data-last-event='{history[-1]['seq']}']")
    assert sent[:2] == [None, str(history[1]["seq"])]
    assert page.locator(".bar.k-run.o-completed").count() == 1


def test_abort_from_the_page(stack: StackHandle, open_page: Callable[..., Page]) -> None:
    orch = archive(stack, 30)
    page = open_page()
    detail(page, stack, orch)
    page.wait_for_selector("main[data-status=running]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.fill("#abort-reason", "changed my mind")
    page.click("#abort")
    page.wait_for_selector("main[data-status=aborted]")
    assert "changed my mind" in page.inner_text(".facts")
    assert page.locator("#abort").count() == 0
    assert stack.get(f"/orchestrations/{orch}")["status"] == "aborted"


def test_a_plan_held_for_preview_is_shown_waiting_and_approved_from_the_page(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    orch = archive(stack, 0, execute=False)
    resp = httpx.post(
        f"{stack.gateway_url}/api-keys",
        headers={"Authorization": f"Bearer {stack.api_key}"},
        json={"role": "member", "name": "console-viewer"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    viewer = open_page(resp.json()["apiKey"])
    detail(viewer, stack, orch)
    viewer.wait_for_selector("main[data-status=awaiting_approval]")
    assert "An admin or approver key can approve or reject it." in viewer.inner_text("#approvals")
    assert viewer.locator("[data-decide]").count() == 0

    page = open_page()
    detail(page, stack, orch)
    page.wait_for_selector("main[data-status=awaiting_approval]")
    assert "awaiting approval" in page.inner_text("[data-approval=plan]")
    # typed slowly, across the redraws of the live page (twice a second): none of it is lost
    page.click("[data-approval=plan] input")
    page.keyboard.type("looks right", delay=120)
    page.click("[data-approval=plan] [data-decide=approve]")
    page.wait_for_selector("main[data-status=completed]")
    decided = page.inner_text("[data-approval=plan]")
    assert "approved" in decided
    assert "looks right" in decided
    assert stack.get(f"/orchestrations/{orch}")["status"] == "completed"


def test_a_failed_webhook_shows_every_attempt(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: each attempt fails
    orch = archive(stack, 0, webhook=nobody)
    page = open_page()
    detail(page, stack, orch)
    page.wait_for_selector("#webhooks table.attempts tbody tr:nth-child(2)", timeout=30_000)
    hook = page.inner_text("#webhooks")
    assert nobody in hook
    assert "retrying" in hook or "failed" in hook
    errors = page.eval_on_selector_all(
        "#webhooks table.attempts tbody td.error", "ts => ts.map(t => t.textContent)"
    )
    assert len(errors) >= 2
    assert all(errors), errors
    shot(page, "webhook-attempts")


def test_a_member_key_sees_only_its_own_project(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    theirs = archive(stack, 0)
    resp = httpx.post(
        f"{stack.gateway_url}/api-keys",
        headers={"Authorization": f"Bearer {stack.api_key}"},
        json={"project": "acme", "role": "member", "name": "console-test"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    member = resp.json()["apiKey"]
    page = open_page(member)
    page.goto(f"{stack.gateway_url}/ui/orchestrations")
    page.wait_for_selector("main[data-loaded=list]")
    assert page.inner_text("#who").startswith("Project acme · member")
    assert "No orchestrations." in page.inner_text("table.list")
    assert theirs not in page.content()
    # a deep link to the other project's orchestration is not found, and shows nothing of it
    page.goto(f"{stack.gateway_url}/ui/orchestrations/{theirs}")
    page.wait_for_selector(".notfound")
    assert ARCHIVE not in page.content()
    # nor does searching for its id
    page.click("text=Back to the orchestrations")
    page.fill("#search", theirs)
    page.press("#search", "Enter")
    page.wait_for_selector(f"#list-info:has-text('No orchestration {theirs}')")


def test_markup_in_the_action_and_data_is_shown_as_text(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    action = f'{ARCHIVE} <img src=x onerror="window.__pwned=1"><b>bold</b>'
    value = "<script>window.__pwned=2</script><i>L9</i>"
    resp = httpx.post(
        f"{stack.gateway_url}/orchestrations",
        headers={"Authorization": f"Bearer {stack.api_key}"},
        json={
            "action": {"content": action},
            "data": [{"field": "ledgerId", "value": value}, {"field": "holdSeconds", "value": 0}],
        },
        timeout=30,
    )
    # the planner refuses the markup's words; the orchestration is kept, with its reasons
    assert resp.status_code == 422, resp.text
    orch = resp.json()["orchestrationId"]
    page = open_page()
    page.goto(f"{stack.gateway_url}/ui/orchestrations")
    cell = page.wait_for_selector(f"tr:has(a:text('{orch}')) td.action")
    assert cell.text_content() == action
    detail(page, stack, orch)
    assert page.inner_text("h1.action-text") == action
    assert page.locator(".data-value").first.text_content() == value
    reasons = page.eval_on_selector_all("main li", "ls => ls.map(l => l.textContent)")
    assert any("<img src=x" in r for r in reasons), reasons
    assert page.locator("main img, main b, main i, main script").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_an_unknown_orchestration_is_a_404_page(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    page = open_page()
    page.goto(f"{stack.gateway_url}/ui/orchestrations/o_doesnotexist00")
    page.wait_for_selector(".notfound")
    assert page.inner_text(".notfound h1") == "404 · Not found"
    assert "o_doesnotexist00" in page.inner_text(".notfound")
    assert "Traceback" not in page.content()


def test_a_malformed_data_value_is_pointed_at_before_submit(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    page = open_page()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(f"{stack.gateway_url}/ui/submit")
    page.fill("#action", ORDER)
    page.fill("#field-0", "items")
    page.fill("#value-0", '[{"id": "PROD789",')
    page.click("#submit")
    assert page.get_attribute("#value-0", "aria-invalid") == "true"
    assert "Not valid JSON" in page.inner_text("#value-0-error")
    assert page.evaluate("document.activeElement.id") == "value-0"
    page.wait_for_timeout(300)
    assert posts == []
    assert page.locator("#plan, #refusal").count() == 0


def test_a_failed_compensation_is_resolved_and_ignored_from_the_page_by_an_admin_only(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    """An aborted order whose payment cannot be refunded: its compensation fails, and an
    admin settles it from the page (resolve on one, ignore on another); a member key sees
    the failure but no controls."""

    def payment(orch: str) -> dict[str, Any]:
        tasks = stack.get(f"/orchestrations/{orch}")["tasks"]
        return next(t for t in tasks if t["service"] == "PaymentService")

    body = {
        "action": {"content": "Archive the ledger snapshot and charge the customer"},
        "data": [
            {"field": "ledgerId", "value": "L1"},
            {"field": "holdSeconds", "value": 15},
            {"field": "orderId", "value": "ORD1"},
            {"field": "amount", "value": 10},
        ],
    }
    orchs = [str(submit(stack, body)["orchestrationId"]) for _ in range(2)]
    for orch in orchs:  # the payment is done while the archive still runs: abort it
        until(lambda o=orch: payment(o)["status"] == "completed", f"{orch}'s payment")
        resp = httpx.post(
            f"{stack.gateway_url}/orchestrations/{orch}/abort",
            headers={"Authorization": f"Bearer {stack.api_key}"},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
    for orch in orchs:
        until(
            lambda o=orch: (payment(o).get("compensation") or {}).get("status") == "failed",
            f"{orch}'s compensation to fail",
        )
    resolved, ignored = orchs

    member = open_page(member_key(stack))
    detail(member, stack, resolved)
    failure = member.wait_for_selector(".comp-failed")
    assert "An admin key can resolve or ignore it." in failure.inner_text()
    assert member.locator(".comp-failed button").count() == 0

    page = open_page()
    for orch, button, word in ((resolved, "Resolve", "resolved"), (ignored, "Ignore", "ignored")):
        detail(page, stack, orch)
        page.fill(".comp-failed input", f"{word} by hand: refunded at the bank")
        page.click(f".comp-failed button:text('{button}')")
        page.wait_for_selector(f".comp-failed [role=status]:has-text('Marked {word}')")
        # the decision comes back on the event stream: the failure is settled on the page
        page.wait_for_selector(
            f"details[data-task=payment] .badge:has-text('{word}')", state="attached"
        )
        assert page.locator(".comp-failed").count() == 0
        settled = page.text_content("details[data-task=payment]") or ""
        assert f"{word} by hand: refunded at the bank" in settled, settled
        compensation = payment(orch)["compensation"]
        assert compensation["status"] == word
        assert compensation["resolutionNote"] == f"{word} by hand: refunded at the bank"


def test_the_live_page_carries_on_after_a_real_gateway_restart(
    stack: StackHandle, open_page: Callable[..., Page]
) -> None:
    """The gateway process is killed while the page follows a running orchestration; the
    task ends while it is down. Restarted (by ``orra up``'s supervisor), it answers the
    page's reconnection from the last event id the page saw, and the page shows the end
    without reloading."""
    orch = archive(stack, 4)
    page = open_page()
    resumed: list[str | None] = []
    page.on(
        "response",
        lambda r: (
            resumed.append(r.request.headers.get("last-event-id"))
            if r.url.endswith(f"/orchestrations/{orch}/events") and r.status == 200
            else None
        ),
    )
    detail(page, stack, orch)
    page.evaluate("window.__samePage = true")
    page.wait_for_selector("main[data-status=running][data-stream=open]")
    started = stack.get(f"/orchestrations/{orch}")["tasks"][0]["startedAt"]
    # kill it shortly before the task ends, so that it ends while the gateway is down
    time.sleep(max(0.0, started + 3.2 - time.time()))
    seen = page.get_attribute("main", "data-last-event")
    gateway = stack.stack.pids()["gateway"]
    assert gateway is not None
    os.kill(gateway, signal.SIGKILL)
    killed_at = time.time()
    page.wait_for_selector("main[data-stream=reconnecting]")

    def back() -> bool:
        pid = stack.stack.pids()["gateway"]
        if pid in (None, gateway):
            return False
        try:
            return httpx.get(f"{stack.gateway_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    until(back, "the gateway to be restarted", timeout_s=60)
    back_at = time.time()
    page.wait_for_selector("main[data-status=completed]", timeout=30_000)
    assert page.evaluate("window.__samePage") is True
    history = stack.get(f"/orchestrations/{orch}/history")["items"]
    while_down = [
        item["type"]
        for item in history
        if item["seq"] > int(seen or 0) and killed_at <= item["event"]["at"] <= back_at
    ]
    assert "task.completed" in while_down, (while_down, killed_at, back_at)
    # the first connection to the new gateway asked for what followed the last event seen
    assert resumed[0] is None  # the page's first connection
    assert resumed[1] == seen, resumed
    page.wait_for_selector(f"main[data-last-event='{history[-1]['seq']}']")
    assert page.locator(".bar.k-run.o-completed").count() == 1


def test_the_search_finds_an_old_orchestration_behind_ten_thousand_newer_ones(
    nats_url: str, namespace: str, open_page: Callable[..., Page]
) -> None:
    """A gateway of its own, on a log of 10,001 submitted actions: the search runs in the
    gateway (``GET /orchestrations?q=``) over the whole history, not in the browser."""

    async def fill() -> None:
        bus = await Bus.connect(nats_url, Topology(namespace=namespace), name="console-search")
        try:
            await bus.ensure_streams()
            actions = [("o_oldwalrus0001", "Reconcile the Walrus ledger for March")]
            actions += [(f"o_filler{n:07d}", f"Process order {n}") for n in range(NEWER)]
            await submitted(bus, actions)
        finally:
            await bus.close()

    with ThreadPoolExecutor(1) as pool:  # this thread runs Playwright's event loop
        pool.submit(asyncio.run, fill()).result()
    server = ServerThread(create_app(gateway_settings(nats_url, namespace))).start()
    try:
        page = open_page(BOOTSTRAP_KEY)
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/orchestrations?" in r.url else None)
        page.goto(f"{server.url}/ui/orchestrations")
        page.wait_for_selector("main[data-loaded=list] table.list a:text('o_filler0009999')")
        page.fill("#search", "walrus  LEDGER")
        page.press("#search", "Enter")
        page.wait_for_selector("#list-info:has-text('1 match')")
        links = page.eval_on_selector_all("table.list td a", "as => as.map(a => a.textContent)")
        assert links == ["o_oldwalrus0001"]
        assert page.inner_text("td.action") == "Reconcile the Walrus ledger for March"
        assert any("q=walrus+LEDGER" in url for url in asked), asked
        assert "q=walrus+LEDGER" in page.url  # a link to the search
    finally:
        server.stop()
