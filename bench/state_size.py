#!/usr/bin/env python3
"""The state's size over a sync's life, with the release `engine` binary and the sandbox.

    cargo build --release -p engine-cli      # the only build needed
    pip install duckdb                       # once (it generates the CSV files)
    python3 bench/state_size.py              # 1,000,000 rows, ten incremental applies
    python3 bench/state_size.py --rows 100000 --rounds 3

It applies a first backfill of N contacts to `engine sandbox hubspot`, then `--rounds`
incremental applies (each round gives 1% of the rows a new first name, the round before's
back its old one), then `engine state gc`, and prints `.engine/`'s size by part
(`engine state check`) after the backfill, after the incremental applies and after gc.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import TOKEN, Sandbox, find_engine, generate, write_project  # noqa: E402


def engine(binary: Path, args: list[str], project: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(binary), *args], cwd=project, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"`engine {' '.join(args)}` failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def size_lines(binary: Path, project: Path, env: dict[str, str]) -> str:
    text = engine(binary, ["state", "check"], project, env)
    start = text.index("size:")
    return "\n".join(line for line in text[start:].splitlines() if "consistent" not in line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    import duckdb

    binary = find_engine()
    if not binary.exists():
        print(f"error: no engine binary at {binary}; build it with `cargo build --release -p engine-cli`", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="engine-state-size-"))
    csv = work / "contacts.csv"
    project = work / "project"
    con = duckdb.connect()
    with Sandbox(binary, work / "sandbox.log") as sandbox:
        env = dict(os.environ, HUBSPOT_BASE_URL=sandbox.url, HUBSPOT_TOKEN=TOKEN, NO_COLOR="1")
        generate(con, csv, args.rows, 1)
        write_project(project, csv, 1_000_000)
        print(f"# State size: {args.rows:,} rows, {args.rounds} incremental applies\n")
        engine(binary, ["apply"], project, env)
        print(f"## After the first backfill\n\n```\n{size_lines(binary, project, env)}\n```\n")
        for round_ in range(1, args.rounds + 1):
            generate(con, csv, args.rows, 1, renamed=round_)
            engine(binary, ["apply"], project, env)
        print(f"## After {args.rounds} incremental applies\n\n```\n{size_lines(binary, project, env)}\n```\n")
        gc = engine(binary, ["state", "gc"], project, env)
        print(f"## After `engine state gc`\n\n```\n{gc.strip()}\n{size_lines(binary, project, env)}\n```")
    print(f"\n(work directory: {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
