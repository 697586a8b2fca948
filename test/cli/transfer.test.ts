// transfer(): folder-level transfer from a Hugging Face LLM folder to a PLM folder's vocabulary.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SaltError } from '../../lib/errors.js';
import { writeCheckpoint } from '../../lib/io/checkpoint.js';
import { readTokenizerInfo } from '../../lib/io/hfConfig.js';
import { HfModel } from '../../lib/io/hfModel.js';
import { openSource } from '../../lib/pipeline/load.js';
import { type Preparer } from '../../lib/pipeline/preparer.js';
import { type ModelTransferReport, REPORT_FILE, transfer } from '../../lib/pipeline/transfer.js';
import { alignVocabularies, MATCH_CATEGORIES } from '../../lib/tokenizer/align.js';
import { loadHfTokenizerFolder } from '../../lib/tokenizer/hfTokenizer.js';
import { type Segmentation, segmentWithVocabulary } from '../../lib/tokenizer/segment.js';
import { type Folder, llmFolder, plmFolder, seeded } from './fixtures.js';

let dir: string;
let untied: Folder, tied: Folder, plm: Folder;
let sourceIdOfTarget: Int32Array;
let category: Uint8Array;
let segmentation: Segmentation;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'salt-cli-transfer-'));
  [untied, tied, plm] = await Promise.all([
    llmFolder(join(dir, 'llm-untied'), { tied: false }),
    llmFolder(join(dir, 'llm-tied'), { tied: true, seed: 5 }),
    plmFolder(join(dir, 'plm')),
  ]);
  // The alignment the transfer should use, computed here independently of transfer().
  const [sv, tv] = [await loadHfTokenizerFolder(untied.dir), await loadHfTokenizerFolder(plm.dir)];
  const a = alignVocabularies(sv, tv);
  sourceIdOfTarget = a.sourceIdOfTarget;
  category = a.category;
  segmentation = segmentWithVocabulary(sv, tv, { exclude: a.sourceIdOfTarget });
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function filesOf(folder: string): Promise<Map<string, Buffer>> {
  const m = new Map<string, Buffer>();
  for (const f of (await readdir(folder)).sort()) if (f !== REPORT_FILE) m.set(f, await readFile(join(folder, f)));
  return m;
}

describe('transfer (untied source, two targets in one call, a concurrent rerun)', () => {
  let reports: ModelTransferReport[];
  let rerun: ModelTransferReport[];
  beforeAll(async () => {
    // One call with two targets (the source is loaded once) while a second, independent call runs at the same time.
    [reports, rerun] = await Promise.all([
      transfer({
        source: untied.dir,
        targets: [
          { target: plm.dir, out: join(dir, 'out-a') },
          { target: plm.dir, out: join(dir, 'out-b') },
        ],
        seed: 3,
      }),
      transfer({ source: untied.dir, target: plm.dir, out: join(dir, 'out-c'), seed: 3 }),
    ]);
  }, 120_000);

  it('writes a folder that reads back as a model with the target vocabulary', async () => {
    const tok = await readTokenizerInfo(plm.dir);
    const m = await HfModel.open(join(dir, 'out-a'));
    try {
      expect(m.config.vocabSize).toBe(plm.vocab);
      expect(m.embeddings.input.shape).toEqual([plm.vocab, untied.width]);
      expect(m.embeddings.tied).toBe(false);
      expect(m.embeddings.head!.shape).toEqual([plm.vocab, untied.width]);
      const cfg = JSON.parse(await readFile(join(dir, 'out-a', 'config.json'), 'utf8'));
      expect(cfg.vocab_size).toBe(32000);
      expect(cfg.bos_token_id).toBe(tok.specialTokens.bos);
      expect(cfg.eos_token_id).toBe(tok.specialTokens.eos);
      expect(cfg.bos_token_id).toBe(1); // Mistral's <s>, from its tokenizer_config.json
      // The target tokenizer's files: tokenizer.json byte for byte; tokenizer_config.json with the inputs of a causal LM.
      expect(
        (await readFile(join(dir, 'out-a', 'tokenizer.json'))).equals(await readFile(join(plm.dir, 'tokenizer.json'))),
      ).toBe(true);
      const tc = JSON.parse(await readFile(join(plm.dir, 'tokenizer_config.json'), 'utf8'));
      expect(JSON.parse(await readFile(join(dir, 'out-a', 'tokenizer_config.json'), 'utf8'))).toEqual({
        ...tc,
        model_input_names: ['input_ids', 'attention_mask'],
      });
      const emb = await m.readInputEmbedding();
      const head = await m.readOutputHead();
      const H = untied.width;
      let shared = 0;
      let special = 0;
      for (let t = 0; t < plm.vocab; t++) {
        const s = sourceIdOfTarget[t];
        if (s < 0) continue;
        shared++;
        if (MATCH_CATEGORIES[category[t]] === 'special-role') special++;
        // Copied rows: bit-exact, in the embedding and in the untied head.
        expect(emb.subarray(t * H, t * H + H)).toEqual(untied.embedding.subarray(s * H, s * H + H));
        expect(head.subarray(t * H, t * H + H)).toEqual(untied.head!.subarray(s * H, s * H + H));
      }
      expect(shared).toBeGreaterThan(10_000);
      expect(special).toBeGreaterThanOrEqual(2); // bos and eos by role
      // No NaN rows, and new rows are not copies of zero.
      expect(emb.every((x) => Number.isFinite(x))).toBe(true);
      expect(head.every((x) => Number.isFinite(x))).toBe(true);
      for (let t = 0; t < plm.vocab; t++) {
        if (sourceIdOfTarget[t] >= 0) continue;
        let n2 = 0;
        for (let j = 0; j < H; j++) n2 += emb[t * H + j]! ** 2;
        expect(n2).toBeGreaterThan(0);
      }
    } finally {
      await m.close();
    }
  });

  it('writes the report next to the model, consistent with the alignment', async () => {
    const r = JSON.parse(await readFile(join(dir, 'out-a', REPORT_FILE), 'utf8')) as ModelTransferReport;
    const c = r.transfer.counts;
    expect(c.copied + c.special + c.solved + c.fallback).toBe(plm.vocab);
    expect(c.copied + c.special).toBe(Array.from(sourceIdOfTarget).filter((s) => s >= 0).length);
    expect(r.shapes).toMatchObject({
      sourceVocab: untied.vocab,
      targetVocab: plm.vocab,
      tied: false,
      headWidth: untied.width,
    });
    expect(r.aux).toEqual({ kind: 'target-embeddings', present: plm.vocab });
    for (const k of ['loadSource', 'loadTarget', 'align', 'aux', 'engine', 'write', 'total'] as const)
      expect(r.timings[k]).toBeGreaterThanOrEqual(0);
    expect(reports.map((x) => x.output)).toEqual([join(dir, 'out-a'), join(dir, 'out-b')]);
    // The source is loaded once: the second target's report has no source-loading time.
    expect(reports[1].timings.loadSource).toBe(0);
  });

  it('gives byte-identical files for the same inputs and seed (second target, separate concurrent call)', async () => {
    const a = await filesOf(join(dir, 'out-a'));
    for (const other of ['out-b', 'out-c']) {
      const b = await filesOf(join(dir, other));
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [f, bytes] of a) expect(bytes.equals(b.get(f)!), `${other}/${f}`).toBe(true);
    }
    expect(rerun[0].transfer.counts).toEqual(reports[0].transfer.counts);
  });

  it('refuses to overwrite an existing output folder unless overwrite is set', async () => {
    const before = await stat(join(dir, 'out-c', 'config.json'));
    await expect(transfer({ source: untied.dir, target: plm.dir, out: join(dir, 'out-c') })).rejects.toThrow(
      new SaltError(
        'E_EXISTS',
        `output folder ${JSON.stringify(join(dir, 'out-c'))} already exists (pass overwrite: true, or --overwrite, to replace a folder salt-transfer wrote)`,
      ),
    );
    expect((await stat(join(dir, 'out-c', 'config.json'))).mtimeMs).toBe(before.mtimeMs);
    const [r] = await transfer({
      source: untied.dir,
      target: plm.dir,
      out: join(dir, 'out-c'),
      seed: 4,
      overwrite: true,
      method: 'focus',
    });
    expect(r.transfer.method).toBe('focus');
  }, 60_000);
});

describe('transfer (tied source, preset, abort, errors)', () => {
  it('keeps a tied head tied and uses the paper preset', async () => {
    const out = join(dir, 'out-tied');
    const [r] = await transfer({ source: tied.dir, target: plm.dir, out, preset: 'paper', padToMultipleOf: 96 });
    expect(r.transfer.method).toBe('salt-paper');
    expect(r.transfer.lambda).toEqual({ value: 0, auto: false });
    const m = await HfModel.open(out);
    try {
      expect(m.embeddings.tied).toBe(true);
      expect(m.weights.tensors().some((t) => t.name === 'lm_head.weight')).toBe(false);
      // 32,000 rows padded to a multiple of 96: 32,064 (config and tensor agree).
      expect(r.written).toMatchObject({ vocabSize: 32064, paddedRows: 64 });
      expect(m.config.vocabSize).toBe(32064);
      expect(m.embeddings.input.shape).toEqual([32064, tied.width]);
      const emb = await m.readInputEmbedding();
      const H = tied.width;
      const t = sourceIdOfTarget.findIndex((s, i) => s >= 0 && MATCH_CATEGORIES[category[i]] === 'exact');
      const s = sourceIdOfTarget[t];
      expect(emb.subarray(t * H, t * H + H)).toEqual(tied.embedding.subarray(s * H, s * H + H));
    } finally {
      await m.close();
    }
  }, 60_000);

  it('writes the new embedding in the requested dtype, other tensors in theirs', async () => {
    const out = join(dir, 'out-bf16');
    const [r] = await transfer({ source: tied.dir, target: plm.dir, out, method: 'focus', dtype: 'BF16' });
    expect(r.written.dtype).toBe('BF16');
    const m = await HfModel.open(out);
    try {
      expect(m.embeddings.input.dtype).toBe('BF16');
      expect(m.weights.tensors().find((t) => t.name === 'model.norm.weight')!.dtype).toBe('F32');
    } finally {
      await m.close();
    }
  }, 60_000);

  it('aborts cleanly through an AbortSignal, leaving no folder', async () => {
    const out = join(dir, 'out-aborted');
    const ac = new AbortController();
    const stages: string[] = [];
    const p = transfer({
      source: untied.dir,
      target: plm.dir,
      out,
      signal: ac.signal,
      onProgress: (e) => {
        stages.push(e.stage);
        if (e.stage === 'search' || e.stage === 'lambda') ac.abort();
      },
    });
    await expect(p).rejects.toMatchObject({ name: 'SaltError', code: 'E_ABORTED' });
    expect(stages).toContain('align');
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(dir)).filter((f) => f.includes('out-aborted'))).toEqual([]);
  }, 60_000);

  it("method fvt: each new row (and head row) is the mean of its pieces' source rows; unsegmented new tokens get fallback rows", async () => {
    const out = join(dir, 'out-fvt');
    const [r] = await transfer({ source: untied.dir, target: plm.dir, out, method: 'fvt', seed: 1 });
    let newTokens = 0,
      unsegmented = 0;
    const sample: number[] = [];
    for (let t = 0; t < plm.vocab; t++) {
      if (sourceIdOfTarget[t] >= 0) continue;
      newTokens++;
      if (segmentation.offsets[t + 1] === segmentation.offsets[t]) unsegmented++;
      else if (newTokens % 37 === 0) sample.push(t);
    }
    expect(r.transfer.method).toBe('fvt');
    expect(r.transfer.counts.solved + r.transfer.counts.fallback).toBe(newTokens);
    expect(r.transfer.counts.fallback).toBe(unsegmented);
    expect(sample.length).toBeGreaterThan(20);
    const m = await HfModel.open(out);
    try {
      const emb = await m.readInputEmbedding();
      const head = await m.readOutputHead();
      const H = untied.width;
      for (const t of sample) {
        const ids = Array.from(segmentation.indices.subarray(segmentation.offsets[t], segmentation.offsets[t + 1]));
        for (const [got, src] of [
          [emb, untied.embedding],
          [head, untied.head!],
        ] as const) {
          for (let j = 0; j < H; j++) {
            let v = 0;
            for (const id of ids) v += src[id * H + j]! / ids.length;
            expect(Math.abs(got[t * H + j]! - v), `token ${t} dim ${j}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(v)));
          }
        }
      }
    } finally {
      await m.close();
    }
  }, 60_000);

  it('takes an aux matrix aligned with the target vocabulary; tokens marked absent get fallback rows', async () => {
    const present = new Uint8Array(plm.vocab).fill(1);
    let absentNew = 0;
    for (let t = 0; t < plm.vocab; t += 3) {
      present[t] = 0;
      if (sourceIdOfTarget[t] < 0) absentNew++;
    }
    const aux = { data: plm.embedding.slice(), rows: plm.vocab, cols: plm.width, present };
    const [r] = await transfer({
      source: tied.dir,
      target: plm.dir,
      out: join(dir, 'out-matrix'),
      aux,
      method: 'focus',
    });
    expect(r.aux).toEqual({ kind: 'matrix', present: plm.vocab - Math.ceil(plm.vocab / 3) });
    expect(r.transfer.counts.fallback).toBe(absentNew);
    await expect(
      transfer({
        source: tied.dir,
        target: plm.dir,
        out: join(dir, 'out-matrix-bad'),
        aux: { data: new Float32Array(10), rows: 5, cols: 2 },
      }),
    ).rejects.toThrow(
      new SaltError(
        'E_SHAPE',
        'aux must be a matrix with one row per target token (32000 rows), received 5 x 2 with 10 values',
      ),
    );
    expect(existsSync(join(dir, 'out-matrix-bad'))).toBe(false);
  }, 60_000);

  it('names a missing folder and rejects bad arguments', async () => {
    await expect(transfer({ source: join(dir, 'nope'), target: plm.dir, out: join(dir, 'x') })).rejects.toThrow(
      new SaltError('E_NOT_FOUND', `source ${JSON.stringify(join(dir, 'nope'))} does not exist`),
    );
    await expect(transfer({ source: untied.dir, target: join(dir, 'nope'), out: join(dir, 'x') })).rejects.toThrow(
      new SaltError('E_NOT_FOUND', `target ${JSON.stringify(join(dir, 'nope'))} does not exist`),
    );
    await expect(
      transfer({ source: untied.dir, target: plm.dir, out: join(dir, 'x'), preset: 'paper', method: 'focus' }),
    ).rejects.toThrow(
      new SaltError('E_ARGUMENT', 'preset "paper" is method "salt-paper"; it cannot be combined with method "focus"'),
    );
    await expect(
      transfer({
        source: untied.dir,
        targets: [
          { target: plm.dir, out: join(dir, 'x') },
          { target: plm.dir, out: join(dir, 'x') },
        ],
      }),
    ).rejects.toMatchObject({ code: 'E_ARGUMENT' });
    await expect(
      transfer({ source: untied.dir, target: plm.dir, out: join(dir, 'x'), aux: join(dir, 'missing.vec') }),
    ).rejects.toThrow(
      new SaltError('E_NOT_FOUND', `aux file ${JSON.stringify(join(dir, 'missing.vec'))} does not exist`),
    );
    expect((await readdir(dir)).filter((f) => f === 'x' || f.startsWith('.x'))).toEqual([]);
  }, 60_000);
});

describe('the first target is prepared while the source loads', () => {
  it('openSource hands over its preparer before it resolves, and it is the preparer it returns', async () => {
    const seen: Preparer[] = [];
    let settled = false;
    const p = openSource(untied.dir, true, undefined, (prep) => {
      expect(settled).toBe(false);
      seen.push(prep);
    });
    const opened = await p.finally(() => (settled = true));
    const { embeddings, head } = opened.src;
    try {
      expect(seen).toEqual([opened.preparer]);
      expect(opened.preparer.sourceVocabSize).toBe(untied.vocab);
      // The matrices, in shared memory, hold the file's values (seeded, never exactly 0).
      for (const m of [embeddings, head!]) {
        expect(m.data.buffer).toBeInstanceOf(SharedArrayBuffer);
        expect(m.data.every((v) => v !== 0 && Number.isFinite(v))).toBe(true);
      }
    } finally {
      await opened.close();
    }
    // close() gave their pages back: all but the partial pages at the ends now read as zeros.
    for (const m of [embeddings, head!]) {
      const zeros = m.data.reduce((z, v) => z + (v === 0 ? 1 : 0), 0);
      expect(zeros).toBeGreaterThan(m.data.length - 2048);
    }
  }, 60_000);

  it('a source found wrong after its vocabulary was read (fewer rows than tokens) fails cleanly with the target in flight', async () => {
    // The source's tokenizer has untied.vocab tokens; its embedding 100 rows fewer. The check runs
    // once both the matrices and the vocabulary are read, so the first target's preparation
    // (started on the vocabulary) is under way: the error must still be the source's, nothing left.
    const bad = join(dir, 'llm-short');
    await mkdir(bad, { recursive: true });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(untied.dir, f), join(bad, f));
    const rows = untied.vocab - 100;
    const config = JSON.parse(await readFile(join(untied.dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(
      join(bad, 'config.json'),
      JSON.stringify({ ...config, vocab_size: rows, tie_word_embeddings: true }),
    );
    await writeCheckpoint(bad, [
      {
        name: 'model.embed_tokens.weight',
        dtype: 'F32',
        shape: [rows, untied.width],
        data: seeded(rows * untied.width, 9),
      },
    ]);
    const out = join(dir, 'out-short-source');
    await expect(transfer({ source: bad, target: plm.dir, out })).rejects.toThrow(
      new SaltError(
        'E_SHAPE',
        `${bad}: the tokenizer has ${untied.vocab} tokens but the input embedding "model.embed_tokens.weight" has only ${rows} rows`,
      ),
    );
    expect((await readdir(dir)).filter((f) => f.includes('out-short-source'))).toEqual([]);
  }, 60_000);
});

describe('transfer with an auxiliary space from a file', () => {
  const hasFastText = spawnSync('fasttext', [], { encoding: 'utf8' }).error === undefined;

  it.skipIf(!hasFastText)(
    'fastText .bin and .vec trained by Debian fasttext: aux vectors by token string, fallback rows for the rest',
    async () => {
      // A small skipgram model on the licence texts of the system (real text, no download).
      const txt = join(dir, 'corpus.txt');
      const lic = (await readdir('/usr/share/common-licenses')).filter((f) =>
        /^(GPL-3|Apache-2.0|LGPL-3|MPL-2.0)$/.test(f),
      );
      await writeFile(
        txt,
        (await Promise.all(lic.map((f) => readFile(join('/usr/share/common-licenses', f), 'utf8'))))
          .join('\n')
          .toLowerCase()
          .replace(/[^a-z\s]/g, ' '),
      );
      const ft = join(dir, 'ft');
      execFileSync(
        'fasttext',
        [
          'skipgram',
          '-input',
          txt,
          '-output',
          ft,
          '-dim',
          '8',
          '-epoch',
          '1',
          '-minCount',
          '2',
          '-bucket',
          '20000',
          '-thread',
          '1',
        ],
        { stdio: 'ignore' },
      );
      const vecWords = new Set(
        (await readFile(ft + '.vec', 'utf8'))
          .split('\n')
          .slice(1)
          .map((l) => l.split(' ')[0])
          .filter((w) => w !== ''),
      );
      // Independently of lib/: Mistral's "▁word" pieces (not special) whose word is in the .vec file.
      const pieces = Object.entries(
        JSON.parse(await readFile(join(plm.dir, 'tokenizer.json'), 'utf8')).model.vocab as Record<string, number>,
      );
      const inVec = new Set(
        pieces
          .filter(([p]) => p.startsWith('▁') && !p.slice(1).includes('▁') && vecWords.has(p.slice(1)))
          .map(([, id]) => id),
      );
      expect(inVec.size).toBeGreaterThan(100);

      const [vec] = await transfer({
        source: untied.dir,
        target: plm.dir,
        out: join(dir, 'out-vec'),
        aux: ft + '.vec',
      });
      expect(vec.aux.kind).toBe('text-vectors');
      expect(vec.shapes.auxWidth).toBe(8);
      // Present: exactly the word-start pieces above, plus non-word-start pieces and ASCII byte pieces ("<0x61>" = "a") whose text is a .vec word.
      const contPresent = pieces.filter(([p]) => !p.startsWith('▁') && !p.startsWith('<') && vecWords.has(p)).length;
      const bytePresent = pieces.filter(
        ([p]) => /^<0x[0-7][0-9A-F]>$/.test(p) && vecWords.has(String.fromCharCode(parseInt(p.slice(3, 5), 16))),
      ).length;
      expect(bytePresent).toBeGreaterThan(0);
      expect(vec.aux.present).toBe(inVec.size + contPresent + bytePresent);
      const c = vec.transfer.counts;
      expect(c.copied + c.special + c.solved + c.fallback).toBe(plm.vocab);
      expect(c.fallback).toBeGreaterThan(c.solved); // most Mistral tokens are not licence-text words

      const [bin] = await transfer({
        source: untied.dir,
        target: plm.dir,
        out: join(dir, 'out-bin'),
        aux: ft + '.bin',
      });
      expect(bin.aux.kind).toBe('fasttext-bin');
      // Subword composition gives far more tokens a vector than the .vec lookup.
      expect(bin.aux.present).toBeGreaterThan(vec.aux.present * 10);
      expect(bin.transfer.counts.solved).toBeGreaterThan(vec.transfer.counts.solved);
    },
    120_000,
  );
});
