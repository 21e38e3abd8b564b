#!/usr/bin/env python3
"""The orders workload as a SQL project, run by the release `lakeflow` binary, next to DuckDB
running the same SQL into its own file, in one invocation (issue 17); with --cluster, also
lakeflow's full run on a local Ballista cluster (issue 16).

    cargo build --release --features ballista --bin lakeflow
    PY=~/.cache/lakeflow-servers/venv/bin/python   # .ci/servers made it: it has `deltalake`
    $PY -m pip install duckdb
    $PY benches/sql_project.py --rows 5000000 --runs 3 [--cluster] [--bin PATH]

Input (generated once under --dir, default /tmp/lfsql/data-N, and kept): 20 CSV files of
orders (order_id, customer_id, order_date, amount, status) and a customers CSV (100,000 rows:
customer_id, segment, country); a 21st file with 5 % more orders is landed for the
incremental run. The pipeline: bronze_orders (streaming table over the landing files) ->
silver_orders (streaming table, two drop rules: completed, amount > 0) -> gold_daily_revenue
(per day) and gold_daily_country_revenue (silver joined with the customers table, per day
and country); customers is a materialized view over its CSV.

Scenarios, each its own process, timed from start to exit (wall) with its peak RSS
(getrusage of that child):
  full         lakeflow run into an empty storage
  nothing      lakeflow run again, nothing new
  incremental  the 21st file lands, lakeflow run
  duckdb       DuckDB (the Python package) runs the same SQL into an empty database file
  cluster      (--cluster) lakeflow run --engine on 1 scheduler + 2 executors, empty storage
The medians of --runs rounds are printed; lakeflow's gold tables are checked against DuckDB's.
"""
import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

FILES = 20
CUSTOMERS = 100_000

SPEC = """name: orders
storage: store
configuration:
  landing: {landing}
  customers: {customers}
libraries:
  - glob:
      include: transformations/**
"""

SQL = {
    "01_bronze.sql": """CREATE STREAMING TABLE bronze_orders
AS SELECT * FROM STREAM read_files('${landing}', format => 'csv', header => true, inferColumnTypes => true);

CREATE MATERIALIZED VIEW customers
AS SELECT * FROM read_files('${customers}', format => 'csv', header => true, inferColumnTypes => true);
""",
    "02_silver.sql": """CREATE STREAMING TABLE silver_orders (
  CONSTRAINT completed EXPECT (status = 'completed') ON VIOLATION DROP ROW,
  CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION DROP ROW
) AS SELECT * FROM STREAM(bronze_orders);
""",
    "03_gold.sql": """CREATE MATERIALIZED VIEW gold_daily_revenue AS
SELECT order_date, count(*) AS orders, sum(amount) AS revenue
FROM silver_orders GROUP BY order_date;

CREATE MATERIALIZED VIEW gold_daily_country_revenue AS
SELECT o.order_date, c.country, count(*) AS orders, sum(o.amount) AS revenue
FROM silver_orders o JOIN customers c ON o.customer_id = c.customer_id
GROUP BY o.order_date, c.country;
""",
}

DUCKDB_SQL = """
CREATE TABLE bronze_orders AS SELECT * FROM read_csv('{landing}/*.csv', header = true);
CREATE TABLE customers AS SELECT * FROM read_csv('{customers}', header = true);
CREATE TABLE silver_orders AS SELECT *
  FROM bronze_orders WHERE status = 'completed' AND amount > 0;
CREATE TABLE gold_daily_revenue AS SELECT order_date, count(*) AS orders, sum(amount) AS revenue
  FROM silver_orders GROUP BY order_date;
CREATE TABLE gold_daily_country_revenue AS
  SELECT o.order_date, c.country, count(*) AS orders, sum(o.amount) AS revenue
  FROM silver_orders o JOIN customers c ON o.customer_id = c.customer_id
  GROUP BY o.order_date, c.country;
"""


def generate(data, rows):
    done = os.path.join(data, "_complete")
    if os.path.exists(done):
        return
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(os.path.join(data, "landing"))
    os.makedirs(os.path.join(data, "extra"))
    rng = random.Random(0x5EED)
    countries = ["FR", "DE", "US", "JP", "BR", "IN", "GB", "ES"]
    segments = ["consumer", "smb", "enterprise", "public"]
    with open(os.path.join(data, "customers.csv"), "w") as f:
        f.write("customer_id,segment,country\n")
        for i in range(CUSTOMERS):
            f.write(f"{i},{rng.choice(segments)},{rng.choice(countries)}\n")
    statuses = ["completed"] * 5 + ["cancelled", "pending", "refunded", "test", "failed"]
    days = [f"2026-{m:02d}-{d:02d}" for m in range(1, 12) for d in range(1, 29)]

    def orders(path, ids):
        with open(path, "w") as f:
            f.write("order_id,customer_id,order_date,amount,status\n")
            lines = []
            for i in ids:
                amount = round(rng.uniform(-20, 500), 2)
                lines.append(f"{i},{rng.randrange(CUSTOMERS)},{rng.choice(days)},{amount},{rng.choice(statuses)}\n")
                if len(lines) == 10000:
                    f.writelines(lines)
                    lines = []
            f.writelines(lines)

    per_file = -(-rows // FILES)
    start = 0
    for n in range(FILES):
        end = min(start + per_file, rows)
        orders(os.path.join(data, "landing", f"orders-{n:03}.csv"), range(start, end))
        start = end
    orders(os.path.join(data, "extra", "orders-020.csv"), range(start, start + rows // 20))
    open(done, "w").write(f"{rows}\n")


def timed(argv, cwd, env=None):
    """Runs argv; returns (wall seconds, peak RSS MiB); fails on a non-zero exit."""
    started = time.monotonic()
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    err = child.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv} failed:\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def project(root, data):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "transformations"))
    landing = os.path.join(root, "landing")
    os.makedirs(landing)
    for name in os.listdir(os.path.join(data, "landing")):
        os.link(os.path.join(data, "landing", name), os.path.join(landing, name))
    with open(os.path.join(root, "lakeflow.yml"), "w") as f:
        f.write(SPEC.format(landing=landing, customers=os.path.join(data, "customers.csv")))
    for name, text in SQL.items():
        with open(os.path.join(root, "transformations", name), "w") as f:
            f.write(text)
    return landing


def gold(query_rows):
    """Rows as (keys and counts as text, revenue), sorted."""
    return sorted((tuple(str(v)[:10] for v in r[:-1]), float(r[-1])) for r in query_rows)


def same(got, want):
    return len(got) == len(want) and all(
        a[0] == b[0] and abs(a[1] - b[1]) <= 1e-9 * max(abs(a[1]), abs(b[1]), 1.0)
        for a, b in zip(got, want))


def lakeflow_gold(root, table):
    from deltalake import DeltaTable
    t = DeltaTable(os.path.join(root, "store", table)).to_pyarrow_table().to_pylist()
    cols = ["order_date", "orders", "revenue"] if table == "gold_daily_revenue" else ["order_date", "country", "orders", "revenue"]
    return gold([tuple(r[c] for c in cols) for r in t])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def start_cluster(binary, work):
    scheduler = free_port()
    procs = [subprocess.Popen([binary, "cluster", "scheduler", "--bind", "127.0.0.1", "--port", str(scheduler)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_for(scheduler)
    for i in range(2):
        port, grpc = free_port(), free_port()
        procs.append(subprocess.Popen(
            [binary, "cluster", "executor", "--scheduler", f"127.0.0.1:{scheduler}", "--bind", "127.0.0.1",
             "--port", str(port), "--grpc-port", str(grpc), "--concurrent-tasks", "2",
             "--work-dir", os.path.join(work, f"executor-{i}")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(port)
    return procs, f"df://127.0.0.1:{scheduler}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dir", default="/tmp/lfsql")
    parser.add_argument("--bin", default=os.path.expanduser("~/.cache/lakeflow-release/release/lakeflow"))
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    import duckdb

    data = os.path.join(args.dir, f"data-{args.rows}")
    started = time.monotonic()
    generate(data, args.rows)
    print(f"input ready under {data} ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    root = os.path.join(args.dir, "project")
    scenarios = ["full", "nothing", "incremental", "duckdb"] + (["cluster"] if args.cluster else [])
    results = {s: [] for s in scenarios}
    cluster = start_cluster(args.bin, os.path.join(args.dir, "cluster")) if args.cluster else None
    duck_script = os.path.join(args.dir, "duckdb_run.py")
    try:
        for run in range(args.runs):
            landing = project(root, data)
            results["full"].append(timed([args.bin, "run", "--progress", "off"], root))
            results["nothing"].append(timed([args.bin, "run", "--progress", "off"], root))
            os.link(os.path.join(data, "extra", "orders-020.csv"), os.path.join(landing, "orders-020.csv"))
            results["incremental"].append(timed([args.bin, "run", "--progress", "off"], root))
            # DuckDB over the same 21 files, into an empty database file.
            db = os.path.join(args.dir, "duck.db")
            for p in (db, db + ".wal"):
                if os.path.exists(p):
                    os.remove(p)
            with open(duck_script, "w") as f:
                f.write("import duckdb, sys\ncon = duckdb.connect(sys.argv[1])\ncon.execute(sys.argv[2])\ncon.close()\n")
            results["duckdb"].append(timed([sys.executable, duck_script, db,
                                            DUCKDB_SQL.format(landing=landing, customers=os.path.join(data, "customers.csv"))], args.dir))
            con = duckdb.connect(db, read_only=True)
            for table in ["gold_daily_revenue", "gold_daily_country_revenue"]:
                cols = "order_date, orders, revenue" if table == "gold_daily_revenue" else "order_date, country, orders, revenue"
                want = gold(con.execute(f"SELECT {cols} FROM {table}").fetchall())
                got = lakeflow_gold(root, table)
                if not same(got, want):
                    sys.exit(f"{table}: lakeflow and DuckDB differ ({len(got)} vs {len(want)} rows)")
            con.close()
            if cluster:
                shutil.rmtree(os.path.join(root, "store"))
                os.remove(os.path.join(landing, "orders-020.csv"))
                results["cluster"].append(timed([args.bin, "run", "--progress", "off", "--engine", cluster[1]], root))
            print(f"round {run + 1}: " + ", ".join(f"{s} {results[s][-1][0]:.2f} s" for s in scenarios), file=sys.stderr)
    finally:
        if cluster:
            for p in cluster[0]:
                p.send_signal(signal.SIGKILL)
                p.wait()
    full = statistics.median(w for w, _ in results["full"])
    duck = statistics.median(w for w, _ in results["duckdb"])
    print(f"\n{args.rows} orders in {FILES} files (+{args.rows // 20} incremental), {CUSTOMERS} customers; median of {args.runs}")
    print("| scenario | wall time | vs full run | vs DuckDB | peak RSS |")
    print("|---|---|---|---|---|")
    for s in scenarios:
        wall = statistics.median(w for w, _ in results[s])
        rss = max(r for _, r in results[s])
        print(f"| {s} | {wall:.2f} s | {wall / full:.2f}x | {wall / duck:.2f}x | {rss:.0f} MiB |")


if __name__ == "__main__":
    main()
