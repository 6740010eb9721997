"""Shared by every test folder: the one model-set stand-in (:mod:`fakes`) is importable as ``fakes``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


import os  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def spark():
    """One Spark session in local mode (2 cores) for the whole test run, so the JVM starts once.

    Skipped, with the reason printed (``-ra``), when PySpark or Java is missing: ``make test`` installs
    Java from Debian when it runs as root (the ``java`` target), PySpark comes from constraints.txt.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.skip("PySpark is not installed (pip install -c constraints.txt pyspark): Spark engine tests skipped")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java is not installed (make java, or apt-get install openjdk-17-jre-headless): Spark engine tests skipped")
    from amlscore.features.spark import SparkUnavailableError, spark_session

    try:
        session = spark_session("local[2]", app_name="amlscore-tests", conf={
            "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    except SparkUnavailableError as exc:
        pytest.skip(f"Spark could not start: {exc}")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
