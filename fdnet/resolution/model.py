"""The linkage model: Splink settings made from the policy, trained on the records, and the scored pairs.

:func:`link` takes the comparable table (:func:`fdnet.resolution.prepare.comparable`) and the policy's
``resolution`` section, and returns a :class:`Linkage`: every candidate pair the blocking rules give whose
match probability reaches the review band, with its match weight, its probability and each comparison's
level (the *waterfall*), and the trained model as plain data (for the manifest).

Training follows Splink's usual order: u probabilities from a seeded random sample of pairs, the prior
(the probability that two random records match) from the deterministic rules and their stated recall,
then m probabilities by expectation maximisation in each training block. The match weights kept for
every pair are recomputed here from the trained m and u of each pair's levels (rounded, summed with the prior in one order, so they are rounded once, the same way on every backend and thread count.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError

#: decimals kept of match weights and probabilities (so thread counts and backends give the same bytes)
DECIMALS = 6


@dataclass
class Linkage:
    """The scored pairs and the trained model (see the module docstring).

    ``pairs``: person_a < person_b, match_weight, match_probability, then one ``mw_<comparison>`` column
    per comparison (its level's match weight, 0 for a missing value), one ``tf_<comparison>`` (the term-frequency
    adjustment of an exact match on a rarer or commoner value than average) and one ``gamma_<comparison>``
    (Splink's comparison-vector value: the level, -1 for missing); sorted by person_a, person_b.
    ``levels``: comparison -> {gamma: (label, match weight)}; ``prior_weight``: log2 of the prior odds.
    """

    pairs: pd.DataFrame
    comparisons: list[str]
    levels: dict[str, dict[int, tuple[str, float]]]
    prior_weight: float
    model: dict
    notes: list[str] = field(default_factory=list)

    def level_labels(self, c: str, gammas: np.ndarray) -> np.ndarray:
        """The label of each pair's level of comparison ``c``: Splink's own ``label_for_charts`` of the level
        its comparison vector names (``gamma_<c>``), ``missing`` for the null level (-1)."""
        table = self.levels.get(c, {})
        top = max(table) if table else 0
        labs = np.array(["missing"] + [table.get(k, (f"level {k}", 0.0))[0] for k in range(top + 1)], dtype=object)
        g = np.asarray(gammas, dtype=np.int64)
        return labs[np.clip(g, -1, top) + 1]

    def waterfall(self, rows: pd.DataFrame) -> list[list[dict]]:
        """For each row of ``rows`` (pairs' rows), the waterfall: the prior, then each comparison's level (the
        level Splink's comparison vector gave the pair, by its label) and match weight (0 for a missing
        value), with any term-frequency adjustment."""
        n = len(rows)
        steps: list[list[dict]] = [[{"comparison": "prior", "level": "two random records match",
                                     "match_weight": round(self.prior_weight, 4)}] for _ in range(n)]
        for c in self.comparisons:
            w = rows[f"mw_{c}"].to_numpy(dtype=np.float64)
            labs = self.level_labels(c, rows[f"gamma_{c}"].to_numpy())
            tf = rows[f"tf_{c}"].to_numpy(dtype=np.float64)
            for i, (lab, wi, ti) in enumerate(zip(labs.tolist(), w.tolist(), tf.tolist())):
                step = {"comparison": c, "level": lab, "match_weight": round(wi + ti, 4)}
                if ti:
                    step["term_frequency_adjustment"] = round(ti, 4)
                steps[i].append(step)
        return steps


def _levels(method: str, col: str, bands: list[float]):
    """The comparison levels of one policy comparison (Splink comparison-level creators)."""
    import splink.comparison_level_library as cll
    L, R = f"{col}_l", f"{col}_r"
    exact = cll.ExactMatchLevel(col).configure(label_for_charts="exact")
    if method in ("forename", "surname", "birth_date"):
        # a rare name (or birth date) agreeing is stronger evidence than a common one: term frequencies
        exact = cll.ExactMatchLevel(col).configure(label_for_charts="exact", tf_adjustment_column=col)
    levels = [cll.NullLevel(col), exact]
    if method == "forename":
        levels.append(cll.CustomLevel("first_name_key_l = first_name_key_r" if col == "first_name"
                                      else f"{L} = {R}", label_for_charts="same name after nicknames")
                      if col == "first_name" else None)
        levels = [x for x in levels if x is not None]
        for b in bands:
            levels.append(cll.JaroWinklerLevel(col, b).configure(label_for_charts=f"Jaro-Winkler >= {b:g}"))
        levels.append(cll.CustomLevel(f"substr({L}, 1, 1) = substr({R}, 1, 1) AND (length({L}) = 1 OR "
                                      f"length({R}) = 1)", label_for_charts="initial against a full name"))
    elif method in ("surname", "address"):
        for b in bands:
            levels.append(cll.JaroWinklerLevel(col, b).configure(label_for_charts=f"Jaro-Winkler >= {b:g}"))
    elif method == "birth_date":
        levels.append(cll.CustomLevel(
            f"substr({L}, 1, 4) = substr({R}, 1, 4) AND substr({L}, 6, 2) = substr({R}, 9, 2) "
            f"AND substr({L}, 9, 2) = substr({R}, 6, 2)", label_for_charts="day and month swapped"))
        levels.append(cll.DamerauLevenshteinLevel(col, 1).configure(label_for_charts="one character off"))
        levels.append(cll.CustomLevel(f"substr({L}, 1, 4) = substr({R}, 1, 4)",
                                      label_for_charts="same year"))
    levels.append(cll.ElseLevel().configure(label_for_charts="different"))
    return levels


def _rule(cols: list[str]):
    """A blocking rule: equal on every column; ``birth_date_missing`` adds "birth_date missing on one side"."""
    from splink import block_on
    plain = [c for c in cols if c != "birth_date_missing"]
    if len(plain) == len(cols):
        return block_on(*plain)
    return " AND ".join([f"l.{c} = r.{c}" for c in plain] + ["(l.birth_date IS NULL OR r.birth_date IS NULL)"])


def settings(cfg, present: list[str]):
    """The Splink SettingsCreator for the policy section ``cfg`` and the identifying columns ``present``."""
    import splink.comparison_library as cl
    from splink import SettingsCreator
    comps = []
    for c in cfg.comparisons:
        if c.column not in present:
            continue
        comps.append(cl.CustomComparison(_levels(c.method, c.column, list(c.jaro_winkler)),
                                         output_column_name=c.column,
                                         comparison_description=f"{c.column} ({c.method})"))
    return SettingsCreator(
        link_type="dedupe_only", comparisons=comps,
        blocking_rules_to_generate_predictions=[_rule(r) for r in cfg.blocking_rules],
        retain_matching_columns=True, retain_intermediate_calculation_columns=True,   # gamma_ needs the first
        max_iterations=25, em_convergence=0.0001)


def _db_api(cfg, spark=None):
    if cfg.backend == "spark":
        from .spark import spark_api
        return spark_api(cfg, spark)
    import duckdb
    from splink import DuckDBAPI
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads TO {int(cfg.duckdb_threads)}")
    con.execute("SET preserve_insertion_order TO true")
    return DuckDBAPI(connection=con)


def link(table: pd.DataFrame, cfg, *, spark=None) -> Linkage:
    """Train the model on ``table`` (:func:`~fdnet.resolution.prepare.comparable`) and score its candidate
    pairs; pairs below ``cfg.review`` are dropped (they never merge and need no review)."""
    from splink import Linker
    logging.getLogger("splink").setLevel(logging.ERROR)
    present = [c.column for c in cfg.comparisons if table[c.column].notna().any()]
    notes = []
    gone = sorted({c.column for c in cfg.comparisons} - set(present))
    if gone:
        notes.append("resolution: no values in persons column(s) " + ", ".join(gone)
                     + ": those comparisons were left out of the model")
    names = {"first_name", "last_name"}
    if not names <= set(present) or "birth_date" not in present and "sex" not in present:
        raise InputError("entity resolution (resolution.enabled) needs the persons table's first_name and "
                         "last_name columns, and birth_date or sex, filled in for at least some rows",
                         file="persons")
    needed = sorted({k for r in cfg.blocking_rules + cfg.training_blocking_rules + cfg.deterministic_rules
                     for k in r} - {"birth_date_missing"})
    if "first_name" in present and "first_name_key" not in needed:
        needed.append("first_name_key")       # the nickname level reads it
    tab = table[["unique_id"] + present + [k for k in needed if k not in present]].copy()
    for c in tab.columns:
        tab[c] = tab[c].astype(object).where(tab[c].notna(), None)
    out_cols = ["unique_id_l", "unique_id_r", "match_weight", "match_probability"] + [f"mw_{c}" for c in present] \
        + [f"mw_tf_adj_{c}" for c in present] + [f"gamma_{c}" for c in present]
    if len(tab) < 2:
        empty = pd.DataFrame({c: pd.Series([], dtype=object if c.startswith("unique") else float)
                              for c in out_cols})
        return _finish(empty, present, {}, 0.0, {}, notes)
    db = _db_api(cfg, spark)
    sdf = db.register(tab, table_name="fdnet_persons")
    model, em_notes = _train(sdf, settings(cfg, present), cfg, present)
    notes += em_notes
    linker = Linker(sdf, model, log_level=logging.ERROR)
    pred = linker.inference.predict(threshold_match_probability=None)
    # only the columns kept, and only pairs near or above the review band, are brought into pandas (the
    # matching columns and the many low pairs stay in the engine; the band is applied exactly, on the
    # rounded weights, in _finish)
    have = {str(c).strip('"`').lower() for c in pred.columns_escaped}
    keep = [c for c in out_cols if c.lower() in have]
    floor = max(float(cfg.review) - 1e-3, 0.0)
    df = linker.misc.query_sql(f"SELECT {', '.join(keep)} FROM {pred.physical_name} "
                               f"WHERE match_probability >= {floor!r}", output_type="pandas")
    levels, prior_w = _model_levels(model, present)
    _cleanup(db, cfg)
    return _finish(df, present, levels, prior_w, model, notes, cfg.review)


def _held_out(rule: list[str]) -> set[str]:
    """The comparisons a training block does not learn: those of the columns it holds equal (Splink's own
    rule; a derived key such as birth_month_day holds its column only partly equal, and that column is learnt)."""
    return set(rule)


def _train(sdf, creator, cfg, present: list[str]) -> tuple[dict, list[str]]:
    """The trained model (Splink's settings dictionary) and the notes of training.

    1. u probabilities from ``cfg.max_pairs_u`` random pairs (seeded), and the prior from the deterministic
       rules, on one linker; its model is the *base*.
    2. Each training block, in order, runs expectation maximisation on a fresh linker loaded with the model so
       far (Splink's public ``Linker(table, settings_dict)``). A block's m estimates are kept for the
       comparisons it does not hold equal (:func:`_held_out`). A block that fails (no pairs, or EM driving a
       probability to zero) contributes nothing: its linker is simply dropped, and the model is as before it
       (no private Splink state is patched back).
    3. After each block, each level's m is the mean of its estimates over the blocks that learnt it so far
       (Splink's own rule), set into the base model; the last such model is returned, and the caller loads it
       into the linker that scores the pairs.
    """
    import copy

    from splink import Linker
    notes: list[str] = []
    linker = Linker(sdf, creator, log_level=logging.ERROR)
    try:
        linker.training.estimate_probability_two_random_records_match(
            [_rule(r) for r in cfg.deterministic_rules], recall=cfg.deterministic_recall)
    except Exception as e:   # noqa: BLE001 - Splink raises its own types; no deterministic match at all
        notes.append(f"resolution: the prior could not be estimated from the deterministic rules ({type(e).__name__}); "
                     "Splink's default prior was kept")
    linker.training.estimate_u_using_random_sampling(max_pairs=cfg.max_pairs_u, seed=cfg.seed)
    base = linker.misc.save_model_to_json()
    estimates: dict[tuple[str, int], list[float]] = {}
    blocks = [(_rule(r), _held_out(r), "+".join(r)) for r in cfg.training_blocking_rules]
    model = copy.deepcopy(base)
    for rule, held, name in blocks:
        learn = [c for c in present if c not in held]
        if not learn:
            notes.append(f"resolution: training block {name} constrains every comparison; it was skipped")
            continue
        trainer = Linker(sdf, copy.deepcopy(model), log_level=logging.ERROR)
        try:
            trainer.training.estimate_parameters_using_expectation_maximisation(rule)
        except Exception as e:   # noqa: BLE001 - a block with no pairs, or one that trains nothing
            notes.append(f"resolution: expectation maximisation in {name} was skipped ({type(e).__name__})")
            continue
        trained = trainer.misc.save_model_to_json()
        for comp in trained["comparisons"]:
            cname = comp.get("output_column_name")
            if cname not in learn:
                continue
            for j, lv in enumerate(comp["comparison_levels"]):
                m = lv.get("m_probability")
                if not lv.get("is_null_level") and m is not None:
                    estimates.setdefault((cname, j), []).append(float(m))
        model = _with_means(base, estimates)      # the next block starts from the estimates so far
    never = sorted({c.get("output_column_name") for c in model["comparisons"]}
                   - {k[0] for k in estimates})
    if never:
        notes.append("resolution: no training block learnt the m probabilities of " + ", ".join(never)
                     + " (Splink's starting values were kept); add a training block that leaves them free")
    return model, notes


def _with_means(base: dict, estimates: dict) -> dict:
    """``base`` with each level's m probability the mean of its estimates (levels without one as in base)."""
    import copy
    model = copy.deepcopy(base)
    for comp in model["comparisons"]:
        name = comp.get("output_column_name")
        for j, lv in enumerate(comp["comparison_levels"]):
            if (name, j) in estimates:
                lv["m_probability"] = float(np.mean(estimates[(name, j)]))
    return model


def _cleanup(db, cfg) -> None:
    if cfg.backend == "duckdb":
        try:
            db._con.close()
        except Exception:   # noqa: BLE001 - closing an in-memory database
            pass


def _model_levels(model: dict, present: list[str]) -> tuple[dict, float]:
    """comparison -> {gamma: (label, weight)} from the trained model, and the prior's weight."""
    lam = float(model.get("probability_two_random_records_match", 1e-4))
    prior_w = math.log2(lam / (1 - lam))
    levels: dict[str, dict[int, tuple[str, float]]] = {}
    for comp in model["comparisons"]:
        name = comp.get("output_column_name")
        lv: dict[int, tuple[str, float]] = {}
        levels_list = [x for x in comp["comparison_levels"] if not x.get("is_null_level")]
        k = len(levels_list) - 1
        for x in levels_list:
            m, u = x.get("m_probability"), x.get("u_probability")
            w = math.log2(m / u) if m and u else 0.0
            lv[k] = (str(x.get("label_for_charts", "")), w)
            k -= 1
        levels[name] = lv
    return levels, prior_w


def _finish(df, present, levels, prior_w, model, notes, review: float = 0.0) -> Linkage:
    a = df["unique_id_l"].astype(str).to_numpy(dtype=object)
    b = df["unique_id_r"].astype(str).to_numpy(dtype=object)
    lo = np.where(a < b, a, b)
    hi = np.where(a < b, b, a)
    # each comparison's weight rounded, the total summed from them in one fixed order (the same bytes on every
    # backend and thread count), the probability from the total
    def col(name):
        return (np.round(df[name].to_numpy(dtype=np.float64), DECIMALS) if name in df and len(df)
                else np.zeros(len(df)))
    mw = {c: col(f"mw_{c}") for c in present}
    tf = {c: np.nan_to_num(col(f"mw_tf_adj_{c}")) for c in present}
    gam = {c: (df[f"gamma_{c}"].fillna(-1).to_numpy(dtype=np.int64).astype(np.int8) if f"gamma_{c}" in df and len(df)
               else np.zeros(len(df), np.int8)) for c in present}
    w = np.full(len(df), round(prior_w, DECIMALS), dtype=np.float64)
    for c in present:
        w = w + mw[c] + tf[c]
    w = np.round(w, DECIMALS)
    p = np.round(1.0 / (1.0 + np.exp2(-w)), DECIMALS)
    pairs = pd.DataFrame({"person_a": lo, "person_b": hi, "match_weight": w, "match_probability": p,
                          **{f"mw_{c}": mw[c] for c in present}, **{f"tf_{c}": tf[c] for c in present},
                          **{f"gamma_{c}": gam[c] for c in present}})
    pairs = pairs[pairs["match_probability"] >= review]
    pairs = pairs.sort_values(["person_a", "person_b"], kind="stable").drop_duplicates(["person_a", "person_b"])
    return Linkage(pairs.reset_index(drop=True), list(present), levels, prior_w, _json_model(model), notes)


def _json_model(model: dict) -> dict:
    """The trained model with every float rounded (manifest-stable across thread counts)."""
    def r(x):
        if isinstance(x, float):
            return round(x, 10)
        if isinstance(x, dict):
            return {k: r(v) for k, v in x.items()}
        if isinstance(x, list):
            return [r(v) for v in x]
        return x
    out = r(model)
    out.pop("linker_uid", None)
    return out
