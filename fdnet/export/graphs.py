"""GraphML and GEXF: one file per network layer, for Gephi, Cytoscape, yEd or networkx.

Why one file per layer rather than one multigraph with a ``layer``
attribute: Gephi's importer merges parallel edges between the same two
nodes by its edge-merge strategy (summing their weights by default), so a
pair tied in both layers would lose its layer; a co-offending tie and a
victimization tie also mean different things and are analysed apart. Each
file is a simple undirected graph.

Nodes: everyone with a tie in the layer, plus everyone on a list (so a
listed person with no tie in this layer still appears, isolated). Node
attributes: ``label`` (the person ID), ``score``, ``enforcement_score``,
``service_score``, ``group``, ``degree``, ``exposure_1``, ``exposure_2``,
``betweenness`` (as in scores.csv; columns an older run lacks are left
out) and ``on_call_in``, ``on_custom_notifications``,
``on_service_referrals`` (booleans). Edge attributes: ``weight`` (the
edge weight Gephi uses), ``incidents``, ``decayed_weight``, ``first_date``,
``last_date``, ``incident_ids`` (``;``-separated) and ``layer``. An empty
text value (no group) is left out rather than written empty.

The files are written by a streaming writer here rather than networkx's
ElementTree-based writers, which took about 25 s for the demo city (20,000
people, 41,000 ties) against about 3 s here; the tests read every file back with networkx's
``read_graphml`` / ``read_gexf(..., version="1.3")`` and compare nodes,
edges, weights and attributes. GEXF is written in version 1.3 (namespace
``http://gexf.net/1.3``), the current one (networkx's writer defaults to
1.2draft). Output is deterministic: nodes and edges in sorted order, and
the GEXF ``lastmodifieddate`` is the run's as_of, not today.

>>> import pandas as pd
>>> t = {"edges": pd.DataFrame({"person_a": ["a"], "person_b": ["b"], "layer": ["co_offending"],
...      "weight": ["2"], "incidents": ["2"], "first_date": ["2024-01-01"], "last_date": ["2024-02-01"],
...      "incident_ids": ["I1;I2"]}),
...      "scores": pd.DataFrame({"person_id": ["a", "b"], "score": ["3", "1.5"], "group": ["G & <H>", ""]}),
...      **{n: pd.DataFrame({"person_id": []}, dtype=str) for n in LIST_NAMES}}
>>> import io, networkx as nx
>>> g = nx.read_graphml(io.BytesIO(graphml_bytes(layer_data(t, "co_offending"))))
>>> g.nodes["a"]["group"], g.edges["a", "b"]["weight"], g.nodes["b"]["on_call_in"]
('G & <H>', 2.0, False)
>>> x = gexf_bytes(layer_data(t, "co_offending"), "2024-03-01")
>>> b'xmlns="http://gexf.net/1.3"' in x and b'version="1.3"' in x
True
>>> nx.read_gexf(io.BytesIO(x), version="1.3").edges["a", "b"]["incident_ids"]
'I1;I2'
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .. import __version__
from .runfolder import LIST_NAMES
from .text import xml_safe

LAYERS = ("co_offending", "victimization")
FLOAT_ATTRS = ("score", "enforcement_score", "service_score", "betweenness")
INT_ATTRS = ("degree", "exposure_1", "exposure_2")
NODE_ORDER = ("score", "enforcement_score", "service_score", "group", "degree", "exposure_1", "exposure_2",
              "betweenness")
_ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_ESC_TABLE = str.maketrans(_ESC)


def _esc(s: str) -> str:
    """Escape for XML text and double-quoted attributes; tab/CR/LF as character references
    so that parsers do not normalise them away."""
    return xml_safe(s).translate(_ESC_TABLE)


@dataclass
class LayerData:
    """One layer in columns: node IDs and typed attributes, edge endpoints and attributes.

    Attribute types: ``double``, ``long``, ``boolean``, ``string`` (names
    shared by GraphML and GEXF).
    """

    layer: str
    nodes: list[str]
    node_attrs: dict[str, tuple[str, list]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    edge_attrs: dict[str, tuple[str, list]] = field(default_factory=dict)


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s.replace("", "0"), errors="coerce").fillna(0)


def layer_data(tables: dict[str, pd.DataFrame], layer: str) -> LayerData:
    """The layer's nodes and edges with the attributes above."""
    scores = tables["scores"]
    e = tables["edges"]
    e = e[e["layer"] == layer]
    on = {name: set(tables[name]["person_id"]) for name in LIST_NAMES}
    people = sorted(set(e["person_a"]) | set(e["person_b"]) | set().union(*on.values()))
    safe = {pid: xml_safe(pid) for pid in people}
    if len(set(safe.values())) != len(safe):
        from ..errors import InputError
        raise InputError("two person IDs differ only in control characters that XML cannot hold; "
                         "fix the IDs in the input", file="scores.csv", column="person_id")
    sc = scores.set_index("person_id")
    sc = sc[~sc.index.duplicated()].reindex(people)
    d = LayerData(layer, [safe[p] for p in people])
    d.node_attrs["label"] = ("string", list(d.nodes))
    for c in NODE_ORDER:
        if c not in sc.columns:
            continue
        col = sc[c].fillna("")
        if c in FLOAT_ATTRS:
            d.node_attrs[c] = ("double", [float(x) for x in _num(col)])
        elif c in INT_ATTRS:
            d.node_attrs[c] = ("long", [int(x) for x in _num(col)])
        else:
            d.node_attrs[c] = ("string", [str(x) for x in col])
    for name in LIST_NAMES:
        d.node_attrs[f"on_{name}"] = ("boolean", [p in on[name] for p in people])
    d.sources = [safe[a] for a in e["person_a"]]
    d.targets = [safe[b] for b in e["person_b"]]
    d.edge_attrs["weight"] = ("double", _num(e["weight"]).astype(float).tolist())
    d.edge_attrs["incidents"] = ("long", _num(e["incidents"]).astype(int).tolist())
    if "decayed_weight" in e.columns:
        d.edge_attrs["decayed_weight"] = ("double", _num(e["decayed_weight"]).astype(float).tolist())
    for c in ("first_date", "last_date", "incident_ids"):
        d.edge_attrs[c] = ("string", e[c].tolist())
    d.edge_attrs["layer"] = ("string", [layer] * len(e))
    return d


def layer_graph(tables: dict[str, pd.DataFrame], layer: str):
    """The layer as a networkx Graph with the same attributes (for notebooks and checks)."""
    import networkx as nx
    d = layer_data(tables, layer)
    g = nx.Graph(name=f"fdnet {layer} layer")
    names = list(d.node_attrs)
    for i, n in enumerate(d.nodes):
        g.add_node(n, **{k: d.node_attrs[k][1][i] for k in names if d.node_attrs[k][1][i] != ""})
    enames = list(d.edge_attrs)
    for i, (a, b) in enumerate(zip(d.sources, d.targets)):
        g.add_edge(a, b, **{k: d.edge_attrs[k][1][i] for k in enames if d.edge_attrs[k][1][i] != ""})
    return g


def _formatted(kind: str, vals: list) -> list[str | None]:
    """A column's values as XML-ready text (``None``: left out)."""
    if kind == "boolean":
        return ["true" if v else "false" for v in vals]
    if kind == "string":
        return [_esc(v) if v != "" else None for v in vals]
    if kind == "double":
        return [repr(float(v)) for v in vals]
    return [str(int(v)) for v in vals]


def _element_rows(ids: list[str], cols: list[tuple[str, list]], open_tag, item, close: str) -> list[str]:
    """Per element: its opening tag, one line per present attribute, its closing tag."""
    out = []
    for i, ident in enumerate(ids):
        out.append(open_tag(i, ident))
        for key, vals in cols:
            s = vals[i]
            if s is not None:
                out.append(item(key, s))
        out.append(close)
    return out


def graphml_bytes(d: LayerData) -> bytes:
    """GraphML 1.0 (http://graphml.graphdrawing.org), undirected."""
    out = ["<?xml version='1.0' encoding='utf-8'?>\n",
           '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
           'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n']
    nkeys = {name: f"n{i}" for i, name in enumerate(d.node_attrs)}
    ekeys = {name: f"e{i}" for i, name in enumerate(d.edge_attrs)}
    for name, (kind, _) in d.node_attrs.items():
        out.append(f'  <key id="{nkeys[name]}" for="node" attr.name="{name}" attr.type="{kind}" />\n')
    for name, (kind, _) in d.edge_attrs.items():
        out.append(f'  <key id="{ekeys[name]}" for="edge" attr.name="{name}" attr.type="{kind}" />\n')
    out.append(f'  <graph id="{_esc(d.layer)}" edgedefault="undirected">\n')
    item = '      <data key="{}">{}</data>\n'.format
    ncols = [(nkeys[k], _formatted(kind, vals)) for k, (kind, vals) in d.node_attrs.items()]
    out += _element_rows([_esc(n) for n in d.nodes], ncols, lambda i, n: f'    <node id="{n}">\n', item,
                         "    </node>\n")
    ecols = [(ekeys[k], _formatted(kind, vals)) for k, (kind, vals) in d.edge_attrs.items()]
    ends = [f'source="{_esc(a)}" target="{_esc(b)}"' for a, b in zip(d.sources, d.targets)]
    out += _element_rows(ends, ecols, lambda i, st: f"    <edge {st}>\n", item, "    </edge>\n")
    out.append("  </graph>\n</graphml>\n")
    return "".join(out).encode("utf-8")


#: GEXF 1.3, the current version (https://gexf.net/schema.html); Gephi 0.9+ and networkx read it
GEXF_NS = "http://gexf.net/1.3"
GEXF_VERSION = "1.3"


def gexf_bytes(d: LayerData, as_of: str) -> bytes:
    """GEXF 1.3 (https://gexf.net), undirected, static; ``weight`` is the edge weight.

    Read it back with ``networkx.read_gexf(path, version="1.3")``.
    """
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n',
           f'<gexf xmlns="{GEXF_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           f'xsi:schemaLocation="{GEXF_NS} {GEXF_NS}/gexf.xsd" version="{GEXF_VERSION}">\n',
           f'  <meta lastmodifieddate="{_esc(as_of)}">\n    <creator>fdnet {_esc(__version__)}</creator>\n'
           f'    <description>{_esc(d.layer)} layer of an fdnet run as of {_esc(as_of)}</description>\n  </meta>\n',
           '  <graph defaultedgetype="undirected" mode="static">\n']
    nattrs = [(k, v) for k, v in d.node_attrs.items() if k != "label"]
    eattrs = [(k, v) for k, v in d.edge_attrs.items() if k != "weight"]
    out.append('    <attributes class="node" mode="static">\n')
    for i, (name, (kind, _)) in enumerate(nattrs):
        out.append(f'      <attribute id="{i}" title="{name}" type="{kind}" />\n')
    out.append('    </attributes>\n    <attributes class="edge" mode="static">\n')
    for i, (name, (kind, _)) in enumerate(eattrs):
        out.append(f'      <attribute id="{i}" title="{name}" type="{kind}" />\n')
    out.append("    </attributes>\n    <nodes>\n")
    item = '          <attvalue for="{}" value="{}" />\n'.format
    labels = _formatted("string", d.node_attrs["label"][1])
    ncols = [(j, _formatted(kind, vals)) for j, (_, (kind, vals)) in enumerate(nattrs)]
    out += _element_rows([_esc(n) for n in d.nodes], ncols,
                         lambda i, n: f'      <node id="{n}" label="{labels[i] or ""}">\n        <attvalues>\n',
                         item, "        </attvalues>\n      </node>\n")
    out.append("    </nodes>\n    <edges>\n")
    weights = _formatted("double", d.edge_attrs["weight"][1])
    ecols = [(j, _formatted(kind, vals)) for j, (_, (kind, vals)) in enumerate(eattrs)]
    ends = [f'source="{_esc(a)}" target="{_esc(b)}"' for a, b in zip(d.sources, d.targets)]
    out += _element_rows(ends, ecols,
                         lambda i, st: f'      <edge id="{i}" {st} weight="{weights[i]}">\n        <attvalues>\n',
                         item, "        </attvalues>\n      </edge>\n")
    out.append("    </edges>\n  </graph>\n</gexf>\n")
    return "".join(out).encode("utf-8")


def graph_files(tables: dict[str, pd.DataFrame], formats, as_of: str) -> dict[str, bytes]:
    """{file name: bytes} for the requested graph formats (``graphml``, ``gexf``)."""
    out = {}
    for layer in LAYERS:
        if "graphml" not in formats and "gexf" not in formats:
            break
        d = layer_data(tables, layer)
        if "graphml" in formats:
            out[f"{layer}.graphml"] = graphml_bytes(d)
        if "gexf" in formats:
            out[f"{layer}.gexf"] = gexf_bytes(d, as_of)
    return out
