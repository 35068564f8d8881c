// A small byte-level BPE trainer (Sennrich et al. 2016; byte-level as GPT-2, Radford et al. 2019)
// whose output is a standard tokenizer.json laid out like transformers' GPT-2 tokenizer, loadable by
// @huggingface/tokenizers and by the Python `tokenizers`. Also a bytes-only tokenizer (no merges).
import type { TokenizerConfig, TokenizerJson } from './tokenizer.js';
import { TextTokenizer } from './tokenizer.js';
import { AlignflowError } from '../../errors.js';

/** GPT-2's reversible byte → printable-unicode map (openai/gpt-2 encoder.py bytes_to_unicode). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

// GPT-2's pre-tokenisation pattern, as the ByteLevel pre-tokenizer applies it (use_regex: true)
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface TrainTokenizerOptions {
  /** Total vocabulary including the 256 bytes and the special tokens. */
  vocabSize: number;
  /** Default ["<|endoftext|>"], appended after the learned vocabulary; the first is BOS/EOS/UNK. */
  specialTokens?: string[];
  /** Pairs seen fewer times are not merged (default 2). */
  minFrequency?: number;
  modelMaxLength?: number;
}

function assemble(vocab: Map<string, number>, merges: string[], specials: string[], modelMaxLength: number): TextTokenizer {
  let next = vocab.size;
  const added = specials.map((content) => ({ id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }));
  const json: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    } as TokenizerJson['model'],
  };
  const first = specials[0];
  const config: TokenizerConfig = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(added.map((a) => [String(a.id), { content: a.content, lstrip: false, normalized: true, rstrip: false, single_word: false, special: true }])),
    bos_token: first ?? null,
    clean_up_tokenization_spaces: false,
    eos_token: first ?? null,
    errors: 'replace',
    model_max_length: modelMaxLength,
    pad_token: null,
    tokenizer_class: 'GPT2Tokenizer',
    unk_token: first ?? null,
  };
  return new TextTokenizer(json, config);
}

/** 256 byte tokens plus the special tokens. */
export function bytesTokenizer(opts: { specialTokens?: string[]; modelMaxLength?: number } = {}): TextTokenizer {
  const alphabet = bytesToUnicode().slice().sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  return assemble(new Map(alphabet.map((c, i) => [c, i])), [], opts.specialTokens ?? ['<|endoftext|>'], opts.modelMaxLength ?? 1024);
}

/**
 * Learns merges from `texts` until the vocabulary reaches `vocabSize`. Each step merges the most
 * frequent adjacent pair (ties: the lexicographically smaller pair), like the Rust BpeTrainer.
 */
export function trainBpeTokenizer(texts: Iterable<string>, opts: TrainTokenizerOptions): TextTokenizer {
  const specials = opts.specialTokens ?? ['<|endoftext|>'];
  const minFreq = opts.minFrequency ?? 2;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < 256 + specials.length) {
    throw new AlignflowError('config', `tokenizer vocab_size must be an integer ≥ ${256 + specials.length} (256 bytes + ${specials.length} special tokens); got ${opts.vocabSize}`);
  }
  const b2u = bytesToUnicode();
  const enc = new TextEncoder();
  // word (as byte-level symbols) → count
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(GPT2_SPLIT)) {
      const w = Array.from(enc.encode(m[0]), (b) => b2u[b]!).join('');
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  const words = [...counts.entries()].map(([w, n]) => ({ syms: Array.from(w), n }));
  const alphabet = b2u.slice().sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  const vocab = new Map<string, number>(alphabet.map((c, i) => [c, i]));
  const merges: string[] = [];
  const target = opts.vocabSize - specials.length;
  const SEP = '\u0000';
  while (vocab.size < target) {
    const pairs = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = syms[i]! + SEP + syms[i + 1]!;
        pairs.set(k, (pairs.get(k) ?? 0) + n);
      }
    }
    let best: string | undefined;
    let bestN = 0;
    for (const [k, n] of pairs) {
      if (n > bestN || (n === bestN && best !== undefined && k < best)) {
        best = k;
        bestN = n;
      }
    }
    if (best === undefined || bestN < minFreq) break;
    const [a, b] = best.split(SEP) as [string, string];
    const merged = a + b;
    merges.push(`${a} ${b}`);
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
    for (const w of words) {
      const s = w.syms;
      if (s.length < 2) continue;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(s[i]!);
      }
      w.syms = out;
    }
  }
  return assemble(vocab, merges, specials, opts.modelMaxLength ?? 1024);
}
