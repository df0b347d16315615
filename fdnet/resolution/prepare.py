"""The persons table made ready to compare: names folded, nicknames read, derived blocking keys.

Every step is a vectorised string operation over the whole column (pandas ``.str`` on Arrow
strings), the same for every backend, so DuckDB and Spark compare the same values.

>>> import pandas as pd
>>> p = pd.DataFrame({"person_id": ["A1", "B2"], "first_name": [" Bill ", "WILLIAM"],
...                   "last_name": ["O'Neil", "oneil"], "birth_date": ["1990-03-04", ""]})
>>> t = comparable(p)
>>> t[["first_name", "first_name_key", "last_name"]].values.tolist()
[['bill', 'william', 'oneil'], ['william', 'william', 'oneil']]
>>> t["first_initial"].tolist(), t["birth_year"].isna().tolist()
(['b', 'w'], [False, True])
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..policy import RESOLUTION_COLUMNS

# Common English given-name diminutives, each mapped to one formal name (the key compared as "the same name
# after nicknames"). A records analyst's list, kept short and plain; a local list can be added later as data.
NICKNAMES: dict[str, str] = {
    "al": "albert", "alex": "alexander", "andy": "andrew", "drew": "andrew", "tony": "anthony",
    "ant": "anthony", "art": "arthur", "ben": "benjamin", "benny": "benjamin", "bill": "william",
    "billy": "william", "will": "william", "willie": "william", "liam": "william", "bob": "robert",
    "bobby": "robert", "rob": "robert", "robbie": "robert", "bert": "robert", "charlie": "charles",
    "chuck": "charles", "chas": "charles", "chris": "christopher", "kit": "christopher", "dan": "daniel",
    "danny": "daniel", "dave": "david", "davey": "david", "don": "donald", "donnie": "donald",
    "ed": "edward", "eddie": "edward", "ted": "edward", "teddy": "edward", "fred": "frederick",
    "freddie": "frederick", "frank": "francis", "frankie": "francis", "gene": "eugene", "greg": "gregory",
    "hank": "henry", "harry": "henry", "jack": "john", "johnny": "john", "jon": "jonathan", "jim": "james",
    "jimmy": "james", "jamie": "james", "jake": "jacob", "jeff": "jeffrey", "jerry": "gerald",
    "joe": "joseph", "joey": "joseph", "josh": "joshua", "ken": "kenneth", "kenny": "kenneth",
    "larry": "lawrence", "len": "leonard", "lenny": "leonard", "matt": "matthew", "mike": "michael",
    "mikey": "michael", "mick": "michael", "nate": "nathaniel", "nick": "nicholas", "pat": "patrick",
    "paddy": "patrick", "pete": "peter", "phil": "phillip", "ray": "raymond", "rick": "richard",
    "ricky": "richard", "rich": "richard", "dick": "richard", "ron": "ronald", "ronnie": "ronald",
    "sam": "samuel", "sammy": "samuel", "steve": "steven", "stevie": "steven", "stephen": "steven",
    "tim": "timothy", "timmy": "timothy", "tom": "thomas", "tommy": "thomas", "vince": "vincent",
    "walt": "walter", "zach": "zachary", "zack": "zachary", "abby": "abigail", "alexis": "alexandra",
    "becky": "rebecca", "becca": "rebecca", "beth": "elizabeth", "liz": "elizabeth", "lizzie": "elizabeth",
    "betty": "elizabeth", "eliza": "elizabeth", "cathy": "catherine", "kathy": "catherine",
    "katherine": "catherine", "kate": "catherine", "katie": "catherine", "chrissy": "christina",
    "tina": "christina", "debbie": "deborah", "deb": "deborah", "jenny": "jennifer", "jen": "jennifer",
    "jess": "jessica", "jessie": "jessica", "jo": "joanne", "judy": "judith", "kim": "kimberly",
    "mandy": "amanda", "maggie": "margaret", "meg": "margaret", "peggy": "margaret", "marge": "margaret",
    "molly": "mary", "nancy": "ann", "annie": "ann", "anne": "ann", "pam": "pamela", "patty": "patricia",
    "trish": "patricia", "sandy": "sandra", "sue": "susan", "suzy": "susan", "terri": "teresa",
    "theresa": "teresa", "val": "valerie", "vicky": "victoria", "tori": "victoria", "dee": "denise",
    "ashley": "ashley", "tasha": "natasha", "nikki": "nicole", "shay": "shaniqua", "keisha": "lakeisha",
    "dre": "andre", "tay": "taylor", "marcus": "marcus", "marc": "mark", "reggie": "reginald",
    "terry": "terrence", "terrance": "terrence", "ty": "tyrone", "jay": "jason", "dom": "dominic",
    "manny": "manuel", "tito": "alberto", "pepe": "jose", "paco": "francisco", "chuy": "jesus",
    "lupe": "guadalupe", "memo": "guillermo", "beto": "roberto", "nacho": "ignacio", "quique": "enrique",
}

#: the columns :func:`comparable` makes (the persons columns compared and the derived keys)
DERIVED = ("first_name_key", "first_initial", "last_initial", "birth_year", "birth_month_day")


def fold(values: pd.Series) -> pd.Series:
    """Lower case, accents removed, punctuation and inner spaces dropped (``"O'Neil-Smith "`` → ``oneilsmith``);
    empty becomes missing.

    >>> fold(pd.Series(["José ", "O'Neil", "", None, "De La Cruz"])).tolist()
    ['jose', 'oneil', None, None, 'delacruz']
    """
    s = values.astype("string[pyarrow]").fillna("")
    s = s.str.normalize("NFKD").str.encode("ascii", errors="ignore").str.decode("ascii")
    s = s.str.lower().str.replace(r"[^a-z0-9]", "", regex=True)
    return s.astype(object).where(s.astype(object) != "", None)


def fold_address(values: pd.Series) -> pd.Series:
    """An address in lower case, punctuation dropped, spaces collapsed, common suffixes shortened.

    >>> fold_address(pd.Series(["12  Main Street.", "12 main st", ""])).tolist()
    ['12 main st', '12 main st', None]
    """
    s = values.astype("string[pyarrow]").fillna("").str.lower()
    s = s.str.replace(r"[^a-z0-9 ]", " ", regex=True).str.replace(r"\s+", " ", regex=True).str.strip()
    for long, short in (("street", "st"), ("avenue", "ave"), ("road", "rd"), ("boulevard", "blvd"),
                        ("drive", "dr"), ("lane", "ln"), ("court", "ct"), ("place", "pl"), ("terrace", "ter"),
                        ("apartment", "apt"), ("north", "n"), ("south", "s"), ("east", "e"), ("west", "w")):
        s = s.str.replace(rf"\b{long}\b", short, regex=True)
    s = s.astype(object)
    return s.where(s != "", None)


def comparable(persons: pd.DataFrame) -> pd.DataFrame:
    """The columns the linkage model reads, one row per persons row in order: ``unique_id`` (the
    person_id), the identifying columns present, folded (missing as None), and the derived keys.
    A column the persons table lacks is all missing."""
    n = len(persons)
    out = pd.DataFrame({"unique_id": persons["person_id"].astype(str).to_numpy(dtype=object)})
    empty = pd.Series([None] * n, dtype=object)
    for c in ("first_name", "last_name", "middle_name"):
        out[c] = fold(persons[c]).to_numpy(dtype=object) if c in persons else empty.to_numpy()
    out["address"] = fold_address(persons["address"]).to_numpy(dtype=object) if "address" in persons \
        else empty.to_numpy()
    if "sex" in persons:
        from ..records.schema import normalise_sex
        sx = normalise_sex(persons["sex"]).to_numpy(dtype=object)
        out["sex"] = np.where(sx == "", None, sx)
    else:
        out["sex"] = empty.to_numpy()
    if "birth_date" in persons:
        bd = persons["birth_date"].astype(object).fillna("").astype(str).str[:10]
        bd = bd.to_numpy(dtype=object)
        out["birth_date"] = np.where(bd == "", None, bd)
    else:
        out["birth_date"] = empty.to_numpy()
    first = pd.Series(out["first_name"], dtype=object)
    out["first_name_key"] = first.map(NICKNAMES).where(lambda s: s.notna(), first).to_numpy(dtype=object)
    out["first_initial"] = first.str[:1].to_numpy(dtype=object)
    out["last_initial"] = pd.Series(out["last_name"], dtype=object).str[:1].to_numpy(dtype=object)
    bd = pd.Series(out["birth_date"], dtype=object)
    out["birth_year"] = bd.str[:4].to_numpy(dtype=object)
    out["birth_month_day"] = bd.str[5:10].to_numpy(dtype=object)
    assert set(RESOLUTION_COLUMNS) <= set(out.columns)
    return out
