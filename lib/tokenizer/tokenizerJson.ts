/**
 * Reading a Hugging Face `tokenizer.json` for the loaders of this package (the vocabulary loader and
 * the writer's tokenizer facts). A 150k-token file is 10 MB of JSON whose value is mostly two things:
 * `model.vocab`, an object of 150k keys, and `model.merges`, 150k pairs no loader here uses. Parsing
 * it with JSON.parse and walking that object took about 0.4 s of a 0.6 s load; the addon's scan
 * (native/core/include/salt/json_vocab.h) reads the vocabulary's keys and ids in a few tens of ms
 * and JSON.parse gets the rest of the file with both left empty.
 *
 * The scan only takes files it reads exactly as JSON.parse would: strictly valid JSON within
 * {@link MAX_JSON_DEPTH}, one `model` object with one object `vocab` whose keys are unique and whose
 * ids are plain integer literals below 2^31. Any other file (and any file when the addon cannot be
 * loaded) is parsed whole, as before, so the results and errors do not depend on the path taken.
 */
import { checkUtf8, decodeUtf8, MAX_JSON_DEPTH, parseJsonText, readRegularFile } from '../inputFiles.js';
import { binding } from '../kernels/native.js';

/** An object vocabulary read by the scan: key i is `pieces[i]` with id `ids[i]`, in file order. */
export interface ScannedVocab {
  pieces: string[];
  ids: Int32Array;
}

/** A parsed tokenizer.json. */
export interface TokenizerJson {
  /**
   * The file's value. When {@link vocab} is set, its `model.vocab` is `{}` (the entries are in
   * `vocab`) and its `model.merges`, when an array, is `[]`.
   */
  json: unknown;
  /** The object vocabulary read by the scan, or null when the file was parsed whole. */
  vocab: ScannedVocab | null;
}

const BOM = 3;

/** The scan's result for `bytes` (valid UTF-8), or null when it does not take the file. */
function scan(bytes: Uint8Array): TokenizerJson | null {
  let r: ReturnType<ReturnType<typeof binding>['scanTokenizerVocab']>;
  try {
    r = binding().scanTokenizerVocab(bytes, MAX_JSON_DEPTH);
  } catch {
    return null; // no addon: the whole-file parse
  }
  // Nothing (a terminating worker) or a refusal: the whole-file parse.
  if (!r || r.why !== undefined) return null;
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? BOM : 0;
  const cuts = [
    { begin: r.vocabBegin, end: r.vocabEnd, empty: '{}' },
    ...(r.mergesEnd > r.mergesBegin ? [{ begin: r.mergesBegin, end: r.mergesEnd, empty: '[]' }] : []),
  ].sort((a, b) => a.begin - b.begin);
  const parts: Uint8Array[] = [];
  let at = start;
  for (const c of cuts) {
    parts.push(bytes.subarray(at, c.begin), Buffer.from(c.empty));
    at = c.end;
  }
  parts.push(bytes.subarray(at));
  // Valid JSON by construction: the scan checked the whole file, and each cut is a whole value.
  return { json: JSON.parse(Buffer.concat(parts).toString('utf8')), vocab: { pieces: r.pieces, ids: r.ids } };
}

/**
 * Reads a tokenizer.json (see the module's comment): a regular file, strict UTF-8, valid JSON within
 * {@link MAX_JSON_DEPTH}, else SaltError `E_NOT_FOUND` / `E_IO` / `E_FORMAT` naming the file.
 * `cache` (by path) lets a preparation's readers share one read. `scan: false` parses the file whole.
 */
export async function readTokenizerJson(
  path: string,
  cache?: Map<string, unknown>,
  options: { scan?: boolean } = {},
): Promise<TokenizerJson> {
  const key = `tokenizer.json\0${path}`;
  if (cache?.has(key)) return cache.get(key) as TokenizerJson;
  const bytes = await readRegularFile(path);
  checkUtf8(bytes, path); // the check (and the error) of every JSON input
  const value = (options.scan !== false ? scan(bytes) : null) ?? {
    json: parseJsonText(decodeUtf8(bytes, path), path),
    vocab: null,
  };
  cache?.set(key, value);
  return value;
}
