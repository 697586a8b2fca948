/**
 * The transfer engine: {@link transferEmbeddings} builds a new embedding matrix for a target vocabulary
 * (SALT and baselines); {@link evaluateTransfer} measures methods on held-out shared tokens.
 * See docs/transfer.md.
 */
export {
  transferEmbeddings,
  checkTransferOptions,
  TRANSFER_METHODS,
  PROVENANCE,
  DEFAULT_LAMBDA_GRID,
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
} from './transferEmbeddings.js';
export type { Quantiles } from './stats.js';
export {
  evaluateTransfer,
  formatEvaluation,
  trueRowRanks,
  type EvaluateArgs,
  type MethodSpec,
  type MethodScores,
  type SeedEvaluation,
  type EvaluationResult,
} from './evaluateTransfer.js';
