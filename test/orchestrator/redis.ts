// A real redis-server for the tests: started on a free port with no persistence, killed after.
// ALIGNFLOW_TEST_REDIS_URL points the tests at an existing server instead (then nothing is
// restarted or flushed: the tests use their own key prefix only through fresh run ids).
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { Redis } from 'ioredis';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TestRedis {
  url: string;
  /** False when using ALIGNFLOW_TEST_REDIS_URL (cannot be restarted). */
  own: boolean;
  kill(): Promise<void>;
  start(): Promise<void>;
}

async function waitReady(url: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined); // refused while starting: retried below
    try {
      await c.connect();
      await c.ping();
      c.disconnect();
      return;
    } catch {
      c.disconnect();
      if (Date.now() > end) throw new Error(`redis at ${url} did not come up`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export async function startRedis(): Promise<TestRedis> {
  const given = process.env.ALIGNFLOW_TEST_REDIS_URL;
  if (given) return { url: given, own: false, kill: async () => undefined, start: async () => undefined };
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess | undefined;
  const r: TestRedis = {
    url,
    own: true,
    async start() {
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await waitReady(url);
    },
    async kill() {
      const p = proc;
      proc = undefined;
      if (!p || p.exitCode !== null) return;
      await new Promise<void>((res) => {
        p.once('exit', () => res());
        p.kill('SIGKILL');
      });
    },
  };
  await r.start();
  after(() => r.kill());
  return r;
}
