"""The benchmark still runs (tiny sizes, no timing asserted: figures come from
``python -m tests.benchmarks.bench_engine``, see docs/benchmarks.md)."""

from __future__ import annotations

from tests.benchmarks import bench_engine


def test_the_engine_benchmark_runs_end_to_end(capsys: object) -> None:
    result = bench_engine.main(["--rounds", "1", "--lifecycles", "5", "--cases", "20"])
    assert set(result) == {
        "bare_per_s",
        "engine_per_s",
        "ratio",
        "recorded_bytes",
        "promised_bytes",
    }
    assert result["recorded_bytes"] < result["promised_bytes"]


def test_the_tick_benchmark_runs_end_to_end() -> None:
    from tests.benchmarks import bench_tick

    result = bench_tick.main(["--sizes", "200,400", "--rounds", "1"])
    assert set(result) == {"small_us", "large_us", "ratio"}


def test_the_tick_benchmark_runs_on_sqlite() -> None:
    from tests.benchmarks import bench_tick

    result = bench_tick.main(["--sizes", "200,400", "--rounds", "1", "--store", "sqlite"])
    assert result["ratio"] > 0


def test_the_sql_benchmark_runs_end_to_end() -> None:
    from tests.benchmarks import bench_sql

    result = bench_sql.main(["--cases", "3", "--rounds", "1", "--postgres", ""])
    assert set(result) == {"sqlite_engine", "sqlite_raw", "sqlite_ratio"}


def test_the_audit_benchmark_runs_end_to_end() -> None:
    from tests.benchmarks import bench_audit

    result = bench_audit.main(["--cases", "3", "--export-events", "300"])
    assert result["export_events"] == 300


def test_the_floors_benchmark_runs_end_to_end() -> None:
    from tests.benchmarks import bench_floors

    result = bench_floors.main(["--rounds", "1", "--lifecycles", "3", "--cases", "3"])
    assert set(result) == {
        "engine_ratio",
        "engine_best",
        "sqlite_ratio",
        "sqlite_store",
        "audit_ratio",
        "audit_floor",
    }
