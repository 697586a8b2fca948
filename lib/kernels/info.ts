import { createRequire } from 'node:module';
import { join } from 'node:path';

import { packageRoot } from '../paths.js';
import { addonPath, binding } from './native.js';

const require = createRequire(import.meta.url);

/** What this installation can do. */
export interface Info {
  /** salt-transfer version. */
  version: string;
  /** Backends usable now, always including 'cpu'. */
  backends: Array<'cpu' | 'cuda'>;
  /** Path of the loaded native addon (a prebuild in prebuilds/ or a local build in build/Release). */
  addon: string;
  /** CPU threads available to the kernels. */
  threads: number;
  /** FAISS version linked into the addon. */
  faiss: string;
  /** BLAS/LAPACK library and configuration. */
  blas: string;
  /** The CUDA plugin: whether it loaded, from where, the devices it found, or why it is unavailable. */
  cuda: { available: boolean; path: string; reason: string; description: string };
}

/** Describes the installation: version, backends, threads, FAISS and BLAS in use, CUDA status. */
export function info(): Info {
  const raw = binding().info();
  const version = (require(join(packageRoot, 'package.json')) as { version: string }).version;
  return {
    version,
    backends: raw.cuda.available ? ['cpu', 'cuda'] : ['cpu'],
    addon: addonPath(),
    threads: raw.threads,
    faiss: raw.faiss,
    blas: raw.blas,
    cuda: raw.cuda,
  };
}
