"""A real SQLite database under a query mix: schemas, indexes and write amplification.

Not a model: each run builds an in-memory SQLite database of users, products and
orders and runs real queries against it. Data, plans, rows and results are
deterministic for a seed; only the timings are measured, and vary.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
import zlib
from bisect import bisect_right
from itertools import accumulate
from typing import Any

from .base import Command, CommandError, Engine, Event, Metric, Param, Window

SCHEMAS = ("normalized", "denormalized", "app_join", "document")
INDEXES = {
    "orders_user_id": ("orders", "user_id"),
    "orders_product_id": ("orders", "product_id"),
    "users_email": ("users", "email"),
}
QUERIES = ("user_orders", "product_buyers", "user_by_email", "top_products")
MIX = (0.4, 0.3, 0.2, 0.1)  # share of each query above in the mix
BUCKET = math.log(1.05)  # latency histogram: 5 % wide buckets from 1 microsecond

FIRST = (
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Emma",
    "Femi",
    "Grace",
    "Hugo",
    "Ines",
    "Jon",
    "Kira",
    "Liam",
    "Maya",
    "Nils",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
)
LAST = (
    "Abe",
    "Brook",
    "Castro",
    "Diaz",
    "Evans",
    "Fox",
    "Gupta",
    "Hale",
    "Ito",
    "Jones",
    "Khan",
    "Lee",
    "Moreau",
    "Novak",
    "Okafor",
    "Park",
    "Rossi",
    "Silva",
)
CITIES = (
    "Lagos",
    "Lima",
    "Lyon",
    "Leeds",
    "Osaka",
    "Oslo",
    "Pune",
    "Porto",
    "Quito",
    "Seoul",
    "Tunis",
    "Turin",
)
ADJECTIVES = ("Blue", "Quiet", "Rapid", "Solid", "Tiny", "Bright", "Smart", "Vintage")
NOUNS = (
    "Kettle",
    "Lamp",
    "Chair",
    "Drone",
    "Mug",
    "Router",
    "Desk",
    "Speaker",
    "Camera",
    "Backpack",
    "Clock",
    "Bottle",
    "Keyboard",
)

SCHEMA_DDL = {
    "normalized": (
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "email TEXT NOT NULL, city TEXT NOT NULL)",
        "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "price_cents INTEGER NOT NULL)",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
        "product_id INTEGER NOT NULL, quantity INTEGER NOT NULL, day INTEGER NOT NULL)",
    ),
    "denormalized": (
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "email TEXT NOT NULL, city TEXT NOT NULL)",
        "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "price_cents INTEGER NOT NULL)",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
        "user_name TEXT NOT NULL, product_id INTEGER NOT NULL, "
        "product_name TEXT NOT NULL, quantity INTEGER NOT NULL, day INTEGER NOT NULL)",
    ),
    "document": (
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "email TEXT NOT NULL, city TEXT NOT NULL, orders TEXT NOT NULL)",
        "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "price_cents INTEGER NOT NULL)",
    ),
}
SCHEMA_DDL["app_join"] = SCHEMA_DDL["normalized"]

# A statement is SQL with placeholders where the rows it examines are counted:
# {x} inside a WHERE clause ("examined(col) AND ..."), {w} where there is none.
# The shown and timed SQL has them empty; a second, counting run fills them in.
Stmt = tuple[str, dict[str, tuple[str, ...]]]
BY_EMAIL: Stmt = (
    "SELECT id, name, city FROM users WHERE {x}email = ?",
    {"x": ("rowid",)},
)
STATEMENTS: dict[tuple[str, str], tuple[Stmt, ...]] = {
    ("normalized", "user_orders"): (
        (
            "SELECT o.id, p.name, o.quantity FROM orders o "
            "JOIN products p ON p.id = o.product_id WHERE {x}o.user_id = ? ORDER BY o.id",
            {"x": ("o.rowid", "p.rowid")},
        ),
    ),
    ("normalized", "product_buyers"): (
        (
            "SELECT DISTINCT u.id, u.name FROM orders o JOIN users u ON u.id = o.user_id "
            "WHERE {x}o.product_id = ? ORDER BY u.id",
            {"x": ("o.rowid", "u.rowid")},
        ),
    ),
    ("normalized", "top_products"): (
        (
            "SELECT p.id, p.name, SUM(o.quantity) AS total FROM orders o "
            "JOIN products p ON p.id = o.product_id {w} GROUP BY p.id "
            "ORDER BY total DESC, p.id LIMIT 5",
            {"w": ("o.rowid", "p.rowid")},
        ),
    ),
    ("denormalized", "user_orders"): (
        (
            "SELECT id, product_name, quantity FROM orders WHERE {x}user_id = ? "
            "ORDER BY id",
            {"x": ("rowid",)},
        ),
    ),
    ("denormalized", "product_buyers"): (
        (
            "SELECT DISTINCT user_id, user_name FROM orders WHERE {x}product_id = ? "
            "ORDER BY user_id",
            {"x": ("rowid",)},
        ),
    ),
    ("denormalized", "top_products"): (
        (
            "SELECT product_id, MAX(product_name), SUM(quantity) AS total FROM orders {w} "
            "GROUP BY product_id ORDER BY total DESC, product_id LIMIT 5",
            {"w": ("rowid",)},
        ),
    ),
    ("app_join", "user_orders"): (
        (
            "SELECT id, product_id, quantity FROM orders WHERE {x}user_id = ? ORDER BY id",
            {"x": ("rowid",)},
        ),
        ("SELECT id, name FROM products WHERE {x}id IN ({in})", {"x": ("rowid",)}),
    ),
    ("app_join", "product_buyers"): (
        (
            "SELECT DISTINCT user_id FROM orders WHERE {x}product_id = ?",
            {"x": ("rowid",)},
        ),
        (
            "SELECT id, name FROM users WHERE {x}id IN ({in}) ORDER BY id",
            {"x": ("rowid",)},
        ),
    ),
    ("app_join", "top_products"): (
        (
            "SELECT product_id, SUM(quantity) AS total FROM orders {w} "
            "GROUP BY product_id ORDER BY total DESC, product_id LIMIT 5",
            {"w": ("rowid",)},
        ),
        ("SELECT id, name FROM products WHERE {x}id IN ({in})", {"x": ("rowid",)}),
    ),
    ("document", "user_orders"): (
        (
            "SELECT json_extract(j.value, '$.id') AS id, "
            "json_extract(j.value, '$.product_name'), json_extract(j.value, '$.quantity') "
            "FROM users u, json_each(u.orders) j WHERE {x}u.id = ? ORDER BY id",
            {"x": ("u.rowid", "j.key")},
        ),
    ),
    ("document", "product_buyers"): (
        (
            "SELECT u.id, u.name FROM users u WHERE {x}EXISTS (SELECT 1 FROM "
            "json_each(u.orders) j WHERE {y}json_extract(j.value, '$.product_id') = ?) "
            "ORDER BY u.id",
            {"x": ("u.rowid",), "y": ("j.key",)},
        ),
    ),
    ("document", "top_products"): (
        (
            "SELECT json_extract(j.value, '$.product_id') AS pid, "
            "MAX(json_extract(j.value, '$.product_name')), "
            "SUM(json_extract(j.value, '$.quantity')) AS total "
            "FROM users u, json_each(u.orders) j {w} GROUP BY pid "
            "ORDER BY total DESC, pid LIMIT 5",
            {"w": ("u.rowid", "j.key")},
        ),
    ),
}
for _schema in SCHEMAS:
    STATEMENTS[(_schema, "user_by_email")] = (BY_EMAIL,)


def statement_sql(stmt: Stmt, counting: bool = False, in_list: int = 0) -> str:
    """Return the SQL of ``stmt``, with the row-counting terms when ``counting``."""
    template, columns = stmt
    fill: dict[str, str] = {"in": ", ".join("?" * in_list)}
    for name, cols in columns.items():
        terms = [f"examined({c})" for c in cols] if counting else []
        if name == "w":
            fill[name] = "WHERE " + " AND ".join(terms) if terms else ""
        else:
            fill[name] = "".join(f"{t} AND " for t in terms)
    return " ".join(template.format(**fill).split())


def product_name(product: int) -> str:
    """Return the catalogue name of product ``product`` (ids from 1)."""
    a = ADJECTIVES[product % len(ADJECTIVES)]
    n = NOUNS[(product // len(ADJECTIVES)) % len(NOUNS)]
    return f"{a} {n} {product}"


class SqlLabEngine(Engine):
    kind = "sqllab"
    title = "SQL lab: schemas, indexes and joins on a real database"
    description = (
        "A real in-memory SQLite database of users, products and orders answers a "
        "mix of queries. Compare a normalized schema (JOINs), a denormalized one "
        "(names copied into orders), joins done in the application, and orders "
        "embedded as JSON documents; add indexes and watch the query plans change "
        "from SCAN to SEARCH; rename a product and count the rows written."
    )
    bench_unit = "queries"
    # Real query times, read from the clock: a replay measures them again.
    wall_clock_metrics = (
        "mean_query_ms",
        "p95_query_ms",
        "slow_queries",
        "query_ms_recent",
        "mean_query_ms_recent",
    )
    params = (
        Param(
            "users",
            "int",
            1_000,
            20,
            4_000,
            unit="users",
            label="Users",
            help="Rows in the users table.",
        ),
        Param(
            "products",
            "int",
            100,
            5,
            1_000,
            unit="products",
            label="Products",
            help="Rows in the products table.",
        ),
        Param(
            "orders_per_user",
            "int",
            5,
            1,
            8,
            unit="orders",
            label="Orders per user",
            help="Orders in the database per user on average (orders = users x this).",
        ),
        Param(
            "schema",
            "choice",
            "normalized",
            choices=SCHEMAS,
            label="Schema",
            help="normalized: JOINs; denormalized: names copied into orders; "
            "app_join: separate queries joined in Python; document: orders "
            "embedded as JSON in the user row.",
        ),
        Param(
            "query_rate",
            "float",
            20.0,
            1.0,
            50.0,
            unit="queries/s",
            step=1,
            label="Query rate",
            help="Queries per simulated second (Poisson).",
        ),
        Param(
            "rename_share",
            "float",
            0.0,
            0.0,
            0.5,
            step=0.05,
            label="Renames",
            help="Share of operations that rename a product (an update that must "
            "reach every copy of the name).",
        ),
        Param(
            "slow_ms",
            "float",
            1.0,
            0.1,
            1_000.0,
            unit="ms",
            step=0.5,
            label="Slow query threshold",
            help="Queries slower than this are reported as slow.",
        ),
    )
    index_arg = Param(
        "index",
        "choice",
        "orders_product_id",
        choices=tuple(INDEXES),
        label="Index",
        help="orders_user_id, orders_product_id or users_email.",
    )
    commands = (
        Command(
            "add_index", "Add index", "Create a secondary index.", args=(index_arg,)
        ),
        Command(
            "drop_index", "Drop index", "Drop a secondary index.", args=(index_arg,)
        ),
        Command(
            "switch_schema",
            "Switch schema",
            "Migrate the data to another schema (the indexes that still apply "
            "are rebuilt).",
            args=(
                Param(
                    "schema",
                    "choice",
                    "denormalized",
                    choices=SCHEMAS,
                    label="Schema",
                    help="The schema to migrate to.",
                ),
            ),
        ),
        Command(
            "rename_product",
            "Rename product",
            "Rename a product: every copy of its name must be rewritten.",
            args=(
                Param(
                    "product",
                    "int",
                    1,
                    1,
                    1_000,
                    label="Product",
                    help="The product's id, from 1.",
                ),
            ),
        ),
    )
    quiet_events = ("query.executed",)
    event_types = (
        "query.executed",
        "query.slow",
        "sql.index_added",
        "sql.index_dropped",
        "sql.schema_switched",
        "sql.product_renamed",
        "sql.rebuilt",
    )
    narration = {
        "query.slow": "A slow {query} query took {ms} ms",
        "sql.index_added": "Index {index} added in {ms} ms",
        "sql.index_dropped": "Index {index} dropped",
        "sql.schema_switched": "The schema changed from {from} to {to} in {ms} ms",
        "sql.product_renamed": (
            "Product {product} is now called {name}: {rows_written#row} rewritten"
        ),
        "sql.rebuilt": (
            "The database was rebuilt: {users} users, {products} products, {orders} "
            "orders"
        ),
    }
    metric_specs = (
        Metric("queries", "Queries", "queries"),
        Metric("queries_per_s", "Query rate", "queries/s"),
        Metric(
            "mean_query_ms",
            "Mean query time",
            "ms",
            help="Measured on this machine: real and variable.",
        ),
        Metric(
            "p95_query_ms",
            "95th percentile query time",
            "ms",
            help="Measured, to within 5 %.",
        ),
        Metric(
            "rows_examined",
            "Rows examined per query",
            "rows",
            help="Table rows and JSON elements the plans visited, counted.",
        ),
        Metric("rows_returned", "Rows returned per query", "rows"),
        Metric("updates", "Updates", "updates"),
        Metric(
            "rows_written_per_update",
            "Rows written per rename",
            "rows",
            help="Rows each product rename rewrote: one in a normalized "
            "schema, one per copy of the name otherwise.",
        ),
        Metric("slow_queries", "Slow queries", "queries"),
        Metric("schema", "Schema"),
        Metric("db_kb", "Database size", "KiB"),
        Metric("orders", "Orders", "orders"),
        Metric("indexes", "Indexes", summary=False),
        Metric("query_names", "Queries", summary=False),
        Metric("query_ms_recent", "Time per query (last 3 s)", "ms", summary=False),
        Metric(
            "rows_examined_recent",
            "Rows examined per query (last 3 s)",
            "rows",
            summary=False,
        ),
        Metric(
            "mean_query_ms_recent", "Mean query time (last 3 s)", "ms", summary=False
        ),
        Metric("latest_plan", "Latest query plan", summary=False),
    )
    derived = ("_cdf", "_plans", "_counted")

    # State: the database travels in the snapshot ------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("conn", None)
        state["db"] = self.conn.serialize()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        db = state.pop("db")
        super().__setstate__(state)
        self._connect()
        self.conn.deserialize(db)

    def _connect(self) -> None:
        # No statement cache: a cached EXPLAIN QUERY PLAN statement keeps showing a
        # dropped index, and plans are what students read here.
        self.conn = sqlite3.connect(
            ":memory:",
            isolation_level=None,
            check_same_thread=False,
            cached_statements=0,
        )
        self.conn.create_function("examined", 1, self._examine)

    def _examine(self, _value: object) -> int:
        self.examined_count += 1
        return 1

    def rebuild(self) -> None:
        weights = [1.0 / (i + 1) for i in range(self.p["products"])]
        self._cdf = list(accumulate(weights))
        self._plans: dict[tuple[str, str, int], list[str]] = {}
        # rows examined per statement and arguments: the counting run is only
        # instrumentation, and its answer holds until rows are loaded afresh or
        # the indexes change (a rename rewrites names, never which rows are read)
        self._counted: dict[tuple[str, str, int, tuple], int] = {}

    def _forget(self) -> None:
        """Drop the cached plans and row counts (the data or the indexes changed)."""
        self._plans.clear()
        self._counted.clear()

    # Building ----------------------------------------------------------------

    def setup(self) -> None:
        self.examined_count = 0
        self.renames = 0
        self.indexes: list[str] = []
        self.window = Window(span=3.0)
        self.latest_plan = ""
        self._connect()
        self._generate()
        self.next_query = self.rng.expovariate(self.p["query_rate"])
        self.reset_stats()

    def reset_stats(self) -> None:
        self.since = self.now
        self.queries = 0
        self.total_ms = 0.0
        self.histogram: dict[int, int] = {}
        self.examined_total = 0
        self.returned_total = 0
        self.updates = 0
        self.written_total = 0
        self.slow = 0

    def _generate(self) -> None:
        """Draw a fresh data set from the seeded generator and load it."""
        rand = self.rng.random
        randrange = self.rng.randrange
        users = []
        for uid in range(1, self.p["users"] + 1):
            first, last = FIRST[randrange(len(FIRST))], LAST[randrange(len(LAST))]
            email = f"{first}.{last}{uid}@example.com".lower()
            users.append(
                (uid, f"{first} {last}", email, CITIES[randrange(len(CITIES))])
            )
        products = [
            (pid, product_name(pid), 100 * (5 + randrange(200)))
            for pid in range(1, self.p["products"] + 1)
        ]
        cdf = self._cdf
        total = cdf[-1]
        n_users = self.p["users"]
        orders = []
        for oid in range(1, n_users * self.p["orders_per_user"] + 1):
            product = min(bisect_right(cdf, rand() * total), len(cdf) - 1) + 1
            orders.append(
                (oid, 1 + randrange(n_users), product, 1 + randrange(5), randrange(365))
            )
        self._load(self.p["schema"], users, products, orders)

    def _load(
        self,
        schema: str,
        users: list[tuple],
        products: list[tuple],
        orders: list[tuple],
    ) -> None:
        conn = self.conn
        conn.execute("BEGIN")
        for table in ("orders", "products", "users"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        for ddl in SCHEMA_DDL[schema]:
            conn.execute(ddl)
        conn.executemany("INSERT INTO products VALUES (?, ?, ?)", products)
        if schema == "document":
            names = {pid: name for pid, name, _ in products}
            docs: dict[int, list[dict[str, Any]]] = {u[0]: [] for u in users}
            for oid, uid, pid, qty, day in orders:
                docs[uid].append(
                    {
                        "id": oid,
                        "product_id": pid,
                        "product_name": names[pid],
                        "quantity": qty,
                        "day": day,
                    }
                )
            conn.executemany(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                [(*u, json.dumps(docs[u[0]], separators=(",", ":"))) for u in users],
            )
        else:
            conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", users)
        if schema == "denormalized":
            user_names = {u[0]: u[1] for u in users}
            product_names = {p[0]: p[1] for p in products}
            conn.executemany(
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (oid, uid, user_names[uid], pid, product_names[pid], qty, day)
                    for oid, uid, pid, qty, day in orders
                ],
            )
        elif schema != "document":
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", orders)
        for name in self.indexes:
            if self._applies(name, schema):
                table, column = INDEXES[name]
                conn.execute(f"CREATE INDEX idx_{name} ON {table}({column})")
        conn.execute("COMMIT")
        conn.execute("VACUUM")
        self._forget()

    def _export(self) -> tuple[list[tuple], list[tuple], list[tuple]]:
        """Return the data as plain rows (users, products, orders), whatever the schema."""
        conn = self.conn
        products = conn.execute(
            "SELECT id, name, price_cents FROM products ORDER BY id"
        ).fetchall()
        if self.p["schema"] == "document":
            users, orders = [], []
            for uid, name, email, city, doc in conn.execute(
                "SELECT id, name, email, city, orders FROM users ORDER BY id"
            ):
                users.append((uid, name, email, city))
                orders += [
                    (o["id"], uid, o["product_id"], o["quantity"], o["day"])
                    for o in json.loads(doc)
                ]
            orders.sort()
            return users, products, orders
        users = conn.execute(
            "SELECT id, name, email, city FROM users ORDER BY id"
        ).fetchall()
        orders = conn.execute(
            "SELECT id, user_id, product_id, quantity, day FROM orders ORDER BY id"
        ).fetchall()
        return users, products, orders

    def _present(self) -> list[str]:
        """Return the secondary indexes the current schema has."""
        return [i for i in self.indexes if self._applies(i, self.p["schema"])]

    @staticmethod
    def _applies(index: str, schema: str) -> bool:
        return schema != "document" or INDEXES[index][0] != "orders"

    # Queries -----------------------------------------------------------------

    def _plan_of(self, key: tuple[str, str, int], sql: str, args: tuple) -> list[str]:
        plan = self._plans.get(key)
        if plan is None:
            rows = self.conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
            depth: dict[int, int] = {0: -1}
            plan = []
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                plan.append("  " * depth[node] + detail)
            self._plans[key] = plan
        return plan

    def query(self, name: str, arg: Any = None) -> dict[str, Any]:
        """Run query ``name`` for ``arg`` in the current schema; return what happened.

        The statements run once timed, as shown; then once more with row-counting
        terms (the plans are the same) to count the rows they examine.
        """
        schema = self.p["schema"]
        stmts = STATEMENTS[(schema, name)]
        conn = self.conn
        ran: list[tuple[Stmt, tuple, int]] = []

        def run(i: int, args: tuple, in_list: int = 0) -> list[tuple]:
            ran.append((stmts[i], args, in_list))
            return conn.execute(
                statement_sql(stmts[i], False, in_list), args
            ).fetchall()

        start = time.perf_counter()
        result = self._answer(schema, name, arg, run)
        ms = (time.perf_counter() - start) * 1000
        examined = 0
        plans = []
        counted = self._counted
        for i, (stmt, args, in_list) in enumerate(ran):
            key = (schema, name, i, args)
            if key not in counted:
                if len(counted) >= 5_000:
                    counted.clear()
                self.examined_count = 0
                conn.execute(statement_sql(stmt, True, in_list), args).fetchall()
                counted[key] = self.examined_count
            examined += counted[key]
            plans.append(
                self._plan_of(
                    (schema, name, i), statement_sql(stmt, False, in_list), args
                )
            )
        return {
            "query": name,
            "schema": schema,
            "sql": [statement_sql(stmt, False, n) for stmt, _, n in ran],
            "plan": plans,
            "rows": len(result),
            "examined": examined,
            "result": result,
            "ms": ms,
        }

    @staticmethod
    def _answer(schema: str, name: str, arg: Any, run: Any) -> list[tuple]:
        """Return the answer to query ``name`` as a sorted list of plain tuples."""
        if name == "user_by_email" or schema != "app_join":
            return [tuple(r) for r in run(0, () if arg is None else (arg,))]
        if name == "user_orders":
            orders = run(0, (arg,))
            ids = sorted({pid for _, pid, _ in orders})
            names = dict(run(1, tuple(ids), len(ids))) if ids else {}
            return [(oid, names[pid], qty) for oid, pid, qty in orders]
        if name == "product_buyers":
            buyers = sorted(uid for (uid,) in run(0, (arg,)))
            return (
                [tuple(r) for r in run(1, tuple(buyers), len(buyers))] if buyers else []
            )
        top = run(0, ())
        ids = sorted(pid for pid, _ in top)
        names = dict(run(1, tuple(ids), len(ids))) if ids else {}
        return [(pid, names[pid], total) for pid, total in top]

    def _draw(self) -> tuple[str, Any]:
        """Draw the next operation of the mix and its argument."""
        rand = self.rng.random
        if self.p["rename_share"] and rand() < self.p["rename_share"]:
            return "rename_product", 1 + self.rng.randrange(self.p["products"])
        u = rand()
        acc = 0.0
        name = QUERIES[-1]
        for candidate, share in zip(QUERIES, MIX):
            acc += share
            if u < acc:
                name = candidate
                break
        if name == "user_orders":
            return name, 1 + self.rng.randrange(self.p["users"])
        if name == "product_buyers":
            return name, 1 + self.rng.randrange(self.p["products"])
        if name == "user_by_email":
            uid = 1 + self.rng.randrange(self.p["users"])
            row = self.conn.execute("SELECT email FROM users WHERE id = ?", (uid,))
            return name, row.fetchone()[0]
        return name, None

    def run_until(self, end: float) -> list[Event]:
        t = self.next_query
        rate = self.p["query_rate"]
        slow_ms = self.p["slow_ms"]
        latest: dict[str, Event] = {}
        events: list[Event] = []
        amounts: dict[str, float] = {}
        while t <= end:
            name, arg = self._draw()
            self.processed += 1
            if name == "rename_product":
                events += self._rename(t, arg)
                t += self.rng.expovariate(rate)
                continue
            run = self.query(name, arg)
            ms = run["ms"]
            self.queries += 1
            self.total_ms += ms
            bucket = max(0, int(math.log(max(ms, 1e-3) / 1e-3) / BUCKET))
            self.histogram[bucket] = self.histogram.get(bucket, 0) + 1
            self.examined_total += run["examined"]
            self.returned_total += run["rows"]
            for key, amount in (
                (f"n_{name}", 1),
                (f"ms_{name}", ms),
                (f"ex_{name}", run["examined"]),
            ):
                amounts[key] = amounts.get(key, 0) + amount
            event = latest.get(name)
            executions = event["executions"] + 1 if event else 1
            latest[name] = {
                "type": "query.executed",
                "t": t,
                "query": name,
                "schema": run["schema"],
                "sql": run["sql"],
                "plan": run["plan"],
                "rows": run["rows"],
                "examined": run["examined"],
                "ms": ms,
                "executions": executions,
                "result_crc": zlib.crc32(repr(run["result"]).encode()),
            }
            self.latest_plan = "\n".join(
                f"{sql}\n" + "\n".join(plan)
                for sql, plan in zip(run["sql"], run["plan"])
            )
            if ms > slow_ms:
                self.slow += 1
                events.append(
                    {
                        "type": "query.slow",
                        "t": t,
                        "query": name,
                        "ms": ms,
                        "plan": run["plan"],
                    }
                )
            t += self.rng.expovariate(rate)
        self.next_query = t
        if amounts:
            self.window.add(self.now, **amounts)
        return [latest[name] for name in QUERIES if name in latest] + events

    # Commands ----------------------------------------------------------------

    def _rename(self, t: float, product: int) -> list[Event]:
        self.renames += 1
        name = f"{product_name(product)} Mk{self.renames}"
        conn = self.conn
        before = conn.total_changes
        schema = self.p["schema"]
        conn.execute("BEGIN")
        conn.execute("UPDATE products SET name = ? WHERE id = ?", (name, product))
        if schema == "denormalized":
            conn.execute(
                "UPDATE orders SET product_name = ? WHERE product_id = ?",
                (name, product),
            )
        elif schema == "document":
            changed = []
            for uid, doc in conn.execute(
                "SELECT id, orders FROM users WHERE EXISTS (SELECT 1 FROM "
                "json_each(users.orders) WHERE json_extract(value, '$.product_id') = ?)",
                (product,),
            ).fetchall():
                orders = json.loads(doc)
                for order in orders:
                    if order["product_id"] == product:
                        order["product_name"] = name
                changed.append((json.dumps(orders, separators=(",", ":")), uid))
            conn.executemany("UPDATE users SET orders = ? WHERE id = ?", changed)
        conn.execute("COMMIT")
        written = conn.total_changes - before
        self.updates += 1
        self.written_total += written
        return [
            {
                "type": "sql.product_renamed",
                "t": t,
                "product": product,
                "name": name,
                "rows_written": written,
            }
        ]

    def on_rename_product(self, product: int) -> list[Event]:
        if product > self.p["products"]:
            raise CommandError(
                "rename_product.product",
                f"rename_product: product "
                f"must be from 1 to {self.p['products']}; got {product}",
            )
        return self._rename(self.now, product)

    def on_add_index(self, index: str) -> list[Event]:
        schema = self.p["schema"]
        if not self._applies(index, schema):
            usable = [i for i in INDEXES if self._applies(i, schema)]
            raise CommandError(
                "add_index.index",
                f"add_index: the {schema} schema has "
                f"no orders table; indexes that apply: "
                f"{', '.join(usable)}",
            )
        if index in self.indexes:
            raise CommandError(
                "add_index.index",
                f"add_index: {index} exists already; "
                f"absent: {', '.join(i for i in INDEXES if i not in self.indexes)}",
            )
        table, column = INDEXES[index]
        sql = f"CREATE INDEX idx_{index} ON {table}({column})"
        start = time.perf_counter()
        self.conn.execute(sql)
        ms = (time.perf_counter() - start) * 1000
        self.indexes.append(index)
        self._forget()
        return [
            {
                "type": "sql.index_added",
                "t": self.now,
                "index": index,
                "sql": sql,
                "ms": ms,
            }
        ]

    def on_drop_index(self, index: str) -> list[Event]:
        if index not in self.indexes:
            present = ", ".join(self.indexes) or "none"
            raise CommandError(
                "drop_index.index",
                f"drop_index: there is no index {index}; indexes: {present}",
            )
        self.indexes.remove(index)
        self.conn.execute(f"DROP INDEX IF EXISTS idx_{index}")
        self._forget()
        return [{"type": "sql.index_dropped", "t": self.now, "index": index}]

    def on_switch_schema(self, schema: str) -> list[Event]:
        old = self.p["schema"]
        if schema == old:
            others = ", ".join(s for s in SCHEMAS if s != old)
            raise CommandError(
                "switch_schema.schema",
                f"switch_schema: the schema is {old} already; others: {others}",
            )
        return self._migrate(old, schema)

    def _migrate(self, old: str, schema: str) -> list[Event]:
        self.p["schema"] = old
        start = time.perf_counter()
        users, products, orders = self._export()
        self.p["schema"] = schema
        self._load(schema, users, products, orders)
        ms = (time.perf_counter() - start) * 1000
        return [
            {
                "type": "sql.schema_switched",
                "t": self.now,
                "from": old,
                "to": schema,
                "ms": ms,
                "indexes": self._present(),
            }
        ]

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        if name == "schema":
            if old != self.p["schema"]:
                return self._migrate(old, self.p["schema"])
            return None
        if name in ("users", "products", "orders_per_user"):
            self._generate()
            return [
                {
                    "type": "sql.rebuilt",
                    "t": self.now,
                    "users": self.p["users"],
                    "products": self.p["products"],
                    "orders": self._orders(),
                }
            ]
        if name == "query_rate":
            self.next_query = self.now + self.rng.expovariate(self.p["query_rate"])
        return None

    # Figures -----------------------------------------------------------------

    def _orders(self) -> int:
        return self.p["users"] * self.p["orders_per_user"]

    def _p95(self) -> float:
        if not self.queries:
            return 0.0
        need = 0.95 * self.queries
        seen = 0
        for bucket in sorted(self.histogram):
            seen += self.histogram[bucket]
            if seen >= need:
                return 1e-3 * math.exp((bucket + 1) * BUCKET)
        return 0.0

    def metrics(self) -> dict[str, Any]:
        n = self.queries
        w, now = self.window, self.now
        recent_n = [w.total(f"n_{q}", now) for q in QUERIES]
        recent_ms = [w.total(f"ms_{q}", now) for q in QUERIES]
        recent_ex = [w.total(f"ex_{q}", now) for q in QUERIES]
        total_n = sum(recent_n)
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        return {
            "queries": n,
            "queries_per_s": n / max(now - self.since, 1e-9),
            "mean_query_ms": self.total_ms / n if n else 0.0,
            "p95_query_ms": self._p95(),
            "rows_examined": self.examined_total / n if n else 0.0,
            "rows_returned": self.returned_total / n if n else 0.0,
            "updates": self.updates,
            "rows_written_per_update": (
                self.written_total / self.updates if self.updates else 0.0
            ),
            "slow_queries": self.slow,
            "schema": self.p["schema"],
            "db_kb": pages * page_size / 1024,
            "orders": self._orders(),
            "indexes": ", ".join(self._present()) or "none",
            "query_names": list(QUERIES),
            "query_ms_recent": [
                m / c if c else 0.0 for m, c in zip(recent_ms, recent_n)
            ],
            "rows_examined_recent": [
                e / c if c else 0.0 for e, c in zip(recent_ex, recent_n)
            ],
            "mean_query_ms_recent": sum(recent_ms) / total_n if total_n else 0.0,
            "latest_plan": self.latest_plan,
        }
