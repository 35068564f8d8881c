// Dataset records (TRL formats, src/data/formats.ts) → prompt/completion text, as TRL's trainers
// see them. Tokenization (prompt and completion separately) is done by the callers.
//
// SFT (TRL SFTTrainer):
//   text                       → prompt "", completion = text (loss on every token but the first)
//   prompt-completion          → as given (loss on the completion only)
//   conversational p-c         → chat template: prompt with the generation prompt, completion the rest
//   messages                   → the whole rendered conversation as completion (TRL trains on all tokens
//                                of a `messages` record unless assistant_only_loss is set)
// EOS: with `addEos` the tokenizer's eos token is appended to the completion of the standard (non-chat)
// formats, as TRL does, so that a trained model learns to stop. Chat templates add their own.
//
// Preference: explicit prompt as given; implicit prompt extracted as TRL's extract_prompt does (the
// longest common prefix — of characters for strings, backed up off a trailing space so the space
// stays in the completions; of messages for conversations).
import { AlignflowError } from '../../errors.js';
import type { Content, Message, PreferenceRecord, SftRecord, UnpairedRecord } from '../../data/formats.js';
import { chatPromptCompletion, renderChat } from '../tokenizer/chat.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';

export interface TextPair {
  prompt: string;
  completion: string;
}

function eosOf(tok: TextTokenizer, addEos: boolean): string {
  if (!addEos) return '';
  return tok.eosToken ?? '';
}

export function sftRecordText(tok: TextTokenizer, r: SftRecord, opts: { addEos?: boolean; template?: string } = {}): TextPair {
  const eos = eosOf(tok, opts.addEos ?? true);
  if ('text' in r) return { prompt: '', completion: r.text + eos };
  if ('messages' in r) return { prompt: '', completion: renderChat(tok, r.messages, { template: opts.template }) };
  if (Array.isArray(r.prompt)) return chatPromptCompletion(tok, r.prompt, r.completion as Message[], opts.template);
  return { prompt: r.prompt, completion: (r.completion as string) + eos };
}

/** TRL's extract_prompt for implicit-prompt strings. */
function commonPrefixString(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (i < a.length && i < b.length && i > 0 && a[i - 1] === ' ') i--;
  return i;
}

export interface PreferenceText {
  prompt: string;
  chosen: string;
  rejected: string;
}

export function preferenceRecordText(tok: TextTokenizer, r: PreferenceRecord, opts: { addEos?: boolean; template?: string } = {}): PreferenceText {
  const eos = eosOf(tok, opts.addEos ?? true);
  const conv = Array.isArray(r.chosen);
  if (!conv) {
    if (r.prompt !== undefined && typeof r.prompt !== 'string') throw new AlignflowError('input', 'preference record mixes a conversational prompt with string completions');
    let prompt = r.prompt as string | undefined;
    let chosen = r.chosen as string;
    let rejected = r.rejected as string;
    if (prompt === undefined) {
      const n = commonPrefixString(chosen, rejected);
      prompt = chosen.slice(0, n);
      chosen = chosen.slice(n);
      rejected = rejected.slice(n);
    }
    return { prompt, chosen: chosen + eos, rejected: rejected + eos };
  }
  let prompt = r.prompt as Message[] | undefined;
  let chosen = r.chosen as Message[];
  let rejected = r.rejected as Message[];
  if (prompt === undefined) {
    let n = 0;
    while (n < chosen.length && n < rejected.length && chosen[n]!.role === rejected[n]!.role && chosen[n]!.content === rejected[n]!.content) n++;
    prompt = chosen.slice(0, n);
    chosen = chosen.slice(n);
    rejected = rejected.slice(n);
  }
  const c = chatPromptCompletion(tok, prompt, chosen, opts.template);
  const j = chatPromptCompletion(tok, prompt, rejected, opts.template);
  return { prompt: c.prompt, chosen: c.completion, rejected: j.completion };
}

export function unpairedRecordText(tok: TextTokenizer, r: UnpairedRecord, opts: { addEos?: boolean; template?: string } = {}): TextPair & { label: boolean } {
  if (Array.isArray(r.prompt)) return { ...chatPromptCompletion(tok, r.prompt, r.completion as Message[], opts.template), label: r.label };
  return { prompt: r.prompt, completion: (r.completion as string) + eosOf(tok, opts.addEos ?? true), label: r.label };
}

/** A prompt record's text, ready for generation (chat prompts get the generation prompt). */
export function promptText(tok: TextTokenizer, p: Content, template?: string): string {
  return typeof p === 'string' ? p : renderChat(tok, p, { addGenerationPrompt: true, template });
}
