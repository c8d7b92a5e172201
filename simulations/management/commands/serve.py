"""Serve ScaleLab with Daphne; in embedded mode, with a worker in the same process."""

from __future__ import annotations

import gc

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


class Command(BaseCommand):
    help = "Serve the app over HTTP and websockets (embedded mode runs the worker in-process too)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host, port, **options):
        from daphne.server import Server

        from scalelab.asgi import application

        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            raise CommandError(
                f"the database has {len(pending)} migration(s) not applied: run "
                "`python manage.py migrate` first (`make run` does it for you)"
            )
        connection.close()
        worker = None
        if settings.EMBEDDED:
            from simulations.embedded import EmbeddedWorker

            worker = EmbeddedWorker().start()
            mode = "embedded mode: worker in this process, no Redis needed"
        else:
            mode = "distributed mode: start workers with `make worker`"
        self.stdout.write(
            f"ScaleLab is serving at http://{host}:{port}/  ({mode}; Ctrl+C stops it)"
        )
        self.stdout.flush()
        # Long-lived objects (code, settings, engines' tables) need no collecting:
        # freezing them and collecting less often keeps full collections, which
        # paused frame delivery for about 100 ms every few seconds, rare and short.
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 50, 100)
        try:
            Server(
                application=application,
                endpoints=[f"tcp:port={port}:interface={host}"],
                websocket_timeout=86400,
                application_close_timeout=5,
            ).run()
        finally:
            if worker is not None:
                worker.stop()
