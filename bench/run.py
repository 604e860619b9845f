#!/usr/bin/env python3
"""Benchmarks of the release `engine` binary, side by side with DuckDB doing the same diff.

    cargo build --release -p engine-cli      # the only build needed
    pip install duckdb                       # once
    python3 bench/run.py                     # 1,000,000 and 10,000,000 rows
    python3 bench/run.py --quick             # 100,000 rows, a few minutes
    python3 bench/run.py --rows 2000000 --apply-rows 50000

The binary is `$ENGINE_BIN`, else `$CARGO_TARGET_DIR/release/engine`, else
`target/release/engine`. Nothing is compiled for the benchmark: it drives the binary the way a
user does, so the one release build serves both. Python 3.11+ and the `duckdb` package only.

For each size N the script generates, with DuckDB and deterministically, a contacts CSV of N
rows (version 1) and a second version (1% of the rows updated, 0.5% removed, 0.5% added),
writes a project like `examples/quickstart` (engine.yaml, a model, a sync to HubSpot contacts
with a template property) into a work directory, starts `engine sandbox hubspot` on a free
loopback port and measures each command in its own process (wall time; peak RSS and
user+sys CPU from the kernel's rusage of that one child):

  first-backfill plan   `engine plan --out plan.json` of version 1 on an empty state
  DuckDB backfill       the same diff in DuckDB over version 1, no previous snapshot
  state build           `engine apply` of version 1, in steps of `--state-chunk` rows, against
                        a destination in this script that keeps nothing: the snapshot the
                        incremental plan needs, committed by the engine itself
  incremental plan      `engine plan --out plan.json` of version 2 against that snapshot
  DuckDB incremental    the same diff in DuckDB over version 2 against DuckDB's own snapshot

and once, apply throughput: `engine apply plan.json` of a first backfill of `--apply-rows` rows
against the sandbox, unthrottled and then with the sandbox's `--rate-limit` (the engine is
configured with the same limit): rows/s, admitted requests/s (a 429 is not counted), 429s, engine and sandbox CPU per row. The
unthrottled apply runs `--apply-repeats` times on fresh projects and sandboxes, and the run of
median engine CPU is reported with the range: one run on a shared machine is noisy.

Every measured process runs under a watchdog that kills it past `--mem-limit-gb` of RSS or
`--timeout` seconds; the table then says so, with the RSS it had reached.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-sandbox-token"
SYNC = "contacts_to_hubspot"
# The properties the sync writes, in the engine's order: the match property first, then the
# mapping's entries.
PROPERTIES = ["email", "firstname", "lastname", "phone", "company", "lifecyclestage"]


# --------------------------------------------------------------------------------------------
# Measuring a process


@dataclass
class Measured:
    """One process: how long, how much memory, how much CPU, how it ended."""

    label: str
    wall: float = 0.0
    max_rss_kb: int = 0
    cpu: float = 0.0
    returncode: int | None = None
    killed_at_kb: int | None = None
    skipped: str | None = None
    log: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.killed_at_kb is None and self.returncode == 0

    def time_text(self) -> str:
        if self.skipped:
            return "-"
        if self.killed_at_kb is not None:
            return f">{self.wall:.1f} s"
        if self.returncode != 0:
            return f"failed ({self.returncode})"
        return f"{self.wall:.2f} s"

    def rss_text(self) -> str:
        if self.skipped:
            return "-"
        if self.killed_at_kb is not None:
            return f">{self.killed_at_kb / 1024:,.0f} MB (killed)"
        return f"{self.max_rss_kb / 1024:,.0f} MB"


def rss_kb(pid: int, field: str = "VmRSS:") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(
    label: str,
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    mem_limit_kb: int,
    timeout: float,
) -> Measured:
    """Runs `cmd` to completion; its output goes to `log`.

    Wall time is measured around the process; CPU comes from the kernel's rusage of that one
    child (wait4), so nothing else on the machine counts. Peak RSS is the child's own high-water
    mark (`VmHWM`), polled every 0.1 s: rusage's `ru_maxrss` would also count this script's
    memory, which the child inherits at fork and keeps as its high-water mark across exec. A
    watchdog kills the child past `mem_limit_kb` of RSS, or past `timeout` seconds.
    """
    result = Measured(label=label, log=log)
    with open(log, "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        exited = threading.Event()
        guard = threading.Lock()

        def watch() -> None:
            while not exited.wait(0.1):
                rss = rss_kb(proc.pid)
                with guard:
                    if not exited.is_set():
                        hwm = rss_kb(proc.pid, "VmHWM:")
                        result.extra["hwm_kb"] = max(result.extra.get("hwm_kb", 0), hwm)
                over_time = time.monotonic() - start > timeout
                if rss > mem_limit_kb or over_time:
                    with guard:
                        if not exited.is_set():
                            os.kill(proc.pid, signal.SIGKILL)
                            result.killed_at_kb = rss
                            if over_time:
                                result.extra["timeout"] = timeout
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # Wait without reaping, so the watchdog can never signal a recycled pid, then reap and
        # read the child's rusage.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        result.wall = time.monotonic() - start
        with guard:
            exited.set()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        watcher.join()
    result.returncode = proc.returncode
    # A process shorter than one poll falls back on rusage (an upper bound).
    result.max_rss_kb = result.extra.pop("hwm_kb", 0) or usage.ru_maxrss
    result.cpu = usage.ru_utime + usage.ru_stime
    return result


def cpu_seconds(pid: int) -> float:
    """User+sys CPU of a running process so far (for the sandbox)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# The sandbox


class Sandbox:
    """`engine sandbox hubspot` on a free loopback port, stopped on exit."""

    def __init__(self, engine: Path, log: Path, rate_limit: int | None = None):
        cmd = [str(engine), "sandbox", "hubspot", "--port", "0", "--token", TOKEN]
        if rate_limit:
            cmd += ["--rate-limit", str(rate_limit)]
        self.log = log
        self._out = open(log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=subprocess.STDOUT)
        self.url = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "listening on http://" in text:
                self.url = text.split("listening on ", 1)[1].split()[0]
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not self.url:
            self.stop()
            raise SystemExit(f"the sandbox did not start; see {log}")

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.load(r)

    def properties(self) -> bytes:
        """The answer to `GET /crm/v3/properties/contacts`, as the engine receives it."""
        request = urllib.request.Request(
            self.url + "/crm/v3/properties/contacts",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.read()

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.load(r)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def rss_kb(self) -> int:
        return rss_kb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class NullDestination:
    """A HubSpot batch endpoint that keeps nothing, for building large states quickly.

    It answers `GET /crm/v3/properties/{object}` with the sandbox's own answer, and every
    `batch/upsert` or `batch/update` input as written (upserts get fresh record ids), in the
    shapes the HubSpot contract gives. The engine's apply runs unchanged against it — plan,
    executor, journal, snapshot fold — so the snapshot it commits is the one a real apply
    commits; only the destination's cost is left out.
    """

    def __init__(self, properties: bytes):
        lock = threading.Lock()
        next_id = [1]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes: without this, Nagle's algorithm
            # and delayed ACKs hold every answer back by 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.startswith("/crm/v3/properties/"):
                    self.answer(200, properties)
                else:
                    self.answer(404, b'{"status":"error","message":"not here","category":"OBJECT_NOT_FOUND"}')

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                inputs = body.get("inputs", [])
                upsert = self.path.endswith("/batch/upsert")
                if not upsert and not self.path.endswith("/batch/update"):
                    self.answer(404, b'{"status":"error","message":"not here","category":"OBJECT_NOT_FOUND"}')
                    return
                with lock:
                    first = next_id[0]
                    next_id[0] += len(inputs) if upsert else 0
                now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
                results = []
                for i, item in enumerate(inputs):
                    result = {
                        "id": str(first + i) if upsert else str(item.get("id")),
                        "properties": {},
                        "createdAt": now,
                        "updatedAt": now,
                        "archived": False,
                    }
                    if upsert:
                        result["new"] = True
                        result["properties"][item.get("idProperty")] = item.get("id")
                    if "objectWriteTraceId" in item:
                        result["objectWriteTraceId"] = item["objectWriteTraceId"]
                    results.append(result)
                self.answer(
                    200,
                    json.dumps(
                        {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
                    ).encode(),
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self) -> "NullDestination":
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------------------------
# Data and project


def generate(con, path: Path, n: int, version: int, renamed: int | None = None) -> None:
    """A contacts CSV: ids 0..n (version 1), or version 2: every 100th row (i % 100 == 1) has
    a new first name, every 200th (i % 200 == 2) is gone, and n/200 new rows follow. With
    `renamed = r` (version 1 only), the rows with i % 100 == r have a new first name."""
    changed = f"i < {n} AND i % 100 = 1" if version == 2 else "false"
    if renamed is not None:
        changed = f"i % 100 = {renamed}"
    removed = f"i < {n} AND i % 200 = 2" if version == 2 else "false"
    end = n + n // 200 if version == 2 else n
    con.execute(
        f"""
        COPY (
          SELECT i AS id,
                 'User' || i || '@Example.com' AS email,
                 'First' || i || CASE WHEN {changed} THEN 'b' ELSE '' END AS first_name,
                 'Last' || i AS last_name,
                 CASE WHEN i % 3 = 0 THEN NULL
                      ELSE '+1 555 ' || lpad(CAST(i % 10000000 AS VARCHAR), 7, '0') END AS phone,
                 CASE i % 7 WHEN 0 THEN 'enterprise' WHEN 1 THEN 'pro' ELSE 'free' END AS plan,
                 'Company ' || (i % 5000) AS company
          FROM range(0, {end}) t(i)
          WHERE NOT ({removed})
          ORDER BY i
        ) TO '{path}' (HEADER, DELIMITER ',')
        """
    )


MODEL_SQL = """\
SELECT id AS contact_id,
       lower(email) AS email,
       first_name,
       last_name,
       phone,
       company,
       CASE WHEN plan = 'enterprise' THEN 'customer' ELSE 'lead' END AS lifecycle
FROM contacts"""


def write_project(
    project: Path, csv: Path, requests_per_second: float, below: int | None = None
) -> None:
    """A project like examples/quickstart, its one table at `csv` (only ids below `below`)."""
    (project / "models").mkdir(parents=True, exist_ok=True)
    (project / "syncs").mkdir(exist_ok=True)
    (project / "engine.yaml").write_text(
        f"""version: 1
project: bench
tables:
  contacts:
    path: {csv}
destinations:
  hubspot:
    type: hubspot
    base_url: ${{env:HUBSPOT_BASE_URL}}
    token: ${{env:HUBSPOT_TOKEN}}
    rate_limit:
      requests_per_second: {requests_per_second}
"""
    )
    model_sql = MODEL_SQL + (f"\nWHERE id < {below}" if below is not None else "")
    sql = "\n".join("  " + line for line in model_sql.splitlines())
    (project / "models" / "contacts.yaml").write_text(
        f"name: contacts\nprimary_key: [contact_id]\nsql: |\n{sql}\n"
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
  - property: lastname
    column: last_name
  - property: phone
    column: phone
    on_null: clear
  - property: company
    template: "{{{{ row['company'] | upcase }}}}"
  - property: lifecyclestage
    column: lifecycle
on_remove: clear_fields
"""
    )


def plan_counts(path: Path) -> dict:
    """The summary of a saved plan (read with a streaming-free json.load: only for small
    plans; large ones are summarised from the engine's stdout instead)."""
    with open(path) as f:
        plan = json.load(f)
    return plan["syncs"][0]["summary"]


def summary_line(log: Path) -> str:
    """The plan's one-line summary from the human view (`Plan: …`)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.strip().lower().startswith("plan:"):
            return line.strip()
    return ""


# --------------------------------------------------------------------------------------------
# DuckDB doing the engine's diff (run in a child process: `run.py duckdb-diff …`)

DUCKDB_MODEL = """
SELECT CAST(id AS VARCHAR) AS __key,
       lower(email) AS email,
       first_name AS firstname,
       last_name AS lastname,
       phone,
       upper(company) AS company,
       CASE WHEN plan = 'enterprise' THEN 'customer' ELSE 'lead' END AS lifecyclestage
FROM read_csv('{csv}', header = true)
"""


def duckdb_diff(csv: str, previous: str | None, work: str) -> None:
    """The engine's plan, step for step, in DuckDB; then the next snapshot.

    model CSV → key + fingerprint (a hash over the mapped values) written to Parquet → null and
    duplicate keys → null, empty and shared match values → full outer join with the previous
    snapshot on key where fingerprints differ → changed rows (new and old values) written out
    as NDJSON → the next snapshot (unchanged rows keep their destination id) as Parquet.
    """
    import duckdb

    con = duckdb.connect()
    # The engine's query memory pool is 1.5 GiB (ENGINE_MEMORY_LIMIT); DuckDB gets the same.
    con.execute("SET memory_limit = '1536MiB'")
    con.execute(f"SET temp_directory = '{work}/duckdb.tmp'")
    props = ", ".join(PROPERTIES)
    rows = f"{work}/rows.parquet"
    con.execute(
        f"COPY (SELECT __key, hash({props}) AS __fp, {props} FROM ({DUCKDB_MODEL.format(csv=csv)})) "
        f"TO '{rows}' (FORMAT parquet, COMPRESSION zstd)"
    )
    con.execute(f"CREATE VIEW n AS SELECT * FROM read_parquet('{rows}')")
    problems = []
    null_keys = con.execute("SELECT count(*) FROM n WHERE __key IS NULL").fetchone()[0]
    if null_keys:
        problems.append(f"{null_keys} null keys")
    dup_keys = con.execute(
        "SELECT __key FROM n GROUP BY __key HAVING count(*) > 1 ORDER BY __key LIMIT 5"
    ).fetchall()
    if dup_keys:
        problems.append(f"duplicate keys {dup_keys}")
    missing = con.execute(
        "SELECT count(*) FROM n WHERE email IS NULL OR trim(email) = ''"
    ).fetchone()[0]
    if missing:
        problems.append(f"{missing} null or empty match values")
    shared = con.execute(
        "SELECT lower(email) AS m FROM n WHERE email IS NOT NULL AND trim(email) <> '' "
        "GROUP BY m HAVING count(*) > 1 ORDER BY m LIMIT 5"
    ).fetchall()
    if shared:
        problems.append(f"shared match values {shared}")
    if problems:
        raise SystemExit("; ".join(problems))

    if previous:
        con.execute(f"CREATE VIEW o AS SELECT * FROM read_parquet('{previous}')")
    else:
        empty = ", ".join(f"NULL::VARCHAR AS {p}" for p in PROPERTIES)
        con.execute(
            "CREATE VIEW o AS SELECT NULL::VARCHAR AS __key, NULL::VARCHAR AS __destination_id, "
            f"NULL::UBIGINT AS __fp, {empty} WHERE false"
        )
    new_values = ", ".join(f"n.{p} AS {p}" for p in PROPERTIES)
    old_values = ", ".join(f"o.{p} AS old_{p}" for p in PROPERTIES)
    con.execute(
        f"""COPY (
              SELECT coalesce(n.__key, o.__key) AS key,
                     CASE WHEN o.__key IS NULL THEN 'create'
                          WHEN n.__key IS NULL THEN 'remove' ELSE 'update' END AS action,
                     o.__destination_id AS destination_id, {new_values}, {old_values}
              FROM n FULL OUTER JOIN o ON n.__key = o.__key
              WHERE n.__fp IS DISTINCT FROM o.__fp
              ORDER BY action, key
            ) TO '{work}/changes.ndjson' (FORMAT json)"""
    )
    # The next snapshot, as if every change were applied: created records get an id.
    n_values = ", ".join(f"n.{p}" for p in PROPERTIES)
    con.execute(
        f"""COPY (
              SELECT n.__key, coalesce(o.__destination_id, 'new-' || n.__key) AS __destination_id,
                     n.__fp, {n_values}
              FROM n LEFT JOIN o ON n.__key = o.__key
            ) TO '{work}/snapshot.parquet' (FORMAT parquet, COMPRESSION zstd)"""
    )


# --------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Bench:
    engine: Path
    root: Path
    mem_limit_kb: int
    timeout: float
    env: dict[str, str]

    def engine_cmd(self, label: str, args: list[str], cwd: Path, env: dict[str, str]) -> Measured:
        log = self.root / f"{label}.log"
        return measure(
            label,
            [str(self.engine), *args],
            cwd=cwd,
            env=env,
            log=log,
            mem_limit_kb=self.mem_limit_kb,
            timeout=self.timeout,
        )

    def sandbox_env(self, sandbox: Sandbox) -> dict[str, str]:
        env = dict(self.env)
        env.update(HUBSPOT_BASE_URL=sandbox.url, HUBSPOT_TOKEN=TOKEN, NO_COLOR="1")
        return env

    def duckdb(self, label: str, csv: Path, previous: Path | None, work: Path) -> Measured:
        work.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "duckdb-diff", str(csv), str(work)]
        if previous:
            cmd.append(str(previous))
        m = measure(
            label,
            cmd,
            cwd=work,
            env=self.env,
            log=self.root / f"{label}.log",
            mem_limit_kb=self.mem_limit_kb,
            timeout=self.timeout,
        )
        if m.ok:
            # Counted after the measured run, so the count is not part of its time.
            import duckdb

            m.extra["counts"] = dict(
                duckdb.connect()
                .execute(
                    f"SELECT action, count(*) FROM read_json('{work}/changes.ndjson') "
                    "GROUP BY action ORDER BY action"
                )
                .fetchall()
            )
        return m


def status(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def fmt_rows(n: int) -> str:
    return f"{n:,}"


def ratio(a: Measured, b: Measured, what: str) -> str:
    if not (a.ok and b.ok):
        return "-"
    if what == "time":
        return f"{a.wall / b.wall:.1f}x"
    return f"{a.max_rss_kb / b.max_rss_kb:.1f}x"


def build_state(
    bench: Bench, project: Path, csv: Path, n: int, chunk: int, sandbox: Sandbox
) -> Measured:
    """Applies the first backfill with `engine apply`, against the null destination, in steps
    of `chunk` rows (the model keeps ids below a bound that grows by `chunk` a step), so no
    step's plan holds more than `chunk` rows. The result is the snapshot of N applied rows,
    each with its record id, that one big apply would have committed."""
    total = Measured(label=f"n{n}-state-build", returncode=0)
    bounds: list[int | None] = [*range(chunk, n, chunk), None]
    with NullDestination(sandbox.properties()) as null:
        env = dict(bench.env, HUBSPOT_BASE_URL=null.url, HUBSPOT_TOKEN=TOKEN, NO_COLOR="1")
        for step, below in enumerate(bounds, 1):
            write_project(project, csv, 1_000_000, below)
            m = bench.engine_cmd(f"n{n}-state-build-{step}", ["apply"], project, env)
            total.wall += m.wall
            total.cpu += m.cpu
            total.max_rss_kb = max(total.max_rss_kb, m.max_rss_kb)
            total.returncode, total.killed_at_kb, total.log = m.returncode, m.killed_at_kb, m.log
            total.extra.update(m.extra)
            total.extra.setdefault("step_rss_mb", []).append(m.max_rss_kb / 1024)
            if not m.ok:
                break
    total.extra["steps"] = len(bounds)
    total.extra["chunk"] = chunk
    write_project(project, csv, 1_000_000)
    return total


def bench_size(bench: Bench, n: int, state_chunk: int) -> list[Measured]:
    """One size: both plans, the state build between them, and DuckDB's two runs."""
    base = bench.root / f"n{n}"
    data = base / "data"
    data.mkdir(parents=True, exist_ok=True)
    v1, v2 = data / "contacts_v1.csv", data / "contacts_v2.csv"
    status(f"{fmt_rows(n)} rows: generating data")
    import duckdb

    con = duckdb.connect()
    generate(con, v1, n, 1)
    generate(con, v2, n, 2)
    con.close()

    results = []
    project = base / "project"
    with Sandbox(bench.engine, base / "sandbox.log") as sandbox:
        env = bench.sandbox_env(sandbox)
        write_project(project, v1, 1_000_000)
        status(f"{fmt_rows(n)} rows: engine first-backfill plan")
        first = bench.engine_cmd(
            f"n{n}-engine-backfill-plan",
            ["plan", "--out", "plan.json", "--max-rows", "0"],
            project,
            env,
        )
        first.extra["summary"] = summary_line(first.log) if first.log else ""
        (project / "plan.json").unlink(missing_ok=True)
        results.append(first)

        status(f"{fmt_rows(n)} rows: DuckDB backfill")
        duck_first = bench.duckdb(f"n{n}-duckdb-backfill", v1, None, base / "duckdb-v1")
        results.append(duck_first)

        # The snapshot the incremental plan needs, made by the engine itself.
        status(f"{fmt_rows(n)} rows: engine apply of the backfill (state build)")
        build = build_state(bench, project, v1, n, state_chunk, sandbox)
        results.append(build)

        incremental = Measured(label=f"n{n}-engine-incremental-plan")
        if not build.ok:
            incremental.skipped = build.skipped or "the state build did not finish"
        else:
            write_project(project, v2, 1_000_000)
            status(f"{fmt_rows(n)} rows: engine incremental plan")
            incremental = bench.engine_cmd(
                f"n{n}-engine-incremental-plan",
                ["plan", "--out", "plan-v2.json", "--max-rows", "0"],
                project,
                env,
            )
            incremental.extra["summary"] = summary_line(incremental.log)
            (project / "plan-v2.json").unlink(missing_ok=True)
        results.append(incremental)

    duck_incremental = Measured(label=f"n{n}-duckdb-incremental")
    if duck_first.ok:
        status(f"{fmt_rows(n)} rows: DuckDB incremental")
        duck_incremental = bench.duckdb(
            f"n{n}-duckdb-incremental",
            v2,
            base / "duckdb-v1" / "snapshot.parquet",
            base / "duckdb-v2",
        )
    else:
        duck_incremental.skipped = "the DuckDB backfill did not finish"
    results.append(duck_incremental)
    return results


def bench_apply(bench: Bench, n: int, rate_limit: int, repeats: int) -> list[Measured]:
    """Apply throughput of a first backfill of `n` rows: unthrottled (`repeats` times, each
    on a fresh project and sandbox, the run of median CPU reported with the range, since one
    run on a shared machine is noisy), then rate-limited once."""
    base = bench.root / f"apply{n}"
    data = base / "data"
    data.mkdir(parents=True, exist_ok=True)
    csv = data / "contacts.csv"
    import duckdb

    con = duckdb.connect()
    generate(con, csv, n, 1)
    con.close()
    results = []
    for limit in (None, rate_limit):
        runs = []
        for attempt in range(1 if limit else max(1, repeats)):
            name = f"apply{n}-" + (f"limit{limit}" if limit else f"unlimited-{attempt + 1}")
            measured = apply_once(bench, base, name, csv, n, limit)
            runs.append(measured)
            if not measured.ok:
                break
        ok = sorted((m for m in runs if m.ok), key=lambda m: m.cpu)
        if len(ok) < len(runs) or not ok:
            results.append(next(m for m in runs if not m.ok))
            continue
        median = ok[len(ok) // 2]
        median.extra["cpu_range"] = (ok[0].cpu, ok[-1].cpu, len(ok))
        results.append(median)
    return results


def apply_once(
    bench: Bench, base: Path, name: str, csv: Path, n: int, limit: int | None
) -> Measured:
    """Plans a first backfill of `csv` in a new project and measures its `engine apply`."""
    project = base / name
    with Sandbox(bench.engine, base / f"{name}-sandbox.log", rate_limit=limit) as sandbox:
        env = bench.sandbox_env(sandbox)
        write_project(project, csv, limit or 1_000_000)
        status(f"apply {fmt_rows(n)} rows, sandbox rate limit {limit or 'none'}: plan")
        plan = bench.engine_cmd(f"{name}-plan", ["plan", "--out", "plan.json"], project, env)
        if not plan.ok:
            plan.skipped = None
            return plan
        before = sandbox.get("/_sandbox/stats")
        sandbox_cpu = sandbox.cpu()
        status(f"apply {fmt_rows(n)} rows, sandbox rate limit {limit or 'none'}: apply")
        applied = bench.engine_cmd(name, ["apply", "plan.json"], project, env)
        after = sandbox.get("/_sandbox/stats")
        applied.extra.update(
            rows=n,
            limit=limit,
            sandbox_cpu=sandbox.cpu() - sandbox_cpu,
            requests=after["total_requests"] - before["total_requests"],
            writes=after["requests"].get("batch_upsert", 0)
            - before["requests"].get("batch_upsert", 0),
            rate_limited=after["rate_limited"] - before["rate_limited"],
        )
        return applied


def print_size_table(n: int, r: list[Measured]) -> None:
    first, duck_first, build, incremental, duck_incremental = r
    print(f"\n## {fmt_rows(n)} rows\n")
    print("| step | engine time | engine peak RSS | DuckDB time | DuckDB peak RSS | time engine/DuckDB | memory engine/DuckDB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, e, d in (
        ("first-backfill plan", first, duck_first),
        ("incremental plan", incremental, duck_incremental),
    ):
        print(
            f"| {name} | {e.time_text()} | {e.rss_text()} | {d.time_text()} | {d.rss_text()} "
            f"| {ratio(e, d, 'time')} | {ratio(e, d, 'memory')} |"
        )
    print()
    for m in (first, incremental):
        if m.extra.get("summary"):
            print(f"- engine {m.label.split('-', 2)[2]}: {m.extra['summary']}")
    for m in (duck_first, duck_incremental):
        if m.extra.get("counts"):
            counts = ", ".join(f"{k} {v:,}" for k, v in m.extra["counts"].items())
            print(f"- DuckDB {m.label.split('-', 2)[2]}: {counts}")
    steps = build.extra.get("steps", 1)
    rate = f", {n / build.wall:,.0f} rows/s, engine CPU {build.cpu / n * 1e6:,.1f} µs per row" if build.ok else ""
    print(
        f"- state build (`engine apply` of the backfill{f' in {steps} steps' if steps > 1 else ''}, "
        f"against a destination that keeps nothing): {build.time_text()}, peak RSS {build.rss_text()}{rate}"
    )
    if len(build.extra.get("step_rss_mb", [])) > 1:
        peaks = ", ".join(f"{mb:,.0f}" for mb in build.extra["step_rss_mb"])
        print(f"  peak RSS of each step (MB; step k plans k x {fmt_rows(build.extra.get('chunk', 0))} rows against the snapshot of the steps before): {peaks}")
    for m in (first, incremental, duck_first, duck_incremental, build):
        if m.skipped:
            continue
        if m.killed_at_kb is not None:
            why = (
                f"after {m.extra['timeout']:.0f} s (--timeout)"
                if "timeout" in m.extra
                else "past the memory limit (--mem-limit-gb)"
            )
            print(f"- {m.label} was killed {why}; log: {m.log}")
        elif m.returncode != 0:
            print(f"- {m.label} failed; log: {m.log}")


def print_apply_table(r: list[Measured]) -> None:
    print("\n## Apply throughput (first backfill, `engine apply plan.json`)\n")
    print("| rows | sandbox rate limit | time | rows/s | admitted requests/s | 429s | engine CPU per row | sandbox CPU per row | engine peak RSS |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for m in r:
        rows = m.extra.get("rows")
        if rows is None or not m.ok:
            print(f"| {m.label} | | {m.time_text()} | | | | | | {m.rss_text()} |")
            continue
        limit = m.extra["limit"]
        # Requests the sandbox admitted (a 429 writes nothing): the share of the limit used.
        rps = (m.extra["requests"] - m.extra["rate_limited"]) / m.wall
        limit_text = f"{limit} req/s" if limit else "none"
        rps_text = f"{rps:,.1f}" + (f" ({rps / limit:.0%} of the limit)" if limit else "")
        cpu_text = f"{m.cpu / rows * 1e6:,.1f} µs"
        low, high, runs = m.extra.get("cpu_range", (m.cpu, m.cpu, 1))
        if runs > 1:
            cpu_text += f" (median of {runs}: {low / rows * 1e6:,.1f}–{high / rows * 1e6:,.1f})"
        print(
            f"| {fmt_rows(rows)} | {limit_text} | {m.wall:.2f} s | {rows / m.wall:,.0f} | {rps_text} "
            f"| {m.extra['rate_limited']} | {cpu_text} | "
            f"{m.extra['sandbox_cpu'] / rows * 1e6:,.1f} µs | {m.rss_text()} |"
        )


def find_engine() -> Path:
    if os.environ.get("ENGINE_BIN"):
        return Path(os.environ["ENGINE_BIN"]).resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "release" / "engine"


def parse_sizes(text: str) -> list[int]:
    return [int(s.replace("_", "").replace(",", "")) for s in text.split() if s]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "duckdb-diff":
        csv, work = sys.argv[2], sys.argv[3]
        duckdb_diff(csv, sys.argv[4] if len(sys.argv) > 4 else None, work)
        return 0

    parser = argparse.ArgumentParser(
        description="Benchmarks of the release engine binary, with DuckDB doing the same diff.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The binary: $ENGINE_BIN, else $CARGO_TARGET_DIR/release/engine, else target/release/engine.",
    )
    parser.add_argument("--rows", default=None, help="sizes, e.g. '1000000 10000000' (the default) or 100000")
    parser.add_argument("--quick", action="store_true", help="100,000 rows and a 20,000-row apply: a few minutes")
    parser.add_argument("--apply-rows", type=int, default=None, help="rows of the apply-throughput runs (default 50,000; 20,000 with --quick; 0 skips them)")
    parser.add_argument("--apply-repeats", type=int, default=5, help="unthrottled apply runs; the one of median CPU is reported, with the range (default 5)")
    parser.add_argument("--rate-limit", type=int, default=5, help="the sandbox's (and the engine's) requests per second in the rate-limited apply (default 5)")
    parser.add_argument("--state-chunk", type=int, default=1_000_000, help="rows per `engine apply` step when building the incremental plan's snapshot (default 1,000,000)")
    parser.add_argument("--mem-limit-gb", type=float, default=10.0, help="kill a measured process past this RSS (default 10)")
    parser.add_argument("--timeout", type=float, default=1800, help="kill a measured process after this many seconds (default 1800)")
    parser.add_argument("--workdir", type=Path, default=None, help="where data and logs go (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    sizes = parse_sizes(args.rows) if args.rows else ([100_000] if args.quick else [1_000_000, 10_000_000])
    apply_rows = args.apply_rows if args.apply_rows is not None else (20_000 if args.quick else 50_000)
    engine = find_engine()
    if not engine.is_file():
        print(f"error: no engine binary at {engine}; build it with `cargo build --release -p engine-cli` or set ENGINE_BIN", file=sys.stderr)
        return 1
    try:
        import duckdb  # noqa: F401
    except ImportError:
        print("error: the `duckdb` Python package is missing: `pip install duckdb`", file=sys.stderr)
        return 1

    root = args.workdir or Path(tempfile.mkdtemp(prefix="engine-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBSPOT_")}
    env.setdefault("RUST_LOG", "warn")
    bench = Bench(engine=engine, root=root, mem_limit_kb=int(args.mem_limit_gb * 1024 * 1024), timeout=args.timeout, env=env)
    import duckdb

    started = time.monotonic()
    print(f"# engine benchmarks\n")
    print(f"- engine: {engine}")
    print(f"- DuckDB {duckdb.__version__} (Python {sys.version.split()[0]}), {os.cpu_count()} CPUs")
    print(f"- sizes: {', '.join(fmt_rows(n) for n in sizes)}; apply: {fmt_rows(apply_rows)} rows, rate limit {args.rate_limit} req/s")
    print(f"- memory watchdog: {args.mem_limit_gb:g} GB; work directory: {root}")
    print(f"- load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sys.stdout.flush()
    try:
        for n in sizes:
            results = bench_size(bench, n, args.state_chunk)
            print_size_table(n, results)
            sys.stdout.flush()
        if apply_rows > 0:
            print_apply_table(bench_apply(bench, apply_rows, args.rate_limit, args.apply_repeats))
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\nTotal: {time.monotonic() - started:,.0f} s (load average at the end: {load})")
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
