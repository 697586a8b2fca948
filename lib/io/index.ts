/**
 * The file layer of salt-transfer: safetensors (single and sharded), Hugging Face model folders,
 * word-vector files (text, fastText .bin) and the real embedding sources of docs/data.md.
 * See docs/io.md.
 */
export {
  DTYPE_SIZE,
  DTYPE_BITS,
  dtypeByteLength,
  isDtype,
  isFloatDtype,
  decodeF16,
  decodeBF16,
  encodeFloats,
  encodeFloatsAsync,
  decodeHalfAsync,
  toF16Bits,
  toBF16Bits,
  f16ToF32Table,
  type Dtype,
  type FloatDtype,
} from './dtype.js';
export {
  SafetensorsFile,
  writeSafetensors,
  bytesToFloat32,
  tensorByteSize,
  MAX_HEADER_BYTES,
  CHUNK_BYTES,
  type TensorInfo,
  type TensorReader,
  type ReadFloat32Options,
  type TensorData,
  type TensorToWrite,
  type WriteSafetensorsOptions,
} from './safetensors.js';
export {
  SafetensorsCheckpoint,
  writeCheckpoint,
  SAFETENSORS_INDEX,
  SAFETENSORS_SINGLE,
  PYTORCH_INDEX,
  PYTORCH_SINGLE,
  type CheckpointTensorInfo,
  type WriteCheckpointOptions,
  type WrittenCheckpoint,
} from './checkpoint.js';
export { TorchFile, MAX_PICKLE_BYTES, type TorchTensorInfo } from './torchCheckpoint.js';
export {
  parseModelConfig,
  readModelConfig,
  readTokenizerInfo,
  TOKENIZER_FILES,
  type ModelConfig,
  type SpecialTokenIds,
  type TokenizerInfo,
} from './hfConfig.js';
export { HfModel, locateEmbeddings, KNOWN_FAMILIES, type EmbeddingLocation, type TieReason } from './hfModel.js';
export { writeTransferredModel, type WriteTransferredModelOptions, type TransferredModelReport } from './writeModel.js';
export {
  readTextVectors,
  writeVectorCache,
  readVectorCache,
  cachedVectors,
  cachedTextVectors,
  vectorCachePaths,
  indexWords,
  checkVectorTable,
  type VectorTable,
  type ReadTextVectorsOptions,
} from './vectors.js';
export { FastTextModel, fastTextHash, FASTTEXT_MAGIC, type FastTextArgs } from './fasttext.js';
export { writeFileAtomic, writeBytesAtomic } from './atomic.js';
