// The stage registry: kind → StageHandler. Built-in handlers are imported here; tests and plugins
// add their own with registerStage() (in-process) or registerStageModule() (a module that worker
// threads and worker processes import too, so the handler exists wherever the stage runs).
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import type { StageHandler } from './contract.js';
import { AlignflowError } from '../errors.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHandler = StageHandler<any>;

const handlers = new Map<string, AnyHandler>();
const modules: string[] = [];

// Built-in handlers, loaded on first use: they pull in TensorFlow.js (seconds to import), which
// a worker thread running one stage, or a test using only test stages, should not pay for. A new
// kind is one line here (docs/writing-a-stage.md).
const builtins: Record<string, () => Promise<AnyHandler>> = {
  sft: async () => (await import('./sft.js')).sftStage,
  reward: async () => (await import('./reward.js')).rewardStage,
  dpo: async () => (await import('./dpo.js')).dpoStage,
  online_dpo: async () => (await import('./online-dpo.js')).onlineDpoStage,
  eval: async () => (await import('./eval.js')).evalStage,
  model_init: async () => (await import('./model-init.js')).modelInitStage,
  collect: async () => (await import('./collect.js')).collectStage,
  label: async () => (await import('./label.js')).labelStage,
  rl: async () => (await import('./rl.js')).rlStage,
};

/**
 * Makes the built-in handlers for `kinds` (default: all) and the modules named in
 * ALIGNFLOW_STAGE_MODULES available to getStage(). Idempotent; call before validating a spec.
 */
export async function loadStages(kinds?: string[]): Promise<void> {
  for (const k of kinds ?? Object.keys(builtins)) {
    const load = builtins[k];
    if (load && !handlers.has(k)) registerStage(await load());
  }
  await loadStageModulesFromEnv();
}

export function registerStage(h: AnyHandler): void {
  handlers.set(h.kind, h);
}

export function getStage(kind: string): AnyHandler | undefined {
  return handlers.get(kind);
}

export function requireStage(kind: string): AnyHandler {
  const h = handlers.get(kind);
  if (!h) throw new AlignflowError('config', `no handler registered for stage kind "${kind}" (known: ${[...handlers.keys()].join(', ') || 'none'})`);
  return h;
}

/** Every kind this process knows: registered handlers plus built-ins not loaded yet. */
export function stageKinds(): string[] {
  return [...new Set([...handlers.keys(), ...Object.keys(builtins)])].sort();
}

function isHandler(v: unknown): v is AnyHandler {
  return !!v && typeof v === 'object' && typeof (v as AnyHandler).kind === 'string' && typeof (v as AnyHandler).run === 'function' && 'configSchema' in v;
}

/**
 * Imports a module and registers every StageHandler it exports. The module URL is remembered and
 * handed to worker threads; worker processes get the list from ALIGNFLOW_STAGE_MODULES
 * (comma-separated paths or file URLs).
 */
export async function registerStageModule(spec: string): Promise<string[]> {
  const url = spec.startsWith('file:') ? spec : pathToFileURL(path.resolve(spec)).href;
  if (modules.includes(url)) return [];
  const mod = (await import(url)) as Record<string, unknown>;
  const kinds: string[] = [];
  for (const v of Object.values(mod)) {
    if (isHandler(v)) {
      registerStage(v);
      kinds.push(v.kind);
    }
  }
  if (kinds.length === 0) throw new AlignflowError('config', `stage module ${spec} exports no stage handler`);
  if (!modules.includes(url)) modules.push(url);
  return kinds;
}

/** Module URLs registered so far (passed on to worker threads and spawned processes). */
export function stageModules(): string[] {
  return [...modules];
}

/** Registers the modules named in ALIGNFLOW_STAGE_MODULES (idempotent). */
export async function loadStageModulesFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  for (const m of (env.ALIGNFLOW_STAGE_MODULES ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    await registerStageModule(m);
  }
}
