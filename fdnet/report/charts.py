"""Charts for report.html as inline SVG, drawn in Python.

No plotting library and no script: each chart is a small ``<svg>`` element
written straight into the page, so it shows without JavaScript, prints
sharply at any size and is a deterministic function of its input (every
coordinate is rounded to one decimal, so a re-run gives identical bytes).

Every text that goes into a chart (axis labels, categories, month names,
which may come from input data) is HTML-escaped here, because the SVG is
inserted into the page as ready markup.

>>> svg = histogram_svg([0, 0, 3, 7, 12, 12, 31], title="enforcement score",
...                     thresholds=[("call-in minimum", 20)])
>>> svg.startswith("<svg") and "call-in minimum" in svg and "2 people score 0" in svg
True
>>> "<b>" in stacked_bars_svg([("call-in", [("<b>x</b>", 2), ("none", 1)])])
False
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
from markupsafe import Markup, escape

# A colour-blind-safe qualitative palette (Okabe and Ito 2008), then greys.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#66a61e",
           "#999999", "#6b4c9a", "#8c564b", "#17becf")
INK = "#333"
GRID = "#ddd"


def _f(x: float) -> str:
    """A coordinate with one decimal, without a trailing ``.0`` (stable text).

    >>> _f(3.0), _f(2.25), _f(-0.04)
    ('3', '2.2', '0')
    """
    v = round(float(x), 1)
    if v == 0:
        return "0"
    return str(int(v)) if v == int(v) else f"{v:.1f}"


def _num(n: float) -> str:
    """Thousands separators for whole counts.

    >>> _num(12345), _num(2.5)
    ('12,345', '2.5')
    """
    return f"{int(n):,}" if float(n) == int(n) else f"{n:,.1f}"


def nice_step(span: float, target: int) -> float:
    """A 1-2-5 step that cuts ``span`` into at most about ``target`` pieces.

    >>> nice_step(127, 30), nice_step(9, 30), nice_step(0, 10)
    (5, 1, 1)
    """
    if span <= 0:
        return 1
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            step = m * mag
            return int(step) if step >= 1 else max(1, int(round(step)))
    return int(10 * mag)


def _svg_open(width: int, height: int, label: str) -> list[str]:
    return [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
            f'preserveAspectRatio="xMidYMid meet">',
            f"<title>{escape(label)}</title>"]


def histogram_svg(values: Iterable[float], *, title: str, thresholds: Sequence[tuple[str, float]] = (),
                  width: int = 520, height: int = 250) -> Markup:
    """Histogram of scores above zero on a log count axis, with threshold lines.

    Most people in a network score 0, so they are counted in the caption
    rather than drawn; the count axis is logarithmic because a handful of
    high scores would otherwise be invisible next to thousands of low ones.
    """
    vals = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float)
    zeros = int((vals <= 0).sum())
    pos = vals[vals > 0]
    out = _svg_open(width, height, f"Histogram of {title}")
    left, right, top, bottom = 46, 10, 22, 40
    pw, ph = width - left - right, height - top - bottom
    caption = f"{_num(len(vals))} people; {_num(zeros)} people score 0 (not drawn)"
    out.append(f'<text x="{left}" y="14" class="cap">{escape(title)} — {escape(caption)}</text>')
    if not len(pos):
        out.append(f'<text x="{_f(left + pw / 2)}" y="{_f(top + ph / 2)}" text-anchor="middle">'
                   "no score above 0</text></svg>")
        return Markup("".join(out))
    hi = max(float(pos.max()), max((t for _, t in thresholds), default=0))
    step = nice_step(hi, 30)
    nbins = int(hi // step) + 1
    # the bin of each score, as int(v // step) (floor division of floats, as Python does it), capped
    bins = np.minimum(np.floor_divide(pos, step).astype(np.int64), nbins - 1)
    counts = np.bincount(bins, minlength=nbins).tolist()
    cmax = max(counts)
    ltop = math.log10(cmax + 1)

    def y_of(c: float) -> float:
        return top + ph - (ph * math.log10(c + 1) / ltop if ltop > 0 else 0)

    def x_of(v: float) -> float:
        return left + pw * v / (nbins * step)

    # count grid lines at powers of ten
    p = 1
    while p <= cmax:
        y = y_of(p)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>'
                   f'<text x="{left - 4}" y="{_f(y + 4)}" text-anchor="end">{_num(p)}</text>')
        p *= 10
    bw = pw / nbins
    for k, c in enumerate(counts):
        if not c:
            continue
        y = y_of(c)
        lo, up = k * step, (k + 1) * step
        out.append(f'<rect x="{_f(left + k * bw + 0.5)}" y="{_f(y)}" width="{_f(max(bw - 1, 0.5))}" '
                   f'height="{_f(top + ph - y)}" fill="{PALETTE[0]}"><title>score {_num(lo)} to under '
                   f'{_num(up)}: {_num(c)} people</title></rect>')
    # x axis ticks: about 6 labels
    tick = nice_step(nbins * step, 6)
    t = 0
    while t <= nbins * step:
        x = x_of(t)
        out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{top + ph}" y2="{top + ph + 4}" stroke="{INK}"/>'
                   f'<text x="{_f(x)}" y="{top + ph + 16}" text-anchor="middle">{_num(t)}</text>')
        t += tick
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="{INK}"/>')
    out.append(f'<text x="{_f(left + pw / 2)}" y="{height - 4}" text-anchor="middle">score</text>')
    out.append(f'<text x="12" y="{_f(top + ph / 2)}" text-anchor="middle" '
               f'transform="rotate(-90 12 {_f(top + ph / 2)})">people (log scale)</text>')
    for i, (name, thr) in enumerate(thresholds):
        x = x_of(float(thr))
        col = PALETTE[5 + i % 3] if i % 3 != 1 else PALETTE[3]
        out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{top}" y2="{top + ph}" stroke="{col}" '
                   f'stroke-width="1.5" stroke-dasharray="4 3"/>'
                   f'<text x="{_f(x + 3)}" y="{top + 10 + 12 * i}" fill="{col}">{escape(name)} '
                   f'({_num(float(thr))})</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _count(v) -> float:
    """A count from data: a finite number at least 0, else 0.

    >>> _count(3), _count("2"), _count(None), _count("x"), _count(float("inf")), _count(-1)
    (3.0, 2.0, 0.0, 0.0, 0.0, 0.0)
    """
    try:
        x = float(v)
    except (TypeError, ValueError):
        return 0.0
    return x if math.isfinite(x) and x > 0 else 0.0


def _months_between(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last`` inclusive.

    >>> _months_between("2024-11", "2025-02")
    ['2024-11', '2024-12', '2025-01', '2025-02']
    """
    y, m = int(first[:4]), int(first[5:7])
    ly, lm = int(last[:4]), int(last[5:7])
    out = []
    while (y, m) <= (ly, lm) and len(out) < 1200:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def monthly_svg(rows: Sequence[dict], *, bar_key: str, line_key: str | None, bar_label: str,
                line_label: str | None = None, width: int = 1000, height: int = 260) -> Markup:
    """Monthly counts: bars for ``bar_key`` and dots joined by a line for ``line_key``.

    ``rows`` are ``{"month": "YYYY-MM", bar_key: int, line_key: int}``; months
    missing between the first and the last are drawn as zero.

    >>> s = monthly_svg([{"month": "2025-01", "shootings": 2, "victims": 3},
    ...                  {"month": "2025-03", "shootings": 1, "victims": 1}],
    ...                 bar_key="shootings", line_key="victims", bar_label="shootings", line_label="victims")
    >>> s.count("<title>2025-"), "2025-02: 0 shootings, 0 victims" in s
    (3, True)
    """
    good = {}
    for r in rows:
        mo = str(r.get("month", ""))
        if len(mo) >= 7 and mo[:4].isdigit() and mo[5:7].isdigit():
            good[mo[:7]] = r
    out = _svg_open(width, height, f"{bar_label} by month")
    if not good:
        out.append('<text x="20" y="30">no data</text></svg>')
        return Markup("".join(out))
    months = _months_between(min(good), max(good))
    left, right, top, bottom = 46, 10, 26, 42
    pw, ph = width - left - right, height - top - bottom
    bars = [_count(good.get(m, {}).get(bar_key)) for m in months]
    line = [_count(good.get(m, {}).get(line_key)) for m in months] if line_key else []
    vmax = max(bars + line + [1])
    tick = nice_step(vmax, 5)
    ymax = tick * math.ceil(vmax / tick)

    def y_of(v: float) -> float:
        return top + ph - ph * v / ymax

    t = 0
    while t <= ymax:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{_f(y_of(t))}" y2="{_f(y_of(t))}" stroke="{GRID}"/>'
                   f'<text x="{left - 4}" y="{_f(y_of(t) + 4)}" text-anchor="end">{_num(t)}</text>')
        t += tick
    bw = pw / len(months)
    every = max(1, math.ceil(len(months) / 18))
    for i, (mo, v) in enumerate(zip(months, bars)):
        x = left + i * bw
        tip = f"{mo}: {_num(v)} {bar_label}" + (f", {_num(line[i])} {line_label}" if line_key else "")
        if v > 0:
            out.append(f'<rect x="{_f(x + bw * 0.1)}" y="{_f(y_of(v))}" width="{_f(bw * 0.8)}" '
                       f'height="{_f(top + ph - y_of(v))}" fill="{PALETTE[5]}"><title>{escape(tip)}</title></rect>')
        else:
            out.append(f'<rect x="{_f(x)}" y="{top}" width="{_f(bw)}" height="{ph}" fill="transparent">'
                       f"<title>{escape(tip)}</title></rect>")
        if i % every == 0:
            out.append(f'<text x="{_f(x + bw / 2)}" y="{top + ph + 14}" text-anchor="middle" '
                       f'class="small">{escape(mo)}</text>')
    if line_key:
        pts = " ".join(f"{_f(left + (i + 0.5) * bw)},{_f(y_of(v))}" for i, v in enumerate(line))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.5"/>')
        for i, v in enumerate(line):
            out.append(f'<circle cx="{_f(left + (i + 0.5) * bw)}" cy="{_f(y_of(v))}" r="2" fill="{PALETTE[0]}"/>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="{INK}"/>')
    legend = (f'<rect x="{left}" y="8" width="12" height="10" fill="{PALETTE[5]}"/>'
              f'<text x="{left + 16}" y="17">{escape(bar_label)} ({_num(sum(bars))})</text>')
    if line_key:
        legend += (f'<line x1="{left + 220}" x2="{left + 240}" y1="13" y2="13" stroke="{PALETTE[0]}" '
                   f'stroke-width="1.5"/><text x="{left + 244}" y="17">{escape(line_label or line_key)} '
                   f'({_num(sum(line))})</text>')
    out.append(legend)
    out.append("</svg>")
    return Markup("".join(out))


def stacked_bars_svg(bars: Sequence[tuple[str, Sequence[tuple[str, int]]]], *, width: int = 1000) -> Markup:
    """One horizontal 100% bar per row, cut into its categories, with a legend line under each.

    Colours follow the category's position in its own bar (the legend under
    each bar names them), so a category with a long name never needs to fit
    inside its segment.
    """
    label_w, row_h, gap = 230, 18, 34
    height = max(1, len(bars)) * (row_h + gap) + 6
    out = _svg_open(width, height, "List composition")
    for r, (label, cats) in enumerate(bars):
        y = 4 + r * (row_h + gap)
        total = sum(c for _, c in cats)
        out.append(f'<text x="0" y="{y + 13}">{escape(label)}</text>')
        x = float(label_w)
        span = width - label_w - 4
        legend = []
        for k, (cat, c) in enumerate(cats):
            col = PALETTE[k % len(PALETTE)]
            w = span * c / total if total else 0
            share = 100 * c / total if total else 0
            tip = f"{label}: {cat}: {_num(c)} ({share:.0f}%)"
            if w > 0:
                out.append(f'<rect x="{_f(x)}" y="{y}" width="{_f(w)}" height="{row_h}" fill="{col}" '
                           f'stroke="#fff" stroke-width="0.5"><title>{escape(tip)}</title></rect>')
            if w >= 34:
                fg = "#fff" if k % len(PALETTE) in (0, 2, 3, 5, 7, 9, 10) else "#000"
                out.append(f'<text x="{_f(x + w / 2)}" y="{y + 13}" text-anchor="middle" fill="{fg}" '
                           f'class="small">{share:.0f}%</text>')
            legend.append((col, f"{cat}: {_num(c)}"))
            x += w
        lx = float(label_w)
        for col, text in legend:
            need = 12 + 6.2 * len(text) + 14
            if lx + need > width:
                out.append(f'<text x="{_f(lx)}" y="{y + row_h + 13}" class="small">…</text>')
                break
            out.append(f'<rect x="{_f(lx)}" y="{y + row_h + 5}" width="9" height="9" fill="{col}"/>'
                       f'<text x="{_f(lx + 12)}" y="{y + row_h + 13}" class="small">{escape(text)}</text>')
            lx += need
        if not cats:
            out.append(f'<text x="{label_w}" y="{y + 13}" class="small">nobody listed</text>')
    out.append("</svg>")
    return Markup("".join(out))
