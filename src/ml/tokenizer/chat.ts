// Chat templates: tokenizer_config.json's `chat_template` rendered with @huggingface/jinja, with the
// variables transformers passes (messages, add_generation_prompt, bos_token, eos_token).
import { Template } from '@huggingface/jinja';
import { AlignflowError } from '../../errors.js';
import { CHAT_TEMPLATE_FILE, TextTokenizer } from './tokenizer.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

/**
 * Used when a tokenizer has no chat_template:
 *   system → "<content>\n\n", user → "User: <content>\n", assistant → "Assistant: <content><eos>\n",
 *   generation prompt → "Assistant:" (a prefix of the assistant turn, so prompt/completion split cleanly).
 */
export const DEFAULT_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}" +
  "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n' }}" +
  "{% else %}{{ 'Assistant: ' + message['content'] + eos_token + '\\n' }}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

const compiled = new Map<string, Template>();

export function renderChat(
  tok: TextTokenizer,
  messages: ChatMessage[],
  opts: { addGenerationPrompt?: boolean; template?: string } = {},
): string {
  const src = opts.template ?? tok.chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
  let t = compiled.get(src);
  try {
    if (!t) {
      t = new Template(src);
      compiled.set(src, t);
    }
    return t.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      bos_token: tok.bosToken ?? '',
      eos_token: tok.eosToken ?? '',
      pad_token: tok.padToken ?? '',
      unk_token: tok.unkToken ?? '',
    });
  } catch (e) {
    throw new AlignflowError('input', `chat template failed: ${(e as Error).message}`);
  }
}

/**
 * Conversational prompt/completion → text, as TRL's maybe_apply_chat_template: the prompt is rendered
 * with the generation prompt, the completion is what the full conversation adds after it.
 */
export function chatPromptCompletion(tok: TextTokenizer, prompt: ChatMessage[], completion: ChatMessage[], template?: string): { prompt: string; completion: string } {
  const p = renderChat(tok, prompt, { addGenerationPrompt: true, template });
  const full = renderChat(tok, [...prompt, ...completion], { template });
  if (!full.startsWith(p)) {
    throw new AlignflowError('input', 'chat template: the rendered prompt is not a prefix of the rendered conversation');
  }
  return { prompt: p, completion: full.slice(p.length) };
}

/** ChatML, as Qwen and SmolLM2 use it (without their default system messages). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The same tokenizer with another chat template (saved in tokenizer_config.json; a chat_template.jinja it came with is dropped). */
export function withChatTemplate(tok: TextTokenizer, template: string): TextTokenizer {
  const files = new Map([...tok.companionFiles].filter(([n]) => n !== CHAT_TEMPLATE_FILE));
  return new TextTokenizer(tok.json, { ...tok.config, chat_template: template }, 'tokenizer.json', { companionFiles: files });
}
