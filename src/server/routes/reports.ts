// Eval reports over HTTP. Readers (viewers and admins) can read a run's report as JSON or as the
// self-contained HTML page, compare runs, and record a sign-off. Reviewers are viewers or admins:
// signing off is a judgement on a report, not an admin operation, and labelers (who may have
// produced the labels) do not review their own work. Each sign-off is stored in `signoffs`
// against the report row, with the user and a comment; the latest one per user is what counts.
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../index.js';
import { userOf } from '../auth.js';
import { createLocalStore } from '../../store/artifacts.js';
import { addSignoff, latestRunReport, listSignoffs } from '../../eval/report-store.js';
import { renderReportHtml, REPORT_CSP } from '../../eval/report-html.js';
import { compareReports } from '../../eval/compare.js';
import { renderCompareHtml } from '../../eval/compare-html.js';
import { AlignflowError, notFound } from '../../errors.js';
import { ViewTickets, type ViewTarget } from '../view-tickets.js';
import { users } from '../../store/schema.js';
import { eq } from 'drizzle-orm';

const id = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' } as const;
const readers = ['admin', 'viewer'] as const;
/** The compare page has no script at all; inline styles only. */
export const COMPARE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
const runParams = { type: 'object', required: ['runId'], additionalProperties: false, properties: { runId: id } } as const;
/** `runs=` of the compare routes (query string of GET, body of POST). */
const runsParams = { type: 'object', required: ['runs'], additionalProperties: false, properties: { runs: { type: 'string', minLength: 3, maxLength: 2000, description: 'comma-separated run ids, oldest first' } } } as const;

export default async function reportRoutes(app: FastifyInstance, opts: RouteContext): Promise<void> {
  const { db } = opts;
  const store = opts.store ?? createLocalStore(db, opts.home);

  app.get('/api/runs/:runId/report', {
    config: { roles: readers },
    schema: { summary: "A run's latest eval report (report.json) with its sign-offs", tags: ['reports'], params: runParams },
  }, async (req) => {
    const { runId } = req.params as { runId: string };
    const r = await latestRunReport(db, store, runId);
    return { runId: r.runId, reportId: r.reportId, artifactId: r.artifactId, signoffs: listSignoffs(db, r.reportId), report: r.report };
  });

  app.get('/api/runs/:runId/report.html', {
    config: { roles: readers },
    schema: { summary: "A run's latest eval report as one self-contained HTML page", tags: ['reports'], params: runParams },
    // Runs after the app-wide onSend hook: the report's own inline style/script need their own policy.
    onSend: async (_req, reply, payload) => {
      if (reply.statusCode === 200) reply.header('Content-Security-Policy', REPORT_CSP);
      return payload;
    },
  }, async (req, reply) => {
    const { runId } = req.params as { runId: string };
    const r = await latestRunReport(db, store, runId);
    reply.type('text/html; charset=utf-8');
    return renderReportHtml(r.report, { signoffs: listSignoffs(db, r.reportId) });
  });

  app.get('/api/compare', {
    config: { roles: readers },
    schema: {
      summary: "Several runs' reports side by side (figures with deltas against the first, per-prompt regressions)",
      tags: ['reports'],
      querystring: runsParams,
    },
  }, async (req) => compareRuns((req.query as { runs: string }).runs));

  app.get('/api/compare.html', {
    config: { roles: readers },
    schema: {
      summary: 'The same comparison as one self-contained HTML page',
      tags: ['reports'],
      querystring: { type: 'object', required: ['runs'], additionalProperties: false, properties: { runs: { type: 'string', minLength: 3, maxLength: 2000 } } },
    },
    onSend: async (_req, reply, payload) => {
      if (reply.statusCode === 200) reply.header('Content-Security-Policy', COMPARE_CSP);
      return payload;
    },
  }, async (req, reply) => {
    const c = await compareRuns((req.query as { runs: string }).runs);
    reply.type('text/html; charset=utf-8');
    return renderCompareHtml(c);
  });

  async function compareRuns(list: string) {
    const ids = list.split(',').map((s) => s.trim()).filter(Boolean);
    if (ids.length < 2 || ids.length > 20) throw new AlignflowError('input', 'compare needs 2 to 20 run ids (runs=a,b,...)');
    const items = [];
    for (const runId of ids) {
      const r = await latestRunReport(db, store, runId);
      items.push({ runId: r.runId, report: r.report });
    }
    return compareReports(items);
  }

  // ------------------------------------------------------------------ frames for the web UI
  // See ../view-tickets.ts for why the UI's frames load from a one-time ticket URL.
  const tickets = new ViewTickets();
  const frameCsp = new WeakMap<object, string>();

  app.post('/api/runs/:runId/report/view', {
    config: { roles: readers },
    schema: { summary: "A one-time URL (valid 60 s) that serves the run's report HTML without a token, for the UI's sandboxed frame", tags: ['reports'], params: runParams },
  }, async (req, reply) => {
    const { runId } = req.params as { runId: string };
    const r = await latestRunReport(db, store, runId); // 404 here, as JSON, rather than inside the frame
    const t = tickets.issue(userOf(req).id, { kind: 'report', runId: r.runId });
    reply.code(201);
    return { url: `/api/view/${t.ticket}`, expiresAt: t.expiresAt, reportId: r.reportId };
  });

  app.post('/api/compare/view', {
    config: { roles: readers },
    schema: {
      summary: 'A one-time URL (valid 60 s) that serves the compare HTML without a token, for the UI\'s sandboxed frame',
      tags: ['reports'],
      body: runsParams,
    },
  }, async (req, reply) => {
    const { runs } = req.body as { runs: string };
    await compareRuns(runs); // validate now: errors belong to the API call, not the frame
    const t = tickets.issue(userOf(req).id, { kind: 'compare', runs });
    reply.code(201);
    return { url: `/api/view/${t.ticket}`, expiresAt: t.expiresAt };
  });

  app.get('/api/view/:ticket', {
    // The ticket is the credential; it is checked below.
    config: { roles: 'public' },
    schema: {
      summary: 'Serve a report or comparison for a one-time view ticket (from .../report/view or /api/compare/view)',
      tags: ['reports'],
      params: { type: 'object', required: ['ticket'], additionalProperties: false, properties: { ticket: { type: 'string', minLength: 20, maxLength: 100, pattern: '^[A-Za-z0-9_-]+$' } } },
    },
    onSend: async (req, reply, payload) => {
      const csp = frameCsp.get(req);
      if (reply.statusCode === 200 && csp) reply.header('Content-Security-Policy', csp);
      return payload;
    },
  }, async (req, reply) => {
    const t = tickets.redeem((req.params as { ticket: string }).ticket);
    const holder = t && db.select({ role: users.role, disabled: users.disabled }).from(users).where(eq(users.id, t.userId)).get();
    if (!t || !holder || holder.disabled || !(readers as readonly string[]).includes(holder.role)) {
      throw notFound('unknown, used or expired view ticket (tickets work once, for 60 s)');
    }
    const target: ViewTarget = t.target;
    let html: string;
    if (target.kind === 'report') {
      const r = await latestRunReport(db, store, target.runId);
      html = renderReportHtml(r.report, { signoffs: listSignoffs(db, r.reportId) });
      frameCsp.set(req, REPORT_CSP);
    } else {
      html = renderCompareHtml(await compareRuns(target.runs));
      frameCsp.set(req, COMPARE_CSP);
    }
    reply.type('text/html; charset=utf-8');
    return html;
  });

  app.get('/api/runs/:runId/report/signoffs', {
    config: { roles: readers },
    schema: { summary: "Sign-offs of a run's latest report", tags: ['reports'], params: runParams },
  }, async (req) => {
    const { runId } = req.params as { runId: string };
    const r = await latestRunReport(db, store, runId);
    return { reportId: r.reportId, signoffs: listSignoffs(db, r.reportId) };
  });

  app.post('/api/runs/:runId/report/signoff', {
    config: { roles: readers },
    schema: {
      summary: "Approve or reject a run's latest report, with a comment (reviewers: viewers and admins)",
      tags: ['reports'],
      params: runParams,
      body: {
        type: 'object', required: ['decision'], additionalProperties: false,
        properties: { decision: { type: 'string', enum: ['approve', 'reject'] }, comment: { type: 'string', maxLength: 10000 } },
      },
    },
  }, async (req, reply) => {
    const { runId } = req.params as { runId: string };
    const body = req.body as { decision: 'approve' | 'reject'; comment?: string };
    const r = await latestRunReport(db, store, runId);
    const me = userOf(req);
    if (body.decision === 'reject' && !(body.comment ?? '').trim()) throw new AlignflowError('input', 'a rejection needs a comment saying why');
    const signoffId = addSignoff(db, { reportId: r.reportId, userId: me.id, decision: body.decision, comment: body.comment ?? '' });
    reply.code(201);
    return { signoffId, reportId: r.reportId, artifactId: r.artifactId };
  });
}
