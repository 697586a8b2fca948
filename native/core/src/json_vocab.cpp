// A strict JSON scanner (RFC 8259, the grammar ECMAScript's JSON.parse accepts) that records only what
// a tokenizer.json's vocabulary needs. Everything it does not read exactly as JSON.parse would is
// refused with a reason; the caller then takes the JavaScript path (see salt/json_vocab.h).
#include "salt/json_vocab.h"

#include <string_view>
#include <unordered_set>

namespace salt {
namespace {

bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& s, uint32_t u) {
  if (u < 0x80) {
    s.push_back(static_cast<char>(u));
  } else if (u < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (u >> 6)));
    s.push_back(static_cast<char>(0x80 | (u & 0x3F)));
  } else if (u < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (u >> 12)));
    s.push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (u & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (u >> 18)));
    s.push_back(static_cast<char>(0x80 | ((u >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (u & 0x3F)));
  }
}

class Scanner {
 public:
  Scanner(const unsigned char* p, size_t n, int max_depth, TokenizerVocabScan& out)
      : p_(p), n_(n), max_depth_(max_depth), out_(out) {}

  const char* run() {
    if (n_ >= 3 && p_[0] == 0xEF && p_[1] == 0xBB && p_[2] == 0xBF) i_ = 3;
    ws();
    if (i_ >= n_ || p_[i_] != '{') return "the top-level value is not an object";
    bool seen_model = false;
    const bool ok = members(1, [&](const std::string& key) {
      if (key != "model") return value(1);
      if (seen_model) return fail("a repeated \"model\" key");
      seen_model = true;
      ws();
      if (i_ >= n_ || p_[i_] != '{') return fail("\"model\" is not an object");
      return model(2);
    });
    if (!ok) return why_;
    ws();
    if (i_ != n_) return "characters after the top-level value";
    if (!seen_vocab_) return "no object \"vocab\" in \"model\"";
    // A repeated vocab key: JSON.parse keeps the last value, the JS path handles it.
    std::unordered_set<std::string_view> seen;
    seen.reserve(out_.key_ends.size() * 2);
    size_t begin = 0;
    for (uint32_t end : out_.key_ends) {
      if (!seen.emplace(out_.keys.data() + begin, end - begin).second) return "a repeated key in \"vocab\"";
      begin = end;
    }
    return nullptr;
  }

 private:
  bool fail(const char* why) {
    if (why_ == nullptr) why_ = why;
    return false;
  }

  void ws() {
    while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\n' || p_[i_] == '\r' || p_[i_] == '\t')) i_++;
  }

  bool hex4(uint32_t& u) {
    if (n_ - i_ < 4) return fail("a truncated \\u escape");
    u = 0;
    for (int k = 0; k < 4; k++) {
      const int h = hex_value(p_[i_ + k]);
      if (h < 0) return fail("a bad \\u escape");
      u = u * 16 + static_cast<uint32_t>(h);
    }
    i_ += 4;
    return true;
  }

  // A string at p_[i_] == '"'. With `out`, its value is appended as UTF-8; a lone surrogate (valid
  // JSON, but not UTF-8) is then refused. Without, it is only checked.
  bool string(std::string* out) {
    i_++;
    for (;;) {
      const size_t start = i_;
      while (i_ < n_ && p_[i_] != '"' && p_[i_] != '\\' && p_[i_] >= 0x20) i_++;
      if (out != nullptr) out->append(reinterpret_cast<const char*>(p_ + start), i_ - start);
      if (i_ >= n_) return fail("an unterminated string");
      const unsigned char c = p_[i_];
      if (c == '"') {
        i_++;
        return true;
      }
      if (c < 0x20) return fail("a control character in a string");
      // A backslash.
      if (++i_ >= n_) return fail("an unterminated string");
      const unsigned char e = p_[i_++];
      char plain = 0;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          plain = static_cast<char>(e);
          break;
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          uint32_t u = 0;
          if (!hex4(u)) return false;
          if (u >= 0xD800 && u <= 0xDBFF && n_ - i_ >= 6 && p_[i_] == '\\' && p_[i_ + 1] == 'u') {
            const size_t back = i_;
            i_ += 2;
            uint32_t lo = 0;
            if (!hex4(lo)) return false;
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              i_ = back;  // the next escape stands on its own
            }
          }
          if (u >= 0xD800 && u <= 0xDFFF) {
            if (out != nullptr) return fail("an unpaired surrogate in a key");
            continue;
          }
          if (out != nullptr) append_utf8(*out, u);
          continue;
        }
        default:
          return fail("a bad escape in a string");
      }
      if (out != nullptr) out->push_back(plain);
    }
  }

  bool number() {
    if (p_[i_] == '-') i_++;
    if (i_ >= n_) return fail("a truncated number");
    if (p_[i_] == '0') {
      i_++;
    } else if (p_[i_] >= '1' && p_[i_] <= '9') {
      while (i_ < n_ && is_digit(p_[i_])) i_++;
    } else {
      return fail("a bad number");
    }
    if (i_ < n_ && p_[i_] == '.') {
      i_++;
      if (i_ >= n_ || !is_digit(p_[i_])) return fail("a bad number");
      while (i_ < n_ && is_digit(p_[i_])) i_++;
    }
    if (i_ < n_ && (p_[i_] == 'e' || p_[i_] == 'E')) {
      i_++;
      if (i_ < n_ && (p_[i_] == '+' || p_[i_] == '-')) i_++;
      if (i_ >= n_ || !is_digit(p_[i_])) return fail("a bad number");
      while (i_ < n_ && is_digit(p_[i_])) i_++;
    }
    return true;
  }

  bool literal(std::string_view word) {
    if (n_ - i_ < word.size() || std::string_view(reinterpret_cast<const char*>(p_ + i_), word.size()) != word)
      return fail("an unknown literal");
    i_ += word.size();
    return true;
  }

  // Any value; `depth` is the nesting of the container holding it (0 at the top).
  bool value(int depth) {
    ws();
    if (i_ >= n_) return fail("an unexpected end");
    switch (p_[i_]) {
      case '{':
        return members(
            depth + 1, [&](const std::string&) { return value(depth + 1); }, false);
      case '[':
        return array(depth + 1);
      case '"':
        return string(nullptr);
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        if (p_[i_] == '-' || is_digit(p_[i_])) return number();
        return fail("an unexpected character");
    }
  }

  // At '[' or '{' of a container at nesting `depth`: steps in; `empty` when it closes at once (the
  // closing bracket then consumed too).
  bool open(int depth, unsigned char close, bool& empty) {
    if (depth > max_depth_) return fail("nesting deeper than the limit");
    i_++;
    ws();
    empty = i_ < n_ && p_[i_] == close;
    if (empty) i_++;
    return true;
  }

  // After an element or member: 1 when a ',' follows, 0 when `close` ends the container (either
  // consumed), -1 (and why_) otherwise.
  int next_item(unsigned char close) {
    ws();
    if (i_ < n_ && p_[i_] == ',') {
      i_++;
      return 1;
    }
    if (i_ < n_ && p_[i_] == close) {
      i_++;
      return 0;
    }
    fail(close == ']' ? "a missing , or ] in an array" : "a missing , or } in an object");
    return -1;
  }

  // A member's key and its ':'; the key is decoded into `out` when given.
  bool key(std::string* out) {
    ws();
    if (i_ >= n_ || p_[i_] != '"') return fail("a missing key in an object");
    if (!string(out)) return false;
    ws();
    if (i_ >= n_ || p_[i_] != ':') return fail("a missing : in an object");
    i_++;
    return true;
  }

  bool array(int depth) {
    bool empty = false;
    if (!open(depth, ']', empty)) return false;
    if (empty) return true;
    for (;;) {
      if (!value(depth)) return false;
      const int next = next_item(']');
      if (next <= 0) return next == 0;
    }
  }

  // An object at p_[i_] == '{' at nesting `depth`: for each member its key (decoded when
  // `decode_keys`, else empty) is passed to `member`, which must read the value.
  template <class F>
  bool members(int depth, F&& member, bool decode_keys = true) {
    bool empty = false;
    if (!open(depth, '}', empty)) return false;
    if (empty) return true;
    std::string name;
    for (;;) {
      name.clear();
      if (!key(decode_keys ? &name : nullptr) || !member(name)) return false;
      const int next = next_item('}');
      if (next <= 0) return next == 0;
    }
  }

  bool model(int depth) {
    bool seen_merges = false;
    return members(depth, [&](const std::string& key) {
      if (key == "vocab") {
        if (seen_vocab_) return fail("a repeated \"vocab\" key");
        seen_vocab_ = true;
        ws();
        if (i_ >= n_ || p_[i_] != '{') return fail("\"vocab\" is not an object");
        return vocab(depth + 1);
      }
      if (key == "merges") {
        if (seen_merges) return fail("a repeated \"merges\" key");
        seen_merges = true;
        ws();
        const size_t begin = i_;
        if (!value(depth)) return false;
        if (p_[begin] == '[') {
          out_.merges_begin = begin;
          out_.merges_end = i_;
        }
        return true;
      }
      return value(depth);
    });
  }

  bool vocab(int depth) {
    out_.vocab_begin = i_;
    bool empty = false;
    if (!open(depth, '}', empty)) return false;
    for (int next = empty ? 0 : 1; next != 0;) {
      if (!key(&out_.keys)) return false;
      if (out_.keys.size() > UINT32_MAX) return fail("keys too long");
      out_.key_ends.push_back(static_cast<uint32_t>(out_.keys.size()));
      ws();
      // Only a plain integer literal: JSON.parse gives the same number for 5.0 or 5e0, but the JS
      // path decides what those mean.
      if (i_ >= n_ || !is_digit(p_[i_])) return fail("an id that is not a plain integer");
      int64_t id = 0;
      if (p_[i_] == '0') {
        i_++;
      } else {
        while (i_ < n_ && is_digit(p_[i_])) {
          id = id * 10 + (p_[i_++] - '0');
          if (id > INT32_MAX) return fail("an id of 2^31 or more");
        }
      }
      if (i_ < n_ && (p_[i_] == '.' || p_[i_] == 'e' || p_[i_] == 'E'))
        return fail("an id that is not a plain integer");
      out_.ids.push_back(static_cast<int32_t>(id));
      next = next_item('}');
      if (next < 0) return false;
    }
    out_.vocab_end = i_;
    return true;
  }

  const unsigned char* p_;
  size_t n_;
  int max_depth_;
  TokenizerVocabScan& out_;
  size_t i_ = 0;
  bool seen_vocab_ = false;
  const char* why_ = nullptr;
};

}  // namespace

const char* scan_tokenizer_vocab(const unsigned char* data, size_t n, int max_depth, TokenizerVocabScan& out) {
  out = TokenizerVocabScan{};
  const char* why = Scanner(data, n, max_depth, out).run();
  if (why != nullptr) out = TokenizerVocabScan{};
  return why;
}

}  // namespace salt
