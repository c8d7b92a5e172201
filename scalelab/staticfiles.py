"""Static files: plotly.js from its Python package, hashed and compressed copies.

``collectstatic`` (``make run`` runs it) writes each file under a name with a hash
of its content, with brotli and gzip copies beside it; servestatic serves those
as immutable, for ten years. Until it has run, and whenever a source is newer than
the collected copies, pages name the sources, which servestatic's finders serve as
they are: a stale collection never hides an edit.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from django.contrib.staticfiles import finders
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage
from servestatic.middleware import ServeStaticMiddleware
from servestatic.storage import CompressedManifestStaticFilesStorage
from servestatic.utils import run_async_in_thread

logger = logging.getLogger(__name__)

PLOTLY_NAME = "plotly/plotly.min.js"


def plotly_dir() -> Path | None:
    """Return the directory of the plotly package's bundled files, if installed."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "package_data"


class PlotlyFinder(BaseFinder):
    """Find ``plotly/plotly.min.js`` and nothing else of the plotly package.

    The package's data directory also holds a 4.8 MB widget bundle and data sets
    that no page uses: collecting them would only cost compression time.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        location = plotly_dir()
        self.storage = None
        if location is not None and (location / "plotly.min.js").is_file():
            self.storage = FileSystemStorage(location=location)
            self.storage.prefix = "plotly"

    def find(self, path, find_all=False, **kwargs):
        if self.storage is None or path != PLOTLY_NAME:
            return [] if find_all else None
        found = self.storage.path("plotly.min.js")
        return [found] if find_all else found

    def list(self, ignore_patterns):
        if self.storage is not None:
            yield "plotly.min.js", self.storage


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed static files that fall back to the sources.

    A name missing from the manifest (a file added since ``collectstatic``) gets
    its plain URL rather than an error page, and a manifest older than any source
    is ignored as a whole, since a hashed module imports hashed copies of others.
    """

    # Rewrite `import ... from "./x.js"` between ES modules to the hashed names.
    support_js_module_import_aggregation = True

    def load_manifest(self):
        paths, manifest_hash = super().load_manifest()
        if paths and self._sources_changed_since_collection(paths):
            logger.warning(
                "Static sources changed after `collectstatic`: serving them "
                "unhashed and uncompressed until it runs again (`make run` does)."
            )
            return {}, ""
        return paths, manifest_hash

    def stored_name(self, name):
        return self.hashed_files.get(self.hash_key(self.clean_name(name)), name)

    def _sources_changed_since_collection(self, paths) -> bool:
        try:
            collected = os.stat(self.path(self.manifest_name)).st_mtime
        except OSError:
            return True
        for name in paths:
            source = finders.find(name)
            if source is None or os.stat(source).st_mtime > collected:
                return True
        return False


class StaticMiddleware(ServeStaticMiddleware):
    """servestatic, with a source served as it is now, not as it was at start.

    servestatic reads every file's size and date once, when the process starts.
    That suits the hashed copies, which never change once collected. A plain
    name is a source file found by the finders (before `collectstatic` has run,
    or after a source changed), and a source may be edited while the server
    runs: from the table, its new content went out under the old length, cut
    short or padded, and the page broke until a restart. A plain name is looked
    up again on every request (a `stat`); hashed names still come from the table.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Which names are plain, decided once rather than on every request.
        self.plain = {u for u in self.files if not self.immutable_file_test("", u)}

    async def __call__(self, request):
        url = request.path_info
        if url not in self.plain or self.autorefresh:
            return await super().__call__(request)
        static_file = await run_async_in_thread(self.find_file, url)
        if static_file is None:  # deleted since: not found, as any other page
            return await self.get_response(request)
        return await self.aserve(static_file, request)
