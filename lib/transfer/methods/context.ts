/** What every method family receives from the engine. */
import type { Matrix } from '../../kernels/validate.js';
import type { Resolved } from '../options.js';
import type { TransferReport, TransferStage } from '../types.js';

/** The engine's state handed to a method: options, anchors, the rows to build and where to write them. */
export interface MethodContext {
  opts: Resolved;
  Pm: Matrix;
  anchorsPlm: Matrix;
  anchorsSrc: Matrix;
  anchorsHead?: Matrix;
  solveIds: Int32Array;
  embeddings: Float32Array;
  headOut?: Float32Array;
  report: TransferReport;
  progress: (stage: TransferStage, done: number, total: number) => void;
  signal?: AbortSignal;
}
