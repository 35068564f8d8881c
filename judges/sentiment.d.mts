// Types for judges/sentiment.mjs (TypeScript reads this; the .mjs stays plain JavaScript).
export declare const name: string;
export declare const version: string;
export type Strength = 1 | 2 | 3;
export declare const ADJECTIVES: Readonly<{
  positive: Readonly<Record<Strength, readonly string[]>>;
  negative: Readonly<Record<Strength, readonly string[]>>;
  neutral: readonly string[];
}>;
export declare const VERBS: Readonly<Record<string, number>>;
export declare const INTENSIFIERS: Readonly<Record<string, number>>;
export declare const NEGATORS: readonly string[];
export declare const NEGATION_FACTOR: number;
export declare const NEGATION_WINDOW: number;
export declare const SCALE: number;
export declare function tokenize(text: string): string[];
export declare function rawScore(text: string): number;
export declare function normalize(raw: number): number;
export declare function score(prompt: string, response: string): number;
export declare function lexiconWords(): string[];
