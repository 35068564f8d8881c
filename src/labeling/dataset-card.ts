// The README.md that makes an exported batch folder a Hugging Face dataset: YAML front matter
// with `configs` (which file is which split; `datasets.load_dataset(DIR)` reads it) and
// `dataset_info` (features and example counts), then a card a person reads: what the data is, the
// labeling guidelines, how labels became preferences and how far the labelers agreed.
// Card layout follows huggingface_hub's dataset card template (templates/datasetcard_template.md).
import type { Batch } from './batches.js';
import type { BatchStats } from './stats.js';
import type { PreferenceExport } from './export.js';

export interface CardInput {
  batch: Batch;
  stats: BatchStats;
  prefs: PreferenceExport;
  labelCount: number;
  preferencesFile: string;
  labelsFile: string;
  /** Ranking batches: the raw rankings file and how many rankings it holds. */
  rankingsFile?: string;
  rankingCount?: number;
}

const f3 = (x: number | null | undefined) => (x === null || x === undefined ? '—' : x.toFixed(3));
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);
/** A YAML double-quoted scalar (JSON strings are valid YAML). */
const yq = (s: string) => JSON.stringify(s);

function rankingSection(c: CardInput): string {
  const r = c.stats.ranking;
  const rule = c.prefs.ranking?.pairRule ?? c.batch.pairRule;
  return `## Rankings

Labelers ranked k answers per prompt (ties allowed); \`${c.rankingsFile}\` (config \`rankings\`) holds
every ranking (**${c.rankingCount ?? 0}**) as given: \`responses\` in item order, \`ranking\` as groups of
answer indices best first, \`ranks\` one dense rank per answer (and, where the batch showed
suggestions, \`suggested_ranks\`: the order the answers' scores suggested). Preferences were induced with
the pair rule **${rule}** (${rule === 'all' ? 'every two answers of different rank' : 'the best-ranked answer(s) against every answer ranked below'});
several labels of one item were first merged into one ranking by mean rank; tied answers give no pair.
${c.prefs.ranking ? `${c.prefs.ranking.rankedItems} of ${c.prefs.ranking.items} items gave pairs.` : ''}

| figure | value |
| --- | --- |
| mean Kendall's τ-b between labelers | ${f3(r?.meanTau)} (${r?.comparisons ?? 0} comparisons) |
| pairwise agreement over answer pairs | ${pct(r?.pairwiseAgreement)} |

For a ranking batch, α and κ below are over answer pairs (each two answers of an item is one unit).

`;
}

export function datasetCard(c: CardInput): string {
  const { batch, stats, prefs } = c;
  const labelers = new Set(stats.time.map((t) => t.annotator)).size;
  const str = (name: string) => `    - name: ${name}\n      dtype: string`;
  const yaml = [
    '---',
    `pretty_name: ${yq(batch.name)}`,
    'task_categories:',
    '- text-generation',
    'tags:',
    '- preference',
    '- rlhf',
    '- dpo',
    '- alignflow',
    'configs:',
    '- config_name: default',
    '  data_files:',
    '  - split: train',
    `    path: ${c.preferencesFile}`,
    '- config_name: labels',
    '  data_files:',
    '  - split: train',
    `    path: ${c.labelsFile}`,
    ...(c.rankingsFile ? ['- config_name: rankings', '  data_files:', '  - split: train', `    path: ${c.rankingsFile}`] : []),
    'dataset_info:',
    '- config_name: default',
    '  features:',
    str('prompt'),
    str('chosen'),
    str('rejected'),
    '  splits:',
    '  - name: train',
    `    num_examples: ${prefs.records.length}`,
    '---',
  ].join('\n');
  const ex = prefs.excluded;
  const gold = stats.gold.length
    ? stats.gold.map((g) => `| ${g.annotator} | ${g.correct} / ${g.total} | ${pct(g.accuracy)}${g.meanTau === undefined ? '' : `, Kendall's τ-b ${g.meanTau === null ? '—' : g.meanTau.toFixed(3)}`} |`).join('\n')
    : '| — | no gold pairs | |';
  return `${yaml}

# ${batch.name}

Human preference pairs in TRL's explicit-prompt format (\`prompt\`, \`chosen\`, \`rejected\`), labeled
with alignflow and exported from label batch \`${batch.id}\`. Train a
reward model or DPO on the \`default\` config; the \`labels\` config holds every raw label.

\`\`\`python
from datasets import load_dataset
prefs = load_dataset("path/to/this/folder", split="train")            # prompt / chosen / rejected
labels = load_dataset("path/to/this/folder", "labels", split="train")  # one row per label
\`\`\`

## Contents

- **${prefs.records.length}** preference records (\`${c.preferencesFile}\`) from ${stats.progress.pairs} ${c.rankingsFile ? 'ranking items' : 'pairs'}; excluded: ${ex.tie} tie, ${ex.both_bad} both bad, ${ex.split} split vote, ${ex.no_labels} unlabeled. Gold pairs (${stats.progress.goldPairs}) are never exported as preferences.
- **${c.labelCount}** raw labels (\`${c.labelsFile}\`) by ${labelers} labeler(s), ${stats.progress.quota} wanted per pair; ${stats.skips} skips. Decisions: a ${stats.decisions.a}, b ${stats.decisions.b}, tie ${stats.decisions.tie}, both bad ${stats.decisions.both_bad}.
- Resolution of several labels into one preference: **${prefs.resolution}** (${prefs.resolution === 'strength' ? 'votes for a side weigh their strength 1–3' : 'one vote per label'}); a tie for the most votes, or a winning tie / both-bad, excludes the pair.
- Message lists (chat prompts and answers) are stored as their JSON text.

${c.rankingsFile ? rankingSection(c) : ''}## Labeling guidelines

${batch.guidelines.trim() || '_No guidelines were given for this batch._'}

## Agreement and quality

| figure | value |
| --- | --- |
| Krippendorff's α (nominal, 4 decisions) | ${f3(stats.alpha)} |
| mean pairwise Cohen's κ | ${f3(stats.kappa.mean)} |
| left side wins (position bias; 50% is none) | ${pct(stats.positionBias.leftWinRate)} |

Gold accuracy${stats.ranking ? ' (gold rankings: correct = the best answer(s) exactly as known, then τ-b to the known ranking)' : ''}:

| labeler | correct | accuracy |
| --- | --- | --- |
${gold}

α and κ are computed over regular pairs with at least two labels (Krippendorff 2011; Cohen 1960);
"—" means too few overlapping labels to say.
`;
}
