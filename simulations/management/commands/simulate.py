"""Run an engine headless, as fast as it can, and print its summary."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from simulations.engines import REGISTRY, get_engine
from simulations.engines.base import EngineError
from simulations.engines.runner import run_headless
from simulations.runs.replay import check_timeline, replay
from simulations.timeline import at_step


class Command(BaseCommand):
    help = (
        "Run a simulation engine headless. Example: simulate cache --set capacity=200 "
        "--at 30:crash --at 40:set:ttl_s=5 --duration 60 --json"
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", nargs="?", help="Engine kind (see --list).")
        parser.add_argument(
            "--list",
            action="store_true",
            help="List engine kinds and their parameters.",
        )
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="Set a parameter (repeatable).",
        )
        parser.add_argument(
            "--at",
            action="append",
            default=[],
            metavar="SECONDS:COMMAND[:ARG=VALUE,...]",
            help="Carry out a command at a simulated time, or change a parameter "
            "with SECONDS:set:NAME=VALUE, checked as a live run checks it "
            "(repeatable).",
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="Random seed (default 0)."
        )
        parser.add_argument(
            "--duration",
            type=float,
            default=60.0,
            help="Simulated seconds (default 60).",
        )
        parser.add_argument(
            "--warmup",
            type=float,
            default=None,
            help="Simulated seconds before measuring (default a tenth of the duration).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object."
        )
        parser.add_argument(
            "--replay",
            metavar="FILE",
            help="Replay a run's timeline (GET /api/runs/<id>/timeline, saved to "
            "FILE, or - for standard input) and print the metrics at its last frame.",
        )

    def handle(self, *args, **options):
        if options["list"]:
            self._list()
            return
        if options["replay"]:
            self._replay(options["replay"], as_json=options["json"])
            return
        if not options["kind"]:
            raise CommandError(
                "give an engine kind, or --list; kinds: " + ", ".join(sorted(REGISTRY)),
                returncode=2,
            )
        try:
            engine = get_engine(options["kind"])
            params = {}
            for pair in options["set"]:
                name, sep, value = pair.partition("=")
                if not sep or not name.strip():
                    raise EngineError("set", f"--set takes NAME=VALUE; got {pair!r}")
                params[name.strip()] = value.strip()
            params = engine.validate_params(params)
            steps = [at_step(engine.kind, spec) for spec in options["at"]]
            summary = run_headless(
                engine,
                params,
                seed=options["seed"],
                duration=options["duration"],
                warmup=options["warmup"],
                steps=steps,
            )
        except EngineError as exc:
            raise CommandError(exc.message, returncode=2) from None
        if options["json"]:
            self.stdout.write(json.dumps(summary.as_json()))
            return
        self.stdout.write(f"{engine.kind}: {engine.title}")
        self.stdout.write(
            f"seed {summary.seed}, {summary.duration:g} s simulated, "
            f"measured after {summary.warmup:g} s of warm-up"
        )
        labels = {m.name: (m.label, m.unit) for m in engine.metric_specs}
        for name, value in summary.metrics.items():
            label, unit = labels[name]
            shown = f"{value:.6g}" if isinstance(value, float) else str(value)
            self.stdout.write(f"  {name:<24} {shown:>14} {unit:<10} {label}")
        if summary.theory or summary.theory_gaps:
            self.stdout.write("theory, for the settings at the end:")
        for name, value in summary.theory.items():
            label, unit = labels.get(name, (name, ""))
            model = engine.theory_models.get(name, "")
            self.stdout.write(f"  {name:<24} {value:>14.6g} {unit:<10} {model}")
        for name, why in summary.theory_gaps.items():
            self.stdout.write(f"  {name:<24} {'none':>14} {'':<10} {why}")

    def _replay(self, path: str, *, as_json: bool) -> None:
        try:
            if path == "-":
                text = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
        except OSError as exc:
            raise CommandError(
                f"--replay: cannot read {path}: {exc.strerror}"
            ) from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CommandError(
                f"--replay: {path} is not JSON: {exc}", returncode=2
            ) from None
        try:
            timeline = check_timeline(data)
            engine = replay(timeline)
        except EngineError as exc:
            raise CommandError(
                f"--replay: {exc.field}: {exc.message}", returncode=2
            ) from None
        metrics = engine.metrics()
        theory, gaps = engine.theory()
        if as_json:
            out = {
                "kind": engine.kind,
                "seed": engine.seed,
                "seq": timeline["last_seq"],
                "t": round(engine.now, 6),
                "metrics": metrics,
                "theory": theory,
            }
            if gaps:
                out["theory_gaps"] = gaps
            self.stdout.write(json.dumps(out))
            return
        self.stdout.write(
            f"{engine.kind}: {engine.title}, replayed to frame {timeline['last_seq']} "
            f"({engine.now:g} simulated seconds, seed {engine.seed})"
        )
        labels = {m.name: (m.label, m.unit) for m in engine.metric_specs}
        for name, value in metrics.items():
            label, unit = labels.get(name, (name, ""))
            shown = f"{value:.6g}" if isinstance(value, float) else str(value)
            self.stdout.write(f"  {name:<24} {shown:>14} {unit:<10} {label}")

    def _list(self):
        for kind in sorted(REGISTRY):
            engine = REGISTRY[kind]
            self.stdout.write(f"{kind}: {engine.title}")
            for p in engine.params:
                self.stdout.write(
                    f"  {p.name}={p.default!s:<10} {p.allowed()}. {p.help}"
                )
            names = ", ".join(
                c.name + "".join(f"[:{a.name}=...]" for a in c.args)
                for c in engine.commands
            )
            self.stdout.write(f"  commands: {names}")
