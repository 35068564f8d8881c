// A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) behind a small interface,
// loaded with @huggingface/tokenizers (pure JS; round-trips byte-level BPE exactly).
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { AlignflowError } from '../../errors.js';

export type TokenizerJson = Record<string, unknown> & { model?: { vocab?: Record<string, number> | unknown[] } };
export type TokenizerConfig = Record<string, unknown>;

function tokenName(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

export class TextTokenizer {
  readonly json: TokenizerJson;
  readonly config: TokenizerConfig;
  /** Number of ids the tokenizer can produce: max id + 1 over the vocabulary and added tokens. */
  readonly vocabSize: number;
  private readonly tok: Tokenizer;

  constructor(json: TokenizerJson, config: TokenizerConfig = {}, file = 'tokenizer.json') {
    this.json = json;
    this.config = config;
    try {
      this.tok = new Tokenizer(json, config);
    } catch (e) {
      throw new AlignflowError('input', `${file}: cannot load tokenizer (${(e as Error).message})`, { issues: [{ file, reason: (e as Error).message }] });
    }
    let maxId = -1;
    for (const id of this.tok.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
  }

  /** Token ids of `text`; special tokens are added only when asked (TRL tokenizes pairs without them). */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tok.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  private special(key: string): string | undefined {
    return tokenName(this.config[key]);
  }
  get eosToken(): string | undefined {
    return this.special('eos_token');
  }
  get bosToken(): string | undefined {
    return this.special('bos_token');
  }
  get padToken(): string | undefined {
    return this.special('pad_token');
  }
  get eosTokenId(): number | undefined {
    const t = this.eosToken;
    return t === undefined ? undefined : this.tokenToId(t);
  }
  get bosTokenId(): number | undefined {
    const t = this.bosToken;
    return t === undefined ? undefined : this.tokenToId(t);
  }
  /** The pad id, falling back to EOS as TRL does when a tokenizer has none. */
  get padTokenId(): number | undefined {
    const t = this.padToken;
    return (t === undefined ? undefined : this.tokenToId(t)) ?? this.eosTokenId;
  }
  get chatTemplate(): string | undefined {
    const t = this.config.chat_template;
    return typeof t === 'string' ? t : undefined;
  }
}

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new AlignflowError('not_found', `${file}: cannot read (${(e as Error).message})`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new AlignflowError('input', `${file}: invalid JSON (${(e as Error).message})`, { issues: [{ file, reason: (e as Error).message }] });
  }
}

/** Loads tokenizer.json (required) and tokenizer_config.json (optional) from a directory. */
export function loadTokenizerDir(dir: string): TextTokenizer {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new AlignflowError('not_found', `${file}: missing (alignflow needs a tokenizer.json)`);
  const json = readJson(file);
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
  return new TextTokenizer(json as TokenizerJson, config, file);
}

/** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json as transformers does. */
export function saveTokenizerDir(tok: TextTokenizer, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok.json, null, 2));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tok.config, null, 2));
  const map: Record<string, string> = {};
  for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const v = tokenName(tok.config[k]);
    if (v !== undefined) map[k] = v;
  }
  fs.writeFileSync(path.join(dir, 'special_tokens_map.json'), JSON.stringify(map, null, 2));
}
