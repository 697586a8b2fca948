// The public surface: the root entry holds the user's API only, and docs/api.md lists every export.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import * as root from '../lib/index.js';

const repo = resolve(import.meta.dirname, '..');

describe('public API', () => {
  it('the root entry exports the user-facing values and not the low-level helpers', () => {
    for (const name of [
      'transfer',
      'planTransfer',
      'evaluateModels',
      'inspectToken',
      'transferEmbeddings',
      'evaluateTransfer',
      'topkCosine',
      'solveNeighbourhoods',
      'alignVocabularies',
      'loadVocabulary',
      'HfModel',
      'writeTransferredModel',
      'SaltError',
      'info',
    ]) {
      expect(root, name).toHaveProperty(name);
    }
    for (const name of [
      'f16ToF32Table',
      'CHUNK_BYTES',
      'runDemo',
      'preparePair',
      'loadAux',
      'writeFileAtomic',
      'SafetensorsFile',
      'canonicalizePiece',
    ]) {
      expect(root, name).not.toHaveProperty(name);
    }
  });
  it('every error class is instanceof SaltError and keeps its JavaScript base class', () => {
    const t = new root.SaltTypeError('x');
    const r = new root.SaltRangeError('x', 'E_SHAPE');
    expect(t).toBeInstanceOf(root.SaltError);
    expect(r).toBeInstanceOf(root.SaltError);
    expect(t).toBeInstanceOf(TypeError);
    expect(r).toBeInstanceOf(RangeError);
    expect(new Error('x')).not.toBeInstanceOf(root.SaltError);
  });
  it('docs/api.md is current (one line per export of every entry)', () => {
    const r = spawnSync(process.execPath, [join(repo, 'scripts', 'api-doc.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});
