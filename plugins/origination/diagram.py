"""A workflow definition drawn as boxes and arrows: a plain layout, and an SVG of it.

The editor shows the diagram next to the form, in the user's language, with no JavaScript
library and nothing from a CDN (the product runs air-gapped at banks). `layout` returns a
plain structure (nodes with positions, edges with polyline points and labels) that a UI can
draw itself; `render_svg` draws that structure as a self-contained SVG string.

Layout: steps are layered by their longest distance from the start (definitions are
acyclic), the end states sit in the last layer, and an edge that skips layers bends
through a placeholder in each layer it crosses so that it does not run through a box.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from plugins.origination.conditions import describe
from plugins.origination.definition import MODES, TERMINALS, Definition, Route

FONT = 12
LINE = 17
GAP_X, GAP_Y, DUMMY_W, PAD = 40, 70, 24, 20


def _width(text: str) -> int:
    """Rough rendered width at FONT px: CJK characters are about twice as wide as Latin."""
    return sum(FONT + 1 if ord(ch) > 0x2E80 else 7 for ch in text)


def _step_lines(d: Definition, locale: str) -> dict[str, list[str]]:
    en = locale.lower().startswith("en")
    out: dict[str, list[str]] = {}
    for s in d.steps:
        mode = MODES[s.mode][1 if en else 0]
        who = ", ".join(a.label(locale) for a in s.assignees)
        lines = [s.name(locale), f"{mode} · {who}"]
        if s.deadline_hours is not None:
            bits = [f"{'deadline' if en else '时限'} {s.deadline_hours}h"]
            if s.remind_before_hours is not None:
                bits.append(f"{'remind' if en else '提醒'} -{s.remind_before_hours}h")
            if s.escalate_to is not None:
                bits.append(f"{'escalate to' if en else '升级至'} {s.escalate_to.label(locale)}")
            lines.append(" · ".join(bits))
        out[s.id] = lines
    return out


def _edges(d: Definition, locale: str,
           labels: dict[str, dict[str, str]] | None) -> list[tuple[str, str, str]]:
    """(from, to, label) with parallel routes to one target merged into one labelled edge."""
    otherwise = "otherwise" if locale.lower().startswith("en") else "否则"
    merged: dict[tuple[str, str], list[str]] = {}
    sources: list[tuple[str, tuple[Route, ...]]] = [("start", d.start)]
    sources += [(s.id, s.next) for s in d.steps]
    for src, routes in sources:
        for i, r in enumerate(routes):
            if r.when is not None:
                text = describe(r.when, locale, labels)
            else:
                text = otherwise if i > 0 else ""
            merged.setdefault((src, r.to), []).append(text)
    return [(a, b, " | ".join(t for t in texts if t)) for (a, b), texts in merged.items()]


def layout(d: Definition, locale: str = "zh-CN",
           labels: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """Positions of every box and arrow, as plain data (see the module docstring)."""
    en = locale.lower().startswith("en")
    lines = _step_lines(d, locale)
    edges = _edges(d, locale, labels)
    ends = [t for t in TERMINALS if any(b == t for _, b, _ in edges)]
    layer: dict[str, int] = {"start": 0}
    for _ in range(len(d.steps) + 1):  # longest path; acyclic, so this settles
        for a, b, _ in edges:
            if b not in TERMINALS and a in layer:
                layer[b] = max(layer.get(b, 0), layer[a] + 1)
    bottom = max(layer.values()) + 1
    for t in ends:
        layer[t] = bottom
    # placeholders for edges that skip layers
    chains: list[tuple[str, str, str, list[str]]] = []
    for a, b, text in edges:
        hops = [f"~{a}>{b}#{k}" for k in range(layer[a] + 1, layer[b])]
        for k, h in zip(range(layer[a] + 1, layer[b]), hops, strict=True):
            layer[h] = k
        chains.append((a, b, text, hops))
    rows: list[list[str]] = [[] for _ in range(bottom + 1)]
    for node in ["start", *(s.id for s in d.steps), *ends, *(h for *_, hs in chains
                                                            for h in hs)]:
        rows[layer[node]].append(node)
    preds: dict[str, list[str]] = {}
    for a, b, _, hops in chains:
        seq = [a, *hops, b]
        for x, y in zip(seq, seq[1:], strict=False):
            preds.setdefault(y, []).append(x)
    for k in range(1, len(rows)):  # order each row by its predecessors' mean position
        above = {n: i for i, n in enumerate(rows[k - 1])}
        rows[k].sort(key=lambda n: sum(above.get(p, 0) for p in preds.get(n, [])) /
                     max(1, len(preds.get(n, []))))
    box_w = max([_width(t) for ls in lines.values() for t in ls] + [160]) + 2 * 12
    box_h = LINE * max([len(v) for v in lines.values()] + [1]) + 14
    size = {n: (box_w, box_h) for n in lines}
    size["start"] = (110, 34)
    for t in ends:
        size[t] = (110, 34)

    for _, _, text, hops in chains:  # the first bend carries the label: leave it room
        if hops:
            size[hops[0]] = (max(DUMMY_W, _width(text) + 12), 0)

    def width_of(n: str) -> int:
        return size[n][0] if n in size else DUMMY_W

    row_w = [sum(width_of(n) for n in r) + GAP_X * (len(r) - 1) for r in rows]
    total_w = max(row_w) + 2 * PAD
    nodes: list[dict[str, Any]] = []
    pos: dict[str, tuple[float, float, int, int]] = {}
    y = PAD
    for r, rw in zip(rows, row_w, strict=True):
        x = (total_w - rw) / 2
        height = max(size[n][1] if n in size else 0 for n in r)
        for n in r:
            w, h = size.get(n, (DUMMY_W, 0))
            if n.startswith("~"):  # a bend spans its row, so the edge passes beside boxes
                pos[n] = (x, y, w, height)
            else:
                pos[n] = (x, y + (height - h) / 2, w, h)
            x += w + GAP_X
        y += height + GAP_Y
    total_h = y - GAP_Y + PAD
    for n, (x, ny, w, h) in pos.items():
        if n.startswith("~"):
            continue
        if n == "start":
            kind, text = "start", ["submitted" if en else "提交"]
        elif n in TERMINALS:
            kind, text = n, [TERMINALS[n][1 if en else 0]]
        else:
            kind, text = "step", lines[n]
        nodes.append({"id": n, "kind": kind, "x": x, "y": ny, "w": w, "h": h, "lines": text})
    ports = _ports(chains, pos)
    out_edges = []
    for a, b, text, hops in chains:
        ax, ay, _, ah = pos[a]
        _, by, _, _ = pos[b]
        points = [[ports[(a, b, "out")], ay + ah]]
        for h in hops:
            hx, hy, hw, hh = pos[h]
            points += [[hx + hw / 2, hy], [hx + hw / 2, hy + hh]]
        points.append([ports[(a, b, "in")], by])
        label_at = [points[-1][0], points[-1][1] - 22] if not hops else \
            [points[1][0], points[1][1] - 22]
        out_edges.append({"from": a, "to": b, "points": points, "label": text,
                          "label_at": label_at})
    return {"width": total_w, "height": total_h, "title": d.name(locale),
            "version": d.version, "nodes": nodes, "edges": out_edges}


def _ports(chains: list[tuple[str, str, str, list[str]]],
           pos: dict[str, tuple[float, float, int, int]]) -> dict[tuple[str, str, str], float]:
    """Where each edge leaves its source and enters its target: spread along the box's
    bottom (top) edge in the order of the other ends, so arrows do not pile up."""
    out: dict[tuple[str, str, str], float] = {}
    for side in ("out", "in"):
        groups: dict[str, list[tuple[float, str, str]]] = {}
        for a, b, _, hops in chains:
            first = hops[0] if hops else b
            last = hops[-1] if hops else a
            node, other = (a, first) if side == "out" else (b, last)
            ox, _, ow, _ = pos[other]
            groups.setdefault(node, []).append((ox + ow / 2, a, b))
        for node, items in groups.items():
            x, _, w, _ = pos[node]
            items.sort()
            for i, (_, a, b) in enumerate(items, 1):
                out[(a, b, side)] = x + w * i / (len(items) + 1)
    return out


_FILL = {"start": "#eef2f7", "step": "#ffffff", "approved": "#e6f4ea", "rejected": "#fdecea"}
_STROKE = {"start": "#64748b", "step": "#334155", "approved": "#2e7d32",
           "rejected": "#c62828"}


def render_svg(d: Definition, locale: str = "zh-CN",
               labels: dict[str, dict[str, str]] | None = None) -> str:
    """The definition as a standalone SVG document (no scripts, no external resources)."""
    g = layout(d, locale, labels)
    marker = f"wf-arrow-{d.id}-{d.version}"
    title = f"{g['title']} (v{d.version})"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{g["width"]:.0f}" '
           f'height="{g["height"]:.0f}" viewBox="0 0 {g["width"]:.0f} {g["height"]:.0f}" '
           f'role="img" aria-label={quoteattr(title)} font-family="sans-serif" '
           f'font-size="{FONT}">',
           f"<title>{escape(title)}</title>",
           f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" '
           'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
           '<path d="M0,0 L10,5 L0,10 z" fill="#475569"/></marker></defs>']
    for e in g["edges"]:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in e["points"])
        out.append(f'<polyline class="edge" data-from={quoteattr(e["from"])} '
                   f'data-to={quoteattr(e["to"])} points="{pts}" fill="none" '
                   f'stroke="#475569" stroke-width="1.5" marker-end="url(#{marker})"/>')
    for e in g["edges"]:
        if e["label"]:
            x, y = e["label_at"]
            w = _width(e["label"]) + 8
            out.append(f'<rect x="{x - w / 2:.1f}" y="{y - 11:.1f}" width="{w}" height="16" '
                       'fill="#ffffff" fill-opacity="0.9"/>'
                       f'<text x="{x:.1f}" y="{y + 1:.1f}" text-anchor="middle" '
                       f'fill="#1e3a8a">{escape(e["label"])}</text>')
    for n in g["nodes"]:
        rx = 17 if n["kind"] != "step" else 6
        out.append(f'<g class="node {n["kind"]}" data-id={quoteattr(n["id"])}>'
                   f'<rect x="{n["x"]:.1f}" y="{n["y"]:.1f}" width="{n["w"]}" '
                   f'height="{n["h"]}" rx="{rx}" fill="{_FILL[n["kind"]]}" '
                   f'stroke="{_STROKE[n["kind"]]}" stroke-width="1.5"/>')
        cx = n["x"] + n["w"] / 2
        top = n["y"] + (n["h"] - LINE * len(n["lines"])) / 2 + LINE - 4
        for i, text in enumerate(n["lines"]):
            weight = ' font-weight="bold"' if i == 0 else ' fill="#475569"'
            out.append(f'<text x="{cx:.1f}" y="{top + i * LINE:.1f}" text-anchor="middle"'
                       f'{weight}>{escape(text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
