/**
 * Tokenizer alignment: load vocabularies of any common format into canonical form and find the tokens
 * a source (LLM) and a target (PLM) vocabulary share. See docs/tokenizers.md.
 */
export {
  Vocabulary,
  buildVocabulary,
  canonicalizePiece,
  TOKEN_KINDS,
  KIND_CODE,
  SPECIAL_ROLES,
  type TokenKind,
  type SpecialRole,
  type SpellingConvention,
  type CanonicalToken,
  type VocabularyFormat,
  type VocabularySource,
} from './vocabulary.js';
export { loadHfTokenizerJson, loadHfTokenizerFolder, MAX_ID_HOLES, type HfTokenizerOptions } from './hfTokenizer.js';
export {
  readGgufMetadata,
  loadGgufVocabulary,
  MAX_GGUF_ARRAY_LENGTH,
  type GgufMetadata,
  type GgufValue,
} from './gguf.js';
export {
  loadSentencePieceModel,
  parseSentencePieceModel,
  sentencePieceModelToVocabulary,
  type SentencePieceModelInfo,
} from './sentencepieceModel.js';
export {
  loadVocabTxt,
  loadWordList,
  wordListVocabulary,
  piecesVocabulary,
  useLiteVocabulary,
  loadVocabJson,
  loadVocabulary,
  type PiecesOptions,
} from './plainVocabularies.js';
export { CONVENTIONAL_ROLE_NAMES, CONFIG_ROLE_KEYS } from './roles.js';
export { specialTokenNames, specialTokenIds, type SpecialTokenFile, type NamedSpecialToken } from './specialTokens.js';
export {
  alignVocabularies,
  formatAlignmentReport,
  lowerCaseBytes,
  MATCH_CATEGORIES,
  type MatchCategory,
  type AlignOptions,
  type Alignment,
  type AlignmentReport,
  type MatchSample,
} from './align.js';
export { segmentWithVocabulary, type Segmentation, type SegmentOptions } from './segment.js';
