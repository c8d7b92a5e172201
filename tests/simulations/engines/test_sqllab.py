"""The SQL lab: a real SQLite database under a query mix.

Timings are real and vary from run to run, so nothing here asserts a time: the
tests check plans, rows examined and written, and results.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError
from simulations.engines.runner import make_step, run_headless
from simulations.engines.sqllab import QUERIES, SCHEMAS

from .golden import assert_golden, trace

SqlLab = get_engine("sqllab")
SMALL = {"users": 200, "products": 20, "orders_per_user": 3}
TIMED_METRICS = {
    "mean_query_ms",
    "p95_query_ms",
    "query_ms_recent",
    "mean_query_ms_recent",
    "slow_queries",
}


def untimed(frames):
    """Return ``frames`` without the measured times (and the slow-query reports)."""
    out = []
    for frame in frames:
        metrics = {k: v for k, v in frame["metrics"].items() if k not in TIMED_METRICS}
        events = [
            {k: v for k, v in e.items() if k != "ms"}
            for e in frame["events"]
            if e["type"] != "query.slow"
        ]
        out.append({**frame, "metrics": metrics, "events": events})
    return out


def answers(engine, users=range(1, 31), products=None):
    """Return the answers to every query for a fixed set of arguments."""
    products = products or range(1, engine.p["products"] + 1)
    emails = [r[0] for r in engine.conn.execute("SELECT email FROM users ORDER BY id")]
    return {
        "user_orders": [engine.query("user_orders", u)["result"] for u in users],
        "product_buyers": [
            engine.query("product_buyers", p)["result"] for p in products
        ],
        "user_by_email": [
            engine.query("user_by_email", e)["result"] for e in emails[:30]
        ],
        "top_products": engine.query("top_products")["result"],
    }


def orders_of(engine, product):
    return sum(1 for o in engine._export()[2] if o[2] == product)


def test_golden_plans_rows_and_results_through_indexes_schemas_and_renames():
    steps = [
        make_step(SqlLab, 1, "add_index", {"index": "orders_product_id"}),
        make_step(SqlLab, 2, "rename_product", {"product": 3}),
        make_step(SqlLab, 3, "switch_schema", {"schema": "denormalized"}),
        make_step(SqlLab, 4, "rename_product", {"product": 3}),
        make_step(SqlLab, 5, "switch_schema", {"schema": "document"}),
        make_step(SqlLab, 6, "switch_schema", {"schema": "app_join"}),
    ]
    frames = trace(
        SqlLab, {**SMALL, "query_rate": 10}, seed=7, steps=steps, frames=14, dt=0.5
    )
    events = [e for frame in frames for e in frame["events"]]
    assert {e["schema"] for e in events if e["type"] == "query.executed"} == set(
        SCHEMAS
    )
    assert_golden("sqllab", untimed(frames))


def test_add_index_turns_a_scan_into_a_search_using_the_index():
    engine = SqlLab(SMALL, seed=1)
    orders = SMALL["users"] * SMALL["orders_per_user"]
    matching = orders_of(engine, 2)
    before = engine.query("product_buyers", 2)
    assert before["plan"][0][0] == "SCAN o"
    # every order is read, then the buyer of each matching one by primary key
    assert before["examined"] == orders + matching
    events = engine.apply("add_index", {"index": "orders_product_id"})
    assert (
        events[0]["sql"] == "CREATE INDEX idx_orders_product_id ON orders(product_id)"
    )
    after = engine.query("product_buyers", 2)
    assert (
        after["plan"][0][0]
        == "SEARCH o USING INDEX idx_orders_product_id (product_id=?)"
    )
    assert after["examined"] == 2 * matching
    assert after["result"] == before["result"]
    email = engine.conn.execute("SELECT email FROM users WHERE id = 9").fetchone()[0]
    assert engine.query("user_by_email", email)["plan"] == [["SCAN users"]]
    engine.apply("add_index", {"index": "users_email"})
    lookup = engine.query("user_by_email", email)
    assert lookup["plan"] == [["SEARCH users USING INDEX idx_users_email (email=?)"]]
    assert lookup["examined"] == 1 and len(lookup["result"]) == 1
    engine.apply("drop_index", {"index": "orders_product_id"})
    assert engine.query("product_buyers", 2)["plan"][0][0] == "SCAN o"


@pytest.mark.parametrize(
    "indexes", [(), ("orders_user_id", "orders_product_id", "users_email")]
)
def test_every_schema_returns_the_same_answers(indexes):
    engine = SqlLab(SMALL, seed=3)
    for index in indexes:
        engine.apply("add_index", {"index": index})
    engine.apply("rename_product", {"product": 1})
    reference = answers(engine)
    assert any(reference["product_buyers"]) and any(reference["user_orders"])
    for schema in SCHEMAS[1:]:
        engine.apply("switch_schema", {"schema": schema})
        assert answers(engine) == reference, schema


def test_renaming_a_product_writes_one_row_per_copy_of_its_name():
    engine = SqlLab(SMALL, seed=2)
    product = 1
    copies = orders_of(engine, product)
    buyers = len(engine.query("product_buyers", product)["result"])
    assert copies > buyers > 1
    # normalized and app_join: the name lives only in products
    # denormalized: every order of the product carries a copy, plus the original
    # document: every user document holding an order of it is rewritten
    expected = {
        "normalized": 1,
        "app_join": 1,
        "denormalized": copies + 1,
        "document": buyers + 1,
    }
    for schema in SCHEMAS:
        if schema != engine.p["schema"]:
            engine.apply("switch_schema", {"schema": schema})
        engine.reset_stats()
        events = engine.apply("rename_product", {"product": product})
        assert events[0]["rows_written"] == expected[schema], schema
        figures = engine.metrics()
        assert figures["rows_written_per_update"] == expected[schema]
        assert figures["updates"] == 1
        name = events[0]["name"]
        top = {pid: pname for pid, pname, _ in engine.query("top_products")["result"]}
        assert top[product] == name


def test_a_restored_lab_has_its_own_copy_of_the_database():
    engine = SqlLab({**SMALL, "query_rate": 30}, seed=4)
    engine.advance(1.2)
    engine.apply("add_index", {"index": "orders_user_id"})
    engine.apply("rename_product", {"product": 5})
    engine.apply("switch_schema", {"schema": "document"})
    engine.advance(0.6)
    copy = SqlLab.restore(engine.snapshot())
    assert copy.conn is not engine.conn
    assert copy._export() == engine._export()
    copy.apply("rename_product", {"product": 6})
    assert copy._export() != engine._export()


def test_the_largest_database_keeps_a_snapshot_of_a_few_megabytes():
    biggest = {
        p.name: p.max
        for p in SqlLab.params
        if p.name in ("users", "products", "orders_per_user")
    }
    for schema in ("normalized", "document"):
        engine = SqlLab({**biggest, "schema": schema}, seed=1)
        for index in ("orders_user_id", "orders_product_id", "users_email"):
            if engine._applies(index, schema):
                engine.apply("add_index", {"index": index})
        assert len(engine.snapshot()) < 5_000_000


def test_the_mix_counts_queries_and_renames_as_its_benchmark_unit():
    assert SqlLab.bench_unit == "queries"
    params = {**SMALL, "schema": "denormalized", "rename_share": 0.2, "query_rate": 40}
    summary = run_headless(SqlLab, params, seed=1, duration=10, warmup=0)
    figures = summary.metrics
    assert figures["queries"] + figures["updates"] == pytest.approx(400, rel=0.2)
    assert figures["updates"] > 40
    # a denormalized rename rewrites every order of the product: many rows
    assert figures["rows_written_per_update"] > 10
    assert figures["rows_examined"] > figures["rows_returned"] > 0
    assert figures["mean_query_ms"] > 0 and figures["p95_query_ms"] > 0


def test_query_events_carry_the_plan_and_the_chart_gets_the_latest_one():
    engine = SqlLab(SMALL, seed=8)
    events = engine.advance(2)
    executed = [e for e in events if e["type"] == "query.executed"]
    assert {e["query"] for e in executed} == set(QUERIES)
    for event in executed:
        assert event["plan"] and all(isinstance(line, str) for line in event["plan"][0])
        assert len(event["sql"]) == len(event["plan"])
        assert "examined(" not in " ".join(event["sql"])
    plan = engine.metrics()["latest_plan"]
    assert "SELECT" in plan and ("SCAN" in plan or "SEARCH" in plan)


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("switch_schema"), st.sampled_from(SCHEMAS)),
            st.tuples(
                st.just("add_index"),
                st.sampled_from(["orders_user_id", "orders_product_id", "users_email"]),
            ),
            st.tuples(
                st.just("drop_index"),
                st.sampled_from(["orders_user_id", "orders_product_id", "users_email"]),
            ),
            st.tuples(st.just("rename_product"), st.integers(1, 8)),
        ),
        max_size=8,
    )
)
def test_migrations_indexes_and_renames_keep_every_row_and_every_answer(actions):
    params = {"users": 40, "products": 8, "orders_per_user": 2}
    engine = SqlLab(params, seed=6)
    reference = SqlLab(params, seed=6)
    original = engine._export()
    for command, value in actions:
        arg = (
            "product"
            if command == "rename_product"
            else ("schema" if command == "switch_schema" else "index")
        )
        try:
            engine.apply(command, {arg: value})
        except CommandError:
            continue
        if command == "rename_product":
            reference.apply(command, {arg: value})
    users, products, orders = engine._export()
    assert (users, orders) == (original[0], original[2])
    assert len(orders) == 80
    assert products == reference._export()[1]
    assert answers(engine, users=range(1, 41)) == answers(reference, users=range(1, 41))
    present = {
        r[0]
        for r in engine.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'"
        )
    }
    assert present == {
        f"idx_{i}" for i in engine.indexes if engine._applies(i, engine.p["schema"])
    }


def test_commands_name_the_indexes_schemas_and_products_that_apply_now():
    engine = SqlLab({**SMALL, "schema": "document"})
    with pytest.raises(CommandError) as info:
        engine.apply("add_index", {"index": "orders_user_id"})
    assert info.value.field == "add_index.index"
    assert "indexes that apply: users_email" in info.value.message
    with pytest.raises(CommandError) as info:
        engine.apply("drop_index", {"index": "users_email"})
    assert "indexes: none" in info.value.message
    with pytest.raises(CommandError) as info:
        engine.apply("switch_schema", {"schema": "document"})
    assert "others: normalized, denormalized, app_join" in info.value.message
    with pytest.raises(CommandError) as info:
        engine.apply("rename_product", {"product": 21})
    assert (info.value.field, "from 1 to 20" in info.value.message) == (
        "rename_product.product",
        True,
    )


def test_dropping_an_index_brings_the_scan_back_into_the_plan():
    from simulations.engines import get_engine

    engine = get_engine("sqllab")({}, seed=1)

    def user_orders_plans(events):
        # a plan per statement of the query, a line per step of each plan
        return [
            [line for statement in e["plan"] for line in statement]
            for e in events
            if e.get("type") == "query.executed" and "user_orders" in str(e)
        ]

    engine.apply("add_index", {"index": "orders_user_id"})
    assert (
        "SEARCH o USING INDEX idx_orders_user_id (user_id=?)"
        in user_orders_plans(engine.advance(2))[0]
    )
    engine.apply("drop_index", {"index": "orders_user_id"})
    assert "SCAN o" in user_orders_plans(engine.advance(2))[0]
