/**
 * Hand-built model folders for the CLI campaign (test/cli/campaign.test.ts). Everything here is
 * written byte by byte by this file (safetensors header + raw F32 data, tokenizer JSON, .vec text),
 * independently of lib/, so that the fixtures do not depend on the code under test. The fastText
 * `.bin` aux file is trained with Debian's `fasttext` program when it is installed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { mulberry32 } from '../../helpers/reference.js';

/** Deterministic made-up words: syllables of consonant + vowel (70 of them), 2 or 3 per word. */
export function words(n: number, offset = 0): string[] {
  const cons = 'bdfgklmnprstvz';
  const vow = 'aeiou';
  const syl: string[] = [];
  for (const c of cons) for (const v of vow) syl.push(c + v);
  const out: string[] = [];
  for (let i = offset; out.length < n; i++) {
    const S = syl.length;
    // 2-syllable words first (4,900), then 3-syllable ones.
    if (i < S * S) out.push(syl[Math.floor(i / S)] + syl[i % S]);
    else {
      const j = i - S * S;
      out.push(syl[Math.floor(j / (S * S)) % S] + syl[Math.floor(j / S) % S] + syl[j % S]);
    }
  }
  return out;
}

/** Seeded values, roughly N(0, 0.1)-sized. */
export function values(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() + r() + r() - 1.5) * 0.2;
  return a;
}

export interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** A safetensors file (F32 tensors), built by hand: u64 LE header length, JSON header (space-padded to 8 bytes), data. */
export function safetensorsBytes(tensors: Tensor[], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    const n = t.data.length * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([
    prefix,
    Buffer.from(json),
    ...tensors.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ]);
}

/** A WordLevel tokenizer.json over `specials` + `ws` (ids in that order). */
export function wordLevelTokenizer(specials: string[], ws: string[], unk = '<unk>'): string {
  const vocab: Record<string, number> = {};
  [...specials, ...ws].forEach((w, i) => (vocab[w] = i));
  return JSON.stringify(
    {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: specials.map((content, id) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab, unk_token: unk },
    },
    null,
    2,
  );
}

/** A BERT-style WordPiece tokenizer.json over `specials` + `ws`. */
export function wordPieceTokenizer(specials: string[], ws: string[]): string {
  const vocab: Record<string, number> = {};
  [...specials, ...ws].forEach((w, i) => (vocab[w] = i));
  return JSON.stringify(
    {
      version: '1.0',
      added_tokens: specials.map((content, id) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: {
        type: 'BertNormalizer',
        clean_text: true,
        handle_chinese_chars: true,
        strip_accents: null,
        lowercase: true,
      },
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: null,
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: {
        type: 'WordPiece',
        unk_token: '[UNK]',
        continuing_subword_prefix: '##',
        max_input_chars_per_word: 100,
        vocab,
      },
    },
    null,
    2,
  );
}

export interface FolderSpec {
  /** Folder to create. */
  dir: string;
  /** Non-special words (ids after the specials). */
  words: string[];
  width: number;
  seed: number;
  tied: boolean;
  /** Split the weights into two shards with a model.safetensors.index.json. */
  sharded?: boolean;
  /** About this many floats in an extra non-vocabulary tensor (to make outputs big, e.g. for the full-disk cases). */
  bigTensor?: number;
  /** Rows of the embedding (default: the vocabulary size). */
  rows?: number;
  /** BERT-style: WordPiece tokenizer.json + vocab.txt, [CLS]/[SEP]/... specials. */
  bert?: boolean;
  /** Leave out the tokenizer files (caller writes its own). */
  noTokenizer?: boolean;
}

export const LLM_SPECIALS = ['<unk>', '<s>', '</s>'];
export const BERT_SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

/** Writes a model folder: config.json, tokenizer files, safetensors weights (single or sharded). */
export function writeModelFolder(spec: FolderSpec): { vocab: number; files: string[] } {
  const { dir, width: H, seed } = spec;
  mkdirSync(dir, { recursive: true });
  const specials = spec.bert ? BERT_SPECIALS : LLM_SPECIALS;
  const V = specials.length + spec.words.length;
  const rows = spec.rows ?? V;
  const files: string[] = [];
  const put = (name: string, data: string | Buffer) => {
    writeFileSync(join(dir, name), data);
    files.push(name);
  };
  if (!spec.noTokenizer) {
    if (spec.bert) {
      put('tokenizer.json', wordPieceTokenizer(specials, spec.words));
      put('vocab.txt', [...specials, ...spec.words].join('\n') + '\n');
      put(
        'tokenizer_config.json',
        JSON.stringify(
          {
            do_lower_case: true,
            unk_token: '[UNK]',
            sep_token: '[SEP]',
            pad_token: '[PAD]',
            cls_token: '[CLS]',
            mask_token: '[MASK]',
            model_max_length: 512,
          },
          null,
          2,
        ),
      );
      put(
        'special_tokens_map.json',
        JSON.stringify(
          { unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]' },
          null,
          2,
        ),
      );
    } else {
      put('tokenizer.json', wordLevelTokenizer(specials, spec.words));
      put(
        'tokenizer_config.json',
        JSON.stringify(
          {
            bos_token: '<s>',
            eos_token: '</s>',
            unk_token: '<unk>',
            model_max_length: 512,
            tokenizer_class: 'PreTrainedTokenizerFast',
          },
          null,
          2,
        ),
      );
      put(
        'special_tokens_map.json',
        JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' }, null, 2),
      );
    }
  }
  const config = spec.bert
    ? {
        architectures: ['BertModel'],
        model_type: 'bert',
        vocab_size: rows,
        hidden_size: H,
        num_hidden_layers: 1,
        pad_token_id: 0,
      }
    : {
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        vocab_size: rows,
        hidden_size: H,
        num_hidden_layers: 1,
        tie_word_embeddings: spec.tied,
        bos_token_id: 1,
        eos_token_id: 2,
        torch_dtype: 'float32',
      };
  put('config.json', JSON.stringify(config, null, 2));
  const embName = spec.bert ? 'embeddings.word_embeddings.weight' : 'model.embed_tokens.weight';
  const tensors: Tensor[] = [
    { name: embName, shape: [rows, H], data: values(rows * H, seed) },
    { name: spec.bert ? 'embeddings.LayerNorm.weight' : 'model.norm.weight', shape: [H], data: values(H, seed + 7) },
    {
      name: spec.bert ? 'encoder.layer.0.intermediate.dense.weight' : 'model.layers.0.mlp.up_proj.weight',
      shape: [2 * H, H],
      data: values(2 * H * H, seed + 8),
    },
  ];
  if (spec.bigTensor) {
    const bigRows = Math.ceil(spec.bigTensor / H);
    tensors.push({
      name: 'model.layers.0.mlp.down_proj.weight',
      shape: [bigRows, H],
      data: values(bigRows * H, seed + 9),
    });
  }
  if (!spec.tied && !spec.bert)
    tensors.push({ name: 'lm_head.weight', shape: [rows, H], data: values(rows * H, seed + 100) });
  if (spec.sharded) {
    const half = Math.ceil(tensors.length / 2);
    const groups = [tensors.slice(0, half), tensors.slice(half)];
    const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const weightMap: Record<string, string> = {};
    let total = 0;
    groups.forEach((g, i) => {
      put(names[i], safetensorsBytes(g, { format: 'pt' }));
      for (const t of g) {
        weightMap[t.name] = names[i];
        total += t.data.length * 4;
      }
    });
    put(
      'model.safetensors.index.json',
      JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
    );
  } else put('model.safetensors', safetensorsBytes(tensors, { format: 'pt' }));
  return { vocab: V, files };
}

/** A `.vec` text file (word2vec header "N D", then "word v1 ... vD") for `ws`. */
export function vecText(ws: string[], dim: number, seed: number): string {
  const v = values(ws.length * dim, seed);
  const lines = [`${ws.length} ${dim}`];
  ws.forEach((w, i) =>
    lines.push(`${w} ${Array.from(v.subarray(i * dim, (i + 1) * dim), (x) => x.toFixed(5)).join(' ')}`),
  );
  return lines.join('\n') + '\n';
}

/** Whether Debian's `fasttext` program is on PATH. */
export const hasFastText = spawnSync('fasttext', [], { encoding: 'utf8' }).error === undefined;

/** Trains a tiny fastText skipgram model over `ws` (dim 8, 2,000 buckets); returns the .bin path, or null without `fasttext`. */
export function trainFastText(dir: string, ws: string[], seed: number): string | null {
  if (!hasFastText) return null;
  mkdirSync(dir, { recursive: true });
  const r = mulberry32(seed);
  const lines: string[] = [];
  for (let l = 0; l < 400; l++) {
    const line: string[] = [];
    for (let k = 0; k < 12; k++) line.push(ws[Math.floor(r() * ws.length)]);
    lines.push(line.join(' '));
  }
  const txt = join(dir, 'corpus.txt');
  writeFileSync(txt, lines.join('\n') + '\n');
  const out = join(dir, 'ft');
  execFileSync(
    'fasttext',
    [
      'skipgram',
      '-input',
      txt,
      '-output',
      out,
      '-dim',
      '8',
      '-epoch',
      '1',
      '-minCount',
      '1',
      '-bucket',
      '2000',
      '-minn',
      '2',
      '-maxn',
      '3',
      '-thread',
      '1',
      '-verbose',
      '0',
      '-seed',
      '1',
    ],
    { stdio: 'ignore' },
  );
  return out + '.bin';
}
