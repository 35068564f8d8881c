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
  /**
   * Files of the directory this tokenizer came from that alignflow does not rewrite (chat_template.jinja,
   * vocab.json, merges.txt, generation_config.json, README.md, ...): written back unchanged with it.
   */
  readonly companionFiles: Map<string, Buffer>;
  private readonly tok: Tokenizer;
  private readonly templateFile?: string;

  constructor(json: TokenizerJson, config: TokenizerConfig = {}, file = 'tokenizer.json', opts: { companionFiles?: Map<string, Buffer> } = {}) {
    this.json = json;
    this.config = config;
    this.companionFiles = opts.companionFiles ?? new Map();
    const jinja = this.companionFiles.get(CHAT_TEMPLATE_FILE);
    if (jinja) this.templateFile = jinja.toString('utf8');
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
  get unkToken(): string | undefined {
    return this.special('unk_token');
  }
  /**
   * The chat template: chat_template.jinja (how transformers ≥ 4.50 saves it) wins over
   * tokenizer_config.json's chat_template, as in transformers; a list of named templates gives "default".
   */
  get chatTemplate(): string | undefined {
    if (this.templateFile !== undefined) return this.templateFile;
    const t = this.config.chat_template;
    if (typeof t === 'string') return t;
    if (Array.isArray(t)) {
      const named = t as { name?: unknown; template?: unknown }[];
      const d = named.find((x) => x.name === 'default') ?? named[0];
      return typeof d?.template === 'string' ? d.template : undefined;
    }
    return undefined;
  }
  /** Generation stop ids named by the tokenizer's directory: eos_token and generation_config.json's eos_token_id (one id or a list). */
  get stopTokenIds(): number[] {
    const ids = new Set<number>();
    if (this.eosTokenId !== undefined) ids.add(this.eosTokenId);
    const gen = this.companionFiles.get('generation_config.json');
    if (gen) {
      try {
        const e = (JSON.parse(gen.toString('utf8')) as { eos_token_id?: unknown }).eos_token_id;
        for (const x of Array.isArray(e) ? e : [e]) if (Number.isInteger(x)) ids.add(x as number);
      } catch {
        // an unreadable generation_config.json only loses its stop ids
      }
    }
    return [...ids];
  }
}

export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

/** Files of a model directory that alignflow writes itself; every other top-level file is a companion. */
const REWRITTEN = /^(config\.json|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|model\.safetensors|model-\d+-of-\d+\.safetensors|model\.safetensors\.index\.json|adapter_config\.json|adapter_model\.safetensors|seq_cls_adapter_config\.json|seq_cls_adapter_model\.safetensors)$/;
/** Weights in formats alignflow does not read: stale once the model trains, so never carried along. */
const FOREIGN_WEIGHTS = /\.(bin|pt|pth|h5|msgpack|onnx|gguf|ot|ckpt)$|\.bin\.index\.json$/;

/** The companion files of a model directory (top level only), by name. */
export function readCompanionFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isFile() || REWRITTEN.test(e.name) || FOREIGN_WEIGHTS.test(e.name) || e.name.startsWith('.')) continue;
    out.set(e.name, fs.readFileSync(path.join(dir, e.name)));
  }
  return out;
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
  return new TextTokenizer(json as TokenizerJson, config, file, { companionFiles: readCompanionFiles(dir) });
}

/** Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json as transformers does, and the companion files unchanged. */
export function saveTokenizerDir(tok: TextTokenizer, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, data] of tok.companionFiles) fs.writeFileSync(path.join(dir, name), data);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok.json, null, 2));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tok.config, null, 2));
  const map: Record<string, string> = {};
  for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const v = tokenName(tok.config[k]);
    if (v !== undefined) map[k] = v;
  }
  fs.writeFileSync(path.join(dir, 'special_tokens_map.json'), JSON.stringify(map, null, 2));
}
