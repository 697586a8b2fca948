import { existsSync } from 'node:fs';
import {
  appendFile,
  copyFile,
  cp,
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  stat,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { basename, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SaltError, SaltRangeError } from '../../lib/errors.js';
import { REPORT_FILE } from '../../lib/io/atomic.js';
import { type CheckpointTensorInfo, SafetensorsCheckpoint, writeCheckpoint } from '../../lib/io/checkpoint.js';
import { encodeFloats } from '../../lib/io/dtype.js';
import { parseModelConfig, readTokenizerInfo } from '../../lib/io/hfConfig.js';
import { HfModel, locateEmbeddings } from '../../lib/io/hfModel.js';
import { safetensorsHeaderBound } from '../../lib/io/safetensors.js';
import { rewrittenHeaderBytes, startModelWrite, writeTransferredModel } from '../../lib/io/writeModel.js';
import { lenmlTokenizer } from './helpers/data.js';
import { rng, tempFolder } from './helpers/tmp.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempFolder()));
afterAll(async () => cleanup());
const code = (c: string) => expect.objectContaining({ code: c });

/** Reads a safetensors file's header and returns name -> raw bytes, parsing by hand (test oracle). */
async function rawTensors(path: string): Promise<Map<string, Buffer>> {
  const buf = await readFile(path);
  const n = Number(buf.readBigUInt64LE(0));
  const hdr = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(hdr as Record<string, { data_offsets: [number, number] }>)) {
    if (k !== '__metadata__') out.set(k, buf.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]));
  }
  return out;
}

async function allRaw(folder: string): Promise<Map<string, Buffer>> {
  const all = new Map<string, Buffer>();
  for (const f of (await readdir(folder)).filter((f) => f.endsWith('.safetensors')))
    for (const [k, v] of await rawTensors(join(folder, f))) all.set(k, v);
  return all;
}

function fake(name: string, shape: number[], file = 'model.safetensors', fileOffset = 0): CheckpointTensorInfo {
  return { name, shape, dtype: 'BF16', numel: shape.reduce((a, b) => a * b, 1), byteLength: 0, fileOffset, file };
}

describe('parseModelConfig', () => {
  it('reads the fields of a flat config and applies family tie defaults', () => {
    const c = parseModelConfig({
      model_type: 'llama',
      vocab_size: 10,
      hidden_size: 4,
      bos_token_id: 1,
      eos_token_id: [2, 3],
    });
    expect(c).toMatchObject({
      modelType: 'llama',
      vocabSize: 10,
      hiddenSize: 4,
      embeddingWidth: 4,
      tieWordEmbeddings: false,
      tieStated: false,
      nestedKey: null,
    });
    expect(c.specialTokens).toEqual({ bos: 1, eos: [2, 3], pad: null, unk: null });
    expect(parseModelConfig({ model_type: 'gpt2', vocab_size: 10, n_embd: 8 })).toMatchObject({
      hiddenSize: 8,
      tieWordEmbeddings: true,
    });
    expect(parseModelConfig({ model_type: 'xglm', vocab_size: 10, d_model: 6 }).hiddenSize).toBe(6);
    expect(
      parseModelConfig({ model_type: 'opt', vocab_size: 10, hidden_size: 8, word_embed_proj_dim: 4 }).embeddingWidth,
    ).toBe(4);
  });
  it('uses text_config of multimodal configs', () => {
    const c = parseModelConfig({
      model_type: 'gemma3',
      text_config: { model_type: 'gemma3_text', vocab_size: 262208, hidden_size: 640, pad_token_id: 0 },
      eos_token_id: [1, 106],
    });
    expect(c).toMatchObject({
      modelType: 'gemma3_text',
      outerModelType: 'gemma3',
      vocabSize: 262208,
      hiddenSize: 640,
      nestedKey: 'text_config',
      tieWordEmbeddings: true,
    });
    expect(c.specialTokens).toEqual({ bos: null, eos: [1, 106], pad: 0, unk: null });
  });
  it('rejects configs without vocab_size or hidden size with E_FORMAT naming the field', () => {
    expect(() => parseModelConfig({ model_type: 'llama', hidden_size: 4 }, 'x/config.json')).toThrow(
      new SaltError(
        'E_FORMAT',
        'x/config.json: expected a positive integer "vocab_size", received nothing (the value is missing)',
      ),
    );
    expect(() => parseModelConfig({ vocab_size: 4 })).toThrow(/hidden_size/);
    expect(() => parseModelConfig([])).toThrow(code('E_FORMAT'));
  });
});

describe('locateEmbeddings', () => {
  const cfg = (o: Record<string, unknown>) => parseModelConfig({ vocab_size: 100, hidden_size: 8, ...o });
  const cases: Array<
    [string, Record<string, unknown>, CheckpointTensorInfo[], string, string | null, boolean, string | null]
  > = [
    [
      'llama untied',
      { model_type: 'llama' },
      [fake('model.embed_tokens.weight', [100, 8]), fake('lm_head.weight', [100, 8], 'model.safetensors', 1600)],
      'model.embed_tokens.weight',
      'lm_head.weight',
      false,
      null,
    ],
    [
      'gemma tied by config',
      { model_type: 'gemma', tie_word_embeddings: true },
      [fake('model.embed_tokens.weight', [100, 8])],
      'model.embed_tokens.weight',
      null,
      true,
      'config',
    ],
    [
      'gemma3 nested',
      {
        model_type: 'gemma3',
        vocab_size: undefined,
        text_config: { model_type: 'gemma3_text', vocab_size: 100, hidden_size: 8 },
      },
      [fake('language_model.model.embed_tokens.weight', [100, 8])],
      'language_model.model.embed_tokens.weight',
      null,
      true,
      'config',
    ],
    [
      'llama without head nor flag',
      { model_type: 'llama' },
      [fake('model.embed_tokens.weight', [100, 8])],
      'model.embed_tokens.weight',
      null,
      true,
      'missing-head',
    ],
    [
      'gpt2 missing head',
      { model_type: 'gpt2' },
      [fake('h.0.attn.c_attn.weight', [8, 24]), fake('wte.weight', [100, 8]), fake('wpe.weight', [1024, 8])],
      'wte.weight',
      null,
      true,
      'config',
    ],
    [
      'gpt_neox untied',
      { model_type: 'gpt_neox', tie_word_embeddings: false },
      [fake('gpt_neox.embed_in.weight', [100, 8]), fake('embed_out.weight', [100, 8], 'b.safetensors')],
      'gpt_neox.embed_in.weight',
      'embed_out.weight',
      false,
      null,
    ],
    [
      'bloom',
      { model_type: 'bloom' },
      [fake('transformer.word_embeddings.weight', [100, 8])],
      'transformer.word_embeddings.weight',
      null,
      true,
      'config',
    ],
    [
      'opt with projection',
      { model_type: 'opt', word_embed_proj_dim: 4 },
      [fake('model.decoder.embed_tokens.weight', [100, 4]), fake('model.decoder.embed_positions.weight', [2050, 8])],
      'model.decoder.embed_tokens.weight',
      null,
      true,
      'config',
    ],
    [
      'bert with MLM head',
      { model_type: 'bert' },
      [
        fake('bert.embeddings.word_embeddings.weight', [100, 8]),
        fake('bert.embeddings.position_embeddings.weight', [512, 8]),
        fake('cls.predictions.decoder.weight', [100, 8], 'model.safetensors', 99),
      ],
      'bert.embeddings.word_embeddings.weight',
      'cls.predictions.decoder.weight',
      true,
      'config',
    ],
    [
      'xlm-roberta',
      { model_type: 'xlm-roberta', tie_word_embeddings: false },
      [
        fake('roberta.embeddings.word_embeddings.weight', [100, 8]),
        fake('lm_head.decoder.weight', [100, 8], 'model.safetensors', 7),
      ],
      'roberta.embeddings.word_embeddings.weight',
      'lm_head.decoder.weight',
      false,
      null,
    ],
    [
      't5 shared',
      { model_type: 't5', d_model: 8, hidden_size: undefined },
      [fake('encoder.embed_tokens.weight', [100, 8]), fake('shared.weight', [100, 8])],
      'shared.weight',
      null,
      true,
      'config',
    ],
    [
      'mt5 untied',
      { model_type: 'mt5', d_model: 8, hidden_size: undefined },
      [fake('shared.weight', [100, 8]), fake('lm_head.weight', [100, 8], 'model.safetensors', 5)],
      'shared.weight',
      'lm_head.weight',
      false,
      null,
    ],
    // model_type values that are Object.prototype keys are unknown families, not a crash.
    [
      'model_type "constructor"',
      { model_type: 'constructor' },
      [fake('model.embed_tokens.weight', [100, 8])],
      'model.embed_tokens.weight',
      null,
      true,
      'config',
    ],
    [
      'model_type "__proto__"',
      { model_type: '__proto__', tie_word_embeddings: false },
      [fake('transformer.wte.weight', [100, 8]), fake('lm_head.weight', [100, 8], 'b.safetensors')],
      'transformer.wte.weight',
      'lm_head.weight',
      false,
      null,
    ],
    [
      'model_type "toString" nested',
      {
        model_type: 'hasOwnProperty',
        vocab_size: undefined,
        text_config: { model_type: 'toString', vocab_size: 100, hidden_size: 8 },
      },
      [fake('model.embed_in.weight', [100, 8])],
      'model.embed_in.weight',
      null,
      true,
      'config',
    ],
    [
      'unknown family by pattern',
      { model_type: 'mystery' },
      [fake('model.embed_tokens.weight', [100, 8])],
      'model.embed_tokens.weight',
      null,
      true,
      'config',
    ],
  ];
  for (const [what, c, ts, input, head, tied, reason] of cases) {
    it(what, () => {
      const loc = locateEmbeddings(ts, cfg(c));
      expect(loc.input.name).toBe(input);
      expect(loc.head?.name ?? null).toBe(head);
      expect(loc.tied).toBe(tied);
      expect(loc.tieReason).toBe(reason);
    });
  }
  it('checks shapes against the config and lists candidates when nothing matches', () => {
    const ts = [fake('model.embed_tokens.weight', [99, 8]), fake('x.weight', [8, 8])];
    expect(() => locateEmbeddings(ts, cfg({ model_type: 'llama' }), 'm')).toThrow(
      new SaltError(
        'E_NOT_FOUND',
        'm: no input embedding of shape [100, 8] (vocab_size x width from config.json, model_type "llama") matches the known name patterns; 2-D tensors found: model.embed_tokens.weight [99, 8], x.weight [8, 8]',
      ),
    );
    expect(() =>
      locateEmbeddings(
        [fake('model.embed_tokens.weight', [100, 8])],
        cfg({ model_type: 'llama', tie_word_embeddings: false }),
      ),
    ).toThrow(/tie_word_embeddings is false but no output head/);
    expect(() =>
      locateEmbeddings(
        [fake('model.embed_tokens.weight', [100, 8]), fake('lm_head.weight', [50, 8])],
        cfg({ model_type: 'llama' }),
      ),
    ).toThrow(code('E_FORMAT'));
  });
});

describe('HfModel + writeTransferredModel on a folder built from real tokenizers', () => {
  const H = 32;
  let src: string;
  let qwenVocab: Map<string, number>;
  let srcVocab: number;
  const srcRaw = new Map<string, Buffer>();

  beforeAll(async () => {
    const qwen = await lenmlTokenizer('qwen3');
    const qt = await readTokenizerInfo(qwen);
    srcVocab = qt.vocabSize!;
    qwenVocab = qt.vocab!;
    src = join(dir, 'src');
    await mkdir(src);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(qwen, f), join(src, f));
    await writeFile(
      join(src, 'config.json'),
      JSON.stringify({
        architectures: ['Qwen3ForCausalLM'],
        model_type: 'qwen3',
        vocab_size: srcVocab,
        hidden_size: H,
        num_hidden_layers: 1,
        tie_word_embeddings: false,
        bos_token_id: 151643,
        eos_token_id: 151645,
        torch_dtype: 'bfloat16',
      }),
    );
    await writeFile(
      join(src, 'generation_config.json'),
      JSON.stringify({ bos_token_id: 151643, eos_token_id: [151645, 151643], pad_token_id: 151643, do_sample: true }),
    );
    await writeFile(join(src, 'README.md'), 'model card\n');
    const r = rng(99);
    const mk = (n: number, dtype: 'F32' | 'BF16') =>
      encodeFloats(
        new Float32Array(n).map(() => (r() - 0.5) * 0.2),
        dtype,
      );
    const specs: Array<[string, number[], 'F32' | 'BF16' | 'I64']> = [
      ['model.embed_tokens.weight', [srcVocab, H], 'BF16'],
      ['model.layers.0.self_attn.q_proj.weight', [H, H], 'BF16'],
      ['model.layers.0.mlp.up_proj.weight', [4 * H, H], 'BF16'],
      ['model.layers.0.input_layernorm.weight', [H], 'F32'],
      ['model.norm.weight', [H], 'F32'],
      ['model.rotary.buffer', [3], 'I64'],
      ['lm_head.weight', [srcVocab, H], 'BF16'],
    ];
    for (const [name, shape, dtype] of specs) {
      const n = shape.reduce((a, b) => a * b, 1);
      srcRaw.set(name, dtype === 'I64' ? Buffer.from(BigInt64Array.of(1n, -2n, 3n).buffer) : mk(n, dtype));
    }
    // 4 MB shards: the embedding and the head (9.7 MB each) get shards of their own.
    const w = await writeCheckpoint(
      src,
      specs.map(([name, shape, dtype]) => ({ name, shape, dtype, data: srcRaw.get(name)! })),
      { maxShardBytes: 4 << 20, metadata: { format: 'pt' } },
    );
    expect(w.files.length).toBeGreaterThan(2);
  });

  it('opens the sharded source and locates an untied head', async () => {
    const m = await HfModel.open(src);
    try {
      expect(m.weights.files.length).toBeGreaterThan(1);
      expect(m.embeddings).toMatchObject({ tied: false, tieReason: null });
      expect(m.embeddings.input.name).toBe('model.embed_tokens.weight');
      expect(m.embeddings.head!.name).toBe('lm_head.weight');
      expect([...m.tokenizerFiles]).toEqual(['tokenizer.json', 'tokenizer_config.json']);
      const e = await m.readInputEmbedding();
      expect(e.length).toBe(srcVocab * H);
      // BF16 decode checked against the raw bytes: value bits = u16 << 16.
      const raw = srcRaw.get('model.embed_tokens.weight')!;
      const bits = new Uint32Array(e.buffer);
      for (const i of [0, 1, 12345, e.length - 1]) expect(bits[i]).toBe(raw.readUInt16LE(2 * i) * 65536);
      expect((await m.readOutputHead()).length).toBe(srcVocab * H);
    } finally {
      await m.close();
    }
  });

  it('writes a transferred model: copied tensors byte-identical, new rows, config and tokenizer updated; reads back', async () => {
    const llama = await lenmlTokenizer('llama3');
    const lt = await readTokenizerInfo(llama);
    const rows = lt.vocabSize!;
    expect(rows).toBe(128256);
    const m = await HfModel.open(src);
    const E = await m.readInputEmbedding();
    const Hd = await m.readOutputHead();
    await m.close();
    // Transfer-like: shared token strings copy their source row, others get a fixed value.
    const newE = new Float32Array(rows * H).fill(0.015625);
    const newH = new Float32Array(rows * H).fill(-0.5);
    let shared = 0;
    for (const [tok, id] of lt.vocab!) {
      const s = qwenVocab.get(tok);
      if (s === undefined) continue;
      shared++;
      newE.set(E.subarray(s * H, (s + 1) * H), id * H);
      newH.set(Hd.subarray(s * H, (s + 1) * H), id * H);
    }
    expect(shared).toBeGreaterThan(50000);
    const out = join(dir, 'out');
    const rep = await writeTransferredModel({
      source: src,
      output: out,
      tokenizer: llama,
      inputEmbedding: newE,
      outputHead: newH,
      padToMultipleOf: 100,
    });
    expect(rep).toMatchObject({ vocabSize: 128300, paddedRows: 44, dtype: 'BF16' });
    expect(rep.copiedTensors.sort()).toEqual(
      [...srcRaw.keys()].filter((k) => k !== 'model.embed_tokens.weight' && k !== 'lm_head.weight').sort(),
    );

    // Independent of the reader: parse the output files by hand.
    const outRaw = await allRaw(out);
    for (const name of rep.copiedTensors) expect(Buffer.compare(outRaw.get(name)!, srcRaw.get(name)!)).toBe(0);
    const tokJson = JSON.parse(await readFile(join(llama, 'tokenizer.json'), 'utf8'));
    const idOf = (s: string) => tokJson.added_tokens.find((t: { content: string }) => t.content === s).id;
    const cfg = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      vocab_size: 128300,
      bos_token_id: idOf('<|begin_of_text|>'),
      eos_token_id: idOf('<|end_of_text|>'),
      hidden_size: H,
      architectures: ['Qwen3ForCausalLM'],
    });
    const gen = JSON.parse(await readFile(join(out, 'generation_config.json'), 'utf8'));
    expect(gen).toEqual({ bos_token_id: 128000, eos_token_id: 128001, pad_token_id: null, do_sample: true });
    expect(
      Buffer.compare(await readFile(join(out, 'tokenizer.json')), await readFile(join(llama, 'tokenizer.json'))),
    ).toBe(0);
    // tokenizer_config.json: the target's, with the inputs of a causal LM (transformers' generate() passes
    // every name listed there to the model; a BERT target would list token_type_ids).
    const tc = JSON.parse(await readFile(join(llama, 'tokenizer_config.json'), 'utf8'));
    expect(JSON.parse(await readFile(join(out, 'tokenizer_config.json'), 'utf8'))).toEqual({
      ...tc,
      model_input_names: ['input_ids', 'attention_mask'],
    });
    expect(await readFile(join(out, 'README.md'), 'utf8')).toBe('model card\n');
    expect((await readdir(dir)).filter((f) => f.startsWith('.'))).toEqual([]);

    // Read back through the API.
    const back = await HfModel.open(out);
    try {
      expect(back.config.vocabSize).toBe(128300);
      expect(back.embeddings.tied).toBe(false);
      const be = await back.readInputEmbedding();
      const bh = await back.readOutputHead();
      const id = lt.vocab!.get('Ġthe')!;
      const s = qwenVocab.get('Ġthe')!;
      expect(be.subarray(id * H, (id + 1) * H)).toEqual(E.subarray(s * H, (s + 1) * H));
      expect(bh.subarray(id * H, (id + 1) * H)).toEqual(Hd.subarray(s * H, (s + 1) * H));
      // Padding rows hold the column means of the given rows, as float32, rounded to BF16: compare
      // exact bits with a BF16 rounding done here (nearer of the two BF16 neighbours, ties to even).
      const colMean = newE.reduce((acc, v, i) => ((acc[i % H] += v), acc), new Float64Array(H)).map((x) => x / rows);
      const bf16Bits = (x: number): number => {
        const f = new Float32Array([x]);
        const u = new Uint32Array(f.buffer)[0];
        const lo = u & 0xffff0000;
        const hi = (lo + 0x10000) >>> 0;
        const val = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0];
        const dLo = Math.abs(f[0] - val(lo));
        const dHi = Math.abs(val(hi) - f[0]);
        return (dLo < dHi || (dLo === dHi && ((lo >>> 16) & 1) === 0) ? lo : hi) >>> 16;
      };
      const outEmb = outRaw.get('model.embed_tokens.weight')!;
      for (const r of [128256, 128299]) {
        for (let j = 0; j < H; j++)
          expect(outEmb.readUInt16LE(2 * (r * H + j)), `row ${r} col ${j}`).toBe(bf16Bits(colMean[j]));
      }
      expect(back.weights.files.length).toBeGreaterThan(1);
    } finally {
      await back.close();
    }
  });

  it('a shard to copy that grew after the source was opened is E_IO naming it; nothing is published', async () => {
    const copy = join(dir, 'src-grows');
    await cp(src, copy, { recursive: true });
    const model = await HfModel.open(copy);
    try {
      const index = JSON.parse(await readFile(join(copy, 'model.safetensors.index.json'), 'utf8'));
      const files = [...new Set(Object.values(index.weight_map as Record<string, string>))];
      const free = files.find(
        (f) => f !== index.weight_map['model.embed_tokens.weight'] && f !== index.weight_map['lm_head.weight'],
      )!;
      await appendFile(join(copy, free), Buffer.alloc(10));
      const out = join(dir, 'out-grows');
      const rows = 128256;
      await expect(
        writeTransferredModel({
          source: model,
          output: out,
          tokenizer: await lenmlTokenizer('llama3'),
          inputEmbedding: new Float32Array(rows * H).fill(0.25),
          outputHead: new Float32Array(rows * H).fill(-0.25),
        }),
      ).rejects.toThrow(
        expect.objectContaining({ code: 'E_IO', message: expect.stringContaining('changed while open') }),
      );
      expect(existsSync(out)).toBe(false);
    } finally {
      await model.close();
    }
  });

  it("keeps the source's shard layout: shards without the embedding or head are copied file for file, the index maps every tensor to the same file", async () => {
    const llama = await lenmlTokenizer('llama3');
    const rows = 128256;
    const out = join(dir, 'out-layout');
    const rep = await writeTransferredModel({
      source: src,
      output: out,
      tokenizer: llama,
      inputEmbedding: new Float32Array(rows * H).fill(0.25),
      outputHead: new Float32Array(rows * H).fill(-0.25),
    });
    const srcIndex = JSON.parse(await readFile(join(src, 'model.safetensors.index.json'), 'utf8'));
    const srcFiles = [...new Set(Object.values(srcIndex.weight_map as Record<string, string>))];
    expect(srcFiles.length).toBe(3);
    expect(rep.weightFiles).toEqual([...srcFiles, 'model.safetensors.index.json']);
    const holdsVocab = (f: string) =>
      srcIndex.weight_map['model.embed_tokens.weight'] === f || srcIndex.weight_map['lm_head.weight'] === f;
    expect(rep.copiedFiles).toEqual(srcFiles.filter((f) => !holdsVocab(f)));
    expect(rep.copiedFiles.length).toBe(1);
    for (const f of rep.copiedFiles)
      expect(Buffer.compare(await readFile(join(out, f)), await readFile(join(src, f))), f).toBe(0);
    // The index, parsed here: same tensor -> file map, total_size = the data areas of the shards written.
    const outIndex = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(outIndex.weight_map).toEqual(srcIndex.weight_map);
    let dataBytes = 0;
    for (const f of srcFiles) {
      const buf = await readFile(join(out, f));
      dataBytes += buf.length - 8 - Number(buf.readBigUInt64LE(0));
      // Tensor order inside each file: the source file's (by data offset), except that the new
      // (vocabulary-sized) tensors come after the unchanged ones; the metadata is kept.
      const order = async (p: string) => {
        const b = await readFile(p);
        const hdr = JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString('utf8'));
        const meta = hdr.__metadata__;
        delete hdr.__metadata__;
        return { meta, names: Object.keys(hdr).sort((a, c) => hdr[a].data_offsets[0] - hdr[c].data_offsets[0]) };
      };
      const isNew = (k: string) => k === 'model.embed_tokens.weight' || k === 'lm_head.weight';
      const was = await order(join(src, f));
      expect(await order(join(out, f))).toEqual({
        meta: was.meta,
        names: [...was.names.filter((k) => !isNew(k)), ...was.names.filter(isNew)],
      });
    }
    expect(outIndex.metadata).toEqual({ total_size: dataBytes });
    expect(dataBytes).toBe(
      [...srcRaw].reduce(
        (a, [k, v]) => a + (k.endsWith('embed_tokens.weight') || k === 'lm_head.weight' ? rows * H * 2 : v.length),
        0,
      ),
    );
    // The new rows are in the rewritten shards.
    const outRaw = await allRaw(out);
    expect(new Float32Array(new Uint32Array([outRaw.get('lm_head.weight')!.readUInt16LE(0) << 16]).buffer)[0]).toBe(
      -0.25,
    );

    // maxShardBytes re-packs instead: one file, nothing copied file for file.
    const packed = join(dir, 'out-packed');
    const rep2 = await writeTransferredModel({
      source: src,
      output: packed,
      tokenizer: llama,
      inputEmbedding: new Float32Array(rows * H).fill(0.25),
      outputHead: new Float32Array(rows * H).fill(-0.25),
      maxShardBytes: 1 << 30,
    });
    expect(rep2.weightFiles).toEqual(['model.safetensors']);
    expect(rep2.copiedFiles).toEqual([]);
    const packedRaw = await allRaw(packed);
    expect([...packedRaw.keys()].sort()).toEqual([...outRaw.keys()].sort());
    for (const [k, v] of outRaw) expect(Buffer.compare(packedRaw.get(k)!, v), k).toBe(0);
  });

  it('startModelWrite: vocabulary-free shards copied in the background; finishing gives the same files as a direct write; discard leaves nothing', async () => {
    const llama = await lenmlTokenizer('llama3');
    const rows = 128256;
    const args = {
      tokenizer: llama,
      inputEmbedding: new Float32Array(rows * H).fill(0.5),
      outputHead: new Float32Array(rows * H).fill(0.125),
    };
    const m = await HfModel.open(src);
    try {
      const hidden = async () => (await readdir(dir)).filter((f) => f.startsWith('.'));
      expect(await hidden()).toEqual([]);
      // Discarded before it is finished: the temporary folder and the copies go.
      const p0 = await startModelWrite(m, join(dir, 'pending-discarded'));
      expect(await hidden()).toEqual([basename(p0.tmp)]);
      await p0.discard();
      expect(await hidden()).toEqual([]);
      expect(existsSync(join(dir, 'pending-discarded'))).toBe(false);

      const p1 = await startModelWrite(m, join(dir, 'pending-out'));
      // Only the shard without the embedding or head is copied ahead.
      const vocabFree = m.weights.files.filter(
        (f) => f !== m.weights.fileOf('model.embed_tokens.weight') && f !== m.weights.fileOf('lm_head.weight'),
      );
      expect(vocabFree.length).toBe(1);
      expect(await p1.copied(vocabFree[0])).toBe(true);
      expect(await p1.copied(m.weights.fileOf('lm_head.weight'))).toBe(false);
      // A pending write for another output or another source is refused.
      await expect(
        writeTransferredModel({ ...args, source: m, output: join(dir, 'elsewhere'), pending: p1 }),
      ).rejects.toThrow(code('E_ARGUMENT'));
      const r1 = await writeTransferredModel({ ...args, source: m, output: join(dir, 'pending-out'), pending: p1 });
      const r2 = await writeTransferredModel({ ...args, source: m, output: join(dir, 'direct-out') });
      expect(r1.weightFiles).toEqual(r2.weightFiles);
      expect(r1.copiedFiles).toEqual(vocabFree);
      for (const f of r1.weightFiles)
        expect(
          Buffer.compare(await readFile(join(dir, 'pending-out', f)), await readFile(join(dir, 'direct-out', f))),
          f,
        ).toBe(0);
      await p1.discard(); // after publishing: a no-op
      expect(existsSync(join(dir, 'pending-out', REPORT_FILE))).toBe(true);
      expect(await hidden()).toEqual([]);

      // A failure while finishing (the tokenizer folder lacks a tokenizer) discards the pending write too.
      const p2 = await startModelWrite(m, join(dir, 'pending-failed'));
      await expect(
        writeTransferredModel({
          ...args,
          tokenizer: join(dir, 'no-such-tokenizer'),
          source: m,
          output: join(dir, 'pending-failed'),
          pending: p2,
        }),
      ).rejects.toThrow(SaltError);
      expect(await hidden()).toEqual([]);
      expect(existsSync(join(dir, 'pending-failed'))).toBe(false);
    } finally {
      await m.close();
    }
  });

  it('layOut: the shards to rewrite are laid out and their unchanged tensors copied into place ahead; the result is the bytes of a direct write; a wrong plan or a discard leaves nothing', async () => {
    const llama = await lenmlTokenizer('llama3');
    const rows = 128256;
    const args = {
      tokenizer: llama,
      inputEmbedding: new Float32Array(rows * H).fill(0.75),
      outputHead: new Float32Array(rows * H).fill(-0.5),
    };
    // The sharded source (the embedding and the head in shards of their own) and the same tensors
    // in one file (the embedding and head next to every other tensor, as in Llama-3.2-1B).
    const single = join(dir, 'layout-single-src');
    await mkdir(single);
    for (const f of await readdir(src))
      if (!f.endsWith('.safetensors') && !f.endsWith('.index.json')) await copyFile(join(src, f), join(single, f));
    const ck = await SafetensorsCheckpoint.open(src);
    const infos = ck.tensors().sort((a, b) => (a.name < b.name ? -1 : 1));
    await ck.close();
    await writeCheckpoint(
      single,
      infos.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: srcRaw.get(t.name)! })),
      { metadata: { format: 'pt' } },
    );
    for (const [which, folder] of [
      ['sharded', src],
      ['single', single],
    ] as const) {
      const m = await HfModel.open(folder);
      try {
        const hidden = async () => (await readdir(dir)).filter((f) => f.startsWith('.'));
        const direct = join(dir, `layout-direct-${which}`);
        const r0 = await writeTransferredModel({ ...args, source: m, output: direct });
        const rewritten = r0.weightFiles.filter((f) => f.endsWith('.safetensors') && !r0.copiedFiles.includes(f));
        // The embedding's shard and the head's, or the one file.
        expect(rewritten.length).toBe(which === 'single' ? 1 : 2);
        let unchangedInRewritten = 0;
        const inodes = new Map<string, number>();
        const heldAhead: FileHandle[] = [];

        // A direct write for a vocabulary of another size and dtype: the header has the same size
        // and every unchanged tensor the same place (they come first), so the places are known
        // before the target is.
        const other = join(dir, `layout-other-${which}`);
        const r9 = await writeTransferredModel({
          tokenizer: llama,
          inputEmbedding: new Float32Array(rows * H).fill(0.25),
          outputHead: new Float32Array(rows * H).fill(0.5),
          padToMultipleOf: 1000,
          dtype: 'F32',
          source: m,
          output: other,
        });
        expect(r9.weightFiles).toEqual(r0.weightFiles);

        const p1 = await startModelWrite(m, join(dir, `layout-out-${which}`));
        await p1.copiesDone();
        // Before the new matrices exist: in each shard to rewrite, a tensor that is not
        // vocabulary-sized already holds its final bytes at its final place.
        for (const f of rewritten) {
          const ahead = await readFile(join(p1.tmp, f));
          // Held open until the end, so that a file written instead could not reuse the inode number.
          const h = await open(join(p1.tmp, f), 'r');
          heldAhead.push(h);
          inodes.set(f, (await h.stat()).ino);
          const final = await readFile(join(direct, f));
          const n = Number(final.readBigUInt64LE(0));
          const hdr = JSON.parse(final.subarray(8, 8 + n).toString('utf8'));
          const names = Object.keys(hdr).filter((k) => k !== '__metadata__');
          const isNew = (k: string) => hdr[k].shape.includes(rows);
          const unchanged = names.filter((k) => !isNew(k) && hdr[k].data_offsets[1] > hdr[k].data_offsets[0]);
          // The unchanged tensors first, then the new ones.
          const byOffset = names.sort((a, b) => hdr[a].data_offsets[0] - hdr[b].data_offsets[0]);
          expect(byOffset.map(isNew), f).toEqual(byOffset.map(isNew).sort());
          const otherFile = await readFile(join(other, f));
          expect(Number(otherFile.readBigUInt64LE(0)), f).toBe(n);
          const otherHdr = JSON.parse(otherFile.subarray(8, 8 + n).toString('utf8'));
          for (const k of names.filter(isNew)) expect(otherHdr[k].shape, `${f} ${k}`).toEqual([129000, H]);
          unchangedInRewritten += unchanged.length;
          // The first unchanged tensor lies at its source offset modulo 4,096 (rewrittenHeaderBytes):
          // the run of unchanged tensors is block-aligned in both files (a mapped direct copy).
          if (unchanged.length) {
            const source = await readFile(join(folder, f));
            const sn = Number(source.readBigUInt64LE(0));
            const srcHdr = JSON.parse(source.subarray(8, 8 + sn).toString('utf8'));
            const first = unchanged.reduce((a, k) => (hdr[k].data_offsets[0] < hdr[a].data_offsets[0] ? k : a));
            const [outAt, srcAt] = [8 + n + hdr[first].data_offsets[0], 8 + sn + srcHdr[first].data_offsets[0]];
            expect(srcAt % 8, f).toBe(0);
            expect(Math.abs((outAt - srcAt) % 4096), `${f} ${first} at ${outAt}, in the source at ${srcAt}`).toBe(0);
          }
          for (const k of unchanged) {
            expect(otherHdr[k].data_offsets, `${f} ${k}`).toEqual(hdr[k].data_offsets);
            const [a, b] = hdr[k].data_offsets.map((o: number) => 8 + n + o);
            expect(Buffer.compare(ahead.subarray(a, b), final.subarray(a, b)), `${f} ${k}`).toBe(0);
          }
          expect(
            ahead.subarray(0, 8).every((x) => x === 0),
            'the header is written last',
          ).toBe(true);
        }
        expect(unchangedInRewritten).toBe(which === 'single' ? infos.length - 2 : 0);
        const r1 = await writeTransferredModel({
          ...args,
          source: m,
          output: join(dir, `layout-out-${which}`),
          pending: p1,
        });
        expect(r1.weightFiles).toEqual(r0.weightFiles);
        for (const f of r1.weightFiles)
          expect(
            Buffer.compare(await readFile(join(dir, `layout-out-${which}`, f)), await readFile(join(direct, f))),
            f,
          ).toBe(0);
        expect((await readdir(join(dir, `layout-out-${which}`))).sort()).toEqual((await readdir(direct)).sort());
        // The laid-out files themselves were finished and published (a shard written whole would be a new file).
        for (const [f, ino] of inodes) expect((await stat(join(dir, `layout-out-${which}`, f))).ino, f).toBe(ino);
        await Promise.all(heldAhead.map((h) => h.close()));

        // A layout that treats one more tensor as new (as when the writer is told keepTensors): the
        // laid-out files are not used, the shards are written whole. (The sharded source's rewritten
        // shards hold only the embedding and the head: nothing to treat so.)
        const ck2 = await SafetensorsCheckpoint.open(folder);
        const extra = ck2
          .tensors()
          .find((t) => rewritten.includes(t.file) && !t.shape.includes(m.embeddings.input.shape[0]));
        await ck2.close();
        expect(extra !== undefined).toBe(which === 'single');
        if (extra) {
          const p2 = await startModelWrite(m, join(dir, `layout-wrong-${which}`), { layOut: false });
          p2.layOut({ alsoRewritten: new Set([extra.name]) });
          await p2.copiesDone();
          // Held open, so that their inode numbers cannot be reused by the files written instead.
          const held = await Promise.all([...inodes.keys()].map((f) => open(join(p2.tmp, f), 'r')));
          const wrongInodes = new Map(
            await Promise.all(held.map(async (h, i) => [[...inodes.keys()][i], (await h.stat()).ino] as const)),
          );
          await writeTransferredModel({ ...args, source: m, output: join(dir, `layout-wrong-${which}`), pending: p2 });
          for (const f of r0.weightFiles)
            expect(
              Buffer.compare(await readFile(join(dir, `layout-wrong-${which}`, f)), await readFile(join(direct, f))),
              f,
            ).toBe(0);
          expect((await readdir(join(dir, `layout-wrong-${which}`))).sort()).toEqual((await readdir(direct)).sort());
          for (const [f, ino] of wrongInodes)
            expect((await stat(join(dir, `layout-wrong-${which}`, f))).ino, f).not.toBe(ino);
          await Promise.all(held.map((h) => h.close()));
        }

        // Re-packed output (maxShardBytes): what was laid out is dropped, not published.
        const p3 = await startModelWrite(m, join(dir, `layout-packed-${which}`));
        const r3 = await writeTransferredModel({
          ...args,
          source: m,
          output: join(dir, `layout-packed-${which}`),
          pending: p3,
          maxShardBytes: 1 << 30,
        });
        expect(r3.weightFiles).toEqual(['model.safetensors']);
        expect((await readdir(join(dir, `layout-packed-${which}`))).filter((f) => f.includes('-of-'))).toEqual([]);

        // Discarded while copying: nothing is left.
        const p4 = await startModelWrite(m, join(dir, `layout-discarded-${which}`));
        await p4.discard();
        expect(await hidden()).toEqual([]);
        expect(existsSync(join(dir, `layout-discarded-${which}`))).toBe(false);
      } finally {
        await m.close();
      }
    }
  });

  it('refuses to overwrite, validates shapes, and leaves nothing behind when interrupted', async () => {
    const llama = await lenmlTokenizer('llama3');
    const out = join(dir, 'out2');
    await mkdir(out);
    const e = new Float32Array(128256 * H);
    await expect(
      writeTransferredModel({ source: src, output: out, tokenizer: llama, inputEmbedding: e, outputHead: e }),
    ).rejects.toThrow(
      new SaltError(
        'E_EXISTS',
        `output folder ${JSON.stringify(out)} already exists (pass overwrite: true, or --overwrite, to replace a folder salt-transfer wrote)`,
      ),
    );
    const out3 = join(dir, 'out3');
    await expect(
      writeTransferredModel({ source: src, output: out3, tokenizer: llama, inputEmbedding: e }),
    ).rejects.toThrow(/options.outputHead \(Float32Array \[128256, 32\]\) is required/);
    await expect(
      writeTransferredModel({
        source: src,
        output: out3,
        tokenizer: llama,
        inputEmbedding: new Float32Array(1000 * H),
        outputHead: new Float32Array(1000 * H),
      }),
    ).rejects.toThrow(
      new SaltRangeError(
        `the target tokenizer in ${JSON.stringify(llama)} has 128256 tokens but options.inputEmbedding has only 1000 rows`,
        'E_SHAPE',
      ),
    );
    await expect(
      writeTransferredModel({ source: src, output: out3, tokenizer: llama, inputEmbedding: new Float32Array(5) }),
    ).rejects.toThrow(code('E_SHAPE'));
    // Interrupt: a source shard is truncated after the model was opened -> the copy fails mid-way.
    const broken = join(dir, 'broken');
    await mkdir(broken);
    for (const f of await readdir(src)) await copyFile(join(src, f), join(broken, f));
    const m = await HfModel.open(broken);
    const shard = m.weights.fileOf('model.layers.0.mlp.up_proj.weight');
    await truncate(join(broken, shard), 100);
    const err = await writeTransferredModel({
      source: m,
      output: out3,
      tokenizer: llama,
      inputEmbedding: e,
      outputHead: e,
    }).catch((x) => x);
    await m.close();
    expect(err).toBeInstanceOf(SaltError);
    expect(err.code).toBe('E_IO');
    expect((await readdir(dir)).filter((f) => f.startsWith('out3') || f.startsWith('.out3'))).toEqual([]);
  });

  it('overwrites when told to', async () => {
    const llama = await lenmlTokenizer('llama3');
    const out = join(dir, 'out2');
    const e = new Float32Array(128256 * H).fill(1);
    await writeTransferredModel({
      source: src,
      output: out,
      tokenizer: llama,
      inputEmbedding: e,
      outputHead: e,
      overwrite: true,
    });
    const cp = await SafetensorsCheckpoint.open(out);
    expect((await cp.readFloat32('model.embed_tokens.weight', { rowStart: 5, rowEnd: 6 }))[0]).toBe(1);
    await cp.close();
  });

  it('reads PyTorch-only folders with the PyTorch reader (a file that is not a torch zip: E_FORMAT) and gives E_NOT_FOUND for empty ones', async () => {
    const pt = join(dir, 'pt');
    await mkdir(pt);
    await writeFile(join(pt, 'config.json'), JSON.stringify({ model_type: 'llama', vocab_size: 4, hidden_size: 2 }));
    await expect(HfModel.open(pt)).rejects.toThrow(code('E_NOT_FOUND'));
    await writeFile(join(pt, 'training_args.bin'), 'x');
    await expect(HfModel.open(pt)).rejects.toThrow(code('E_NOT_FOUND'));
    await writeFile(join(pt, 'pytorch_model.bin'), 'x');
    await expect(HfModel.open(pt)).rejects.toThrow(code('E_FORMAT'));
    await expect(HfModel.open(pt)).rejects.toThrow(/pytorch_model\.bin: file is 1 bytes, too short for a zip archive/);
    await expect(HfModel.open(join(dir, 'nothing'))).rejects.toThrow(code('E_NOT_FOUND'));
  });

  it('tied nested (gemma3) source in F16: no head written, outputHead refused, text_config and top-level ids updated', async () => {
    const llama = await lenmlTokenizer('llama3');
    const g = join(dir, 'gemma3');
    await mkdir(g);
    const V = 1000;
    const W = 8;
    await writeFile(
      join(g, 'config.json'),
      JSON.stringify({
        model_type: 'gemma3',
        text_config: {
          model_type: 'gemma3_text',
          vocab_size: V,
          hidden_size: W,
          bos_token_id: 2,
          eos_token_id: 1,
          pad_token_id: 0,
        },
        eos_token_id: [1, 106],
      }),
    );
    const norm = Buffer.from(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8).buffer);
    await writeCheckpoint(g, [
      {
        name: 'language_model.model.embed_tokens.weight',
        dtype: 'F16',
        shape: [V, W],
        data: new Float32Array(V * W).fill(0.5),
      },
      { name: 'language_model.model.norm.weight', dtype: 'F32', shape: [W], data: norm },
    ]);
    const m = await HfModel.open(g);
    expect(m.embeddings).toMatchObject({ tied: true, tieReason: 'config', head: null });
    expect(m.config.nestedKey).toBe('text_config');
    const rows = 128256;
    const e = new Float32Array(rows * W).map((_, i) => (i % 13) / 8);
    const out = join(dir, 'gemma3-out');
    await expect(
      writeTransferredModel({ source: m, output: out, tokenizer: llama, inputEmbedding: e, outputHead: e }),
    ).rejects.toThrow(
      new SaltRangeError(`${g} has a tied output head (config); options.outputHead must not be given`, 'E_ARGUMENT'),
    );
    const rep = await writeTransferredModel({ source: m, output: out, tokenizer: llama, inputEmbedding: e });
    await m.close();
    expect(rep).toMatchObject({
      vocabSize: rows,
      paddedRows: 0,
      dtype: 'F16',
      copiedTensors: ['language_model.model.norm.weight'],
    });
    const cfg = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(cfg).toEqual({
      model_type: 'gemma3',
      text_config: {
        model_type: 'gemma3_text',
        vocab_size: rows,
        hidden_size: W,
        bos_token_id: 128000,
        eos_token_id: 128001,
        pad_token_id: null,
      },
      eos_token_id: 128001,
    });
    const raw = await allRaw(out);
    expect([...raw.keys()].sort()).toEqual([
      'language_model.model.embed_tokens.weight',
      'language_model.model.norm.weight',
    ]);
    expect(Buffer.compare(raw.get('language_model.model.norm.weight')!, norm)).toBe(0);
    // F16 bits of (i % 13) / 8 are exact: check a few against the IEEE encoding computed by hand.
    const emb = raw.get('language_model.model.embed_tokens.weight')!;
    expect(emb.readUInt16LE(2 * 1)).toBe(0x3000); // 1/8
    expect(emb.readUInt16LE(2 * 12)).toBe(0x3e00); // 12/8 = 1.5
    expect(emb.readUInt16LE(2 * 13)).toBe(0x0000);
  });

  it('dtype: the new embedding is written in the requested dtype (BF16 source -> F32 and F16), other tensors keep theirs', async () => {
    const llama = await lenmlTokenizer('llama3');
    const src = join(dir, 'dtype-src');
    await mkdir(src);
    const V = 500;
    const W = 4;
    await writeFile(
      join(src, 'config.json'),
      JSON.stringify({ model_type: 'llama', vocab_size: V, hidden_size: W, tie_word_embeddings: true }),
    );
    const norm = Buffer.from(Float32Array.of(1, 2, 3, 4).buffer);
    await writeCheckpoint(src, [
      { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [V, W], data: new Float32Array(V * W).fill(0.25) },
      { name: 'model.norm.weight', dtype: 'F32', shape: [W], data: norm },
    ]);
    const rows = 128256;
    // Values not representable in BF16: an F32 write must keep every bit.
    const e = new Float32Array(rows * W).map((_, i) => 1 + (i % 7) / 1024 + 1 / 65536);
    const out32 = join(dir, 'dtype-f32');
    const rep = await writeTransferredModel({
      source: src,
      output: out32,
      tokenizer: llama,
      inputEmbedding: e,
      dtype: 'F32',
    });
    expect(rep.dtype).toBe('F32');
    const f = await SafetensorsCheckpoint.open(out32);
    try {
      expect(f.info('model.embed_tokens.weight')).toMatchObject({ dtype: 'F32', shape: [rows, W] });
      expect(f.info('model.norm.weight')).toMatchObject({ dtype: 'F32', shape: [W] });
      expect(
        Buffer.compare(Buffer.from((await f.readFloat32('model.embed_tokens.weight')).buffer), Buffer.from(e.buffer)),
      ).toBe(0);
    } finally {
      await f.close();
    }
    // F16: 1 + 1/1024 + 1/65536 rounds to the nearest F16 (spacing 2^-10 near 1): 1 + 1/1024 = 0x3c01.
    const out16 = join(dir, 'dtype-f16');
    await writeTransferredModel({ source: src, output: out16, tokenizer: llama, inputEmbedding: e, dtype: 'F16' });
    const emb16 = (await allRaw(out16)).get('model.embed_tokens.weight')!;
    expect(emb16.readUInt16LE(2 * 1)).toBe(0x3c01);
    expect(emb16.readUInt16LE(0)).toBe(0x3c00); // 1 + 1/65536 -> 1.0
    await expect(
      writeTransferredModel({
        source: src,
        output: join(dir, 'dtype-bad'),
        tokenizer: llama,
        inputEmbedding: e,
        dtype: 'F64' as never,
      }),
    ).rejects.toThrow(new SaltRangeError('options.dtype must be "F32", "F16" or "BF16", received "F64"', 'E_ARGUMENT'));
  });

  it('treats a head whose bytes equal the input embedding as tied (identical-head)', async () => {
    const d = join(dir, 'ident');
    await mkdir(d);
    await writeFile(
      join(d, 'config.json'),
      JSON.stringify({ model_type: 'llama', vocab_size: 300, hidden_size: 4, tie_word_embeddings: false }),
    );
    const e = new Float32Array(1200).map((_, i) => i);
    const other = e.map((v) => -v);
    await writeCheckpoint(d, [
      { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [300, 4], data: e },
      { name: 'lm_head.weight', dtype: 'BF16', shape: [300, 4], data: e },
    ]);
    const m = await HfModel.open(d);
    expect(m.embeddings).toMatchObject({ tied: true, tieReason: 'identical-head' });
    await m.close();
    const d2 = join(dir, 'ident2');
    await mkdir(d2);
    await copyFile(join(d, 'config.json'), join(d2, 'config.json'));
    await writeCheckpoint(d2, [
      { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [300, 4], data: e },
      { name: 'lm_head.weight', dtype: 'BF16', shape: [300, 4], data: other },
    ]);
    const m2 = await HfModel.open(d2);
    expect(m2.embeddings).toMatchObject({ tied: false, tieReason: null });
    await m2.close();
  });
});

describe('rewrittenHeaderBytes', () => {
  it("pads the header bound by less than 4 KiB to the first unchanged tensor's offset modulo 4,096, never off a multiple of 8", () => {
    const tensors = [
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16' as const, shape: [8192, 2048] },
      { name: 'model.embed_tokens.weight', dtype: 'BF16' as const, shape: [128256, 2048] },
    ];
    const bound = safetensorsHeaderBound(tensors, 1);
    expect(bound % 8).toBe(0);
    for (const offset of [0, 8, 16808, 525353384, 4096 * 7 + 4088, bound, bound + 4096]) {
      const h = rewrittenHeaderBytes(tensors, 1, undefined, offset);
      expect(h, `${offset}`).toBeGreaterThanOrEqual(bound);
      expect(h, `${offset}`).toBeLessThan(bound + 4096);
      expect(h % 8, `${offset}`).toBe(0);
      expect((((h - offset) % 4096) + 4096) % 4096, `${offset}`).toBe(0);
    }
    // An offset off a multiple of 8, or none (a PyTorch source): the bound itself.
    expect(rewrittenHeaderBytes(tensors, 1, undefined, 16810)).toBe(bound);
    expect(rewrittenHeaderBytes(tensors, 1, undefined, undefined)).toBe(bound);
  });
});

describe('readTokenizerInfo', () => {
  it('reads WordPiece vocab.txt and BPE vocab.json folders and resolves special tokens', async () => {
    const b = join(dir, 'bert-tok');
    await mkdir(b);
    await writeFile(join(b, 'vocab.txt'), '[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n');
    await writeFile(
      join(b, 'special_tokens_map.json'),
      JSON.stringify({ unk_token: '[UNK]', pad_token: { content: '[PAD]' } }),
    );
    const t = await readTokenizerInfo(b);
    expect(t).toMatchObject({
      files: ['special_tokens_map.json', 'vocab.txt'],
      vocabSize: 5,
      specialTokens: { bos: null, eos: null, pad: 0, unk: 1 },
    });
    const g = join(dir, 'gpt2-tok');
    await mkdir(g);
    await writeFile(join(g, 'vocab.json'), JSON.stringify({ a: 0, b: 1, '<|endoftext|>': 2 }));
    await writeFile(join(g, 'merges.txt'), '#version: 0.2\na b\n');
    await writeFile(
      join(g, 'tokenizer_config.json'),
      JSON.stringify({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' }),
    );
    expect(await readTokenizerInfo(g)).toMatchObject({
      vocabSize: 3,
      specialTokens: { bos: 2, eos: 2, pad: null, unk: null },
    });
    const none = join(dir, 'no-tok');
    await mkdir(none);
    await writeFile(join(none, 'config.json'), '{}');
    await expect(readTokenizerInfo(none)).rejects.toThrow(
      expect.objectContaining({ code: 'E_NOT_FOUND', message: expect.stringMatching(/has no tokenizer files/) }),
    );
  });
});

describe('writeTransferredModel: other vocabulary-sized tensors', () => {
  const V = 300;
  const W = 4;
  const rows = 250; // target vocabulary (vocab.txt below), padded to 256
  let bert: string;
  let tok: string;
  const emb = new Float32Array(V * W).map((_, i) => i / 8);
  const bias = new Float32Array(V).map((_, i) => i); // bias of source token i = i
  const dense = Float32Array.from({ length: W * W }, (_, i) => i - 7);

  beforeAll(async () => {
    tok = join(dir, 'bias-tok');
    await mkdir(tok);
    await writeFile(join(tok, 'special_tokens_map.json'), JSON.stringify({ pad_token: '[PAD]', unk_token: '[UNK]' }));
    await writeFile(
      join(tok, 'vocab.txt'),
      ['[PAD]', '[UNK]', '[CLS]', '[SEP]', ...Array.from({ length: rows - 4 }, (_, i) => `w${i}`)].join('\n') + '\n',
    );
    bert = join(dir, 'bert-src');
    await mkdir(bert);
    await writeFile(
      join(bert, 'config.json'),
      JSON.stringify({ model_type: 'bert', vocab_size: V, hidden_size: W, pad_token_id: 0 }),
    );
    await writeCheckpoint(bert, [
      { name: 'bert.embeddings.word_embeddings.weight', dtype: 'F32', shape: [V, W], data: emb },
      { name: 'cls.predictions.bias', dtype: 'F32', shape: [V], data: bias },
      { name: 'cls.predictions.transform.dense.weight', dtype: 'F32', shape: [W, W], data: dense },
    ]);
  });
  const newE = new Float32Array(rows * W).fill(0.5);
  const f32 = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));

  it('refuses a [vocab] bias it was not told how to resize (E_UNSUPPORTED naming it), writing nothing', async () => {
    const out = join(dir, 'bert-refused');
    const err = await writeTransferredModel({ source: bert, output: out, tokenizer: tok, inputEmbedding: newE }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(SaltError);
    expect(err.code).toBe('E_UNSUPPORTED');
    expect(err.message).toContain(
      `${bert}: besides the embedding, tensor cls.predictions.bias [300] has a dimension of the source vocabulary size 300`,
    );
    expect((await readdir(dir)).filter((f) => f.includes('bert-refused'))).toEqual([]);
    await expect(
      writeTransferredModel({
        source: bert,
        output: out,
        tokenizer: tok,
        inputEmbedding: newE,
        vocabTensors: { 'cls.predictions.transform.dense.weight': new Float32Array(16) },
      }),
    ).rejects.toThrow(code('E_ARGUMENT'));
    await expect(
      writeTransferredModel({
        source: bert,
        output: out,
        tokenizer: tok,
        inputEmbedding: newE,
        vocabTensors: { 'cls.predictions.bias': new Float32Array(300) },
      }),
    ).rejects.toThrow(
      new SaltRangeError(
        'options.vocabTensors["cls.predictions.bias"] has 300 values, expected shape [250] = 250',
        'E_SHAPE',
      ),
    );
    await expect(
      writeTransferredModel({
        source: bert,
        output: out,
        tokenizer: tok,
        inputEmbedding: newE,
        sourceIdOfTarget: new Int32Array(rows).fill(300),
      }),
    ).rejects.toThrow(
      new SaltRangeError(
        'options.sourceIdOfTarget[0] must be -1 or a source token id in [0, 300), received 300',
        'E_ARGUMENT',
      ),
    );
  });

  it("sourceIdOfTarget: the bias takes the source ids' entries, -1 and padding get means; config vocab_size matches", async () => {
    const out = join(dir, 'bert-gather');
    const ids = Int32Array.from({ length: rows }, (_, t) => (t < 200 ? 299 - t : -1));
    const rep = await writeTransferredModel({
      source: bert,
      output: out,
      tokenizer: tok,
      inputEmbedding: newE,
      sourceIdOfTarget: ids,
      padToMultipleOf: 128,
    });
    expect(rep).toMatchObject({
      vocabSize: 256,
      paddedRows: 6,
      resizedTensors: ['cls.predictions.bias'],
      copiedTensors: ['cls.predictions.transform.dense.weight'],
    });
    const raw = await allRaw(out);
    const b = f32(raw.get('cls.predictions.bias')!);
    expect(b.length).toBe(256);
    // By hand: t < 200 -> 299 - t; -1 -> mean of 0..299 = 149.5; padding -> mean of the 250 gathered
    // entries = (sum of 100..299 + 50 * 149.5) / 250 = (39900 + 7475) / 250 = 189.5.
    const want = Array.from({ length: 256 }, (_, t) => (t < 200 ? 299 - t : t < 250 ? 149.5 : 189.5));
    expect([...b]).toEqual(want);
    expect(f32(raw.get('cls.predictions.transform.dense.weight')!)).toEqual(dense);
    expect(f32(raw.get('bert.embeddings.word_embeddings.weight')!).length).toBe(256 * W);
    const cfg = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(cfg.vocab_size).toBe(256);
    const hdr = JSON.parse(
      (await readFile(join(out, 'model.safetensors')))
        .subarray(8, 8 + Number((await readFile(join(out, 'model.safetensors'))).readBigUInt64LE(0)))
        .toString(),
    );
    expect(hdr['cls.predictions.bias'].shape).toEqual([256]);
  });

  it('vocabTensors: explicit new values (padding = their mean); keepTensors copies unchanged', async () => {
    const out = join(dir, 'bert-given');
    const given = new Float32Array(rows).map((_, t) => (t % 2 ? 1 : 3)); // mean = 2
    await writeTransferredModel({
      source: bert,
      output: out,
      tokenizer: tok,
      inputEmbedding: newE,
      vocabTensors: { 'cls.predictions.bias': given },
      padToMultipleOf: 128,
    });
    const b = f32((await allRaw(out)).get('cls.predictions.bias')!);
    expect([...b]).toEqual([...given, 2, 2, 2, 2, 2, 2]);
    const out2 = join(dir, 'bert-kept');
    const rep = await writeTransferredModel({
      source: bert,
      output: out2,
      tokenizer: tok,
      inputEmbedding: newE,
      keepTensors: ['cls.predictions.bias'],
    });
    expect(rep.copiedTensors).toContain('cls.predictions.bias');
    expect(f32((await allRaw(out2)).get('cls.predictions.bias')!)).toEqual(bias);
  });

  it('a stored copy of the input embedding (T5 encoder/decoder embed_tokens) gets the new embedding; another [vocab, d] matrix is refused', async () => {
    const t5 = join(dir, 't5-src');
    await mkdir(t5);
    await writeFile(join(t5, 'config.json'), JSON.stringify({ model_type: 't5', vocab_size: V, d_model: W }));
    await writeCheckpoint(t5, [
      { name: 'shared.weight', dtype: 'F32', shape: [V, W], data: emb },
      { name: 'encoder.embed_tokens.weight', dtype: 'F32', shape: [V, W], data: emb },
      { name: 'decoder.embed_tokens.weight', dtype: 'F32', shape: [V, W], data: emb },
    ]);
    const out = join(dir, 't5-out');
    const e = new Float32Array(rows * W).map((_, i) => i % 5);
    const rep = await writeTransferredModel({ source: t5, output: out, tokenizer: tok, inputEmbedding: e });
    expect(rep.resizedTensors.sort()).toEqual(['decoder.embed_tokens.weight', 'encoder.embed_tokens.weight']);
    const raw = await allRaw(out);
    for (const n of ['shared.weight', 'encoder.embed_tokens.weight', 'decoder.embed_tokens.weight'])
      expect(f32(raw.get(n)!), n).toEqual(e);
    const t5b = join(dir, 't5-other');
    await mkdir(t5b);
    await copyFile(join(t5, 'config.json'), join(t5b, 'config.json'));
    await writeCheckpoint(t5b, [
      { name: 'shared.weight', dtype: 'F32', shape: [V, W], data: emb },
      { name: 'encoder.embed_tokens.weight', dtype: 'F32', shape: [V, W], data: emb.map((x) => x + 1) },
    ]);
    await expect(
      writeTransferredModel({ source: t5b, output: join(dir, 't5-other-out'), tokenizer: tok, inputEmbedding: e }),
    ).rejects.toThrow(/tensor encoder.embed_tokens.weight \[300, 4\] has a dimension/);
  });

  it("special token overrides of undefined keep the tokenizer's id; output == source is refused even with overwrite", async () => {
    const out = join(dir, 'bert-tokens');
    const rep = await writeTransferredModel({
      source: bert,
      output: out,
      tokenizer: tok,
      inputEmbedding: newE,
      keepTensors: ['cls.predictions.bias'],
      specialTokens: { pad: undefined, unk: 3 },
    });
    // The tokenizer's map names [PAD] (line 1 of vocab.txt: id 0) and [UNK] (id 1); unk is overridden.
    expect(rep.specialTokens).toEqual({ bos: null, eos: null, pad: 0, unk: 3 });
    const cfg = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(cfg).toEqual({ model_type: 'bert', vocab_size: rows, hidden_size: W, pad_token_id: 0, unk_token_id: 3 });
    await expect(
      writeTransferredModel({
        source: bert,
        output: bert,
        tokenizer: tok,
        inputEmbedding: newE,
        keepTensors: ['cls.predictions.bias'],
        overwrite: true,
      }),
    ).rejects.toThrow(
      new SaltRangeError(
        `output folder ${JSON.stringify(bert)} is the source folder ${JSON.stringify(bert)}; choose a new folder for the output`,
        'E_ARGUMENT',
      ),
    );
    await symlink(bert, join(dir, 'bert-link'));
    await expect(
      writeTransferredModel({
        source: bert,
        output: join(dir, 'bert-link'),
        tokenizer: tok,
        inputEmbedding: newE,
        overwrite: true,
      }),
    ).rejects.toThrow(code('E_ARGUMENT'));
    expect((await readdir(bert)).sort()).toEqual(['config.json', 'model.safetensors']);
  });
});
