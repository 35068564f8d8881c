export { TextTokenizer, loadTokenizerDir, saveTokenizerDir, type TokenizerJson, type TokenizerConfig } from './tokenizer.js';
export { trainBpeTokenizer, bytesTokenizer, bytesToUnicode, type TrainTokenizerOptions } from './bpe-trainer.js';
export { renderChat, chatPromptCompletion, DEFAULT_CHAT_TEMPLATE, type ChatMessage } from './chat.js';
export { tokenizePair, type TokenizedPair } from './pairs.js';
