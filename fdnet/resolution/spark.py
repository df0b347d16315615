"""The Spark backend: Splink on a Spark session, for records beyond one machine (docs/resolution.md).

The session is made from the policy's ``resolution.spark`` settings (``master`` ``local[N]`` on this
machine, or a cluster's URL) unless one is passed in. Splink registers its string-similarity functions
(Jaro-Winkler, Damerau-Levenshtein) from the jar it ships. Checkpoints go to a temporary folder removed
at exit.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile

_SESSIONS: dict = {}


def session(cfg):
    """A Spark session for ``cfg`` (the policy's resolution section), made once per process and settings."""
    key = (cfg.spark.master, cfg.spark.app_name, cfg.spark.shuffle_partitions, tuple(sorted(cfg.spark.config.items())))
    if key in _SESSIONS:
        return _SESSIONS[key]
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:      # pragma: no cover - pyspark is declared; a trimmed install may lack it
        from ..errors import UsageError
        raise UsageError("resolution.backend spark needs pyspark (pip install pyspark) and Java 17") from e
    from splink.backends.spark import similarity_jar_location
    b = (SparkSession.builder.master(cfg.spark.master).appName(cfg.spark.app_name)
         .config("spark.sql.shuffle.partitions", str(cfg.spark.shuffle_partitions))
         .config("spark.default.parallelism", str(cfg.spark.shuffle_partitions))
         .config("spark.jars", similarity_jar_location())
         .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
         .config("spark.sql.session.timeZone", "UTC"))
    for k, v in sorted(cfg.spark.config.items()):
        b = b.config(k, v)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    tmp = tempfile.mkdtemp(prefix="fdnet-spark-")
    atexit.register(shutil.rmtree, tmp, True)
    spark.sparkContext.setCheckpointDir(tmp)
    _SESSIONS[key] = spark
    return spark


def spark_api(cfg, spark=None):
    """Splink's SparkAPI on ``spark`` or on :func:`session`'s."""
    from splink import SparkAPI
    return SparkAPI(spark_session=spark or session(cfg), break_lineage_method="checkpoint",
                    num_partitions_on_repartition=cfg.spark.shuffle_partitions)
