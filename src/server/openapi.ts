// The OpenAPI 3.1 document, assembled from the routes' own JSON schemas (the same schemas fastify
// validates requests with), so the document cannot drift from what the server accepts.
import type { FastifyInstance, RouteOptions } from 'fastify';
import { ALIGNFLOW_VERSION } from '../version.js';
import type { RouteRoles } from './auth.js';

interface Collected {
  method: string;
  url: string;
  schema: Record<string, unknown>;
  roles: RouteRoles;
}

export function collectRoutes(app: FastifyInstance): () => Record<string, unknown> {
  const routes: Collected[] = [];
  app.addHook('onRoute', (r: RouteOptions) => {
    const methods = (Array.isArray(r.method) ? r.method : [r.method]).filter((m) => m !== 'HEAD');
    const roles = ((r.config as { roles?: RouteRoles } | undefined)?.roles ?? ['admin']) as RouteRoles;
    for (const m of methods) routes.push({ method: m.toLowerCase(), url: r.url, schema: (r.schema ?? {}) as Record<string, unknown>, roles });
  });
  return () => build(routes);
}

function build(routes: Collected[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (!r.url.startsWith('/api/')) continue;
    const p = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const s = r.schema as { params?: Schema; querystring?: Schema; body?: Schema; response?: Record<string, unknown>; summary?: string; tags?: string[] };
    const parameters = [
      ...props(s.params).map(([name, schema]) => ({ name, in: 'path', required: true, schema })),
      ...props(s.querystring).map(([name, schema]) => ({ name, in: 'query', required: (s.querystring?.required ?? []).includes(name), schema })),
    ];
    const responses: Record<string, unknown> = {};
    for (const [code, schema] of Object.entries(s.response ?? {})) responses[code] = { description: code.startsWith('2') ? 'OK' : 'error', content: { 'application/json': { schema } } };
    if (r.roles !== 'public') {
      responses['401'] = { description: 'missing or invalid token' };
      responses['403'] = { description: 'role not allowed' };
    }
    if (s.body || s.params || s.querystring) responses['400'] = { description: 'request failed validation' };
    if (Object.keys(responses).length === 0) responses['200'] = { description: 'OK' };
    (paths[p] ??= {})[r.method] = {
      summary: s.summary,
      tags: s.tags,
      'x-roles': r.roles,
      security: r.roles === 'public' ? [] : [{ bearer: [] }],
      parameters: parameters.length ? parameters : undefined,
      requestBody: s.body ? { required: true, content: { 'application/json': { schema: s.body } } } : undefined,
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'alignflow API', version: ALIGNFLOW_VERSION, description: 'Runs, datasets, artifacts, preference pairs, labels and reports. Authenticate with `Authorization: Bearer <token>` (tokens from `alignflow users add`).' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}

type Schema = { properties?: Record<string, unknown>; required?: string[] };
function props(s: Schema | undefined): [string, unknown][] {
  return Object.entries(s?.properties ?? {});
}
