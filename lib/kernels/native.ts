/**
 * Loads the native addon (a prebuild for this platform, else the local build) and describes the raw
 * binding. Internal: the public API in kernels.ts validates arguments before calling it.
 */
import { createRequire } from 'node:module';

import { SaltError } from '../errors.js';
import { packageRoot } from '../paths.js';

const require = createRequire(import.meta.url);

/** CSR arguments shared by the solve kernels. */
interface RawCsr {
  n: number;
  offsets: Int32Array;
  indices: Int32Array;
}

/** Shape of the raw binding (native/binding/addon.cpp). */
export interface RawBinding {
  topkCosine(args: {
    queries: Float32Array;
    n: number;
    base: Float32Array;
    m: number;
    d: number;
    k: number;
    tileRows?: number;
    threads?: number;
    precision?: 'fp32' | 'tf32';
    backend: 'cpu' | 'cuda';
  }): Promise<{ indices: Int32Array; scores: Float32Array }>;
  sparsemax(args: { scores: Float32Array; n: number; K: number; threads?: number; backend: 'cpu' | 'cuda' }): Promise<{
    weights: Float32Array;
    support: Int32Array;
  }>;
  sparsemaxSync(args: { scores: Float32Array; n: number; K: number; threads?: number }): {
    weights: Float32Array;
    support: Int32Array;
  };
  solveNeighbourhoods(
    args: RawCsr & {
      prior?: Float32Array;
      queries: Float32Array;
      ht: number;
      anchorsPlm: Float32Array;
      m: number;
      anchorsSrc: Float32Array;
      hs: number;
      lambda: number;
      rcond: number;
      threads?: number;
      returnCoefficients?: boolean;
      backend: 'cpu' | 'cuda';
    },
  ): Promise<{ out: Float32Array; residual: Float32Array; coefNorm: Float32Array; coefficients?: Float32Array }>;
  applyWeights(
    args: RawCsr & {
      weights: Float32Array;
      anchorsSrc: Float32Array;
      m: number;
      hs: number;
      threads?: number;
      backend: 'cpu' | 'cuda';
    },
  ): Promise<{ out: Float32Array }>;
  findNonFinite(args: {
    data: Float32Array;
    rows: number;
    cols: number;
    mask?: Uint8Array;
    threads?: number;
  }): Promise<{ index: Float64Array }>;
  columnMeanStd(args: {
    data: Float32Array;
    rows: number;
    cols: number;
    norms?: boolean;
    threads?: number;
  }): Promise<{ mean: Float64Array; std: Float64Array; norms?: Float64Array }>;
  copyFileRange(args: {
    fdIn: number;
    offsetIn: number;
    fdOut: number;
    offsetOut?: number;
    length: number;
    writeback?: number;
    flag: Int32Array;
  }): Promise<{ flag: Int32Array }>;
  startWriteback(args: { fd: number; offset: number; length: number }): Promise<unknown>;
  fixMallocMmapThreshold(bytes: number): boolean;
  writeDirect(
    args: { fd: number; fdDirect?: number; offset: number; writeback?: number; flag: Int32Array } & (
      | { fdIn: number; offsetIn: number; length: number }
      | { values: Float32Array; n: number; dtype: 'F32' | 'F16' | 'BF16' }
    ),
  ): Promise<{ flag: Int32Array }>;
  rowNorms(args: {
    data: Float32Array;
    rows: number;
    cols: number;
    ids?: Int32Array;
    n: number;
    threads?: number;
  }): Promise<{ norms: Float64Array }>;
  gatherRows(args: {
    data: Float32Array;
    rows: number;
    cols: number;
    ids: Int32Array;
    n: number;
    threads?: number;
  }): Promise<{ out: Float32Array }>;
  copyRows(args: {
    data: Float32Array;
    rows: number;
    cols: number;
    ids: Int32Array;
    n: number;
    out: Float32Array;
    threads?: number;
  }): Promise<unknown>;
  releasePages(args: { data: Float32Array }): Promise<{ result: { bytes: number } }>;
  encodeFloats(args: {
    src: Float32Array;
    out: Uint16Array;
    n: number;
    dtype: 'F16' | 'BF16';
    threads?: number;
  }): Promise<{ out: Uint16Array }>;
  decodeFloats(args: {
    src: Uint16Array;
    out: Float32Array;
    n: number;
    dtype: 'F16' | 'BF16';
    threads?: number;
  }): Promise<{ out: Float32Array }>;
  widenFloats(args: { src: Float32Array; out: Float64Array; n: number; threads?: number }): Promise<unknown>;
  narrowFloats(args: { src: Float64Array; out: Float32Array; n: number; threads?: number }): Promise<unknown>;
  sortDoubles(args: { values: Float64Array; n: number }): Promise<{ values: Float64Array }>;
  kernelMatrix(args: {
    x: Float32Array;
    n: number;
    z: Float32Array;
    L: number;
    d: number;
    linear: number;
    width: number;
    proj?: Float32Array;
    r?: number;
    threads?: number;
  }): Promise<{ out: Float32Array }>;
  gemm<T extends Float32Array | Float64Array>(args: {
    a: T;
    b: T;
    c: T;
    rows: number;
    inner: number;
    cols: number;
    transA?: number;
    transB?: number;
    beta?: number;
    threads?: number;
  }): Promise<{ c: T }>;
  kernelLoo(args: {
    k: Float64Array;
    n: number;
    shift: number;
    y: Float64Array;
    w: number;
    outCols: number;
    threads?: number;
  }): Promise<{ info: Int32Array; out: Float32Array }>;
  choleskySolve(args: {
    a: Float64Array;
    n: number;
    shift: number;
    b: Float64Array;
    h: number;
    threads?: number;
  }): Promise<{ info: Int32Array; b: Float64Array }>;
  choleskyWhiten(args: { a: Float64Array; n: number; shift: number; threads?: number }): Promise<{
    info: Int32Array;
    t: Float64Array;
  }>;
  allocFloat32(length: number): Float32Array;
  allocFloat64(length: number): Float64Array;
  /** The calling thread to nice 10 (Linux; see salt/core.h). */
  lowerThreadPriority(): void;
  /** See native/core/include/salt/json_vocab.h; synchronous. */
  scanTokenizerVocab(
    bytes: Uint8Array,
    maxDepth: number,
  ):
    | undefined
    | { why: string }
    | {
        why?: undefined;
        vocabBegin: number;
        vocabEnd: number;
        mergesBegin: number;
        mergesEnd: number;
        pieces: string[];
        ids: Int32Array;
      };
  info(): {
    faiss: string;
    blas: string;
    threads: number;
    cuda: { available: boolean; path: string; reason: string; description: string };
  };
}

let cached: RawBinding | undefined;
let cachedPath = '';

/** Path of the loaded addon binary (a prebuild or the local build), once loaded. */
export function addonPath(): string {
  binding();
  return cachedPath;
}

/**
 * Loads the addon now if it can be loaded, and says nothing when it cannot (the first use then
 * throws {@link binding}'s E_LOAD). The package's root entry calls it when imported: loading the addon
 * (a dlopen of a library with FAISS and OpenBLAS inside, and its initialisation) blocked the calling
 * thread for tens of milliseconds inside the first `transfer()` of a process otherwise.
 */
export function preloadBinding(): void {
  try {
    binding();
  } catch {
    // reported by the first call that needs the addon
  }
}

/** The raw binding, loaded on first use. Throws SaltError E_LOAD with likely causes and fixes. */
export function binding(): RawBinding {
  if (cached) return cached;
  try {
    const load = require('node-gyp-build') as { (dir: string): RawBinding; resolve(dir: string): string };
    cachedPath = load.resolve(packageRoot);
    cached = require(cachedPath) as RawBinding;
  } catch (err) {
    const reason = (err as Error).message;
    throw new SaltError(
      'E_LOAD',
      `salt-transfer: the native addon could not be loaded (${reason}).\n` +
        'Possible causes and fixes:\n' +
        '  - No prebuild for this platform and no local build: run "npm rebuild salt-transfer" (needs g++, make, python3,\n' +
        '    and the packages libfaiss-dev libopenblas-openmp-dev; on Debian/Ubuntu: sudo apt-get install -y\n' +
        '    build-essential python3 libfaiss-dev libopenblas-openmp-dev).\n' +
        '  - A library is missing at run time (libgomp1, or libstdc++ from GCC >= 11): install it.\n' +
        '  - The build was made for another Node.js ABI or architecture: delete build/ and run "npm rebuild salt-transfer".',
      { cause: err },
    );
  }
  return cached!;
}
