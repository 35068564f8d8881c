// The alignflow HTTP server: JSON API + the web UI, one fastify instance.
//
// Route modules live in ./routes/: every module there is loaded and its default export (a fastify
// plugin) registered with the RouteContext below as options. Adding an area (reports, ...) means
// adding one file; each route declares `config: { roles: [...] }` (see ./auth.ts) and a JSON
// `schema` for its params/query/body (validated, and published at /openapi.json).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { Ajv } from 'ajv';
import { AlignflowError } from '../errors.js';
import type { Db } from '../store/db.js';
import type { ArtifactStore } from '../store/types.js';
import { installAuth } from './auth.js';
import { collectRoutes } from './openapi.js';
import type { CoordinatorHooks } from './routes/coordinator.js';
import { ConflictError, ForbiddenError } from '../labeling/errors.js';

/** Runs submitted and cancelled through the API. The CLI's `serve` wires the orchestrator in. */
export interface OrchestratorPort {
  submit(input: { spec: unknown; specPath?: string; executor?: 'inline' | 'bullmq'; force?: string[] }): Promise<{ runId: string }>;
  cancel(runId: string, stageName?: string): Promise<{ cancelled: number }>;
}

export interface RouteContext {
  db: Db;
  home: string;
  store?: ArtifactStore;
  orchestrator?: OrchestratorPort;
  /** Set by `serve --redis`: schedules what follows a remote worker's recorded attempt. */
  coordinator?: CoordinatorHooks;
}

export interface BuildServerOptions extends RouteContext {
  /** fastify's logger (off by default; `serve` turns it on). */
  logger?: boolean;
  /** Extra route plugins, registered after those in ./routes/. */
  plugins?: FastifyPluginAsync<RouteContext>[];
  /** Load route modules from this folder (default: ./routes next to this file). */
  routesDir?: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** Status code for an error thrown by a route. */
export function statusOf(err: unknown): number {
  if (err instanceof ConflictError) return 409;
  if (err instanceof ForbiddenError) return 403;
  if (err instanceof AlignflowError) {
    if (err.kind === 'not_found') return 404;
    if (err.kind === 'input' || err.kind === 'usage' || err.kind === 'config') return 400;
    if (err.kind === 'transient') return 503;
    return 500;
  }
  return 500;
}

/** No request body needs more nesting than this (a spec's stage config is the deepest). */
export const MAX_JSON_DEPTH = 64;

/** The deepest nesting of arrays and objects in JSON text (brackets inside strings ignored). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/** One line naming the request, then the error's stack (cause included), on stderr. */
export function logInternalError(method: string, url: string, reqId: string, err: unknown): void {
  const stack = (e: unknown) => (e instanceof Error ? e.stack ?? `${e.name}: ${e.message}` : String(e));
  const cause = err instanceof Error && err.cause !== undefined ? `\ncaused by: ${stack(err.cause)}` : '';
  process.stderr.write(`${new Date().toISOString()} internal error in ${method} ${url.split('?')[0]} (request ${reqId}):\n${stack(err)}${cause}\n`);
}

async function routeModules(dir: string): Promise<FastifyPluginAsync<RouteContext>[]> {
  if (!fs.existsSync(dir)) return [];
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.(ts|js|mjs)$/.test(f) && !f.endsWith('.d.ts') && !f.includes('.test.'))
    .sort();
  // Prefer one file per module name (src has .ts; a build has .js).
  const seen = new Set<string>();
  const out: FastifyPluginAsync<RouteContext>[] = [];
  for (const f of files) {
    const base = f.replace(/\.(ts|js|mjs)$/, '');
    if (seen.has(base)) continue;
    seen.add(base);
    const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as Record<string, unknown>;
    const plugin = mod.default ?? mod.routes ?? mod.plugin;
    if (typeof plugin !== 'function') throw new AlignflowError('internal', `route module ${f} has no default export (a fastify plugin)`);
    out.push(plugin as FastifyPluginAsync<RouteContext>);
  }
  return out;
}

export async function buildServer(opts: BuildServerOptions): Promise<FastifyInstance> {
  // An acknowledged label must survive a power cut, not only a crash: with WAL, NORMAL may lose the
  // last commits when the machine (not the process) dies; FULL syncs the WAL on every commit.
  // Measured here (300 next+label cycles, 3 runs): 0.55–1.23 ms per label with NORMAL, 8.2–12.4 ms
  // with FULL, negligible beside the seconds a person takes to read a pair.
  opts.db.$client.pragma('synchronous = FULL');
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 4 * 1024 * 1024,
  });
  // Reject unknown fields instead of silently dropping them (fastify's default strips them).
  // Bodies are JSON and must already have the published types ({"choice": ["left"]} is refused);
  // only the query string and path parameters, which are text, are coerced to numbers and arrays.
  const ajvOptions = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false } as const;
  const bodyAjv = new Ajv({ ...ajvOptions, coerceTypes: false });
  const textAjv = new Ajv({ ...ajvOptions, coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema));
  // JSON nested deeper than any request needs is refused before it is parsed into objects whose
  // handling (validation, stringifying) could exhaust the stack.
  const parseJson = app.getDefaultJsonParser('error', 'error'); // keeps fastify's prototype-poisoning checks
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const depth = jsonDepth(body as string);
    if (depth > MAX_JSON_DEPTH) return done(Object.assign(new Error(`JSON body nested ${depth} levels deep (at most ${MAX_JSON_DEPTH})`), { statusCode: 400 }), undefined);
    parseJson(req, body as string, done);
  });

  const openapi = collectRoutes(app);
  installAuth(app, opts.db);

  app.addHook('onSend', async (req, reply, payload) => {
    // Everything the UI needs is served from here; nothing inline, nothing remote.
    reply.header('Content-Security-Policy', "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    if (req.url.startsWith('/api/')) reply.header('Cache-Control', 'no-store');
    return payload;
  });

  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    const fe = err as FastifyError;
    if (fe.validation) {
      return reply.code(400).send({
        error: 'input',
        message: `invalid request ${fe.validationContext ?? ''}: ${err.message}`.replace(/\s+:/, ':'),
        issues: fe.validation.map((v) => ({ field: `${fe.validationContext ?? ''}${v.instancePath}`.replace(/\//g, '.'), reason: v.message ?? 'invalid' })),
      });
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.code(fe.statusCode).send({ error: 'input', message: err.message });
    }
    const code = statusOf(err);
    // Always on stderr with the stack, whether or not request logging (--log) is on: an internal
    // error that leaves no trace cannot be fixed. The client gets "internal error" only.
    if (code >= 500) logInternalError(req.method, req.url, req.id, err);
    const body: Record<string, unknown> = { error: err instanceof AlignflowError ? (code === 409 ? 'conflict' : code === 403 ? 'forbidden' : err.kind) : 'internal', message: code >= 500 && !(err instanceof AlignflowError) ? 'internal error' : err.message };
    if (err instanceof AlignflowError && err.issues.length) body.issues = err.issues;
    return reply.code(code).send(body);
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }));

  app.get('/openapi.json', { config: { roles: 'public' }, schema: { hide: true } }, async () => openapi());
  app.get('/api/health', { config: { roles: 'public' }, schema: { summary: 'Liveness check', tags: ['meta'] } }, async () => ({ ok: true }));

  const ctx: RouteContext = { db: opts.db, home: opts.home, store: opts.store, orchestrator: opts.orchestrator, ...(opts.coordinator ? { coordinator: opts.coordinator } : {}) };
  for (const p of await routeModules(opts.routesDir ?? path.join(here, 'routes'))) await app.register(p, ctx);
  for (const p of opts.plugins ?? []) await app.register(p, ctx);
  await app.ready();
  return app;
}
