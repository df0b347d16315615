"""Names, birth dates and a second agency's records with duplicate identities, the truth kept apart.

:func:`add_identities` gives every person of a synthetic city a first, middle and last name (drawn from
Zipf-weighted lists of common names and a long tail of rare ones, as common as in a US city: the
commonest given name about 4% of men, the commonest surname about 1% of people, see ``FIRST_COMMON``), a birth date in their birth year, and
``source`` ``police``. A share ``duplicates`` of the people then also get a record from a second agency
(``source`` ``probation``, a new ID ``Q…``) that copies the person with one error, as records clerks make
them:

- a name error (half of the duplicates): a typo in the first or the last name (one letter replaced, or two
  neighbouring letters swapped), a nickname for the first name (William → Bill) where one exists, or the
  first name cut to its initial;
- a birth-date error (the other half): one digit mistyped, day and month swapped (where both are 12 or
  less and differ, else a typo), or the date left out.

Each involvement of a duplicated person moves to the second record with probability ``move_share`` (the
second agency's own incidents). The truth, ``truth/identities.csv``, names every person_id's true person
(the police ID) and the error planted; it is never an input.

>>> from fdnet.synth import generate_city
>>> city = add_identities(generate_city(2000, seed=3), duplicates=0.2, seed=1)
>>> p, t = city.persons, city.extra_truth["identities"]
>>> int((p["source"] == "probation").sum()) == int((t["person_id"] != t["true_person"]).sum()) == 400
True
>>> {"first_name", "last_name", "birth_date", "source"} <= set(p.columns)
True
>>> set(city.involvements["person_id"]) <= set(p["person_id"])
True
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .city import SynthCity

_MALE = ("james john robert michael william david richard joseph thomas charles christopher daniel matthew "
         "anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason "
         "jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel "
         "gregory alexander frank patrick raymond jack dennis jerry tyler aaron jose adam nathan henry douglas "
         "zachary peter kyle ethan walter noah jeremy christian keith roger terry gerald harold sean austin carl "
         "arthur lawrence dylan jesse jordan bryan billy joe bruce gabriel logan albert willie alan juan wayne "
         "elijah randy roy vincent ralph eugene russell bobby mason philip louis marcus tyrone deandre jamal "
         "darnell terrence reginald malik andre demetrius cedric lamar dwayne jermaine antonio carlos luis miguel "
         "jorge manuel francisco roberto ricardo alejandro").split()
_FEMALE = ("mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty margaret "
           "sandra ashley kimberly emily donna michelle carol amanda dorothy melissa deborah stephanie rebecca "
           "sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen samantha "
           "katherine christine debra rachel carolyn janet catherine maria heather diane ruth julie olivia joyce "
           "virginia victoria kelly lauren christina joan evelyn judith megan andrea cheryl hannah jacqueline "
           "martha gloria teresa ann sara madison frances kathryn janice jean abigail alice judy sophia grace "
           "denise amber doris marilyn danielle beverly isabella theresa diana natalie brittany charlotte marie "
           "kayla alexis lori keisha tasha latoya ebony shanice aaliyah imani jasmine destiny guadalupe rosa "
           "carmen lucia").split()
_SURNAMES = ("smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez gonzalez "
             "wilson anderson thomas taylor moore jackson martin lee perez thompson white harris sanchez clark "
             "ramirez lewis robinson walker young allen king wright scott torres nguyen hill flores green adams "
             "nelson baker hall rivera campbell mitchell carter roberts gomez phillips evans turner diaz parker "
             "cruz edwards collins reyes stewart morris morales murphy cook rogers gutierrez ortiz morgan cooper "
             "peterson bailey reed kelly howard ramos kim cox ward richardson watson brooks chavez wood james "
             "bennett gray mendoza ruiz hughes price alvarez castillo sanders patel myers long ross foster "
             "jimenez powell jenkins perry russell sullivan bell coleman butler henderson barnes gonzales fisher "
             "vasquez simmons romero jordan patterson alexander hamilton graham reynolds griffin wallace moreno "
             "west cole hayes bryant herrera gibson ellis tran medina aguilar stevens murray ford castro marshall "
             "owens harrison fernandez mcdonald woods washington kennedy wells vargas henry chen freeman webb "
             "tucker guzman burns crawford olson simpson porter hunter gordon mendez silva shaw snyder mason "
             "dixon munoz hunt hicks holmes palmer wagner black robertson boyd rose stone salazar fox warren "
             "mills meyer rice schmidt garza daniels ferguson nichols stephens soto weaver ryan gardner payne "
             "grant dunn kelley spencer hawkins arnold pierce vazquez hansen peters santos hart bradley knight "
             "elliott cunningham duncan armstrong hudson carroll lane riley andrews alvarado ray delgado berry "
             "perkins hoffman johnston matthews pena richards contreras willis carpenter lawrence sandoval").split()
_SYLL = ("ab al an ar ba be bo bra ca ce cha co da de di do el en er fa fe fi ga ge go ha he ho ja jo ka ke ki "
         "la le li lo ma me mi mo na ne ni no ol or pa pe po ra re ri ro sa se si so ta te ti to va ve vi wa we "
         "wi ya yo za ze").split()
_ENDS = ("son man ley ton ford berg stein ski ez ovich ard ell ins ers ock wood field").split()
_NICK = {"william": "bill", "robert": "bob", "richard": "rick", "james": "jim", "john": "jack",
         "michael": "mike", "thomas": "tom", "charles": "charlie", "christopher": "chris", "daniel": "dan",
         "joseph": "joe", "anthony": "tony", "steven": "steve", "andrew": "andy", "joshua": "josh",
         "kenneth": "ken", "timothy": "tim", "ronald": "ron", "edward": "ed", "jeffrey": "jeff",
         "nicholas": "nick", "jonathan": "jon", "samuel": "sam", "benjamin": "ben", "gregory": "greg",
         "alexander": "alex", "patrick": "pat", "raymond": "ray", "matthew": "matt", "lawrence": "larry",
         "elizabeth": "liz", "margaret": "maggie", "patricia": "trish", "jennifer": "jen", "rebecca": "becky",
         "deborah": "debbie", "katherine": "kate", "catherine": "cathy", "susan": "sue", "victoria": "vicky",
         "pamela": "pam", "abigail": "abby", "judith": "judy", "sandra": "sandy", "kimberly": "kim",
         "amanda": "mandy", "reginald": "reggie", "terrence": "terry"}


def _zipf(n: int, s: float = 1.05) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


_FIRST_ENDS = ("on en an ius ell ique a ia ie ene ani ayla").split()

#: the shares of people named from the common lists (the rest have rarer names, made up from syllables), and
#: the Zipf exponents within them, so that the commonest names are about as common as in a US city: the
#: commonest male given name about 4% of men (SSA), the commonest surname about 1% of people (Census 2010:
#: Smith 0.8%, the top 300 surnames about 30%)
FIRST_COMMON, FIRST_ZIPF = 0.75, 0.6
LAST_COMMON, LAST_ZIPF = 0.3, 0.5


def _rare_surnames(rng, k: int) -> np.ndarray:
    a = rng.choice(_SYLL, k)
    b = rng.choice(_SYLL, k)
    e = rng.choice(_ENDS, k)
    return np.unique(np.char.add(np.char.add(a, b), e))


def _rare_first(rng, k: int) -> np.ndarray:
    a = rng.choice(_SYLL, k)
    e = rng.choice(_FIRST_ENDS, k)
    return np.unique(np.char.add(a, e))


def _names(rng, common: list[str], rare: np.ndarray, n: int, share: float, s: float) -> np.ndarray:
    """``n`` names: a share ``share`` from ``common`` (Zipf-weighted, exponent ``s``), the rest from ``rare``."""
    pool = np.concatenate([np.asarray(common, object), rare.astype(object)])
    w = np.concatenate([_zipf(len(common), s) * share, np.full(len(rare), (1 - share) / max(len(rare), 1))])
    return pool[rng.choice(len(pool), n, p=w / w.sum())]


def _typo(names: np.ndarray, rng) -> np.ndarray:
    """One letter replaced or two neighbours swapped in each name (as a character matrix, no loop per name)."""
    if len(names) == 0:
        return names
    width = max(int(np.char.str_len(names.astype(str)).max()), 2)
    arr = np.asarray(names, dtype=f"U{width}")
    mat = arr.view(np.uint32).reshape(len(arr), width).copy()
    ln = np.char.str_len(arr)
    rows = np.arange(len(arr))
    k = np.minimum((rng.random(len(arr)) * np.maximum(ln - 1, 1)).astype(np.int64) + 1, np.maximum(ln - 1, 0))
    swap = (rng.random(len(arr)) < 0.5) & (ln >= 3)
    a, b = mat[rows, k - 1].copy(), mat[rows, k].copy()
    letters = np.frombuffer("abcdefghijklmnopqrstuvwxyz".encode("utf-32-le"), dtype=np.uint32)
    new = letters[rng.integers(0, 26, len(arr))]
    new = np.where(new == b, letters[(np.searchsorted(letters, new) + 1) % 26], new)
    mat[rows, k] = np.where(swap, a, new)
    mat[rows, k - 1] = np.where(swap, b, a)
    out = mat.view(f"U{width}").reshape(len(arr))
    same = out == arr      # (two equal neighbours swapped): replace instead
    out[same] = np.char.add(out[same], "e")
    return out.astype(object)


def _valid_dates(s: np.ndarray, latest: str) -> np.ndarray:
    """Dates that parse and fall before ``latest`` (a typo must not give a birth in the future)."""
    d = pd.to_datetime(pd.Series(s, dtype=object), format="%Y-%m-%d", errors="coerce")
    return (d.notna() & (d <= pd.Timestamp(latest))).to_numpy()


def add_identities(city: SynthCity, *, duplicates: float = 0.2, move_share: float = 0.5,
                   seed: int = 0) -> SynthCity:
    """A copy of ``city`` with names, birth dates, sources and a share ``duplicates`` of the people duplicated
    under a second agency's ID with one planted error (see the module docstring)."""
    if not 0 <= duplicates <= 1:
        raise ValueError(f"duplicates must be between 0 and 1, not {duplicates!r}")
    rng = np.random.default_rng([seed, 7105])
    persons = city.persons.copy()
    n = len(persons)
    male = (persons["sex"].astype(str) == "M").to_numpy()
    rare_first = _rare_first(rng, max(600, n // 40))
    first = np.where(male, _names(rng, _MALE, rare_first, n, FIRST_COMMON, FIRST_ZIPF),
                     _names(rng, _FEMALE, rare_first, n, FIRST_COMMON, FIRST_ZIPF))
    middle_pool = np.where(male, np.asarray(_MALE, object)[rng.choice(len(_MALE), n)],
                           np.asarray(_FEMALE, object)[rng.choice(len(_FEMALE), n)])
    middle = np.where(rng.random(n) < 0.6, middle_pool, "")
    last = _names(rng, _SURNAMES, _rare_surnames(rng, max(2000, n // 8)), n, LAST_COMMON, LAST_ZIPF)
    year = persons["birth_year"].to_numpy(dtype=np.int64)
    doy = rng.integers(0, 365, n)
    bd = ((year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + doy.astype("timedelta64[D]")).astype(str)
    persons["first_name"] = pd.Series(first, dtype=object).str.title().to_numpy(dtype=object)
    persons["middle_name"] = pd.Series(middle, dtype=object).str.title().to_numpy(dtype=object)
    persons["last_name"] = pd.Series(last, dtype=object).str.title().to_numpy(dtype=object)
    persons["birth_date"] = bd.astype(object)
    persons["source"] = "police"

    k = int(round(duplicates * n))
    pick = np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, np.int64)
    dup = persons.iloc[pick].copy().reset_index(drop=True)
    width = max(7, len(str(k)))
    dup["person_id"] = ["Q" + str(i + 1).zfill(width) for i in range(k)]
    dup["source"] = "probation"
    kind = np.full(k, "", dtype=object)
    name_err = rng.random(k) < 0.5
    u = rng.random(k)
    f_low = dup["first_name"].str.lower().to_numpy(dtype=object)
    nick = pd.Series(f_low).map(_NICK).to_numpy(dtype=object)
    has_nick = pd.notna(nick)
    c_first = name_err & (u < 0.3)
    c_last = name_err & (u >= 0.3) & (u < 0.6)
    c_nick = name_err & (u >= 0.6) & (u < 0.8) & has_nick
    c_init = name_err & ~c_first & ~c_last & ~c_nick
    first_v = dup["first_name"].to_numpy(dtype=object).copy()
    last_v = dup["last_name"].to_numpy(dtype=object).copy()
    if c_first.any():
        first_v[c_first] = _typo(f_low[c_first], rng)
    if c_last.any():
        last_v[c_last] = _typo(dup["last_name"].str.lower().to_numpy(dtype=object)[c_last], rng)
    first_v[c_nick] = nick[c_nick]
    first_v[c_init] = dup["first_name"].str[:1].to_numpy(dtype=object)[c_init]
    kind[c_first], kind[c_last], kind[c_nick], kind[c_init] = "first_name_typo", "last_name_typo", "nickname", \
        "initial"
    # records clerks write names in their own case
    upper = rng.random(k) < 0.5
    dup["first_name"] = np.where(upper, pd.Series(first_v, dtype=object).str.upper(), first_v)
    dup["last_name"] = np.where(upper, pd.Series(last_v, dtype=object).str.upper(), last_v)

    date_err = ~name_err
    v = rng.random(k)
    bdv = dup["birth_date"].to_numpy(dtype=object).astype(str)
    ymd = pd.to_datetime(pd.Series(bdv, dtype=object), format="%Y-%m-%d")
    mon, day = ymd.dt.month.to_numpy(), ymd.dt.day.to_numpy()
    can_swap = (day <= 12) & (day != mon)
    c_swap = date_err & (v < 0.35) & can_swap
    c_miss = date_err & (v >= 0.35) & (v < 0.5)
    c_typo = date_err & ~c_swap & ~c_miss
    new_bd = bdv.astype(object).copy()
    swapped = (pd.Series(bdv[c_swap], dtype=object).str[:5] + pd.Series(bdv[c_swap], dtype=object).str[8:10]
               + "-" + pd.Series(bdv[c_swap], dtype=object).str[5:7]).to_numpy(dtype=object)
    new_bd[c_swap] = swapped
    latest = str(np.datetime64(city.end_date, "D") - np.timedelta64(365 * 10, "D"))
    ti = np.flatnonzero(c_typo)
    if len(ti):
        mat = np.asarray(bdv[ti], dtype="U10").view(np.uint32).reshape(len(ti), 10).copy()
        pos = np.asarray([3, 9, 6, 8, 2])[rng.integers(0, 5, len(ti))]
        digit = mat[np.arange(len(ti)), pos] - ord("0")
        repl = (digit + rng.integers(1, 10, len(ti))) % 10
        mat[np.arange(len(ti)), pos] = repl + ord("0")
        typo = mat.view("U10").reshape(len(ti)).astype(object)
        ok = _valid_dates(typo, latest)
        # a typo that is not a date (e.g. 2001-13-05) would be rejected as input: the year's last digit instead
        yr = np.asarray(bdv[ti], dtype="U10").view(np.uint32).reshape(len(ti), 10).copy()
        yr[:, 3] = (yr[:, 3] - ord("0") + 9) % 10 + ord("0")      # one year earlier (or 9 later from a 0)
        alt = yr.view("U10").reshape(len(ti)).astype(object)
        typo = np.where(ok, typo, alt)
        ok2 = _valid_dates(typo, latest)
        new_bd[ti] = np.where(ok2, typo, "")
    new_bd[c_miss] = ""
    kind[c_swap], kind[c_miss], kind[c_typo] = "birth_date_swapped", "birth_date_missing", "birth_date_typo"
    dup["birth_date"] = new_bd
    has = new_bd != ""
    by = np.full(k, np.nan)
    by[has] = pd.Series(new_bd[has], dtype=object).str[:4].astype(int).to_numpy()
    dup["birth_year"] = np.where(has, pd.Series(new_bd, dtype=object).str[:4], "")
    persons["birth_year"] = persons["birth_year"].astype(str)
    all_persons = pd.concat([persons, dup], ignore_index=True).sort_values("person_id", kind="stable") \
        .reset_index(drop=True)

    # the second agency's incidents: each involvement of a duplicated person moves with probability move_share
    inv = city.involvements.copy()
    orig = persons["person_id"].to_numpy(dtype=object)[pick]
    to_dup = pd.Series(dup["person_id"].to_numpy(dtype=object), index=orig)
    hit = inv["person_id"].isin(orig).to_numpy() & (rng.random(len(inv)) < move_share)
    inv.loc[hit, "person_id"] = to_dup.reindex(inv.loc[hit, "person_id"]).to_numpy(dtype=object)

    truth = pd.DataFrame({
        "person_id": np.concatenate([persons["person_id"].to_numpy(dtype=object), dup["person_id"].to_numpy(dtype=object)]),
        "true_person": np.concatenate([persons["person_id"].to_numpy(dtype=object), orig]),
        "error": np.concatenate([np.full(n, "", dtype=object), kind]),
    }).sort_values("person_id", kind="stable").reset_index(drop=True)
    out = SynthCity(city.incidents, inv, all_persons, city.groups, city.group_relations, city.truth_membership,
                    city.truth_future, city.end_date,
                    stats={**city.stats, "identities": {"people": n, "duplicates": k,
                                                        "involvements_moved": int(hit.sum())}})
    out.extra_inputs.update(city.extra_inputs)
    out.extra_truth.update(city.extra_truth)
    out.extra_truth["identities"] = truth
    return out
