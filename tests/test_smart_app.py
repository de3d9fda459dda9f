"""The SMART app, end to end in a real browser: EHR and standalone launch against the test FHIR server
(Medplum's engine, which only answers to the issued token) and a SMART authorization server started
here; authorize (PKCE) -> token -> FHIR reads -> the rendered course, checked in the DOM and in
screenshots, as a clinician sees it: in a 400 px EHR side panel, after a reload, in two tabs at once,
and on the pages that say what went wrong."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from conftest import ANSWER_TEST_FHIR_BUDGET_MS, FHIR_TOKEN
from smart_auth_server import SmartAuthServer
from support import ROOT, child_env, free_port, wait_until_up

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
CLIENT_ID = "test-client"
SHOTS = Path(os.environ.get("CDS_TEST_SCREENSHOTS", "/tmp/cds-smart-screenshots"))
pytestmark = [pytest.mark.server, pytest.mark.browser]
TODAY = date(2025, 9, 1)  # the scenarios' evaluate_at (the test FHIR server holds them as written)
ADULT_CONTEXT = {"topic": "dupilumab-inadequate-response", "hookInstance": "d6b1c1de-0000-4000-8000-000000000001", "patientId": "pnr-adult"}
# Not for clinicians' eyes: resource ids and evidence-status tags.
NOT_FOR_CLINICIANS = re.compile(r"\b(?:Patient|Condition|Observation|Medication\w*)/[\w.-]+|\[(?:V|V2|S|C|U|design)\]")


@pytest.fixture(scope="module")
def stack(fhir_server, tmp_path_factory):
    auth = SmartAuthServer(CLIENT_ID, FHIR_TOKEN, fhir_server)
    auth.launches["launch-adult"] = ("pnr-adult", json.dumps(ADULT_CONTEXT))
    auth.launches["launch-eyes"] = ("dsev", json.dumps({"topic": "dupilumab-ocular-surface-disease", "patientId": "dsev"}))
    auth.launches["launch-history"] = ("hist-upa", json.dumps({"topic": "dupilumab-ocular-surface-disease", "patientId": "hist-upa"}))
    auth.launches["launch-refused-reads"] = ("pnr-adult", None)
    auth.launch_tokens["launch-refused-reads"] = "a-token-the-fhir-server-refuses"
    auth.standalone_patient = "dsev"
    requests.post(fhir_server.replace("/fhir", "/__smart-configuration"), data=json.dumps(auth.configuration()), timeout=5)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(tmp_path_factory.mktemp("smart"), CDS_AUTH="off", CDS_FHIR_ALLOWLIST=fhir_server, CDS_FHIR_ALLOW_HTTP="true",
                    CDS_PUBLIC_BASE_URL=base, CDS_SMART_CLIENT_ID=CLIENT_ID, CDS_SECRET_KEY="test-secret",
                    CDS_LOG_LEVEL="INFO", CDS_FHIR_TIME_BUDGET_MS=ANSWER_TEST_FHIR_BUDGET_MS,
                    CDS_DEV_NOW=TODAY.isoformat() + "T12:00:00Z")  # the day the fixtures' stories are told as of
    service = subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_until_up(f"{base}/healthz/live", service)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        yield {"base": base, "fhir": fhir_server, "auth": auth, "browser": browser, "service": service}
        browser.close()
    service.send_signal(signal.SIGTERM)
    log = service.communicate(timeout=30)[0].decode()
    for token in {FHIR_TOKEN, *auth.launch_tokens.values()}:
        assert token not in log, "an access token must never be logged"
    auth.stop()


def wait_for_course(page):
    try:
        page.wait_for_selector("#timeline svg", timeout=30_000)
    except playwright.TimeoutError:
        # say what the browser shows (an error page names the failed FHIR read) rather than only "timeout"
        pytest.fail(f"no course drawn; the page at {page.url} reads: {page.inner_text('body')[:600]!r}")
    return page


def open_course(stack, query: str, width: int = 1280, page=None):
    page = page or stack["browser"].new_page(viewport={"width": width, "height": 900})
    requests.post(stack["fhir"].replace("/fhir", "/__reset"), timeout=5)
    page.goto(f"{stack['base']}/smart/launch?iss={stack['fhir']}{query}")
    return wait_for_course(page)


def fhir_reads(stack) -> list[dict]:
    return requests.get(stack["fhir"].replace("/fhir", "/__requests"), timeout=5).json()


def colour_share(path: Path, rgb: tuple[int, int, int], tolerance: int = 30) -> float:
    image = Image.open(path).convert("RGB")
    pixels = list(image.get_flattened_data()) if hasattr(image, 'get_flattened_data') else list(image.getdata())
    close = sum(1 for p in pixels if all(abs(a - b) <= tolerance for a, b in zip(p, rgb, strict=True)))
    return close / len(pixels)


def test_an_ehr_launch_shows_the_course_and_the_assessment(stack):
    page = open_course(stack, "&launch=launch-adult")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "pnr-adult.png"), full_page=True)
    assert re.search(r"/smart/course/[\w-]+#topic-dupilumab-inadequate-response$", page.url)  # the used code is gone
    # the patient banner: name, birth date, age and gender, no resource id
    assert page.inner_text(".banner h1") == "pnr-adult Fixture"
    assert page.inner_text("[data-field=birth-date]") == "1991-04-12"
    assert page.inner_text("[data-field=age]") == "34 years"
    assert page.inner_text("[data-field=gender]") == "Female"
    assert "Patient/" not in page.inner_text(".banner")
    assert "no adequate response" in page.inner_text(".card .summary")
    assert page.locator("rect[data-lane=dupilumab]").count() == 1
    assert page.locator("line[data-line=baseline]").count() >= 2 and page.locator("line[data-line=target]").count() >= 2
    # the full plan, from the structured plan: each option with dose, place and evidence; exclusions with why
    options = page.locator("ol.options > li")
    assert options.count() == 10 and options.first.inner_text().startswith("Upadacitinib")
    first = options.first.inner_text()
    assert "15 mg by mouth once daily" in first and "JAK inhibitor: group 1 of 4" in first and "LEVEL UP" in first
    assert "Baricitinib (Olumiant): not FDA-approved" in page.inner_text("ul.excluded")
    assert "off-label for atopic dermatitis" in options.nth(6).inner_text()  # methotrexate's caution
    assert "Boxed warning (JAK inhibitors)" in page.inner_text("ul.warnings")
    assert page.locator("ul.rules li").count() >= 3 and page.locator("ol.sources li a[href^=http]").count() >= 3
    assert "FDA label" in page.inner_text(".evidence-legend")  # the evidence words, explained once
    assert "FDA label" in options.first.inner_text()  # the dose's evidence, in those words
    assert not NOT_FOR_CLINICIANS.findall(page.inner_text("body"))
    page.click("summary:has-text('EASI scores')")
    assert "28.4" in page.inner_text("details[open] table")
    assert FHIR_TOKEN not in page.content()
    # the screenshot shows the drawn course, not just a page: the dupilumab bar in its colour
    bar = SHOTS / "pnr-adult-bar.png"
    page.locator("rect[data-lane=dupilumab]").screenshot(path=str(bar))
    assert colour_share(bar, (0x1a, 0x5f, 0xb4)) > 0.8
    timeline = SHOTS / "pnr-adult-timeline.png"
    page.locator("#timeline").screenshot(path=str(timeline))
    assert colour_share(timeline, (0x1a, 0x5f, 0xb4)) > 0.005
    reads = fhir_reads(stack)
    assert {r["token"] for r in reads} == {FHIR_TOKEN} and len(reads) == 7
    request = stack["auth"].authorize_requests[-1]
    assert request["code_challenge_method"] == "S256" and request["launch"] == "launch-adult"
    # scopes asked are the scopes used: the launch, and a read scope for exactly the resource types read
    asked = request["scope"].split()
    assert asked[0] == "launch" and len(asked) == len(set(asked))
    assert all(re.fullmatch(r"patient/[A-Za-z]+\.rs", s) for s in asked[1:]), asked
    assert {s.split("/")[1].split(".")[0] for s in asked[1:]} == {r["path"].lstrip("/").split("/")[0].split("?")[0] for r in reads}
    page.close()


def test_a_patient_with_eye_disease_shows_labelled_eye_events_and_every_mark_in_a_table(stack):
    page = open_course(stack, "&launch=launch-eyes")
    page.screenshot(path=str(SHOTS / "dsev.png"), full_page=True)
    assert page.inner_text(".banner h1") == "dsev Fixture"
    assert "eye disease, severe and persistent" in page.inner_text(".card .summary")
    marks = page.locator("[data-mark=eye], [data-mark=red-flag]")
    labels = page.locator("text[data-label=eye]").all_text_contents()
    assert marks.count() >= 1 and len(labels) == marks.count() and all(labels)
    assert page.locator("rect[data-lane=eye-steroid]").count() >= 1
    shot = SHOTS / "dsev-eyes.png"
    page.locator("rect[data-lane=eye-steroid]").first.screenshot(path=str(shot))
    assert colour_share(shot, (0x7a, 0x3f, 0xbf)) > 0.8
    marker = SHOTS / "dsev-marker.png"
    page.locator("circle[data-mark=eye]").first.screenshot(path=str(marker))
    assert colour_share(marker, (0xb5, 0x42, 0x0a)) > 0.4  # the eye condition is drawn (a disc in its box)
    # every mark is also a table row: bars, score points, eye events
    assert page.locator("[data-table=treatments] tbody tr").count() == page.locator("rect[data-lane]").count()
    assert page.locator("[data-table=scores] tbody tr").count() == page.locator("circle[data-mark=score]").count()
    assert page.locator("[data-table=eyes] tbody tr").count() == marks.count()
    for label in labels:
        assert label.rstrip("…").replace("Red flag: ", "") in page.locator("[data-table=eyes]").text_content()
    # each score chart has y-axis values, and the time axis its dates
    for chart in page.locator("svg.strip:has(circle[data-mark=score])").all():
        values = chart.locator("text.y-tick").all_text_contents()
        assert len(values) >= 3 and values[0] == "0" and all(re.fullmatch(r"\d+(\.\d+)?", v) for v in values)
    assert any(re.search(r"\b20\d\d$", t) for t in page.locator("text.tick").all_text_contents())  # a year
    options = page.locator("ol.options > li").all_inner_texts()
    assert options[0].startswith("Upadacitinib")
    assert "conjunctivitis and keratitis" in page.inner_text("ol.options")  # the IL-13 caution after DROSD
    page.close()


def test_other_next_line_agents_on_record_are_drawn_and_tabled(stack):
    page = open_course(stack, "&launch=launch-history")
    # the card the app was opened from (an eye card) is not given for this record: the page says so
    assert "Dupilumab-related ocular surface disease" in page.inner_text(".notes")
    assert page.locator(".card.focused").count() == 0
    assert page.locator("rect[data-lane=next-line]").count() == 1
    row = page.locator("[data-table=treatments] tbody tr:has-text('Upadacitinib')").text_content()
    assert "2023-02-06" in row and "2023-05-01" in row and "acne and herpes zoster" in row
    assert "Upadacitinib (Rinvoq): tried before" in page.inner_text("ul.excluded")
    assert "moved down: an agent of its group did not serve this patient" in page.inner_text("ol.options li:has-text('Abrocitinib')")
    assert not NOT_FOR_CLINICIANS.findall(page.inner_text("body"))
    page.close()


def test_a_standalone_launch_gets_its_patient_from_the_authorization_server(stack):
    page = open_course(stack, "")
    assert page.inner_text(".banner h1") == "dsev Fixture"
    request = stack["auth"].authorize_requests[-1]
    assert "launch" not in request
    assert request["scope"].split()[0] == "launch/patient" and "openid" not in request["scope"]
    page.close()


def test_readable_in_a_400_px_panel(stack):
    """Text at least 11 px as drawn (SVG text included), tables scroll instead of being cut, each list once."""
    page = open_course(stack, "&launch=launch-eyes", width=400)
    # opened at the card the link was on (its appContext topic): scrolled to, marked and focused
    card = page.locator("#topic-dupilumab-ocular-surface-disease")
    assert page.url.endswith("#topic-dupilumab-ocular-surface-disease")
    assert "focused" in card.get_attribute("class") and "You opened the app from this card" in card.inner_text()
    assert page.evaluate("document.activeElement.id") == "topic-dupilumab-ocular-surface-disease"
    assert 0 <= card.bounding_box()["y"] < 900
    for summary in page.locator("details > summary").all():
        summary.click()  # the tables too
    page.screenshot(path=str(SHOTS / "dsev-400.png"), full_page=True)
    small = page.evaluate("""() => {
        const small = [], walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const node = walker.currentNode, element = node.parentElement;
            if (!node.textContent.trim() || element.closest('script, style, title, .visually-hidden')) continue;
            if (!element.getClientRects().length) continue;  // not drawn (a hidden minor tick)
            let size = parseFloat(getComputedStyle(element).fontSize);
            if (element instanceof SVGElement) size *= element.getScreenCTM().a;  // as drawn, after any scaling
            if (size < 11) small.push([element.tagName, node.textContent.trim().slice(0, 30), size]);
        }
        return small; }""")
    assert not small, f"text under 11 px: {small[:10]}"
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    tables = page.evaluate("""() => [...document.querySelectorAll('table')].map(table => {
        const box = table.closest('.table-scroll');
        if (!box) return 'no scroll box';
        if (!['auto', 'scroll'].includes(getComputedStyle(box).overflowX)) return 'box does not scroll';
        box.scrollLeft = box.scrollWidth;
        const last = table.rows[0].lastElementChild.getBoundingClientRect(), edge = box.getBoundingClientRect();
        return edge.right <= innerWidth && last.right <= edge.right + 1 ? 'ok' : 'last column out of reach'; })""")
    assert len(tables) >= 3 and set(tables) == {"ok"}, tables
    # each list once: the ranked plan, the options not offered, the rules and sources
    for name in ("ranked-options", "not-offered", "rules", "sources"):
        assert page.locator(f"[data-list={name}]").count() == 1, name
    # the card lists its top three options; the full list is the plan's alone
    for card in page.locator(".card .detail").all():
        assert card.locator("ol > li").count() <= 3
    offered = page.locator("ol.options .option-name strong").all_inner_texts()
    assert len(offered) == 10 and page.inner_text("main").count(offered[-1]) == 1
    assert page.locator("svg[role=img] title").count() >= 1
    page.keyboard.press("Tab")  # from the focused card on to the next control
    assert page.evaluate("document.activeElement.tagName") in {"SUMMARY", "A", "DIV"}
    page.close()


def test_reload_and_back_show_the_course_again(stack):
    page = open_course(stack, "&launch=launch-adult")
    address = page.url
    page.reload()
    wait_for_course(page)
    assert page.url == address and page.inner_text(".banner h1") == "pnr-adult Fixture"
    assert page.locator("#topic-dupilumab-inadequate-response.focused").count() == 1
    response = page.goto(f"{stack['base']}/smart/somewhere-else")
    assert response.status == 404 and "There is no page here" in page.inner_text("h1")
    assert "Open the app again from the patient's chart" in page.inner_text(".next-steps")
    page.go_back()
    wait_for_course(page)
    assert page.url == address and page.inner_text(".banner h1") == "pnr-adult Fixture"
    assert "code=" not in page.url and FHIR_TOKEN not in page.url
    page.close()
    # another browser (no view cookie) gets a page saying what to do, never a raw 404
    page = stack["browser"].new_page()
    response = page.goto(address)
    assert response.status == 410 and "This course view has expired" in page.inner_text("h1")
    assert "Open the app again from the patient's chart in the EHR" in page.inner_text(".next-steps")
    page.close()


def test_two_launches_at_once_in_two_tabs(stack):
    auth = stack["auth"]
    auth.ask = True  # each launch stops at the consent page, so both are half-way at once
    context = stack["browser"].new_context(viewport={"width": 1000, "height": 800})
    try:
        adult, eyes = context.new_page(), context.new_page()
        adult.goto(f"{stack['base']}/smart/launch?iss={stack['fhir']}&launch=launch-adult")
        eyes.goto(f"{stack['base']}/smart/launch?iss={stack['fhir']}&launch=launch-eyes")
        adult.wait_for_selector("#allow")
        eyes.wait_for_selector("#allow")
        for tab in (eyes, adult):
            tab.bring_to_front()  # as a user does: a tab is clicked when it is shown
            with tab.expect_navigation():
                tab.click("#allow")
        assert wait_for_course(eyes).inner_text(".banner h1") == "dsev Fixture"
        assert wait_for_course(adult).inner_text(".banner h1") == "pnr-adult Fixture"
        auth.ask = False  # a reload authorizes again: approved at once this time
        eyes.reload()
        assert wait_for_course(eyes).inner_text(".banner h1") == "dsev Fixture"  # each tab keeps its own view
        cookies = context.cookies()
        # what is left: one view cookie per tab, each sent only to its own course address (the launch cookies are gone)
        assert sorted(c["path"] for c in cookies) == sorted(urlsplit(tab.url).path for tab in (adult, eyes))
        assert all(c["httpOnly"] and c["name"].startswith("smart-view-") for c in cookies)
        assert not any(FHIR_TOKEN in c["value"] for c in cookies)
    finally:
        auth.ask = False
        context.close()


def test_error_pages_say_what_to_do_next(stack):
    page = stack["browser"].new_page()
    base, auth = stack["base"], stack["auth"]
    response = page.goto(f"{base}/smart/callback?code=stolen&state=guessedguessedguessed")
    assert response.status == 400 and "unknown or has expired" in page.inner_text("h1")
    assert "Open the app again from the patient's chart in the EHR" in page.inner_text(".next-steps")
    response = page.goto(f"{base}/smart/launch?iss=https://evil.example.org/fhir")
    assert response.status == 400 and "cannot be used" in page.inner_text("h1")
    assert "CDS_FHIR_ALLOWLIST" in page.inner_text(".next-steps")
    response = page.goto(f"{base}/smart/launch")
    assert response.status == 400 and "without a FHIR server" in page.inner_text("h1")
    auth.ask = True
    try:
        page.goto(f"{base}/smart/launch?iss={stack['fhir']}&launch=launch-adult")
        page.click("#deny")
        assert "Access was not granted" in page.inner_text("h1") and "access_denied" in page.inner_text(".what")
        assert "allow it to read the patient's record" in page.inner_text(".next-steps")
    finally:
        auth.ask = False
    # a FHIR read refused: the page names the reads and offers to try again
    page.goto(f"{base}/smart/launch?iss={stack['fhir']}&launch=launch-refused-reads")
    assert "could not be read" in page.inner_text("h1")
    assert "Observation (the FHIR server refused the access token (HTTP 401))" in page.inner_text(".what")
    assert page.locator("a.retry").get_attribute("href").startswith("/smart/course/")
    assert "a-token-the-fhir-server-refuses" not in page.content()
    for path in ("/smart/", "/smart/course", "/smart/course/not-a-view-we-issued"):
        response = page.goto(base + path)
        assert response.headers["content-type"].startswith("text/html") and page.locator(".next-steps li").count() >= 1, path
    page.close()
