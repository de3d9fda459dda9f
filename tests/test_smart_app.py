"""The SMART app, end to end in a real browser: EHR and standalone launch against the test FHIR server
(Medplum's engine, which only answers to the issued token) and a SMART authorization server started
here; authorize (PKCE) -> token -> FHIR reads -> the rendered course, checked in the DOM and in
screenshots."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

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


@pytest.fixture(scope="module")
def stack(fhir_server, tmp_path_factory):
    auth = SmartAuthServer(CLIENT_ID, FHIR_TOKEN, fhir_server)
    auth.launches["launch-adult"] = ("pnr-adult", json.dumps({"topic": "dupilumab-inadequate-response"}))
    auth.launches["launch-eyes"] = ("dsev", None)
    auth.standalone_patient = "dsev"
    requests.post(fhir_server.replace("/fhir", "/__smart-configuration"), data=json.dumps(auth.configuration()), timeout=5)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(tmp_path_factory.mktemp("smart"), CDS_AUTH="off", CDS_FHIR_ALLOWLIST=fhir_server, CDS_FHIR_ALLOW_HTTP="true",
                    CDS_PUBLIC_BASE_URL=base, CDS_SMART_CLIENT_ID=CLIENT_ID, CDS_SECRET_KEY="test-secret",
                    CDS_LOG_LEVEL="INFO", CDS_FHIR_TIME_BUDGET_MS=ANSWER_TEST_FHIR_BUDGET_MS)
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
    assert FHIR_TOKEN not in log, "the access token must never be logged"
    auth.stop()


def open_course(stack, query: str, width: int = 1280):
    page = stack["browser"].new_page(viewport={"width": width, "height": 900})
    requests.post(stack["fhir"].replace("/fhir", "/__reset"), timeout=5)
    page.goto(f"{stack['base']}/smart/launch?iss={stack['fhir']}{query}")
    try:
        page.wait_for_selector("#timeline svg", timeout=30_000)
    except playwright.TimeoutError:
        # say what the browser shows (an error page names the failed FHIR read) rather than only "timeout"
        pytest.fail(f"no course drawn; the page at {page.url} reads: {page.inner_text('body')[:600]!r}")
    return page


def colour_share(path: Path, rgb: tuple[int, int, int], tolerance: int = 30) -> float:
    image = Image.open(path).convert("RGB")
    pixels = list(image.get_flattened_data()) if hasattr(image, 'get_flattened_data') else list(image.getdata())
    close = sum(1 for p in pixels if all(abs(a - b) <= tolerance for a, b in zip(p, rgb)))
    return close / len(pixels)


def test_an_ehr_launch_shows_the_course_and_the_assessment(stack):
    page = open_course(stack, "&launch=launch-adult")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "pnr-adult.png"), full_page=True)
    assert page.url.endswith("/smart/course")  # the used code is gone from the address bar
    assert "Patient/pnr-adult" in page.inner_text("header")
    summary = page.inner_text(".card .summary")
    assert "no adequate response" in summary
    assert page.locator("rect[data-lane=dupilumab]").count() == 1
    assert page.locator("line[data-line=baseline]").count() >= 2 and page.locator("line[data-line=target]").count() >= 2
    options = page.locator("ol.options li").all_inner_texts()
    assert options[0].startswith("Upadacitinib") and any("Abrocitinib" in o for o in options)
    assert "Baricitinib (Olumiant)" in page.inner_text("ul.excluded")
    page.click("summary:has-text('EASI scores')")
    assert "28.4" in page.inner_text("details[open] table")
    assert FHIR_TOKEN not in page.content()
    # the screenshot shows the drawn course, not just a page: the dupilumab bar in its colour
    bar = SHOTS / "pnr-adult-bar.png"
    page.locator("rect[data-lane=dupilumab]").screenshot(path=str(bar))
    assert colour_share(bar, (0x1a, 0x5f, 0xb4)) > 0.8
    assert colour_share(SHOTS / "pnr-adult.png", (0x1a, 0x5f, 0xb4)) > 0.002
    reads = requests.get(stack["fhir"].replace("/fhir", "/__requests"), timeout=5).json()
    assert {r["token"] for r in reads} == {FHIR_TOKEN} and len(reads) == 7
    request = stack["auth"].authorize_requests[-1]
    assert request["code_challenge_method"] == "S256" and request["launch"] == "launch-adult"
    page.close()


def test_a_patient_with_eye_disease_shows_eye_events_and_treatment(stack):
    page = open_course(stack, "&launch=launch-eyes")
    page.screenshot(path=str(SHOTS / "dsev.png"), full_page=True)
    assert "Patient/dsev" in page.inner_text("header")
    assert "eye disease, severe and persistent" in page.inner_text(".card .summary")
    assert page.locator("circle[data-mark=eye]").count() >= 1
    assert page.locator("rect[data-lane=eye-steroid]").count() >= 1
    shot = SHOTS / "dsev-eyes.png"
    page.locator("rect[data-lane=eye-steroid]").first.screenshot(path=str(shot))
    assert colour_share(shot, (0x7a, 0x3f, 0xbf)) > 0.8
    marker = SHOTS / "dsev-marker.png"
    page.locator("circle[data-mark=eye]").first.screenshot(path=str(marker))
    assert colour_share(marker, (0xb5, 0x42, 0x0a)) > 0.4  # the eye condition is drawn (a disc in its box)
    options = page.locator("ol.options li").all_inner_texts()
    assert options[0].startswith("Upadacitinib")
    assert "conjunctivitis and keratitis" in page.inner_text("ol.options")  # the IL-13 caution after DROSD
    page.close()


def test_a_standalone_launch_gets_its_patient_from_the_authorization_server(stack):
    page = open_course(stack, "")
    assert "Patient/dsev" in page.inner_text("header")
    assert "launch" not in stack["auth"].authorize_requests[-1]
    assert "launch/patient" in stack["auth"].authorize_requests[-1]["scope"]
    page.close()


def test_the_page_fits_a_narrow_ehr_side_panel_and_works_with_the_keyboard(stack):
    page = open_course(stack, "&launch=launch-adult", width=380)
    page.screenshot(path=str(SHOTS / "pnr-adult-narrow.png"), full_page=True)
    timeline = page.locator("section[aria-labelledby=timeline-heading]").bounding_box()
    assessment = page.locator("section[aria-labelledby=assessment-heading]").bounding_box()
    assert assessment["y"] > timeline["y"] + timeline["height"] - 1  # stacked, not squeezed side by side
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") in {"SUMMARY", "A"}
    assert page.locator("svg[role=img] title").count() >= 1
    page.close()


def test_a_forged_or_replayed_callback_is_refused(stack):
    page = stack["browser"].new_page()
    response = page.goto(f"{stack['base']}/smart/callback?code=stolen&state=guess")
    assert response.status == 400 and "unknown or has expired" in page.inner_text("body")
    response = page.goto(f"{stack['base']}/smart/launch?iss=https://evil.example.org/fhir")
    assert response.status == 400 and "cannot be used" in page.inner_text("body")
    page.close()
