export { TextTokenizer, loadTokenizerDir, saveTokenizerDir, CHAT_TEMPLATE_FILE, type TokenizerJson, type TokenizerConfig } from './tokenizer.js';
export { trainBpeTokenizer, bytesTokenizer, bytesToUnicode, type TrainTokenizerOptions } from './bpe-trainer.js';
export { renderChat, chatPromptCompletion, withChatTemplate, CHATML_TEMPLATE, DEFAULT_CHAT_TEMPLATE, type ChatMessage } from './chat.js';
export { tokenizePair, type TokenizedPair } from './pairs.js';
