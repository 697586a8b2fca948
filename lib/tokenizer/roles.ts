/**
 * Special-token roles: reading them from configuration files and recognising conventional names.
 */
import type { SpecialRole } from './vocabulary.js';

/**
 * Conventional names of special tokens and their roles. Used only for roles that the files do not state
 * explicitly (see {@link inferRolesByName}).
 */
export const CONVENTIONAL_ROLE_NAMES: Readonly<Record<string, SpecialRole>> = {
  '<s>': 'bos',
  '<bos>': 'bos',
  '<|begin_of_text|>': 'bos',
  '<｜begin▁of▁sentence｜>': 'bos',
  '</s>': 'eos',
  '<eos>': 'eos',
  '<|end_of_text|>': 'eos',
  '<|endoftext|>': 'eos',
  '<｜end▁of▁sentence｜>': 'eos',
  '<unk>': 'unk',
  '[UNK]': 'unk',
  '<pad>': 'pad',
  '[PAD]': 'pad',
  '<|padding|>': 'pad',
  '<mask>': 'mask',
  '[MASK]': 'mask',
  '[CLS]': 'cls',
  '[SEP]': 'sep',
  '<|eot_id|>': 'eot',
  '<|im_end|>': 'eot',
  '<end_of_turn>': 'eot',
};

/** Keys of tokenizer_config.json / special_tokens_map.json and the roles they name. */
export const CONFIG_ROLE_KEYS: Readonly<Record<string, SpecialRole>> = {
  bos_token: 'bos',
  eos_token: 'eos',
  unk_token: 'unk',
  pad_token: 'pad',
  mask_token: 'mask',
  cls_token: 'cls',
  sep_token: 'sep',
};

/**
 * Adds roles for special tokens with a conventional name (see {@link CONVENTIONAL_ROLE_NAMES}) where the
 * role is not yet assigned. Only ids accepted by `isSpecial` are considered; the lowest id wins.
 */
export function inferRolesByName(
  pieces: readonly string[],
  isSpecial: (id: number) => boolean,
  roles: Map<SpecialRole, number>,
): void {
  for (let id = 0; id < pieces.length; id++) {
    // Own properties only: a token named "constructor", "toString" or "__proto__" must not pick up
    // Object.prototype's members as a role.
    if (!Object.hasOwn(CONVENTIONAL_ROLE_NAMES, pieces[id])) continue;
    const role = CONVENTIONAL_ROLE_NAMES[pieces[id]];
    if (role !== undefined && !roles.has(role) && isSpecial(id)) roles.set(role, id);
  }
}

/** The token string of a config entry: either a string or an AddedToken-like object `{ content }`. */
export function configTokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string')
    return (value as { content: string }).content;
  return undefined;
}
