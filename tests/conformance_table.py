"""Writes docs/conformance.md: every CDS Hooks 2.0 requirement on the service, how it is met, and its test.

    .venv/bin/python tests/conformance_table.py
"""
import csv
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "conformance.md"
with open(ROOT / "tests" / "external" / "cds-hooks-2.0-requirements.csv", newline="") as _handle:
    rows = [r for r in csv.DictReader(_handle) if "Service" in r["actors"]]
T = {
 'disc': 'tests/test_discovery.py::test_discovery_lists_one_service_per_hook',
 'endpoint': 'tests/test_discovery.py::test_each_service_endpoint_is_base_url_plus_id',
 'tpl': 'tests/test_discovery.py::test_prefetch_templates_use_only_2_0_tokens_and_the_recommended_queries',
 'discempty': 'tests/test_discovery.py::test_discovery_has_no_empty_attributes',
 'cors': 'tests/test_discovery.py::test_cors_allows_the_sandbox_on_discovery_service_and_feedback',
 'schema': 'tests/test_cards_contract.py::test_responses_match_the_cds_hooks_response_schema',
 'noempty': 'tests/test_cards_contract.py::test_no_attribute_is_null_or_empty',
 'summary': 'tests/test_cards_contract.py::test_summaries_are_shorter_than_140_characters',
 'uuids': 'tests/test_cards_contract.py::test_cards_and_suggestions_have_unique_uuids',
 'selection': 'tests/test_cards_contract.py::test_suggestions_come_with_a_selection_behavior_and_at_most_one_recommendation',
 'override': 'tests/test_cards_contract.py::test_override_reasons_have_a_display',
 'draft': 'tests/test_cards_contract.py::test_draft_orders_are_valid_r4_medication_requests_for_this_patient',
 'markdown': 'tests/test_cards_contract.py::test_detail_is_github_flavoured_markdown',
 'links': 'tests/test_cards_contract.py::test_links_keep_app_context_to_smart_links',
 'smartlink': 'tests/test_cards_contract.py::test_every_finding_card_links_to_the_smart_app_with_its_context',
 'replace': 'tests/test_scenarios.py::test_order_hooks_give_the_same_finding_when_dupilumab_is_ordered',
 'scen': 'tests/test_scenarios.py::test_patient_view_answers_as_the_scenario_expects',
 'ext': 'tests/test_external_requests.py::test_external_request_gets_a_conformant_answer',
 'p412': 'tests/test_prefetch_semantics.py::test_an_absent_key_the_conclusion_needs_is_a_412_naming_it',
 'poo': 'tests/test_prefetch_semantics.py::test_an_operation_outcome_in_place_of_data_is_treated_as_missing',
 'json415': 'tests/test_request_validation.py::test_a_non_json_content_type_is_a_415',
 'errors': 'tests/test_request_validation.py::test_an_unknown_service_is_a_404',
 'ext-ok': 'tests/test_request_validation.py::test_unknown_top_level_members_and_extensions_are_accepted',
 'feedback': 'tests/test_feedback.py::test_feedback_from_another_project_is_stored',
 'server': 'tests/test_server.py::test_discovery_over_http_from_gunicorn',
 'fallback': 'tests/test_fhir_fallback.py::test_cards_are_the_same_with_full_partial_and_no_prefetch',
 'token': 'tests/test_fhir_fallback.py::test_the_access_token_goes_with_every_read_and_is_never_logged',
 'faults': 'tests/test_fhir_faults.py::test_a_misbehaving_server_gives_a_412_with_the_reason',
 'notrefetched': 'tests/test_fhir_fallback.py::test_present_keys_including_null_and_empty_are_not_fetched_again',
 'jwt': 'tests/test_auth.py::test_a_valid_token_opens_discovery_services_and_feedback',
 'jwtclaims': 'tests/test_auth.py::test_a_token_with_wrong_claims_is_refused_without_detail',
 'jwtnone': 'tests/test_auth.py::test_unsigned_and_hmac_tokens_are_refused',
 'jwthmac': 'tests/test_auth.py::test_hmac_cannot_be_allowed_by_setting',
 'jku': 'tests/test_auth.py::test_a_jku_outside_the_issuers_allowlist_is_refused',
 'sandboxjwt': 'tests/test_auth.py::test_a_token_the_public_cds_hooks_sandbox_signed_verifies_when_the_sandbox_is_trusted',
 'rsa': 'tests/test_auth.py::test_rsa_tokens_work_too_and_the_audience_may_be_a_list',
}
M = {}
def m(ids, how, *tests):
    for i in ids: M[i] = (how, [T[t] for t in tests])
m([1], "Request bodies must be JSON (415 otherwise); every answer is JSON.", 'json415', 'disc')
m([2, 168], "Deployment: TLS terminates at the ingress or load balancer in front of `cds-service serve`. Not checkable in-process.")
m([3], "Optional attributes with no value are omitted (`cards/model.py: compact`); only `cards` may be empty.", 'noempty', 'discempty')
m([4, 5, 6, 13], "`GET /cds-services` returns `{\"services\": [...]}` with 200.", 'disc', 'server')
m([7, 8, 9, 10], "Each service has hook, title, description and id.", 'disc')
m([11], "Each service lists the prefetch templates for everything the logic reads.", 'tpl')
m([12], "`usageRequirements` says what prefetch the service needs.", 'discempty')
m([14, 76], "4xx answers carry an OperationOutcome: 400, 404, 405, 412, 413, 415; 500 only for a defect, with no details.", 'errors', 'p412')
m([16], "`{baseUrl}/cds-services/{id}` serves each listed service.", 'endpoint')
m([27], "Speed is measured by the benchmark (`bench/run.py`, docs/performance.md), not by timed assertions in tests.")
m([28, 29], "Patient data comes from prefetch, requested in discovery.", 'scen', 'tpl')
m([34, 60], "Prefetch first; what it lacks (absent keys, OperationOutcomes, further pages) is read from fhirServer with the bearer token, if the server is on the allowlist; present keys, null and empty searchsets are not read again.", 'fallback', 'notrefetched')
m([35, 36, 55, 56, 57, 58, 59], "Templates use only `{{context.patientId}}` and the recommended query subset; one key per template.", 'tpl')
m([52], "An OperationOutcome in place of prefetch data counts as missing data.", 'poo')
m([54], "Needed data absent from prefetch and not readable from the FHIR server (none given, not allowlisted, failing, slow, hostile): 412 with an OperationOutcome naming the prefetch key and why.", 'p412', 'faults')
m([61], "The access token from fhirAuthorization goes with every FHIR call, to the fhirServer origin only, and is never logged.", 'token')
m([74, 75], "200 with `{\"cards\": [...]}`; `systemActions` is not used.", 'schema', 'ext')
m([77], "No decision support: 200 with `{\"cards\": []}`.", 'ext')
m([78, 210, 211, 212], "Client behaviour (stale guidance). The service keeps one stable id per hook and returns a fresh card set on each call.", 'disc')
m([213], "Documentation duty: the README tells integrators which hooks to enable and why.")
m([80, 81, 82, 118, 119], "Every card and suggestion has a string uuid, stable within one hook call and unique across calls.", 'uuids')
m([83], "Summaries are cut to fewer than 140 characters where built (`cards/model.py: fit_summary`).", 'summary')
m([84, 85], "`detail` is GitHub-flavoured markdown (a table and lists).", 'markdown')
m([87, 88, 89, 90, 105, 106, 107, 108, 115, 116, 216, 217, 218, 220], "Card, source and coding shapes checked against a response schema written from the spec (itself checked on Inferno's valid cards).", 'schema')
m([109, 110], "`source.url` is not used; drill-down is the card's `smart` link to the course timeline.", 'schema', 'smartlink')
m([111, 112, 113], "No icon is sent (optional).", 'schema')
m([92, 94, 117, 120, 121, 123, 124], "Suggestions are arrays of label + uuid + actions; isRecommended only as a boolean.", 'schema')
m([93, 95, 96, 122], "`selectionBehavior` accompanies every suggestion list; `at-most-one` with at most one recommendation.", 'selection')
m([98, 99, 100, 136, 219], "Failure cards offer override reasons, each a Coding with display.", 'override')
m([125], "A suggestion's actions are applied together: order hooks replace the draft dupilumab order (delete + create in one suggestion).", 'replace')
m([127, 128, 129, 130, 131, 132], "Actions are create (a whole new resource) or delete; no update is sent.", 'draft', 'schema')
m([133, 134, 135], "Delete actions name `resourceId` (Type/id) and carry no resource.", 'replace', 'schema')
m([103, 104, 138, 139, 140, 141, 142, 144, 145, 146, 147], "Finding cards carry one `smart` link to the course timeline (`/smart/launch`) with appContext; `cards/model.py: Link` refuses appContext on absolute links.", 'links', 'smartlink')
m([148], "Feedback endpoint, stored idempotently.", 'feedback')
m([175, 179], "Mutual TLS is not used (MAY).")
m([176, 177], "Every endpoint (discovery included) requires a JWT from a trusted issuer (CDS_AUTH=required, the default); failures answer 401 with no detail.", 'jwt', 'jwtclaims')
m([195], "Trusted issuers are an allowlist (CDS_TRUSTED_ISSUERS), each with its key set URL or file and the jku URLs allowed for it.", 'jku', 'sandboxjwt')
m([199], "Without a jku header, the issuer's key set is the one configured out of band (jwks_url or jwks_file).", 'jwt', 'sandboxjwt')
m([200, 205, 206, 207], "ES384 and RS384 by default (CDS_JWT_ALGORITHMS may add other asymmetric algorithms).", 'rsa', 'sandboxjwt')
m([201, 203], "`none` and HMAC tokens are refused, and a setting cannot allow them.", 'jwtnone', 'jwthmac')
m([208], "CORS on discovery, service and feedback endpoints (GET, POST, OPTIONS; Authorization and Content-Type).", 'cors')
m([214, 215], "Request `extension` objects and unknown members are accepted; the service sends none.", 'ext-ok')


def render() -> str:
    missing = [r["id"] for r in rows if int(r["id"]) not in M]
    assert not missing, f"requirements without a row: {missing}"
    out = ["# CDS Hooks 2.0 conformance", "",
           "Every requirement of CDS Hooks 2.0 whose actor includes the CDS Service, from",
           "`tests/external/cds-hooks-2.0-requirements.csv` (Inferno's list, by id), with how the service meets it",
           "and the test that checks it. Generated by `tests/conformance_table.py`; `tests/test_conformance_doc.py`",
           "keeps it current and its test names real.", "",
           "| Id | Level | Requirement (abridged) | How | Test |", "|---|---|---|---|---|"]
    for r in rows:
        how, tests = M[int(r["id"])]
        text = re.sub(r"\s+", " ", r["requirement"]).replace("|", "\\|")
        if len(text) > 110:
            text = text[:107].rstrip() + "..."
        out.append(f"| {r['id']} | {r['conformance']} | {text} | {how} | {'<br>'.join(f'`{t}`' for t in tests) or 'n/a'} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    DOC.write_text(render())
