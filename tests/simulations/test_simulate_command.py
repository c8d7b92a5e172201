"""`manage.py simulate`: headless runs from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def simulate(*args):
    return subprocess.run(
        [sys.executable, "manage.py", "simulate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_json_output_is_one_object_with_the_summary():
    done = simulate(
        "cache", "--set", "capacity=200", "--seed", "4", "--duration", "20", "--json"
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {"kind", "params", "seed", "duration", "metrics", "theory"}
    assert data["params"]["capacity"] == 200
    assert data["seed"] == 4
    assert 0 < data["metrics"]["hit_ratio"] < 1


def test_the_same_seed_gives_the_same_summary_and_a_crash_shows():
    base = ["cache", "--duration", "30", "--warmup", "10", "--json"]
    quiet = json.loads(simulate(*base).stdout)
    assert quiet == json.loads(simulate(*base).stdout)
    crashed = json.loads(simulate(*base, "--at", "10:crash").stdout)
    assert crashed["metrics"]["hit_ratio"] == 0.0
    assert (
        crashed["metrics"]["db_reads_per_s"] > quiet["metrics"]["db_reads_per_s"] * 1.5
    )


def test_a_setting_changes_at_its_time_as_a_live_run_takes_it():
    base = ["cache", "--duration", "40", "--warmup", "20", "--json"]
    quiet = json.loads(simulate(*base).stdout)
    done = simulate(*base, "--at", "20:set:zipf_s=0", "--at", "20:set:ttl_s=2.5")
    assert done.returncode == 0, done.stderr
    changed = json.loads(done.stdout)
    assert changed["params"]["zipf_s"] == 0.0
    assert changed["params"]["ttl_s"] == 2.5
    # A flat workload over ten times the cache's capacity: far fewer hits.
    assert changed["metrics"]["hit_ratio"] < quiet["metrics"]["hit_ratio"] / 2


def test_it_lists_kinds_and_parameters():
    done = simulate("--list")
    assert done.returncode == 0
    assert "cache:" in done.stdout
    assert "capacity=1000" in done.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["nosuch"], "unknown engine kind 'nosuch'; kinds: "),
        (
            ["cache", "--set", "capacity=0"],
            "capacity must be an integer from 1 to 1000000",
        ),
        (
            ["cache", "--set", "shape=round"],
            "cache has no parameter 'shape'; its parameters: keys",
        ),
        (["cache", "--set", "capacity"], "--set takes NAME=VALUE"),
        (
            ["cache", "--at", "5:explode"],
            "no command 'explode'; its commands: flush, crash, restart, resize",
        ),
        (["cache", "--at", "soon:crash"], "--at time must be a number"),
        (
            ["cache", "--at", "5:resize:capacity=huge"],
            "resize: capacity must be an integer",
        ),
        (
            ["cache", "--duration", "10", "--warmup", "20"],
            "warmup must be from 0 to less than the duration",
        ),
        (
            ["cache", "--at", "5:set:shape=round"],
            "cache has no parameter 'shape'; its parameters: keys, zipf_s",
        ),
        (
            ["cache", "--at", "5:set:ttl_s=-1"],
            "ttl_s must be a number from 0 to 86400 s; got '-1'",
        ),
        (
            ["cache", "--at", "5:set:policy=newest"],
            "policy must be one of lru, lfu, fifo, random; got 'newest'",
        ),
        (["cache", "--at", "5:set:ttl_s"], "a setting takes NAME=VALUE; got 'ttl_s'"),
        (
            ["cache", "--at", "5:set:ttl_s=1,capacity=5"],
            "--at SECONDS:set:NAME=VALUE changes one setting",
        ),
        (
            ["scaling", "--at", "5:set:strategy=horizontal"],
            "at 5 s, set strategy=horizontal: strategy cannot change in a running "
            "world; start a new run",
        ),
        (
            ["deploy", "--at", "1:deploy", "--at", "5:set:strategy=atomic"],
            "at 5 s, set strategy=atomic: strategy can change only between deploys",
        ),
        (
            ["balancer", "--at", "1:revive:server=2"],
            "at 1 s, revive server=2: revive: server must be a dead server, and "
            "there is none at the moment; got 2",
        ),
    ],
)
def test_bad_input_exits_2_and_names_what_is_allowed(args, words):
    done = simulate(*args)
    assert done.returncode == 2
    assert words in done.stderr
