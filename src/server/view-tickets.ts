// One-time view tickets for the web UI's report and compare frames.
//
// The UI authenticates with a Bearer header, which an <iframe src> cannot send. Rendering the
// report HTML through srcdoc or a blob: URL would make the frame inherit the UI page's CSP
// (which forbids the report's inline style and script) instead of the report's own policy. So the
// UI asks for a ticket with its token and loads the frame from /api/view/<ticket>: the report is
// then served as a real response under its own Content-Security-Policy header, in a sandboxed
// frame with an opaque origin (no access to the UI's sessionStorage or API token).
//
// A ticket is a capability in a URL, so it is kept weak on purpose: 192 random bits, bound to one
// user and one resource, usable once, valid for TICKET_TTL_MS, held in this process's memory only
// (a restarted server forgets them). Redeeming re-checks that the user is still enabled and may read.
import { randomBytes } from 'node:crypto';

export const TICKET_TTL_MS = 60_000;
const MAX_LIVE = 10_000;

export type ViewTarget = { kind: 'report'; runId: string } | { kind: 'compare'; runs: string };

interface Ticket {
  userId: string;
  target: ViewTarget;
  expires: number;
}

export class ViewTickets {
  private readonly live = new Map<string, Ticket>();

  constructor(private readonly now: () => number = Date.now) {}

  issue(userId: string, target: ViewTarget): { ticket: string; expiresAt: number } {
    this.sweep();
    // Bounded memory even if a client asks for tickets in a loop: drop the oldest first.
    while (this.live.size >= MAX_LIVE) {
      const oldest = this.live.keys().next().value;
      if (oldest === undefined) break;
      this.live.delete(oldest);
    }
    const ticket = randomBytes(24).toString('base64url');
    const expiresAt = this.now() + TICKET_TTL_MS;
    this.live.set(ticket, { userId, target, expires: expiresAt });
    return { ticket, expiresAt };
  }

  /** The ticket's holder and target, once; undefined when unknown, used or expired. */
  redeem(ticket: string): { userId: string; target: ViewTarget } | undefined {
    const t = this.live.get(ticket);
    if (!t) return undefined;
    this.live.delete(ticket);
    if (t.expires < this.now()) return undefined;
    return { userId: t.userId, target: t.target };
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, t] of this.live) if (t.expires < now) this.live.delete(k);
  }
}
