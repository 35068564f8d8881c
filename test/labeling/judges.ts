import fs from 'node:fs';
import path from 'node:path';

/** Writes judge modules into dir: a good one, one that throws on "boom", one with a bad verdict, a scorer. */
export function writeJudges(dir: string) {
  const w = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  return {
    good: w('good.mjs', `export const name = 'prefers-good'; export const version = '2.1';\nexport function judge(prompt, a, b) { return a.startsWith('good') ? 'a' : b.startsWith('good') ? 'b' : 'tie'; }\n`),
    throws: w('throws.mjs', `export function judge(prompt, a, b) { if (b.startsWith('boom')) throw new Error('cannot parse ' + b); return 'a'; }\n`),
    invalid: w('invalid.mjs', `export const name = 'sloppy'; export async function judge() { return 'left'; }\n`),
    scorer: w('scorer.mjs', `export const name = 'len'; export function score(prompt, r) { return r.startsWith('good') ? 1 : 0; }\n`),
    nothing: w('nothing.mjs', `export const x = 1;\n`),
  };
}
