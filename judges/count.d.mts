// Types for judges/count.mjs (TypeScript reads this; the .mjs stays plain JavaScript).
export declare const name: string;
export declare const version: string;
export declare const CATEGORIES: Readonly<Record<string, readonly string[]>>;
export declare const INSTRUCTION_VERBS: readonly string[];
export declare const NUMBER_WORDS: Readonly<Record<string, number>>;
export declare const MIN_COUNT: number;
export declare const MAX_COUNT: number;
export interface Instruction {
  n: number;
  category: string;
}
export interface CheckResult {
  ok: boolean;
  expected: number;
  category: string;
  items: string[];
  problems: string[];
}
export declare function parseInstruction(prompt: string): Instruction | null;
export declare function check(prompt: string, response: string): CheckResult;
export declare function score(prompt: string, response: string): number;
