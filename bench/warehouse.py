#!/usr/bin/env python3
"""Benchmark of warehouse models: `engine plan` of a model that runs in PostgreSQL.

    cargo build --release -p engine-cli      # the only build needed
    python3 bench/warehouse.py               # 1,000,000 and 10,000,000 rows
    python3 bench/warehouse.py --quick       # 100,000 rows, a minute or two
    python3 bench/warehouse.py --rows 2000000 --warehouse-url postgres://me@db:5432/scratch

The binary is `$ENGINE_BIN`, else `$CARGO_TARGET_DIR/release/engine`, else
`target/release/engine`. Python 3.11+ and `psql` only (no DuckDB): the script drives the binary
the way a user does and shares bench/run.py's measuring, sandbox and null destination.

The warehouse is `--warehouse-url` (default `$WAREHOUSE_URL`, else
postgres://root@127.0.0.1:5432/test); its user must be allowed to create a schema. For each size
N the script creates `engine_bench.contacts_N` there with `INSERT … SELECT generate_series`
(id bigint, email text, first_name text, amount numeric(12,2), updated_at timestamptz; then
VACUUM ANALYZE), writes a project whose model reads that table (`source: warehouse`) and a sync
to HubSpot contacts (email, first name, a number property `amount` from the numeric column and
`last_seen_at` from the timestamptz), starts `engine sandbox hubspot` on a free loopback port
and measures, each command in its own process (wall time; peak RSS of that one child):

  first-backfill plan   `engine plan --out plan.json` on an empty state: every row new
  state build           `engine apply` of that first version, in steps of `--state-chunk`
                        rows, against bench/run.py's destination that keeps nothing: the
                        snapshot the incremental plan needs, committed by the engine itself
  incremental plan      `engine plan --out plan.json` after 1% of the rows changed in
                        PostgreSQL (first name, amount and updated_at of every 100th row)

Rows per second pulled from the warehouse: N divided by the model stage's time, read from the
engine's own log (`RUST_LOG=engine::report=debug`, timestamped): from the sync's start
("Planning") to the diff's start ("comparing with the last snapshot"). That stage covers
preparing the query, the binary COPY's transfer, converting each batch and writing the mapped
rows to the plan's rows file; it leaves out the diff and writing the plan. The table also
gives N divided by the whole plan's wall time.

The schema `engine_bench` is dropped at the end (`--keep` keeps it and the work directory).
Every measured process runs under bench/run.py's watchdog (`--mem-limit-gb`, `--timeout`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _load_run():
    """bench/run.py as a module (its measuring, sandbox and null destination)."""
    spec = importlib.util.spec_from_file_location("bench_run", HERE / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


run = _load_run()
Measured, Sandbox, NullDestination = run.Measured, run.Sandbox, run.NullDestination
TOKEN, status, fmt_rows = run.TOKEN, run.status, run.fmt_rows

SCHEMA = "engine_bench"
SYNC = "contacts_to_hubspot"
DEFAULT_URL = "postgres://root@127.0.0.1:5432/test"
# The engine's plan stages, timestamped: the sync's start, and the diff's start.
LOG_FILTER = "warn,engine::report=debug"
STAGE_START = "Planning: reading the model"
STAGE_END = "comparing with the last snapshot"
AMOUNT_PROPERTY = {
    "name": "amount",
    "label": "Amount",
    "type": "number",
    "fieldType": "number",
    "groupName": "contactinformation",
}


# --------------------------------------------------------------------------------------------
# The warehouse


def psql(url: str, sql: str) -> str:
    """Runs SQL in the warehouse, stopping at the first error; returns what it printed."""
    out = subprocess.run(
        ["psql", url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        input=sql,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"psql failed: {out.stderr.strip()}")
    return out.stdout.strip()


def create_table(url: str, table: str, n: int) -> None:
    """N rows, ids 1..N; VACUUM ANALYZE so the first read does not pay for hint bits."""
    psql(
        url,
        f"""
        SET client_min_messages = warning;
        CREATE SCHEMA IF NOT EXISTS {SCHEMA};
        DROP TABLE IF EXISTS {table};
        CREATE TABLE {table} (
          id bigint PRIMARY KEY,
          email text NOT NULL,
          first_name text,
          amount numeric(12,2),
          updated_at timestamptz
        );
        INSERT INTO {table}
        SELECT i,
               'User' || i || '@Example.com',
               'First' || i,
               ((i * 7919) % 10000000) / 100.0,
               timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second'
        FROM generate_series(1::bigint, {n}) AS i;
        VACUUM ANALYZE {table};
        """,
    )


def change_table(url: str, table: str) -> int:
    """Every 100th row (id % 100 = 1) gets a new first name, amount and updated_at."""
    changed = psql(
        url,
        f"""
        WITH changed AS (
          UPDATE {table}
          SET first_name = first_name || 'b',
              amount = amount + 1,
              updated_at = updated_at + interval '1 day'
          WHERE id % 100 = 1
          RETURNING 1
        )
        SELECT count(*) FROM changed;
        """,
    )
    psql(url, f"VACUUM ANALYZE {table};")
    return int(changed)


# --------------------------------------------------------------------------------------------
# The project


def write_project(project: Path, table: str, below: int | None = None) -> None:
    """engine.yaml with the warehouse source, the model over `table` (ids below `below` only),
    and the sync to HubSpot contacts."""
    (project / "models").mkdir(parents=True, exist_ok=True)
    (project / "syncs").mkdir(exist_ok=True)
    (project / "engine.yaml").write_text(
        """version: 1
project: bench-warehouse
sources:
  warehouse:
    type: postgres
    url: "${env:WAREHOUSE_URL}"
destinations:
  hubspot:
    type: hubspot
    base_url: ${env:HUBSPOT_BASE_URL}
    token: ${env:HUBSPOT_TOKEN}
    rate_limit:
      requests_per_second: 1000000
"""
    )
    where = f"\n  WHERE id < {below}" if below is not None else ""
    (project / "models" / "contacts.yaml").write_text(
        f"""name: contacts
source: warehouse
primary_key: [contact_id]
sql: |
  SELECT id AS contact_id, lower(email) AS email, first_name, amount, updated_at
  FROM {table}{where}
"""
    )
    (project / "syncs" / f"{SYNC}.yaml").write_text(
        f"""name: {SYNC}
model: contacts
destination: hubspot
object: contacts
mode: upsert
match:
  property: email
  column: email
mapping:
  - property: firstname
    column: first_name
  - property: amount
    column: amount
  - property: last_seen_at
    column: updated_at
on_remove: clear_fields
"""
    )


def create_amount_property(sandbox: Sandbox) -> None:
    """The contact property `amount` (a number), as a portal admin would create it."""
    request = urllib.request.Request(
        sandbox.url + "/crm/v3/properties/contacts",
        data=json.dumps(AMOUNT_PROPERTY).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        r.read()


# --------------------------------------------------------------------------------------------
# Measuring


def model_stage_seconds(log: Path) -> float | None:
    """The model stage's time from the engine's timestamped log, or None without both lines."""

    def stamp(line: str) -> datetime:
        text = line.split()[0]
        # tracing's RFC 3339 with nanoseconds and `Z`: keep microseconds for fromisoformat.
        head, _, frac = text.rstrip("Z").partition(".")
        return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")

    start = end = None
    for line in log.read_text(errors="replace").splitlines():
        try:
            if start is None and STAGE_START in line:
                start = stamp(line)
            elif start is not None and STAGE_END in line:
                end = stamp(line)
                break
        except ValueError:
            continue
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def plan(bench, label: str, project: Path, env: dict[str, str]) -> Measured:
    m = bench.engine_cmd(label, ["plan", "--out", "plan.json", "--max-rows", "0"], project, env)
    if m.log:
        m.extra["summary"] = run.summary_line(m.log)
        m.extra["stage"] = model_stage_seconds(m.log)
    (project / "plan.json").unlink(missing_ok=True)
    return m


def build_state(bench, project: Path, table: str, n: int, chunk: int, sandbox: Sandbox) -> Measured:
    """bench/run.py's state build: `engine apply` of the first version against a destination
    that keeps nothing, the model's ids bounded so no step plans more than `chunk` new rows."""
    total = Measured(label=f"n{n}-state-build", returncode=0)
    bounds: list[int | None] = [*range(chunk + 1, n + 1, chunk), None]
    with NullDestination(sandbox.properties()) as null:
        env = dict(bench.env, HUBSPOT_BASE_URL=null.url, HUBSPOT_TOKEN=TOKEN, NO_COLOR="1")
        for step, below in enumerate(bounds, 1):
            write_project(project, table, below)
            m = bench.engine_cmd(f"n{n}-state-build-{step}", ["apply"], project, env)
            total.wall += m.wall
            total.cpu += m.cpu
            total.max_rss_kb = max(total.max_rss_kb, m.max_rss_kb)
            total.returncode, total.killed_at_kb, total.log = m.returncode, m.killed_at_kb, m.log
            total.extra.update(m.extra)
            if not m.ok:
                break
    total.extra["steps"] = len(bounds)
    write_project(project, table)
    return total


def bench_size(bench, url: str, n: int, chunk: int) -> list[Measured]:
    table = f"{SCHEMA}.contacts_{n}"
    base = bench.root / f"n{n}"
    project = base / "project"
    base.mkdir(parents=True, exist_ok=True)
    status(f"{fmt_rows(n)} rows: creating {table} in PostgreSQL")
    started = time.monotonic()
    create_table(url, table, n)
    status(f"{fmt_rows(n)} rows: table ready in {time.monotonic() - started:.1f} s")

    results = []
    with Sandbox(bench.engine, base / "sandbox.log") as sandbox:
        create_amount_property(sandbox)
        env = bench.sandbox_env(sandbox)
        write_project(project, table)
        status(f"{fmt_rows(n)} rows: first-backfill plan")
        first = plan(bench, f"n{n}-backfill-plan", project, env)
        first.extra["rows"] = n
        results.append(first)

        status(f"{fmt_rows(n)} rows: engine apply of the first version (state build)")
        build = build_state(bench, project, table, n, chunk, sandbox)
        results.append(build)

        incremental = Measured(label=f"n{n}-incremental-plan")
        if not build.ok:
            incremental.skipped = "the state build did not finish"
        else:
            changed = change_table(url, table)
            status(f"{fmt_rows(n)} rows: {fmt_rows(changed)} changed; incremental plan")
            incremental = plan(bench, f"n{n}-incremental-plan", project, env)
            incremental.extra["rows"] = n
            incremental.extra["changed"] = changed
        results.append(incremental)
    return results


# --------------------------------------------------------------------------------------------
# Output


def rate(rows: int, seconds: float | None) -> str:
    return f"{rows / seconds:,.0f}" if seconds else "-"


def print_table(sizes: list[int], all_results: list[list[Measured]]) -> None:
    print("\n## PostgreSQL model → plan\n")
    print(
        "| rows | step | time | peak RSS | model stage | rows/s pulled (model stage) "
        "| rows/s (whole plan) | plan |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for n, (first, build, incremental) in zip(sizes, all_results):
        for name, m in (
            ("first-backfill plan", first),
            ("incremental plan (1% changed)", incremental),
        ):
            stage = m.extra.get("stage") if m.ok else None
            stage_text = f"{stage:.2f} s" if stage else "-"
            whole = m.wall if m.ok else None
            print(
                f"| {fmt_rows(n)} | {name} | {m.time_text()} | {m.rss_text()} | {stage_text} "
                f"| {rate(n, stage)} | {rate(n, whole)} | {m.extra.get('summary', '')} |"
            )
        steps = build.extra.get("steps", 1)
        print(
            f"| {fmt_rows(n)} | state build (`engine apply`{f', {steps} steps' if steps > 1 else ''}, "
            f"destination keeps nothing) | {build.time_text()} | {build.rss_text()} | | | "
            f"{rate(n, build.wall if build.ok else None)} | |"
        )
    print()
    for results in all_results:
        for m in results:
            if m.skipped:
                print(f"- {m.label}: skipped ({m.skipped})")
            elif m.killed_at_kb is not None:
                why = (
                    f"after {m.extra['timeout']:.0f} s (--timeout)"
                    if "timeout" in m.extra
                    else "past the memory limit (--mem-limit-gb)"
                )
                print(f"- {m.label} was killed {why}; log: {m.log}")
            elif m.returncode != 0:
                print(f"- {m.label} failed; log: {m.log}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark of a PostgreSQL model: engine plan's time, peak RSS and rows per second.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The binary: $ENGINE_BIN, else $CARGO_TARGET_DIR/release/engine, else target/release/engine.",
    )
    parser.add_argument("--rows", default=None, help="sizes, e.g. '1000000 10000000' (the default) or 100000")
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--warehouse-url", default=os.environ.get("WAREHOUSE_URL", DEFAULT_URL), help=f"the PostgreSQL to use (default $WAREHOUSE_URL, else {DEFAULT_URL})")
    parser.add_argument("--state-chunk", type=int, default=1_000_000, help="rows per `engine apply` step when building the incremental plan's snapshot (default 1,000,000)")
    parser.add_argument("--mem-limit-gb", type=float, default=10.0, help="kill a measured process past this RSS (default 10)")
    parser.add_argument("--timeout", type=float, default=1800, help="kill a measured process after this many seconds (default 1800)")
    parser.add_argument("--workdir", type=Path, default=None, help="where projects and logs go (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and the schema engine_bench")
    args = parser.parse_args()

    sizes = run.parse_sizes(args.rows) if args.rows else ([100_000] if args.quick else [1_000_000, 10_000_000])
    engine = run.find_engine()
    if not engine.is_file():
        print(f"error: no engine binary at {engine}; build it with `cargo build --release -p engine-cli` or set ENGINE_BIN", file=sys.stderr)
        return 1
    if shutil.which("psql") is None:
        print("error: `psql` (PostgreSQL's client) is not on the PATH", file=sys.stderr)
        return 1
    url = args.warehouse_url
    server = psql(url, "SHOW server_version;")

    root = args.workdir or Path(tempfile.mkdtemp(prefix="engine-bench-warehouse-"))
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBSPOT_")}
    env.update(RUST_LOG=LOG_FILTER, WAREHOUSE_URL=url)
    bench = run.Bench(
        engine=engine,
        root=root,
        mem_limit_kb=int(args.mem_limit_gb * 1024 * 1024),
        timeout=args.timeout,
        env=env,
    )

    started = time.monotonic()
    print("# engine warehouse benchmark\n")
    print(f"- engine: {engine}")
    print(f"- PostgreSQL {server} (schema {SCHEMA}), Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"- sizes: {', '.join(fmt_rows(n) for n in sizes)}; state build in steps of {fmt_rows(args.state_chunk)} rows")
    print(f"- memory watchdog: {args.mem_limit_gb:g} GB; work directory: {root}")
    print(f"- load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sys.stdout.flush()
    all_results = []
    try:
        for n in sizes:
            all_results.append(bench_size(bench, url, n, args.state_chunk))
        print_table(sizes, all_results)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\nTotal: {time.monotonic() - started:,.0f} s (load average at the end: {load})")
    finally:
        if not args.keep:
            psql(url, f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;")
            if args.workdir is None:
                shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
