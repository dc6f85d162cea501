"""Pairs of submissions whose student-written code is nearly identical, for a TA to look at.

A flag is a reason to read two notebooks side by side, never a penalty: nothing here changes a score.

How code is compared (the idea of MOSS and JPlag, in small):

1. Only code cells count. IPython magics and shell lines (``%matplotlib``, ``!pip``) are dropped.
2. Each cell is tokenised. Comments, docstrings, blank lines and indentation go; every string becomes ``S`` and every
   number ``N``; keywords, builtins and attribute names (``np.linalg.solve``, ``.backward``) stay as they
   are (but ``self.<attribute>`` is the student's own name); every other identifier becomes ``V0``, ``V1``, ... in order of first appearance, counted afresh in
   each cell and each top-level ``def``/``class``. Renaming every variable consistently therefore changes
   nothing, while two different data flows stay different.
3. The token stream is cut into overlapping n-grams of ``K`` tokens. The n-grams of the release notebook
   (the template every student starts from) are removed, so the shared skeleton never counts.
4. Two submissions are compared by how much of the smaller one's n-grams the other holds
   (``shared / min(|A|, |B|)``), and by Jaccard (``shared / |A ∪ B|``) for context. Submissions with fewer
   than ``MIN_NGRAMS`` n-grams of their own (blank, or template only) are never flagged.
"""
from __future__ import annotations

import builtins
import io
import json
import keyword
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

K = 8                  # tokens per n-gram
THRESHOLD = 0.8        # containment at or above this is flagged
MIN_NGRAMS = 40        # a submission needs this many n-grams of its own (after the template) to be compared

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
class Flag:
    """Two submissions (by the keys they were given under) whose own code is nearly the same."""

    a: str
    b: str
    score: float        # shared / min(|A|, |B|): 1.0 when one holds all of the other's code
    jaccard: float      # shared / |A ∪ B|
    shared: int         # n-grams in common


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


def _raw_tokens(source: str) -> list[tuple[str, str, int]]:
    """(kind, text, column) for each significant token; kind is one of name, string, number, op.

    A string that is a statement of its own (a docstring) is dropped like a comment.
    """
    out: list[tuple[str, str, int]] = []
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
                    out.append(("string", "S", tok.start[1]))
                continue
            if tok.type == _FSTRING_END:
                depth -= 1
                continue
            if depth:
                continue
            if tok.type == tokenize.STRING and was_start and _ends_statement(toks, i + 1):
                continue
            kind = {tokenize.NAME: "name", tokenize.STRING: "string", tokenize.NUMBER: "number"}.get(tok.type, "op")
            out.append((kind, tok.string, tok.start[1]))
        return out
    # code that does not tokenise (a student's syntax error): a forgiving regular expression instead
    out = []
    for m in _FALLBACK_TOKEN.finditer(source):
        text = m.group()
        col = m.start() - (source.rfind("\n", 0, m.start()) + 1)
        if text.startswith("#"):
            continue
        if text[-1:] in "'\"":
            out.append(("string", "S", col))
        elif text[0].isdigit() or (text[0] == "." and len(text) > 1):
            out.append(("number", text, col))
        elif text[0].isalpha() or text[0] == "_":
            out.append(("name", text, col))
        else:
            out.append(("op", text, col))
    return out


def _ends_statement(toks: list, i: int) -> bool:
    for tok in toks[i:]:
        if tok.type == tokenize.COMMENT or tok.type == tokenize.NL:
            continue
        return tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER)
    return True


def normalise(source: str) -> list[str]:
    """One cell's code as normalised tokens (see the module docstring)."""
    out: list[str] = []
    names: dict[str, str] = {}
    prev = prev2 = ""
    for kind, text, col in _raw_tokens(source):
        if kind == "string":
            tok = "S"
        elif kind == "number":
            tok = "N"
        elif kind == "name":
            if text in ("def", "class") and col == 0:
                names = {}
            if (prev == "." and prev2 != "self") or text in _KEEP_NAMES:
                tok = text
            else:
                tok = names.setdefault(text, f"V{len(names)}")
        else:
            tok = text
        out.append(tok)
        prev2, prev = prev, text
    return out


def ngrams(tokens: list[str], k: int = K) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + k]) for i in range(len(tokens) - k + 1)}


def fingerprint(notebook: Mapping, template: frozenset = frozenset(), k: int = K) -> frozenset:
    """The n-grams of a notebook's own code: those of every code cell, less the template's."""
    grams: set = set()
    for src in code_sources(notebook):
        grams |= ngrams(normalise(src), k)
    return frozenset(grams - template)


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


def template_fingerprint(release: Mapping | str | Path | None, k: int = K) -> frozenset:
    """The n-grams of the release notebook (empty when there is none)."""
    if release is None:
        return frozenset()
    nb = release if isinstance(release, Mapping) else load_notebook(release)
    return fingerprint(nb, k=k) if nb else frozenset()


def compare(a: frozenset, b: frozenset) -> tuple[float, float, int]:
    """(containment, jaccard, shared) of two fingerprints."""
    shared = len(a & b)
    small = min(len(a), len(b))
    if not small:
        return 0.0, 0.0, 0
    return shared / small, shared / (len(a) + len(b) - shared), shared


def find_similar(
    notebooks: Mapping[str, Mapping | str | Path],
    template: Mapping | str | Path | None = None,
    *,
    threshold: float = THRESHOLD,
    min_ngrams: int = MIN_NGRAMS,
    k: int = K,
) -> list[Flag]:
    """Flags for every pair whose containment reaches ``threshold``, most similar first.

    ``notebooks`` maps a key (e.g. a submission id) to a notebook dict or path; unreadable ones are skipped.
    """
    tmpl = template_fingerprint(template, k)
    prints: dict[str, frozenset] = {}
    for key, nb in notebooks.items():
        data = nb if isinstance(nb, Mapping) else load_notebook(nb)
        if data is None:
            continue
        fp = fingerprint(data, tmpl, k)
        if len(fp) >= min_ngrams:
            prints[str(key)] = fp
    return _pairs(prints, threshold)


def _pairs(prints: Mapping[str, frozenset], threshold: float) -> list[Flag]:
    keys = sorted(prints)
    flags = []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            score, jac, shared = compare(prints[a], prints[b])
            if score >= threshold:
                flags.append(Flag(a, b, round(score, 4), round(jac, 4), shared))
    flags.sort(key=lambda f: (-f.score, -f.jaccard, f.a, f.b))
    return flags
