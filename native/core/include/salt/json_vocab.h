/// salt/json_vocab.h — the vocabulary of a Hugging Face tokenizer.json read in one pass, without
/// building the file's whole value. On 150k-token files JSON.parse plus walking the 150k-key object
/// was most of a target's preparation (about 0.4 of 0.6 s per file); this scan takes a few tens of ms.
///
/// It is a fast path, not a second interpretation: it handles only files it can read exactly as
/// JSON.parse would, and answers "not handled" for anything else (the caller then parses the file
/// as before, with the same results and the same errors).
#ifndef SALT_JSON_VOCAB_H
#define SALT_JSON_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

namespace salt {

/// What scan_tokenizer_vocab found. Byte offsets are into the scanned buffer.
struct TokenizerVocabScan {
  size_t vocab_begin = 0;  ///< model.vocab's value (an object), [vocab_begin, vocab_end)
  size_t vocab_end = 0;
  size_t merges_begin = 0;  ///< model.merges' value when it is an array, else begin == end
  size_t merges_end = 0;
  std::string keys;                ///< the vocab's keys as UTF-8, one after the other, in file order
  std::vector<uint32_t> key_ends;  ///< end of key i in `keys` (key i starts at key_ends[i - 1], or 0)
  std::vector<int32_t> ids;        ///< key i's id
};

/// Scans `n` bytes of UTF-8 JSON (a leading byte-order mark is skipped, as the JS reader drops it).
/// Returns nullptr when it handled the file and filled `out`, else why it did not, e.g.:
/// invalid JSON; nesting deeper than `max_depth` (counting every array and object, the top one 1);
/// no object "model" with an object "vocab" (a Unigram array vocab included); a repeated "model",
/// "vocab" or "merges" key, or a repeated vocab key; a key with an unpaired surrogate escape (not
/// representable in UTF-8); an id that is not a plain decimal integer literal in [0, 2^31).
/// The caller must have checked that the bytes are valid UTF-8.
const char* scan_tokenizer_vocab(const unsigned char* data, size_t n, int max_depth, TokenizerVocabScan& out);

}  // namespace salt

#endif
