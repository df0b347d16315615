"""How well resolution found the truth: pairwise precision and recall, and the cluster F-measure.

Used by the tests and the benchmark against a synthetic city's ``truth/identities.csv`` (person_id ->
true_person); an analyst can use it with any hand-labelled sample of the same shape.

>>> import pandas as pd
>>> truth = pd.Series({"A": "A", "B": "A", "C": "C", "D": "C", "E": "E"})
>>> found = pd.Series({"A": "A", "B": "A", "C": "C", "D": "D", "E": "C"})
>>> m = pairwise(found, truth)
>>> m["precision"], m["recall"], round(cluster_f(found, truth), 4)
(0.5, 0.5, 0.8)
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _pairs(labels: pd.Series) -> pd.MultiIndex:
    """All pairs (a < b) of ids sharing a label, vectorised by a self-merge on the label."""
    df = pd.DataFrame({"id": labels.index.astype(str), "g": labels.astype(str).to_numpy()})
    m = df.merge(df, on="g")
    m = m[m["id_x"] < m["id_y"]]
    return pd.MultiIndex.from_arrays([m["id_x"].to_numpy(), m["id_y"].to_numpy()])


def pairwise(found: pd.Series, truth: pd.Series) -> dict:
    """Precision and recall over the pairs of records put in one entity (``found``: id -> entity) against
    the pairs truly one person (``truth``: id -> true person), on the ids both name."""
    ids = found.index.intersection(truth.index)
    f, t = _pairs(found.reindex(ids)), _pairs(truth.reindex(ids))
    tp = int(f.isin(t).sum())
    return {"found_pairs": int(len(f)), "true_pairs": int(len(t)), "true_positives": tp,
            "precision": tp / len(f) if len(f) else 1.0, "recall": tp / len(t) if len(t) else 1.0}


def cluster_f(found: pd.Series, truth: pd.Series) -> float:
    """The cluster F-measure: for each true person, the best F1 of any found entity against its records,
    weighted by the person's number of records."""
    ids = found.index.intersection(truth.index)
    df = pd.DataFrame({"f": found.reindex(ids).astype(str).to_numpy(), "t": truth.reindex(ids).astype(str).to_numpy()})
    both = df.groupby(["t", "f"], sort=True).size().rename("n").reset_index()
    nt = df.groupby("t").size()
    nf = df.groupby("f").size()
    both["f1"] = 2 * both["n"] / (nt.reindex(both["t"]).to_numpy() + nf.reindex(both["f"]).to_numpy())
    best = both.groupby("t")["f1"].max()
    return float(np.sum(best.to_numpy() * nt.reindex(best.index).to_numpy()) / len(df)) if len(df) else 1.0
