/**
 * Which token each special role names in a Hugging Face tokenizer folder's `tokenizer_config.json` and
 * `special_tokens_map.json`. Shared by the tokenizer loader (lib/tokenizer/hfTokenizer.ts) and the model
 * file layer (lib/io/hfConfig.ts) so that both resolve the same ids. Pure functions on parsed JSON: the
 * callers read the files with their own error wrapping. Imports nothing from lib/io (no import cycle).
 */
import { describe, SaltError } from '../errors.js';
import { CONFIG_ROLE_KEYS, configTokenContent } from './roles.js';
import type { SpecialRole } from './vocabulary.js';

/** A parsed JSON file and its path (for error messages). */
export interface SpecialTokenFile {
  file: string;
  json: unknown;
}

/** The token a role is named by, and where. */
export interface NamedSpecialToken {
  /** The token's string. */
  content: string;
  /** The file that named it. */
  file: string;
  /** The key, e.g. "eos_token". */
  key: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The token string each role names, with the precedence of transformers' `from_pretrained` (4.34 and
 * later): a `tokenizer_config.json` that has an `added_tokens_decoder` entry (written by transformers
 * 4.34+, as in current Hub models) is authoritative and `special_tokens_map.json` is not consulted; for a
 * legacy `tokenizer_config.json` without it, or when there is none, `special_tokens_map.json` entries
 * override it key by key. A `null` or absent entry states nothing (it neither sets nor clears a role).
 *
 * @param tokenizerConfig - parsed `tokenizer_config.json`, if present.
 * @param specialTokensMap - parsed `special_tokens_map.json`, if present.
 * @returns role -> named token (keys of {@link CONFIG_ROLE_KEYS}: bos, eos, unk, pad, mask, cls, sep).
 * @throws SaltError `E_FORMAT` if a file is not a JSON object or a `*_token` entry is neither a string nor
 *   an object with a string `content`.
 */
export function specialTokenNames(
  tokenizerConfig?: SpecialTokenFile,
  specialTokensMap?: SpecialTokenFile,
): Map<SpecialRole, NamedSpecialToken> {
  const sources: SpecialTokenFile[] = [];
  if (tokenizerConfig) sources.push(tokenizerConfig);
  if (specialTokensMap) sources.push(specialTokensMap);
  for (const s of sources)
    if (!isObject(s.json))
      throw new SaltError('E_FORMAT', `${s.file}: expected a JSON object, received ${describe(s.json)}`);
  const modernConfig =
    tokenizerConfig !== undefined && Object.hasOwn(tokenizerConfig.json as object, 'added_tokens_decoder');
  const used = modernConfig ? [tokenizerConfig] : sources; // later sources override earlier ones
  const names = new Map<SpecialRole, NamedSpecialToken>();
  for (const { file, json } of used) {
    const cfg = json as Record<string, unknown>;
    for (const [key, role] of Object.entries(CONFIG_ROLE_KEYS)) {
      if (!Object.hasOwn(cfg, key) || cfg[key] === null || cfg[key] === undefined) continue;
      const content = configTokenContent(cfg[key]);
      if (content === undefined)
        throw new SaltError(
          'E_FORMAT',
          `${file}: "${key}" must be a string or {content}, received ${describe(cfg[key])}`,
        );
      names.set(role, { content, file, key });
    }
  }
  return names;
}

/**
 * Maps named special tokens to ids.
 *
 * @param names - from {@link specialTokenNames}.
 * @param idOf - the id of a token string in the vocabulary, or undefined if it has none.
 * @param vocabulary - label of the vocabulary for error messages.
 * @throws SaltError `E_FORMAT` if a named token is not in the vocabulary.
 */
export function specialTokenIds(
  names: ReadonlyMap<SpecialRole, NamedSpecialToken>,
  idOf: (content: string) => number | undefined,
  vocabulary: string,
): Map<SpecialRole, number> {
  const ids = new Map<SpecialRole, number>();
  for (const [role, n] of names) {
    const id = idOf(n.content);
    if (id === undefined)
      throw new SaltError(
        'E_FORMAT',
        `${n.file}: "${n.key}" names token ${JSON.stringify(n.content)}, which is not in ${vocabulary}`,
      );
    ids.set(role, id);
  }
  return ids;
}
