/**
 * salt-transfer: give a large language model a new vocabulary with SALT
 * (Semantic Aware Linear Transfer, Findings of ACL 2025).
 * @packageDocumentation
 */
export { SaltError, SaltTypeError, SaltRangeError, type ErrorCode } from './errors.js';
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
export * from './io/index.js';
export * from './tokenizer/index.js';
export * from './transfer/index.js';
export {
  transfer,
  evaluateModels,
  loadSource,
  loadAux,
  preparePair,
  REPORT_FILE,
  type AuxSpec,
  type ModelStage,
  type TransferProgress,
  type TransferTarget,
  type TransferModelArgs,
  type ModelTransferReport,
  type LoadedSource,
  type PreparedPair,
  type EvaluateModelsArgs,
} from './pipeline/transfer.js';
export { evaluationToJson, evaluationToCsv, evaluationToSvg, writeEvaluationFiles } from './cli/evaluationFiles.js';
export { inspectToken, type InspectArgs, type InspectResult, type InspectNeighbour } from './pipeline/inspect.js';
export { runDemo, DEMO_MARKER, type DemoOptions, type DemoReport } from './cli/demo.js';
