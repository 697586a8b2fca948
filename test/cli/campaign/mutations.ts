/**
 * Mutations of valid input files, per file kind. Each says whether the result MUST be rejected
 * (`reject`: structure-breaking, e.g. a truncated header, a dtype string that does not exist, a shape
 * that does not match the offsets, non-JSON, a missing required key or a value of the wrong type) or
 * may be accepted (`either`: harmless or ambiguous edits, e.g. whitespace, a changed float). Only
 * `reject` mutations that exit 0 count as "silently accepted". `warn`: exit 0 is fine only with a
 * warning in the report (see the case runner).
 */

export type Rng = () => number;
export type Expect = 'reject' | 'either' | 'warn';

export interface Mutation {
  name: string;
  expect: Expect;
  /** E.g. 'E_FORMAT' when the contract names the code. */
  code?: string;
  /** The mutated bytes, or null when the mutation does not apply to this file. */
  apply(b: Buffer, r: Rng): Buffer | null;
}

const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rng, a: readonly T[]): T => a[Math.floor(r() * a.length)];

// ---------- safetensors ----------

interface St {
  header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
  data: Buffer;
  hlen: number;
}
function parseSt(b: Buffer): St {
  const hlen = Number(b.readBigUInt64LE(0));
  return { header: JSON.parse(b.subarray(8, 8 + hlen).toString('utf8')), data: b.subarray(8 + hlen), hlen };
}
/** Re-serialises a (modified) header in front of the unchanged data. */
function buildSt(header: unknown, data: Buffer, headerText?: string): Buffer {
  const json = Buffer.from(headerText ?? JSON.stringify(header));
  const p = Buffer.alloc(8);
  p.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([p, json, data]);
}
const tensorNames = (h: St['header']) => Object.keys(h).filter((k) => k !== '__metadata__');
/** The tensor to corrupt: the embedding when this file has it (the part every run reads), else any. */
function victim(h: St['header'], r: Rng): string {
  const names = tensorNames(h);
  const emb = names.find((n) => /embed_tokens|word_embeddings/.test(n));
  return emb && r() < 0.7 ? emb : pick(r, names);
}
function editHeader(fn: (h: St['header'], r: Rng) => void): (b: Buffer, r: Rng) => Buffer {
  return (b, r) => {
    const s = parseSt(b);
    fn(s.header, r);
    return buildSt(s.header, s.data);
  };
}

export const safetensorsMutations: Mutation[] = [
  { name: 'empty file', expect: 'reject', apply: () => Buffer.alloc(0) },
  {
    name: 'truncated in the header',
    expect: 'reject',
    apply: (b, r) => b.subarray(0, int(r, 1, 8 + parseSt(b).hlen - 1)),
  },
  {
    name: 'truncated in the data',
    expect: 'reject',
    apply: (b, r) => b.subarray(0, int(r, 8 + parseSt(b).hlen, b.length - 1)),
  },
  {
    name: 'extended with garbage',
    expect: 'either',
    apply: (b, r) => Buffer.concat([b, Buffer.from(Array.from({ length: int(r, 1, 64) }, () => int(r, 0, 255)))]),
  },
  {
    name: 'header length past EOF',
    expect: 'reject',
    apply: (b, r) => {
      const c = Buffer.from(b);
      c.writeBigUInt64LE(BigInt(b.length - 8 + int(r, 1, 4096)), 0);
      return c;
    },
  },
  {
    name: 'header length huge',
    expect: 'reject',
    apply: (b, r) => {
      const c = Buffer.from(b);
      c.writeBigUInt64LE(pick(r, [2n ** 63n, 2n ** 64n - 1n, 2n ** 40n, 2n ** 32n + 8n]), 0);
      return c;
    },
  },
  {
    name: 'header length zero',
    expect: 'reject',
    apply: (b) => {
      const c = Buffer.from(b);
      c.writeBigUInt64LE(0n, 0);
      return c;
    },
  },
  {
    name: 'header length cuts the JSON',
    expect: 'reject',
    apply: (b, r) => {
      const s = parseSt(b);
      const text = b
        .subarray(8, 8 + s.hlen)
        .toString('utf8')
        .trimEnd();
      const c = Buffer.from(b);
      c.writeBigUInt64LE(BigInt(int(r, 1, Buffer.byteLength(text) - 1)), 0);
      return c;
    },
  },
  {
    name: 'header not JSON',
    expect: 'reject',
    apply: (b) => {
      const s = parseSt(b);
      return buildSt(null, s.data, '{"a": ' + JSON.stringify(s.header).slice(1));
    },
  },
  { name: 'header a JSON array', expect: 'reject', apply: (b) => buildSt([], parseSt(b).data) },
  {
    name: 'wrong dtype string',
    expect: 'reject',
    apply: editHeader((h, r) => (h[victim(h, r)].dtype = pick(r, ['F33', 'X', 'f32', '', 'FLOAT', 'INT4']))),
  },
  {
    name: 'dtype of another size',
    expect: 'reject',
    apply: editHeader((h, r) => (h[victim(h, r)].dtype = pick(r, ['F16', 'F64', 'BF16', 'I8']))),
  },
  {
    name: 'dtype not a string',
    expect: 'reject',
    apply: editHeader((h, r) => (h[victim(h, r)].dtype = pick(r, [32, null, ['F32']]))),
  },
  {
    name: 'shape does not match the offsets',
    expect: 'reject',
    apply: editHeader((h, r) => {
      const t = h[victim(h, r)];
      const s = [...(t.shape as number[])];
      s[int(r, 0, s.length - 1)] += pick(r, [1, -1, 1000]);
      t.shape = s;
    }),
  },
  {
    name: 'shape with a negative or fractional dimension',
    expect: 'reject',
    apply: editHeader((h, r) => {
      const t = h[victim(h, r)];
      const s = [...(t.shape as number[])];
      s[0] = pick(r, [-s[0], s[0] + 0.5, -1]);
      t.shape = s;
    }),
  },
  {
    name: 'shape not an array',
    expect: 'reject',
    apply: editHeader((h, r) => (h[victim(h, r)].shape = pick(r, ['[4, 4]', 16, null, { 0: 4 }]))),
  },
  {
    name: 'embedding shape transposed (offsets still consistent)',
    expect: 'reject',
    apply: (b, r) => {
      const s = parseSt(b);
      const emb = tensorNames(s.header).find((n) => /embed_tokens|word_embeddings/.test(n));
      if (!emb) return null;
      const sh = s.header[emb].shape as number[];
      s.header[emb].shape = r() < 0.5 ? [sh[1], sh[0]] : [sh[0] * sh[1]];
      return buildSt(s.header, s.data);
    },
  },
  {
    name: 'embedding missing from the header',
    expect: 'reject',
    apply: (b) => {
      const s = parseSt(b);
      const emb = tensorNames(s.header).find((n) => /embed_tokens|word_embeddings/.test(n));
      if (!emb) return null;
      delete s.header[emb];
      return buildSt(s.header, s.data);
    },
  },
  {
    name: 'offsets reversed',
    expect: 'reject',
    apply: editHeader((h, r) => {
      const t = h[victim(h, r)];
      const o = t.data_offsets as number[];
      t.data_offsets = [o[1], o[0]];
    }),
  },
  {
    name: 'offsets past the end of the data',
    expect: 'reject',
    apply: (b, r) => {
      const s = parseSt(b);
      const t = s.header[victim(s.header, r)];
      const o = t.data_offsets as number[];
      const shift = s.data.length - o[0] + int(r, 0, 64) * 4;
      t.data_offsets = [o[0] + shift, o[1] + shift];
      return buildSt(s.header, s.data);
    },
  },
  {
    name: 'two tensors overlap',
    expect: 'reject',
    apply: (b, r) => {
      const s = parseSt(b);
      const names = tensorNames(s.header);
      if (names.length < 2) return null;
      const a = s.header[names[0]];
      const t = s.header[names[int(r, 1, names.length - 1)]];
      const [ta0, ta1] = t.data_offsets as number[];
      const start = (a.data_offsets as number[])[0];
      t.data_offsets = [start, start + (ta1 - ta0)];
      return buildSt(s.header, s.data);
    },
  },
  { name: 'offsets missing', expect: 'reject', apply: editHeader((h, r) => delete h[victim(h, r)].data_offsets) },
  { name: 'dtype missing', expect: 'reject', apply: editHeader((h, r) => delete h[victim(h, r)].dtype) },
  {
    name: 'offsets not integers',
    expect: 'reject',
    apply: editHeader((h, r) => {
      const t = h[victim(h, r)];
      const o = t.data_offsets as number[];
      t.data_offsets = pick(r, [[String(o[0]), String(o[1])], [o[0] + 0.5, o[1] + 0.5], [o[0]]]);
    }),
  },
  {
    name: 'header padded with spaces',
    expect: 'either',
    apply: (b, r) => {
      const s = parseSt(b);
      return buildSt(null, s.data, JSON.stringify(s.header) + ' '.repeat(int(r, 1, 40)));
    },
  },
  {
    name: 'a data byte flipped',
    expect: 'either',
    apply: (b, r) => {
      const s = parseSt(b);
      if (!s.data.length) return null;
      const c = Buffer.from(b);
      c[8 + s.hlen + int(r, 0, s.data.length - 1)] ^= 1 << int(r, 0, 7);
      return c;
    },
  },
  {
    name: 'a header byte changed',
    expect: 'either',
    apply: (b, r) => {
      const c = Buffer.from(b);
      c[8 + int(r, 0, parseSt(b).hlen - 1)] = int(r, 32, 126);
      return c;
    },
  },
];

// ---------- JSON files ----------

function jsonEdit(fn: (j: Record<string, unknown>, r: Rng) => unknown): (b: Buffer, r: Rng) => Buffer | null {
  return (b, r) => {
    const j = JSON.parse(b.toString('utf8'));
    const res = fn(j, r);
    if (res === null) return null;
    return Buffer.from(JSON.stringify(res === undefined ? j : res, null, 2));
  };
}

const jsonCommon: Mutation[] = [
  { name: 'truncated (not JSON)', expect: 'reject', apply: (b, r) => b.subarray(0, int(r, 0, b.lastIndexOf('}') - 1)) },
  {
    name: 'not an object',
    expect: 'reject',
    apply: (_b, r) => Buffer.from(JSON.stringify(pick(r, [[], 'config', 1, null, [{}]]))),
  },
  {
    name: 'whitespace added',
    expect: 'either',
    apply: (b) => Buffer.from('\n  ' + b.toString('utf8').replace(/,/g, ' ,\n\t') + '\n\n'),
  },
  {
    name: 'a byte flipped',
    expect: 'either',
    apply: (b, r) => {
      const c = Buffer.from(b);
      c[int(r, 0, c.length - 1)] ^= 1 << int(r, 0, 7);
      return c;
    },
  },
  {
    name: 'UTF-8 byte order mark',
    expect: 'either',
    apply: (b) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]),
  },
];

export const configMutations: Mutation[] = [
  ...jsonCommon,
  { name: 'vocab_size missing', expect: 'reject', apply: jsonEdit((j) => void delete j.vocab_size) },
  {
    name: 'vocab_size of the wrong type',
    expect: 'reject',
    apply: jsonEdit((j, r) => void (j.vocab_size = pick(r, [String(j.vocab_size), null, [j.vocab_size], true]))),
  },
  {
    name: 'vocab_size not a positive integer',
    expect: 'reject',
    apply: jsonEdit((j, r) => void (j.vocab_size = pick(r, [0, -1, (j.vocab_size as number) + 0.5, 1e300]))),
  },
  {
    name: 'vocab_size does not match the embedding',
    expect: 'reject',
    apply: jsonEdit((j, r) => void (j.vocab_size = (j.vocab_size as number) + pick(r, [1, -1, 1000]))),
  },
  { name: 'hidden_size missing', expect: 'reject', apply: jsonEdit((j) => void delete j.hidden_size) },
  {
    name: 'hidden_size does not match the embedding',
    expect: 'reject',
    apply: jsonEdit((j, r) => void (j.hidden_size = (j.hidden_size as number) + pick(r, [1, -1, 7]))),
  },
  {
    name: 'hidden_size of the wrong type',
    expect: 'reject',
    apply: jsonEdit((j) => void (j.hidden_size = String(j.hidden_size))),
  },
  {
    name: 'tie_word_embeddings of the wrong type',
    expect: 'reject',
    apply: jsonEdit((j, r) =>
      !('tie_word_embeddings' in j) ? null : void (j.tie_word_embeddings = pick(r, ['false', 'true', 0, 1])),
    ),
  },
  {
    name: 'an unknown key added',
    expect: 'either',
    apply: jsonEdit((j) => void (j.campaign_extra = { nested: [1, 2, 3] })),
  },
];

export const tokenizerJsonMutations: Mutation[] = [
  ...jsonCommon,
  { name: 'model missing', expect: 'reject', apply: jsonEdit((j) => void delete j.model) },
  {
    name: 'model not an object',
    expect: 'reject',
    apply: jsonEdit((j, r) => void (j.model = pick(r, ['WordLevel', [], 1]))),
  },
  {
    name: 'model.type unknown',
    expect: 'reject',
    apply: jsonEdit((j, r) => void ((j.model as Record<string, unknown>).type = pick(r, ['Foo', 'wordlevel', 7]))),
  },
  {
    name: 'model.vocab of the wrong type',
    expect: 'reject',
    apply: jsonEdit((j, r) => void ((j.model as Record<string, unknown>).vocab = pick(r, [['a', 'b'], 'vocab', 12]))),
  },
  ...(
    [
      ['an id as a string', (id: number) => String(id)],
      ['a negative id', () => -3],
      ['a fractional id', (id: number) => id + 0.5],
      ['an id of 1e9', () => 1e9],
    ] as const
  ).map(([what, f]) => ({
    name: `model.vocab with ${what}`,
    expect: 'reject' as const,
    apply: jsonEdit((j, r) => {
      const v = (j.model as { vocab: Record<string, number> }).vocab;
      const keys = Object.keys(v).filter((k) => !/^(<|\[)/.test(k));
      const k = pick(r, keys);
      (v as Record<string, unknown>)[k] = f(v[k]);
    }),
  })),
  {
    name: 'model.vocab with a duplicate id',
    expect: 'reject',
    apply: jsonEdit((j, r) => {
      const v = (j.model as { vocab: Record<string, number> }).vocab;
      const keys = Object.keys(v).filter((k) => !/^(<|\[)/.test(k));
      const a = pick(r, keys);
      let b = pick(r, keys);
      if (b === a) b = keys[(keys.indexOf(a) + 1) % keys.length];
      v[b] = v[a];
    }),
  },
  {
    name: 'added_tokens not an array',
    expect: 'reject',
    apply: jsonEdit((j, r) => void (j.added_tokens = pick(r, [{}, 'x', 3]))),
  },
  {
    name: 'added_tokens entry without string content',
    expect: 'reject',
    apply: jsonEdit((j, r) => {
      const a = j.added_tokens as Array<Record<string, unknown>>;
      if (!a?.length) return null;
      a[0].content = pick(r, [5, null, ['x']]);
    }),
  },
  {
    name: 'added_tokens duplicate id',
    expect: 'reject',
    apply: jsonEdit((j) => {
      const a = j.added_tokens as Array<Record<string, unknown>>;
      if (!a || a.length < 2) return null;
      a[1].id = a[0].id;
    }),
  },
  {
    name: 'decoder Sequence with decoders 0',
    expect: 'reject',
    apply: jsonEdit((j) => void (j.decoder = { type: 'Sequence', decoders: 0 })),
  },
  {
    name: 'decoder CTC (unsupported)',
    expect: 'reject',
    apply: jsonEdit(
      (j) => void (j.decoder = { type: 'CTC', pad_token: '<pad>', word_delimiter_token: '|', cleanup: true }),
    ),
  },
  {
    name: 'invalid UTF-8 in a token',
    expect: 'reject',
    code: 'E_FORMAT',
    apply: (b, r) => {
      // Replace one word's first letter (inside a "word": id pair) by a lone continuation byte.
      const text = b.toString('latin1');
      const re = /"([a-z]{4,6})": \d+/g;
      const hits = [...text.matchAll(re)];
      if (!hits.length) return null;
      const h = pick(r, hits);
      const at = h.index! + 1;
      const c = Buffer.from(b);
      c[at] = pick(r, [0x80, 0xbf, 0xc3, 0xff, 0xfe]);
      return c;
    },
  },
  {
    name: 'a token renamed',
    expect: 'either',
    apply: jsonEdit((j, r) => {
      const v = (j.model as { vocab: Record<string, number> }).vocab;
      const k = pick(
        r,
        Object.keys(v).filter((x) => !/^(<|\[)/.test(x)),
      );
      v[k + 'q'] = v[k];
      delete v[k];
    }),
  },
  {
    name: 'a token removed (a hole in the ids)',
    expect: 'either',
    apply: jsonEdit((j, r) => {
      const v = (j.model as { vocab: Record<string, number> }).vocab;
      delete v[
        pick(
          r,
          Object.keys(v).filter((x) => !/^(<|\[)/.test(x)),
        )
      ];
    }),
  },
  {
    name: 'empty model vocab',
    expect: 'warn',
    apply: jsonEdit((j) => void ((j.model as Record<string, unknown>).vocab = {})),
  },
];

const ROLE_KEYS = ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'mask_token', 'cls_token', 'sep_token'];

/**
 * special_tokens_map.json, and tokenizer_config.json where noted. With a legacy tokenizer_config.json
 * (no added_tokens_decoder, as in the fixtures) special_tokens_map.json overrides it key by key, as in
 * transformers: so a bad *name* in tokenizer_config.json must be rejected only under a key that
 * special_tokens_map.json does not set (the fixtures' two files set the same keys).
 */
export const specialsJsonMutations: Mutation[] = [
  ...jsonCommon,
  {
    name: 'a *_token naming a token the vocabulary lacks',
    expect: 'reject',
    apply: jsonEdit((j, r) => {
      const keys = Object.keys(j).filter((k) => k.endsWith('_token') && typeof j[k] === 'string');
      if (!keys.length) return null;
      j[pick(r, keys)] = pick(r, ['<nope>', '[NOPE]', 'zzzzqq']);
    }),
  },
  {
    name: 'a *_token of the wrong type',
    expect: 'reject',
    apply: jsonEdit((j, r) => {
      const keys = Object.keys(j).filter((k) => k.endsWith('_token'));
      if (!keys.length) return null;
      j[pick(r, keys)] = pick(r, [5, true, ['<s>'], { content: 5 }]);
    }),
  },
  { name: 'an unknown key added', expect: 'either', apply: jsonEdit((j) => void (j.campaign_extra = 'x')) },
];

export const tokenizerConfigMutations: Mutation[] = [
  ...specialsJsonMutations.filter((m) => m.name !== 'a *_token naming a token the vocabulary lacks'),
  {
    name: 'a *_token naming a token the vocabulary lacks, under a key special_tokens_map.json does not set',
    expect: 'reject',
    apply: jsonEdit((j, r) => {
      const absent = ROLE_KEYS.filter((k) => !(k in j));
      if (!absent.length) return null;
      j[pick(r, absent)] = pick(r, ['<nope>', '[NOPE]', 'zzzzqq']);
    }),
  },
  {
    name: 'a *_token naming a token the vocabulary lacks, overridden by special_tokens_map.json',
    expect: 'either',
    apply: jsonEdit((j, r) => {
      const keys = ROLE_KEYS.filter((k) => typeof j[k] === 'string');
      if (!keys.length) return null;
      j[pick(r, keys)] = '<nope>';
    }),
  },
];

export const indexMutations: Mutation[] = [
  ...jsonCommon,
  { name: 'weight_map missing', expect: 'reject', apply: jsonEdit((j) => void delete j.weight_map) },
  {
    name: 'weight_map not an object',
    expect: 'reject',
    apply: jsonEdit((j, r) => void (j.weight_map = pick(r, [[], 'model-00001-of-00002.safetensors', 1]))),
  },
  {
    name: 'weight_map names a missing shard',
    expect: 'reject',
    apply: jsonEdit((j, r) => {
      const m = j.weight_map as Record<string, string>;
      m[pick(r, Object.keys(m))] = 'model-00009-of-00009.safetensors';
    }),
  },
  {
    name: 'weight_map escapes the folder',
    expect: 'reject',
    apply: jsonEdit((j, r) => {
      const m = j.weight_map as Record<string, string>;
      m[pick(r, Object.keys(m))] = pick(r, ['../tgt/model.safetensors', '/etc/passwd', '..', 'sub/x.safetensors']);
    }),
  },
  {
    name: 'a tensor mapped to the other shard',
    expect: 'reject',
    apply: jsonEdit((j, r) => {
      const m = j.weight_map as Record<string, string>;
      const k = pick(r, Object.keys(m));
      m[k] = m[k].includes('00001-of') ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors';
    }),
  },
  {
    name: 'the embedding left out of weight_map',
    expect: 'reject',
    apply: jsonEdit((j) => void delete (j.weight_map as Record<string, string>)['model.embed_tokens.weight']),
  },
  {
    name: 'a tensor no shard holds',
    expect: 'reject',
    apply: jsonEdit(
      (j) =>
        void ((j.weight_map as Record<string, string>)['model.layers.9.ghost.weight'] =
          'model-00001-of-00002.safetensors'),
    ),
  },
  {
    name: 'total_size wrong',
    expect: 'either',
    apply: jsonEdit((j) => void ((j.metadata as Record<string, unknown>).total_size = 12345)),
  },
];

// ---------- text files ----------

function lineEdit(fn: (lines: string[], r: Rng) => unknown): (b: Buffer, r: Rng) => Buffer | null {
  return (b, r) => {
    const lines = b.toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    if (fn(lines, r) === null) return null;
    return Buffer.from(lines.join('\n') + '\n');
  };
}

function invalidUtf8InLine(first: number): (b: Buffer, r: Rng) => Buffer {
  return (b, r) => {
    const starts = [0];
    for (let i = 0; i < b.length - 1; i++) if (b[i] === 0x0a) starts.push(i + 1);
    const s = starts[int(r, first, starts.length - 1)];
    const c = Buffer.from(b);
    c[s] = pick(r, [0x80, 0xbf, 0xc3, 0xff, 0xfe]);
    return c;
  };
}

export const vocabTxtMutations: Mutation[] = [
  { name: 'invalid UTF-8 in a token', expect: 'reject', code: 'E_FORMAT', apply: invalidUtf8InLine(5) },
  { name: 'a duplicate line', expect: 'either', apply: lineEdit((l, r) => void (l[int(r, 5, l.length - 1)] = l[5])) },
  { name: 'truncated', expect: 'either', apply: (b, r) => b.subarray(0, int(r, 0, b.length - 1)) },
];

export const vecMutations: Mutation[] = [
  { name: 'empty file', expect: 'reject', apply: () => Buffer.alloc(0) },
  { name: 'truncated', expect: 'reject', apply: (b, r) => b.subarray(0, int(r, 1, b.length - 2)) },
  {
    name: 'a ragged row',
    expect: 'reject',
    apply: lineEdit((l, r) => {
      const i = int(r, 1, l.length - 1);
      l[i] = l[i].split(' ').slice(0, -1).join(' ');
    }),
  },
  // Words may contain spaces (the last D fields are the vector), so an extra field is part of the word: harmless.
  {
    name: 'a row with an extra value',
    expect: 'either',
    apply: lineEdit((l, r) => {
      const i = int(r, 1, l.length - 1);
      l[i] += ' 0.5';
    }),
  },
  {
    name: 'a non-numeric value',
    expect: 'reject',
    apply: lineEdit((l, r) => {
      const i = int(r, 1, l.length - 1);
      const f = l[i].split(' ');
      f[int(r, 1, f.length - 1)] = pick(r, ['abc', '1.2.3', '--', '0x']);
      l[i] = f.join(' ');
    }),
  },
  {
    name: 'header count wrong',
    expect: 'reject',
    apply: lineEdit((l, r) => {
      const [n, d] = l[0].split(' ').map(Number);
      l[0] = `${n + pick(r, [1, 5, -3])} ${d}`;
    }),
  },
  {
    name: 'header dimension wrong',
    expect: 'reject',
    apply: lineEdit((l, r) => {
      const [n, d] = l[0].split(' ').map(Number);
      l[0] = `${n} ${d + pick(r, [1, -1, 100])}`;
    }),
  },
  {
    name: 'header dimension 0',
    expect: 'reject',
    apply: lineEdit((l) => {
      const [n] = l[0].split(' ').map(Number);
      l[0] = `${n} 0`;
    }),
  },
  { name: 'invalid UTF-8 in a word', expect: 'reject', code: 'E_FORMAT', apply: invalidUtf8InLine(1) },
  {
    name: 'NaN value',
    expect: 'either',
    apply: lineEdit((l, r) => {
      const i = int(r, 1, l.length - 1);
      const f = l[i].split(' ');
      f[1] = 'nan';
      l[i] = f.join(' ');
    }),
  },
  { name: 'trailing spaces', expect: 'either', apply: lineEdit((l) => l.forEach((x, i) => (l[i] = x + '  '))) },
  {
    name: 'a duplicate word',
    expect: 'either',
    apply: lineEdit((l, r) => {
      const i = int(r, 2, l.length - 1);
      l[i] = l[1].split(' ')[0] + ' ' + l[i].split(' ').slice(1).join(' ');
    }),
  },
];

/** fastText .bin: int32 magic 793712314, int32 version 12, then the args (dim first). */
export const binMutations: Mutation[] = [
  { name: 'empty file', expect: 'reject', apply: () => Buffer.alloc(0) },
  { name: 'truncated', expect: 'reject', apply: (b, r) => b.subarray(0, int(r, 1, b.length - 1)) },
  {
    name: 'magic corrupted',
    expect: 'reject',
    apply: (b, r) => {
      const c = Buffer.from(b);
      c.writeInt32LE(int(r, 0, 1e9), 0);
      return c;
    },
  },
  {
    name: 'version changed',
    expect: 'reject',
    apply: (b, r) => {
      const c = Buffer.from(b);
      c.writeInt32LE(pick(r, [0, 99, -1, 1 << 30]), 4);
      return c;
    },
  },
  {
    name: 'dimension changed',
    expect: 'reject',
    apply: (b, r) => {
      const c = Buffer.from(b);
      c.writeInt32LE(pick(r, [0, -8, 9, 4096, 1 << 30]), 8);
      return c;
    },
  },
  {
    name: 'bucket count changed',
    expect: 'reject',
    apply: (b, r) => {
      const c = Buffer.from(b);
      c.writeInt32LE(pick(r, [-1, 1 << 30, 7]), 40);
      return c;
    },
  },
  {
    name: 'extended with garbage',
    expect: 'either',
    apply: (b, r) => Buffer.concat([b, Buffer.alloc(int(r, 1, 100), 7)]),
  },
  {
    name: 'a byte flipped late in the file',
    expect: 'either',
    apply: (b, r) => {
      const c = Buffer.from(b);
      c[int(r, Math.floor(c.length / 2), c.length - 1)] ^= 0x10;
      return c;
    },
  },
];
