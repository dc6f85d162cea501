"""Pairs of submissions that share code nobody else in the class wrote, for a TA to look at.

A flag is a reason to read two notebooks side by side, never a penalty: nothing here changes a score.

The approach of MOSS and Dolos (winnowing fingerprints), sized for a class of 300:

1. Only code cells count. IPython magics and shell lines (``%matplotlib``, ``!pip``) are dropped.
2. Each cell is tokenised. Comments, docstrings, blank lines and indentation go; every string becomes ``S``
   and every number ``N``; keywords, builtins and attribute names (``np.linalg.solve``, ``.backward``) stay
   (but ``self.<attribute>`` is the student's own name); every other identifier becomes ``V0``, ``V1``, ...
   in order of first appearance within its *unit*. A unit is one top-level ``def``/``class``, or a run of
   top-level statements. Renaming, reformatting, re-commenting and reordering functions change nothing.
3. Every ``K`` consecutive tokens of a unit are hashed (k-grams never cross units); winnowing keeps the
   smallest hash of every window of ``W`` k-grams: the unit's fingerprints, with the lines they cover.
   A match of at least ``K + W - 1`` tokens is always seen.
4. Fingerprints of the release notebook (the template everyone starts from) are dropped, and so is every
   fingerprint that occurs in more than ``MAX_SHARE`` of the class (at least 2 students): code that
   everybody writes alike (``np.linalg.solve(X.T @ X, X.T @ y)``) says nothing about copying.
5. What is left is each student's *rare* code, each fingerprint weighted by how rare it is
   (``log((N + 1) / students holding it)``, a smoothed IDF). A pair is scored by the weight of the rare fingerprints it
   shares over the weight of the smaller of the two students' rare code: 1.0 when one student's rare code
   is all in the other's. A pair is flagged when it shares at least ``MIN_SHARED`` rare fingerprints and
   scores at least ``THRESHOLD``; the ``TOP`` best are kept, each with the matching code of both students.

Cost: linear in the class's code plus, per rare fingerprint, the pairs of the few students holding it
(``benchmarks/similarity_class.py``: a class of 300 in a few seconds).
"""
from __future__ import annotations

import builtins
import hashlib
import io
import json
import keyword
import math
import re
import tokenize
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

K = 12                 # tokens per k-gram
W = 6                  # winnowing window (k-grams)
MAX_SHARE = 0.2        # a fingerprint held by more than this share of the class is common code, ignored
THRESHOLD = 0.55       # weight of the shared rare fingerprints / that of the smaller student's rare ones
MIN_SHARED = 6         # ... and at least this many rare fingerprints in common
TOP = 50               # pairs shown at most
MAX_MATCHES = 4        # matching code blocks shown per pair
MAX_LINES = 40         # lines of one block shown

_KEEP_NAMES = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
_SKIP_TYPES = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
               tokenize.ENCODING, tokenize.ENDMARKER}
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)   # Python 3.12+
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)
_FALLBACK_TOKEN = re.compile(
    r"#[^\n]*"                                   # comment
    r"|[rbuRBUfF]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\")"
    r"|[A-Za-z_]\w*"
    r"|\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?j?|\.\d+(?:[eE][-+]?\d+)?j?"
    r"|\*\*=?|//=?|->|[-+*/%@&|^<>=!:]=|<<=?|>>=?|\S"
)




@dataclass(frozen=True)
class Block:
    """One unit of code (a function, or top-level statements) with the lines that match the other student's."""

    cell: int                     # code cell number, from 1
    first_line: int               # line in the cell, from 1
    lines: tuple[str, ...]
    marked: frozenset[int]        # indexes into ``lines`` covered by shared rare fingerprints


@dataclass(frozen=True)
class Flag:
    """Two submissions (by the keys they were given under) that share code few others wrote."""

    a: str
    b: str
    score: float        # weighted shared / min(weighted rare A, weighted rare B)
    shared: int         # rare fingerprints in common
    rare_a: int
    rare_b: int
    matches: tuple[tuple[Block, Block], ...] = field(default=(), compare=False)


@dataclass
class _Unit:
    cell: int
    first_line: int
    last_line: int


@dataclass
class Document:
    """One notebook's fingerprints: {hash: [(unit, first line, last line)]} and its units."""

    sources: list[str]
    units: list[_Unit]
    prints: dict[int, list[tuple[int, int, int]]]


def code_sources(notebook: Mapping) -> list[str]:
    """The source of each code cell of an nbformat-4 notebook dict, magics and shell lines removed."""
    out = []
    for cell in notebook.get("cells") or []:
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(str(s) for s in src)
        lines = [ln for ln in str(src).splitlines() if not ln.lstrip().startswith(("%", "!"))]
        out.append("\n".join(lines) + "\n")
    return out


def _raw_tokens(source: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, column, line) for each significant token; kind is one of name, string, number, op.

    A string that is a statement of its own (a docstring) is dropped like a comment.
    """
    out: list[tuple[str, str, int, int]] = []
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        toks = None
    if toks is not None:
        depth = 0
        stmt_start = True
        for i, tok in enumerate(toks):
            if tok.type in _SKIP_TYPES:
                stmt_start = stmt_start or tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
                continue
            was_start, stmt_start = stmt_start, False
            if tok.type == _FSTRING_START:
                depth += 1
                if depth == 1:
                    out.append(("string", "S", tok.start[1], tok.start[0]))
                continue
            if tok.type == _FSTRING_END:
                depth -= 1
                continue
            if depth:
                continue
            if tok.type == tokenize.STRING and was_start and _ends_statement(toks, i + 1):
                continue
            kind = {tokenize.NAME: "name", tokenize.STRING: "string", tokenize.NUMBER: "number"}.get(tok.type, "op")
            out.append((kind, tok.string, tok.start[1], tok.start[0]))
        return out
    # code that does not tokenise (a student's syntax error): a forgiving regular expression instead
    out = []
    for m in _FALLBACK_TOKEN.finditer(source):
        text = m.group()
        col = m.start() - (source.rfind("\n", 0, m.start()) + 1)
        line = source.count("\n", 0, m.start()) + 1
        if text.startswith("#"):
            continue
        if text[-1:] in "'\"":
            out.append(("string", "S", col, line))
        elif text[0].isdigit() or (text[0] == "." and len(text) > 1):
            out.append(("number", text, col, line))
        elif text[0].isalpha() or text[0] == "_":
            out.append(("name", text, col, line))
        else:
            out.append(("op", text, col, line))
    return out


def _ends_statement(toks: list, i: int) -> bool:
    for tok in toks[i:]:
        if tok.type == tokenize.COMMENT or tok.type == tokenize.NL:
            continue
        return tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER)
    return True


def normalise(source: str) -> list[str]:
    """One cell's code as normalised tokens (see the module docstring)."""
    return [tok for unit in units(source) for tok, _line in unit]


def units(source: str) -> list[list[tuple[str, int]]]:
    """One cell's code as units of normalised (token, line): each top-level ``def``/``class`` is a unit, and
    so is each run of top-level statements between them. k-grams never cross units, so reordering
    functions changes nothing and two functions that happen to follow each other make no fingerprint."""
    out: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    names: dict[str, str] = {}
    prev = prev2 = ""
    last_line = 0
    in_def = False
    for kind, text, col, line in _raw_tokens(source):
        starts_line = line != last_line
        last_line = line
        if starts_line and col == 0:
            is_def = kind == "name" and text in ("def", "class", "async") or text == "@"
            if is_def or in_def:
                if current:
                    out.append(current)
                current, names = [], {}
                in_def = is_def

        if kind == "string":
            tok = "S"
        elif kind == "number":
            tok = "N"
        elif kind == "name":
            if (prev == "." and prev2 != "self") or text in _KEEP_NAMES:
                tok = text
            else:
                tok = names.setdefault(text, f"V{len(names)}")
        else:
            tok = text
        current.append((tok, line))
        prev2, prev = prev, text
    if current:
        out.append(current)
    return out


def _hash(tokens) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(tokens).encode(), digest_size=8).digest(), "big")


def kgram_hashes(tokens: list[str], k: int = K) -> list[int]:
    return [_hash(tokens[i:i + k]) for i in range(len(tokens) - k + 1)]


def winnow(hashes: list[int], w: int = W) -> list[int]:
    """Positions chosen by winnowing (the rightmost smallest hash of each window, each position once)."""
    if len(hashes) <= w:
        return [min(range(len(hashes)), key=lambda i: (hashes[i], -i))] if hashes else []
    chosen: list[int] = []
    for start in range(len(hashes) - w + 1):
        window = range(start, start + w)
        best = min(window, key=lambda i: (hashes[i], -i))
        if not chosen or chosen[-1] != best:
            chosen.append(best)
    return chosen


def document(notebook: Mapping, template: frozenset = frozenset(), k: int = K, w: int = W) -> Document:
    """The fingerprints of a notebook's code (template k-grams removed before winnowing)."""
    sources = code_sources(notebook)
    units_out: list[_Unit] = []
    prints: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for cell, src in enumerate(sources, start=1):
        for toks, lines, hashes in _cell_units(src, k):
            keep = [i for i, h in enumerate(hashes) if h not in template]
            if not keep:
                continue
            index = len(units_out)
            units_out.append(_Unit(cell, lines[0], lines[-1]))
            # winnow each run of k-grams that survived the template
            runs, run = [], [keep[0]]
            for i in keep[1:]:
                if i == run[-1] + 1:
                    run.append(i)
                else:
                    runs.append(run)
                    run = [i]
            runs.append(run)
            for run in runs:
                for j in winnow([hashes[i] for i in run], w):
                    pos = run[j]
                    prints[hashes[pos]].append((index, lines[pos], lines[pos + k - 1]))
    return Document(sources, units_out, dict(prints))


@lru_cache(maxsize=8192)
def _cell_units(source: str, k: int) -> tuple[tuple[list[str], list[int], list[int]], ...]:
    """(tokens, lines, k-gram hashes) of each unit of one cell; cached, since most cells of a class are
    the release's own (the set-up cell, the given code) and need tokenising once."""
    out = []
    for unit in units(source):
        toks = [t for t, _ in unit]
        out.append((toks, [ln for _, ln in unit], kgram_hashes(toks, k)))
    return tuple(out)


def template_hashes(release: Mapping | str | Path | None, k: int = K) -> frozenset:
    """Every k-gram hash of the release notebook (empty when there is none)."""
    if release is None:
        return frozenset()
    nb = release if isinstance(release, Mapping) else load_notebook(release)
    if not nb:
        return frozenset()
    return frozenset(h for src in code_sources(nb) for _t, _l, hashes in _cell_units(src, k) for h in hashes)


def load_notebook(path: str | Path) -> dict | None:
    """The notebook dict, or None when the file is not a readable notebook."""
    try:
        return load_notebook_bytes(Path(path).read_bytes())
    except OSError:
        return None


def load_notebook_bytes(data: bytes) -> dict | None:
    try:
        nb = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return nb if isinstance(nb, dict) else None


def common_limit(n: int, max_share: float = MAX_SHARE) -> int:
    """A fingerprint held by more students than this is common code (never fewer than 2)."""
    return max(2, int(max_share * n))


def find_similar(
    notebooks: Mapping[str, Mapping | str | Path],
    template: Mapping | str | Path | None = None,
    *,
    max_share: float = MAX_SHARE,
    threshold: float = THRESHOLD,
    min_shared: int = MIN_SHARED,
    top: int = TOP,
    k: int = K,
    w: int = W,
) -> list[Flag]:
    """The flagged pairs, most similar first (at most ``top``), each with its matching code.

    ``notebooks`` maps a key (e.g. a student's name and id) to a notebook dict or path; unreadable ones are
    skipped.
    """
    tmpl = template_hashes(template, k)
    docs: dict[str, Document] = {}
    for key, nb in notebooks.items():
        data = nb if isinstance(nb, Mapping) else load_notebook(nb)
        if data is not None:
            docs[str(key)] = document(data, tmpl, k, w)
    return rank(docs, max_share=max_share, threshold=threshold, min_shared=min_shared, top=top)


def rank(docs: Mapping[str, Document], *, max_share: float = MAX_SHARE, threshold: float = THRESHOLD,
         min_shared: int = MIN_SHARED, top: int = TOP) -> list[Flag]:
    holders: dict[int, list[str]] = defaultdict(list)
    for key in sorted(docs):
        for h in docs[key].prints:
            holders[h].append(key)
    n = len(docs)
    limit = common_limit(n, max_share)
    rare_count: Counter = Counter()
    rare_weight: Counter = Counter()
    shared: Counter = Counter()
    shared_weight: Counter = Counter()
    for h, keys in holders.items():
        if len(keys) > limit:
            continue
        weight = math.log((n + 1) / len(keys))          # IDF, smoothed: a class of two still counts
        for key in keys:
            rare_count[key] += 1
            rare_weight[key] += weight
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                shared[(a, b)] += 1
                shared_weight[(a, b)] += weight
    flags = []
    for (a, b), count in shared.items():
        small = min(rare_weight[a], rare_weight[b])
        score = shared_weight[(a, b)] / small if small else 0.0
        if count >= min_shared and score >= threshold:
            flags.append(Flag(a, b, round(score, 4), count, rare_count[a], rare_count[b]))
    flags.sort(key=lambda f: (-f.score, -f.shared, f.a, f.b))
    flags = flags[:top]
    return [Flag(f.a, f.b, f.score, f.shared, f.rare_a, f.rare_b,
                 matches(docs[f.a], docs[f.b], {h for h, keys in holders.items() if len(keys) <= limit}))
            for f in flags]


def matches(a: Document, b: Document, rare: set[int]) -> tuple[tuple[Block, Block], ...]:
    """Side by side: each unit of A that shares rare fingerprints with B, beside the unit of B it shares
    most with; the shared lines marked. The units sharing most come first."""
    common = [h for h in a.prints if h in b.prints and h in rare]
    pair_count: Counter = Counter()
    a_lines: dict[int, set[int]] = defaultdict(set)
    b_lines: dict[int, set[int]] = defaultdict(set)
    for h in common:
        for ua, lo_a, hi_a in a.prints[h]:
            for ub, lo_b, hi_b in b.prints[h]:
                pair_count[(ua, ub)] += 1
                a_lines[ua].update(range(lo_a, hi_a + 1))
                b_lines[ub].update(range(lo_b, hi_b + 1))
    best: dict[int, tuple[int, int]] = {}
    for (ua, ub), n in pair_count.items():
        if ua not in best or n > best[ua][1]:
            best[ua] = (ub, n)
    order = sorted(best.items(), key=lambda kv: (-kv[1][1], kv[0]))[:MAX_MATCHES]
    return tuple((_block(a, ua, a_lines[ua]), _block(b, ub, b_lines[ub])) for ua, (ub, _n) in order)


def _block(doc: Document, index: int, marked_lines: set[int]) -> Block:
    unit = doc.units[index]
    src = doc.sources[unit.cell - 1].split("\n")
    lines = src[unit.first_line - 1:unit.last_line][:MAX_LINES]
    marked = frozenset(i for i in range(len(lines)) if unit.first_line + i in marked_lines)
    return Block(unit.cell, unit.first_line, tuple(lines), marked)
