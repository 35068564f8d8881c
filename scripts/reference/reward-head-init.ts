// Prints the reward head alignflow's reward stage starts from (createRewardModel: seeded normal,
// std = initializer_range) for a model directory and a stage seed, as JSON. The TRL side-by-side
// script (trl_side_by_side.py) gives TRL's GPT2ForSequenceClassification this same head, since
// tfjs's seeded normal draws cannot be reproduced in torch.
//   npx tsx scripts/reference/reward-head-init.ts <model dir> <seed>
import { initBackend } from '../../src/ml/backend.js';
import { loadModelDir } from '../../src/ml/models/io.js';
import { createRewardModel } from '../../src/ml/reward.js';

const [dir, seedArg] = process.argv.slice(2);
if (!dir || seedArg === undefined) throw new Error('usage: reward-head-init.ts <model dir> <seed>');
await initBackend();
const { model, tokenizer } = await loadModelDir(dir);
const rm = createRewardModel(model, { seed: Number(seedArg), padTokenId: tokenizer?.padTokenId ?? 0 });
process.stdout.write(JSON.stringify({ seed: Number(seedArg), pad_token_id: rm.padTokenId, score: Array.from(rm.score.dataSync()) }) + '\n');
rm.dispose();
