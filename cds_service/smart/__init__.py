"""The SMART on FHIR app cards link to: one patient's dupilumab course at a glance.

EHR launch (`launch` + `iss`) and standalone launch (`iss`), authorization code with PKCE, endpoints
from the FHIR server's `.well-known/smart-configuration`. The access token is used for the reads of one
page view, on the server, and then dropped: it is never stored, logged or put in a URL. The page is
built from the same pipeline and cards as the CDS service: no second copy of the logic.
"""
