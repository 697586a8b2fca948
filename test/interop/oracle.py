"""An independent statement of which target tokens a source token shares, for the exactness checks:
written here from the tokenizer conventions (not taken from salt-transfer's alignment or report).

A target token is (word start?, text): WordPiece marks a continuation with "##", SentencePiece marks
a word start with "▁". A source token with the same word-start flag and text is spelled "Ġ"-style
(GPT-2's byte-to-unicode table over the UTF-8 bytes, a leading space for a word start) in byte-level
BPE vocabularies, and "▁"-style in SentencePiece vocabularies."""
from __future__ import annotations


def _byte_to_unicode() -> dict[int, str]:
    # GPT-2's table: printable bytes map to themselves, the others to code points from 256 up, in order.
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_UNICODE = _byte_to_unicode()


def target_form(piece: str, convention: str) -> tuple[bool, str]:
    if convention == "wordpiece":
        return (False, piece[2:]) if piece.startswith("##") else (True, piece)
    if convention == "metaspace":
        return (True, piece[1:]) if piece.startswith("▁") else (False, piece)
    raise ValueError(convention)


def source_piece(word_start: bool, text: str, convention: str) -> str:
    if convention == "bytelevel":
        return "".join(BYTE_TO_UNICODE[b] for b in ((" " if word_start else "") + text).encode("utf-8"))
    if convention == "metaspace":
        return ("▁" if word_start else "") + text
    raise ValueError(convention)


def shared_tokens(target_tok, target_convention: str, source_tok, source_convention: str) -> dict[int, int]:
    """{target id: source id} for the target's ordinary tokens (not special or added) whose source form
    is in the source vocabulary."""
    src_vocab = source_tok.get_vocab()
    src_added = set(source_tok.get_added_vocab().values())
    tgt_added = set(target_tok.get_added_vocab().values()) | set(target_tok.all_special_ids)
    out: dict[int, int] = {}
    for piece, tid in target_tok.get_vocab().items():
        if tid in tgt_added:
            continue
        ws, text = target_form(piece, target_convention)
        if not text:
            continue
        sid = src_vocab.get(source_piece(ws, text, source_convention))
        if sid is not None and sid not in src_added:
            out[tid] = sid
    return out
