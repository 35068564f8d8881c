// The programmatic API of alignflow: what the CLI is built on. Grouped by layer, bottom up.

export { ALIGNFLOW_VERSION, ENGINE_VERSION } from './version.js';
export { AlignflowError, exitCodeFor, formatIssue, type ErrorKind, type InputIssue } from './errors.js';
export { alignflowHome, databasePath, blobsDir } from './config/paths.js';

// State and artifacts
export * as schema from './store/schema.js';
export { openDb, immediate, migrationsFolder, type Db } from './store/db.js';
export { createLocalStore, artifactId, type LocalArtifactStore } from './store/artifacts.js';
export type { ArtifactStore, ArtifactManifest, PutArtifact, ArtifactFileInput } from './store/types.js';
export { listArtifacts, showArtifact, lineage, verifyArtifacts, setPinned, gc, type GcOptions, type GcReport } from './store/registry.js';
export { canonicalJson, canonicalHash } from './store/canonical-json.js';

// Datasets and synthetic data
export { importDataset, exportDataset, readDatasetRecords, listDatasets, resolveDataset, type ImportOptions, type ImportResult, type DatasetInfo } from './data/datasets.js';
export { detectFormat, normalizeRecord, type DatasetRecord, type SftRecord, type PreferenceRecord, type UnpairedRecord, type PromptRecord, type DatasetFormat } from './data/formats.js';
export { generateSentiment, generateCount, generateMixed, writeDataset } from './data/synth/index.js';

// The engine
export { initBackend, describeBackends } from './ml/backend.js';
export { createGpt2, Gpt2Model } from './ml/models/gpt2.js';
export { createLlama, LlamaModel, type LlamaConfig } from './ml/models/llama.js';
export { PRESETS, modelFamily, knownModelTypes, type ModelFamily } from './ml/models/registry.js';
export { attachLora, loadAdapterDir, mergedTensors, withAdaptersOff, type LoraConfig } from './ml/lora.js';
export { exportModelDir } from './ml/models/export.js';
export { loadModelDir, saveModelDir, type LoadedModel } from './ml/models/io.js';
export { importModelDir, putModel, loadModelArtifact } from './ml/models/store.js';
export type { CausalLM, ModelConfig, Gpt2Config, KVCache, LinearLayer } from './ml/models/types.js';
export { TextTokenizer, loadTokenizerDir, saveTokenizerDir, trainBpeTokenizer, bytesTokenizer, renderChat, tokenizePair } from './ml/tokenizer/index.js';
export { completionLogps } from './ml/logprobs.js';
export { train, AdamW, learningRateAt, runSft, type TrainOptions, type TrainResult } from './ml/train/index.js';
export { generate, type GenerateOptions, type GenerateResult } from './ml/generate.js';
export { scoreRecords, type ScoreRow } from './ml/score.js';
export * as losses from './ml/losses/index.js';
export { RewardModel, createRewardModel, loadRewardModelDir, saveRewardModelDir, scoreWithRewardModel } from './ml/reward.js';

// Stages and orchestration
export type { StageHandler, StageContext, StageOutcome, Progress } from './stages/contract.js';
export { registerStage, registerStageModule, loadStages, getStage, stageKinds } from './stages/index.js';
export { loadSpecFile, parseSpec, type PipelineSpec, type StageSpec } from './config/spec.js';
export * from './orchestrator/index.js';

// Labeling, evaluation, server
export { createLabelingPort, type LabelingService } from './labeling/port.js';
export { addUser, verifyToken, listUsers } from './labeling/users.js';
export { krippendorffAlphaNominal, cohenKappa, pairwiseKappa, positionBias, goldAccuracy } from './labeling/agreement.js';
export { winRateCI, bootstrap, wilsonInterval, orderConsistency } from './eval/stats.js';
export { lengthControlledWinRate } from './eval/length-control.js';
export { estimateKl } from './eval/kl.js';
export { buildReport, summaryRows } from './eval/build.js';
export { renderReportHtml } from './eval/report-html.js';
export { compareReports } from './eval/compare.js';
export type { EvalReport } from './eval/report-types.js';
export { buildServer, type BuildServerOptions } from './server/index.js';
