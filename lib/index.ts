/**
 * salt-transfer: give a large language model a new vocabulary with SALT
 * (Semantic Aware Linear Transfer, Findings of ACL 2025).
 *
 * The root entry holds what a user needs: the kernels, the in-memory engine and its evaluation, the
 * folder-level pipeline, tokenizer loading and alignment, Hugging Face model folders, the errors and
 * `info()`. Low-level file formats are in `salt-transfer/io`, low-level tokenizer pieces in
 * `salt-transfer/tokenizer`. docs/api.md lists every export.
 * @packageDocumentation
 */
export { SaltError, SaltTypeError, SaltRangeError, type ErrorCode } from './errors.js';

// The native addon is loaded when the package is imported, not inside the first call (see preloadBinding).
import { preloadBinding } from './kernels/native.js';
preloadBinding();

// Kernels.
export { matrix, type Matrix, type Neighbourhoods } from './kernels/validate.js';
export {
  topkCosine,
  sparsemax,
  sparsemaxSync,
  solveNeighbourhoods,
  applyWeights,
  type Backend,
  type KernelOptions,
  type TopkOptions,
  type TopkResult,
  type SparsemaxResult,
  type SolveArgs,
  type SolveResult,
  type ApplyWeightsArgs,
} from './kernels/kernels.js';
export { info, type Info } from './kernels/info.js';

// The in-memory engine and its evaluation.
export {
  transferEmbeddings,
  checkTransferOptions,
  TRANSFER_METHODS,
  PROVENANCE,
  DEFAULT_LAMBDA_GRID,
  KERNEL_LAMBDA_GRID,
  KERNEL_WIDTH_GRID,
  KERNEL_LINEAR_GRID,
  MAX_EXACT_ANCHORS,
  MAX_K,
  type TransferMethod,
  type Selection,
  type Provenance,
  type TransferStage,
  type TransferAlignment,
  type TransferSegmentation,
  type TransferOptions,
  type TransferArgs,
  type TransferResult,
  type TransferReport,
  type LambdaReport,
  type KernelReport,
} from './transfer/transferEmbeddings.js';
export type { Quantiles } from './transfer/stats.js';
export {
  evaluateTransfer,
  formatEvaluation,
  type EvaluateArgs,
  type MethodSpec,
  type MethodScores,
  type SeedEvaluation,
  type EvaluationResult,
} from './transfer/evaluateTransfer.js';

// Model folders: transfer, evaluation, inspection.
export {
  transfer,
  planTransfer,
  REPORT_FILE,
  MAX_PAD_MULTIPLE,
  type AuxSpec,
  type ModelStage,
  type TransferProgress,
  type TransferTarget,
  type TransferModelArgs,
  type TransferPlan,
  type ModelTransferReport,
} from './pipeline/transfer.js';
export { evaluateModels, type EvaluateModelsArgs } from './pipeline/evaluate.js';
export { inspectToken, type InspectArgs, type InspectResult, type InspectNeighbour } from './pipeline/inspect.js';
export type { AuxInfo } from './pipeline/auxSpace.js';

// Tokenizers: loading and alignment.
export {
  Vocabulary,
  type TokenKind,
  type SpecialRole,
  type SpellingConvention,
  type CanonicalToken,
  type VocabularyFormat,
} from './tokenizer/vocabulary.js';
export {
  loadVocabulary,
  loadVocabTxt,
  loadWordList,
  loadVocabJson,
  piecesVocabulary,
  wordListVocabulary,
  type PiecesOptions,
} from './tokenizer/plainVocabularies.js';
export { loadHfTokenizerJson, loadHfTokenizerFolder, type HfTokenizerOptions } from './tokenizer/hfTokenizer.js';
export { loadGgufVocabulary } from './tokenizer/gguf.js';
export { loadSentencePieceModel } from './tokenizer/sentencepieceModel.js';
export {
  alignVocabularies,
  formatAlignmentReport,
  MATCH_CATEGORIES,
  type MatchCategory,
  type AlignOptions,
  type Alignment,
  type AlignmentReport,
  type MatchSample,
} from './tokenizer/align.js';
export { segmentWithVocabulary, type Segmentation, type SegmentOptions } from './tokenizer/segment.js';

// Hugging Face model folders.
export { HfModel, type EmbeddingLocation, type TieReason } from './io/hfModel.js';
export {
  writeTransferredModel,
  type WriteTransferredModelOptions,
  type TransferredModelReport,
} from './io/writeModel.js';
export type { ModelConfig, SpecialTokenIds } from './io/hfConfig.js';
