"""The report's plots: matplotlib (Agg) figures returned as PNG bytes, with a Japanese-capable font.

The font comes with a package: IPAexGothic from ``matplotlib-fontja`` (in requirements.txt), registered
from the package's folder without importing it (its import changes matplotlib's global settings), so a
fresh machine needs no system fonts. Failing that, a system font (Noto Sans CJK JP, ...) is looked up;
without any the plots still render, with a warning: Japanese labels then show as boxes.
"""
from __future__ import annotations

import io
import warnings
from functools import lru_cache

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

CJK_FAMILIES = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic",
                "Hiragino Sans", "Yu Gothic", "Meiryo", "Noto Sans CJK SC", "Source Han Sans JP")
FILE_HINTS = ("notosanscjk", "notosansjp", "ipaexg", "ipag", "takao", "sourcehansans")
DPI = 100


@lru_cache(maxsize=1)
def japanese_font() -> str | None:
    """The family name of a font that has Japanese glyphs, registering its file if the cache lacks it."""
    def find():
        for family in CJK_FAMILIES:
            try:
                font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
                return family
            except ValueError:
                continue
        return None

    family = _packaged_font()
    if family is None:
        family = find()
    if family is None:
        # installed after matplotlib built its font cache: add the files themselves
        for path in font_manager.findSystemFonts():
            if any(h in path.lower().replace("-", "").replace("_", "") for h in FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        family = find()
    if family is None:
        warnings.warn("no Japanese font found (install fonts-noto-cjk): Japanese text in plots will show as "
                      "boxes", RuntimeWarning, stacklevel=2)
    return family


def _packaged_font() -> str | None:
    """Register matplotlib-fontja's IPAexGothic (the file only) and return its family name."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("matplotlib_fontja")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "fonts", "ipaexg.ttf")
        if os.path.isfile(path):
            try:
                font_manager.fontManager.addfont(path)
                return font_manager.FontProperties(fname=path).get_name()
            except (OSError, RuntimeError, ValueError):
                return None
    return None


def _figure(width=7.0, height=3.6):
    family = japanese_font()
    rc = {"font.family": [family, "DejaVu Sans"] if family else ["DejaVu Sans"], "axes.unicode_minus": False}
    with matplotlib.rc_context(rc):
        fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    return fig, ax, rc


def _png(fig, rc) -> bytes:
    buf = io.BytesIO()
    with matplotlib.rc_context(rc):
        fig.tight_layout()
        fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _no_data(ax, text="データなし / no data"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=12, color="#666")


def score_histogram(scores: list[float], max_total: float) -> bytes:
    fig, ax, rc = _figure()
    with matplotlib.rc_context(rc):
        if scores:
            bins = min(20, max(5, int(max_total) // 4)) if max_total > 0 else 10
            ax.hist(scores, bins=bins, range=(0, max(max_total, max(scores))), color="#4a6fa5", edgecolor="white")
        else:
            _no_data(ax)
        ax.set_xlabel("得点 / score")
        ax.set_ylabel("人数 / students")
        ax.set_title(f"得点分布 / score distribution (n = {len(scores)})")
        ax.yaxis.get_major_locator().set_params(integer=True)
    return _png(fig, rc)


def question_bars(labels: list[str], means: list[float], maxima: list[float], full_rates: list[float]) -> bytes:
    fig, ax, rc = _figure(7.0, 3.8)
    with matplotlib.rc_context(rc):
        if labels:
            pos = range(len(labels))
            rel = [m / x if x else 0.0 for m, x in zip(means, maxima)]
            ax.bar([p - 0.2 for p in pos], [100 * r for r in rel], width=0.4, color="#4a6fa5",
                   label="平均得点率 / mean score (%)")
            ax.bar([p + 0.2 for p in pos], [100 * r for r in full_rates], width=0.4, color="#e39b36",
                   label="満点率 / full marks (%)")
            ax.set_xticks(list(pos), labels, rotation=30, ha="right")
            ax.set_ylim(0, 105)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, fontsize=8, frameon=False)
        else:
            _no_data(ax)
        ax.set_ylabel("%")
        ax.set_title("設問ごとの結果 / per question")
    return _png(fig, rc)


def status_bars(counts: dict[str, int]) -> bytes:
    fig, ax, rc = _figure(7.0, 3.0)
    with matplotlib.rc_context(rc):
        if counts:
            names = list(counts)
            ax.barh(names, [counts[n] for n in names], color="#6a9955")
            ax.invert_yaxis()
            for i, n in enumerate(names):
                ax.text(counts[n], i, f" {counts[n]}", va="center", fontsize=9)
            ax.xaxis.get_major_locator().set_params(integer=True)
        else:
            _no_data(ax)
        ax.set_xlabel("人数 / students")
        ax.set_title("状態 / status")
    return _png(fig, rc)


def accuracy_histogram(accuracies: list[float], full: float, floor: float) -> bytes:
    fig, ax, rc = _figure()
    with matplotlib.rc_context(rc):
        values = [100 * a for a in accuracies]
        if values:
            lo = min(min(values), 100 * floor) - 2
            ax.hist(values, bins=20, range=(max(0.0, lo), 100.0), color="#4a6fa5", edgecolor="white")
        else:
            _no_data(ax)
        ax.axvline(100 * full, color="#2e7d32", linestyle="--", label=f"満点 / full marks ≥ {100 * full:g} %")
        ax.axvline(100 * floor, color="#c62828", linestyle=":", label=f"0 点 / no points < {100 * floor:g} %")
        ax.set_xlabel("MNIST テスト精度 / test accuracy (%)")
        ax.set_ylabel("人数 / students")
        ax.set_title(f"MNIST 精度 / accuracy (n = {len(values)})")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8, frameon=False)
        ax.yaxis.get_major_locator().set_params(integer=True)
    return _png(fig, rc)
