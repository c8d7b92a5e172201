"""Where user sessions live behind a load balancer, and what a dead server costs."""

from __future__ import annotations

import math
from collections import OrderedDict
from heapq import heappop, heappush
from typing import Any

from ..theory.fleet import (
    central_mean_latency_ms,
    forced_logout_rate,
    user_request_rate,
)
from ..theory.queueing import round_robin_move_probability
from .base import (
    Command,
    CommandError,
    Engine,
    Event,
    Metric,
    Param,
    TheoryFigures,
    Window,
)

STORES = ("local", "sticky", "central_cache", "central_db")
LOCAL, STICKY, CENTRAL_CACHE, CENTRAL_DB = range(len(STORES))
OFFLINE, ACTIVE, RELOGIN = range(3)  # what a user does next: log in, shop, log in again
CENTRAL = -1  # ``home`` of a session kept in the central store
MAX_SERVERS = 32
SWEEP_S = 5.0  # how often expired sessions are cleared out
RECENT_S = 3.0

# A session: [user, items in its cart, last access time].
Session = list[Any]


def _server_arg(help_text: str) -> Param:
    return Param(
        "server", "int", 1, 1, MAX_SERVERS, help=help_text, label="Server number"
    )


class SessionsEngine(Engine):
    kind = "sessions"
    title = "Sessions and shopping carts across app servers"
    description = (
        "Users log in, add items to a cart over several requests and check out, "
        "through a load balancer in front of app servers. Where the session lives "
        "(in one server's memory, pinned by a cookie, or in a shared cache or "
        "database) decides who gets logged out and whose cart vanishes when "
        "requests move between servers or a server dies."
    )
    params = (
        Param(
            "servers",
            "int",
            4,
            1,
            MAX_SERVERS,
            unit="servers",
            help="App servers behind the balancer.",
            label="Servers",
        ),
        Param(
            "users",
            "int",
            300,
            1,
            2_000,
            unit="users",
            help="People using the shop, each visiting again and again.",
            label="Users",
        ),
        Param(
            "store",
            "choice",
            "local",
            choices=STORES,
            help="Where sessions live: local (each server's memory, round-robin "
            "routing), sticky (local, but a cookie pins a user to one "
            "server), central_cache (a shared Redis-like cache) or "
            "central_db (a shared database, slower).",
            label="Session store",
        ),
        Param(
            "think_time_s",
            "float",
            2.0,
            0.5,
            60.0,
            unit="s",
            step=0.5,
            help="Mean time a user takes between two requests (exponential).",
            label="Think time",
        ),
        Param(
            "items_per_visit",
            "float",
            5.0,
            1.0,
            50.0,
            unit="items",
            step=1,
            help="Mean items a user puts in the cart before checking out "
            "(geometric, at least 1).",
            label="Items per visit",
        ),
        Param(
            "offline_s",
            "float",
            30.0,
            1.0,
            3600.0,
            unit="s",
            step=1,
            help="Mean time a user stays away between visits (exponential).",
            label="Time between visits",
        ),
        Param(
            "app_ms",
            "float",
            20.0,
            1.0,
            1000.0,
            unit="ms",
            step=1,
            help="Mean time a server spends on a request (exponential), "
            "session store aside.",
            label="App time",
        ),
        Param(
            "cache_ms",
            "float",
            0.5,
            0.05,
            50.0,
            unit="ms",
            step=0.05,
            help="central_cache: time of one read or write of a session.",
            label="Cache round trip",
        ),
        Param(
            "db_ms",
            "float",
            5.0,
            0.5,
            500.0,
            unit="ms",
            step=0.5,
            help="central_db: time of one read or write of a session.",
            label="Database round trip",
        ),
        Param(
            "session_ttl_s",
            "float",
            300.0,
            10.0,
            3600.0,
            unit="s",
            step=10,
            help="A session unused this long expires.",
            label="Session lifetime",
        ),
        Param(
            "memory_sessions",
            "int",
            5_000,
            10,
            10_000,
            unit="sessions",
            help="Sessions a server keeps in memory; beyond it the least "
            "recently used is evicted.",
            label="Sessions per server",
        ),
    )
    commands = (
        Command(
            "kill",
            "Kill server",
            "The server dies: the sessions in its memory are gone. The balancer "
            "stops sending it requests at once.",
            args=(_server_arg("The server to kill."),),
        ),
        Command(
            "restart",
            "Restart server",
            "Start a dead server again, or reboot a running one: either way its "
            "memory starts empty.",
            args=(_server_arg("The server to restart."),),
        ),
        Command("add_server", "Add server", "A new, empty server joins the balancer."),
    )
    event_types = (
        "sessions.request",
        "sessions.login",
        "sessions.checkout",
        "sessions.forced_logout",
        "sessions.split_cart",
        "sessions.expire",
        "sessions.evict",
        "sessions.no_server",
        "sessions.kill",
        "sessions.restart",
        "sessions.add",
        "sessions.store",
    )
    narration = {
        "sessions.kill": (
            "Server {server} was killed: {sessions_lost#session} and "
            "{carts_lost#cart} lost"
        ),
        "sessions.restart": (
            "Server {server} {was_up?restarted|came back up}: "
            "{sessions_lost#session} lost"
        ),
        "sessions.add": "Server {server} joined",
        "sessions.store": "The session store is now {store}",
    }
    metric_specs = (
        Metric("requests", "Requests", "requests"),
        Metric("logins", "Logins", "logins"),
        Metric("checkouts", "Checkouts", "orders"),
        Metric(
            "forced_logouts",
            "Forced logouts",
            "logouts",
            help="Requests that found no session for a user who had logged in: "
            "the user is sent back to the login page.",
        ),
        Metric(
            "lost_carts",
            "Lost carts",
            "carts",
            help="Carts destroyed with a server's memory (kill or restart) that "
            "were their user's live cart: the session the user's cookie names, in "
            "the store the current mode reads (a server's memory for local and "
            "sticky), used within the session lifetime, holding at least one "
            "item. A cart already split off, left behind by a change of store or "
            "by a user who is gone, or past its lifetime is not counted.",
        ),
        Metric(
            "split_carts",
            "Split carts",
            "carts",
            help="Carts with items left behind on another server when the user "
            "had to log in again: the items still exist, out of reach.",
        ),
        Metric("mean_latency_ms", "Mean latency", "ms"),
        Metric(
            "store_reads_per_s",
            "Session store reads",
            "reads/s",
            help="Reads of the central session store (none for local or sticky).",
        ),
        Metric("store_writes_per_s", "Session store writes", "writes/s"),
        Metric(
            "move_ratio",
            "Requests on another server",
            help="Share of a user's requests that land on another server than "
            "their previous request did.",
        ),
        Metric(
            "forced_logout_ratio",
            "Forced logouts per session request",
            help="Forced logouts over requests that needed a session.",
        ),
        Metric(
            "lost_sessions",
            "Sessions lost",
            "sessions",
            help="Sessions destroyed with a server's memory.",
        ),
        Metric("items_lost", "Items lost", "items", help="Items in lost carts."),
        Metric(
            "items_stranded", "Items stranded", "items", help="Items in split carts."
        ),
        Metric("items_bought", "Items bought", "items"),
        Metric("expired_sessions", "Sessions expired", "sessions"),
        Metric(
            "evicted_sessions",
            "Sessions evicted",
            "sessions",
            help="Sessions pushed out of a full server memory.",
        ),
        Metric("failed_requests", "Requests with no server", "requests"),
        Metric("server_names", "Servers", summary=False),
        Metric("server_sessions", "Sessions per server", "sessions", summary=False),
        Metric("server_up", "Server up (1) or dead (0)", summary=False),
        Metric(
            "central_sessions",
            "Sessions in the central store",
            "sessions",
            summary=False,
        ),
        Metric("users_logged_in", "Users logged in", "users", summary=False),
        Metric(
            "forced_logouts_per_s_recent",
            "Forced logouts (last 3 s)",
            "per s",
            summary=False,
        ),
        Metric("requests_per_s_recent", "Requests (last 3 s)", "req/s", summary=False),
        Metric("latency_ms_recent", "Mean latency (last 3 s)", "ms", summary=False),
        Metric("store", "Session store", summary=False),
    )

    theory_models = {
        "mean_latency_ms": "Mean app time plus the session store's round trips "
        "(a write at login, a read and a write after)",
        "move_ratio": "Round robin over the servers up: (n - 1)/n move (sticky: none)",
        "forced_logout_ratio": "Local sessions under round robin: a request finds "
        "its session with chance 1/n",
        "requests_per_s_recent": "Renewal-reward over a user's cycle of visits",
        "forced_logouts_per_s_recent": "Renewal-reward: the session requests that "
        "miss, per second",
    }

    # What the last kill (or reboot) of a running server destroyed, for the
    # picture (a class default: a snapshot from before it was kept reads it).
    last_loss: dict[str, Any] | None = None

    # World ------------------------------------------------------------------

    def setup(self) -> None:
        self.alive: list[bool] = []
        self.mem: list[OrderedDict[int, Session]] = []
        self.live: list[int] = []  # servers the balancer sends requests to
        self.central: OrderedDict[int, Session] = OrderedDict()
        for _ in range(self.p["servers"]):
            self._new_server()
        self.phase: list[int] = []
        self.sid: list[int] = []  # the session id in the user's cookie (-1: none)
        self.home: list[
            int
        ] = []  # where that session was created (CENTRAL or a server)
        self.pin: list[int] = []  # sticky: the server id in the user's cookie
        self.last_server: list[
            int
        ] = []  # server of the user's previous request this visit
        self.remaining: list[int] = []  # items still to add before checking out
        self.heap: list[tuple[float, int, int]] = []
        self.seq = 0
        self.next_sid = 0
        self.rr = 0
        self.users_active = 0
        self._resize_users(self.p["users"])
        self.next_sweep = SWEEP_S
        # Lifetime counters; the summary figures are their growth since reset_stats.
        self.totals = dict.fromkeys(
            (
                "requests",
                "logins",
                "checkouts",
                "forced",
                "lost_carts",
                "split",
                "lost_sessions",
                "items_added",
                "items_lost",
                "items_destroyed",
                "items_stranded",
                "items_bought",
                "items_expired",
                "items_evicted",
                "expired",
                "evicted",
                "failed",
                "follow_ups",
                "moved",
                "session_requests",
                "reads",
                "writes",
            ),
            0,
        )
        self.latency_total = 0.0
        self.window = Window(span=RECENT_S)
        self.reset_stats()

    def _new_server(self) -> int:
        s = len(self.alive)
        self.alive.append(True)
        self.mem.append(OrderedDict())
        self.live.append(s)
        return s

    def _resize_users(self, target: int) -> None:
        old = self.users_active
        if target < old:
            gone = set(range(target, old))
            self.heap = [e for e in self.heap if e[2] not in gone]
            self.heap.sort()
        self.users_active = target
        for u in range(old, target):
            if u == len(self.phase):
                for column in (
                    self.phase,
                    self.sid,
                    self.home,
                    self.pin,
                    self.last_server,
                    self.remaining,
                ):
                    column.append(0)
            self.phase[u] = OFFLINE
            self.sid[u] = -1
            self.home[u] = CENTRAL
            self.pin[u] = -1
            self.last_server[u] = -1
            self.remaining[u] = 0
            heappush(
                self.heap,
                (
                    self.now + self.rng.expovariate(1.0 / self.p["offline_s"]),
                    self.seq,
                    u,
                ),
            )
            self.seq += 1

    # Running ----------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        p = self.p
        rng = self.rng
        rand = rng.random
        expo = rng.expovariate
        log = math.log
        push = heappush
        pop = heappop
        heap = self.heap
        phase = self.phase
        user_sid = self.sid
        home = self.home
        pin = self.pin
        last_server = self.last_server
        remaining = self.remaining
        mem = self.mem
        central = self.central
        alive = self.alive
        live = self.live
        store = STORES.index(p["store"])
        shared = store >= CENTRAL_CACHE
        op_ms = (
            p["cache_ms"] if store == CENTRAL_CACHE else p["db_ms"] if shared else 0.0
        )
        think_rate = 1.0 / p["think_time_s"]
        offline_rate = 1.0 / p["offline_s"]
        app_rate = 1.0 / p["app_ms"]
        items_mean = p["items_per_visit"]
        items_log = log(1.0 - 1.0 / items_mean) if items_mean > 1.0 else 0.0
        capacity = p["memory_sessions"]
        ttl = p["session_ttl_s"]
        seq = self.seq
        rr = self.rr
        next_sid = self.next_sid
        requests = logins = checkouts = forced = split = stranded = failed = 0
        follow_ups = moved = session_requests = reads = writes = 0
        added = bought = evicted = evicted_items = sweeps = late = late_items = 0
        latency = 0.0
        events: list[Event] = []
        session: Session | None
        while True:
            t = heap[0][0] if heap else math.inf
            if self.next_sweep < t:
                if self.next_sweep > end:
                    break
                sweeps += 1
                events += self._sweep(self.next_sweep)
                self.next_sweep += SWEEP_S
                continue
            if t > end:
                break
            u = pop(heap)[2]
            nl = len(live)
            if not nl:
                failed += 1
                push(heap, (t + expo(think_rate), seq, u))
                seq += 1
                continue
            if store == STICKY:
                s = pin[u]
                if s < 0 or not alive[s]:
                    if rr >= nl:
                        rr = 0
                    s = live[rr]
                    rr += 1
                    pin[u] = s
            else:
                if rr >= nl:
                    rr = 0
                s = live[rr]
                rr += 1
            requests += 1
            previous = last_server[u]
            if previous >= 0:
                follow_ups += 1
                if previous != s:
                    moved += 1
            last_server[u] = s
            lat = expo(app_rate)
            state = phase[u]
            if state != ACTIVE:
                # Log in: a new session, empty cart, in this server's memory or in
                # the central store.
                logins += 1
                if state == OFFLINE:
                    remaining[u] = (
                        1 + int(log(1.0 - rand()) / items_log) if items_log else 1
                    )
                sid = next_sid
                next_sid += 1
                session = [u, 0, t]
                if shared:
                    central[sid] = session
                    home[u] = CENTRAL
                    writes += 1
                    lat += op_ms
                else:
                    memory = mem[s]
                    memory[sid] = session
                    home[u] = s
                    if len(memory) > capacity:
                        _, old = memory.popitem(last=False)
                        evicted += 1
                        evicted_items += old[1]
                user_sid[u] = sid
                phase[u] = ACTIVE
                push(heap, (t + expo(think_rate), seq, u))
                seq += 1
            else:
                session_requests += 1
                sid = user_sid[u]
                if shared:
                    reads += 1
                    lat += op_ms
                    session = central.get(sid)
                    if session is not None:
                        central.move_to_end(sid)
                else:
                    memory = mem[s]
                    session = memory.get(sid)
                    if session is not None:
                        memory.move_to_end(sid)
                if session is not None and t - session[2] > ttl:
                    # Past its lifetime: the store refuses it on read, as Django's
                    # session backends do, whether or not the sweep has run yet.
                    del (central if shared else mem[s])[sid]
                    late += 1
                    late_items += session[1]
                    session = None
                if session is not None:
                    session[2] = t
                    if shared:
                        writes += 1
                        lat += op_ms
                    if remaining[u]:
                        session[1] += 1
                        remaining[u] -= 1
                        added += 1
                        push(heap, (t + expo(think_rate), seq, u))
                    else:
                        checkouts += 1
                        bought += session[1]
                        if shared:
                            del central[sid]
                        else:
                            del mem[s][sid]
                        user_sid[u] = -1
                        last_server[u] = -1
                        phase[u] = OFFLINE
                        push(heap, (t + expo(offline_rate), seq, u))
                    seq += 1
                else:
                    # No session here: back to the login page. If the old session
                    # still exists elsewhere with items in it, that cart is split off.
                    forced += 1
                    where = home[u]
                    left = (central if where == CENTRAL else mem[where]).get(sid)
                    if left is not None and left[1]:
                        split += 1
                        stranded += left[1]
                    user_sid[u] = -1
                    phase[u] = RELOGIN
                    push(heap, (t + expo(think_rate), seq, u))
                    seq += 1
            latency += lat
        self.seq = seq
        self.rr = rr
        self.next_sid = next_sid
        self.processed += requests + failed + sweeps
        totals = self.totals
        for name, amount in (
            ("requests", requests),
            ("logins", logins),
            ("checkouts", checkouts),
            ("forced", forced),
            ("split", split),
            ("items_stranded", stranded),
            ("failed", failed),
            ("follow_ups", follow_ups),
            ("moved", moved),
            ("session_requests", session_requests),
            ("reads", reads),
            ("writes", writes),
            ("items_added", added),
            ("items_bought", bought),
            ("evicted", evicted),
            ("items_evicted", evicted_items),
            ("expired", late),
            ("items_expired", late_items),
        ):
            totals[name] += amount
        self.latency_total += latency
        self.window.add(self.now, requests=requests, forced=forced, latency=latency)
        for name, amount in (
            ("request", requests),
            ("login", logins),
            ("checkout", checkouts),
            ("forced_logout", forced),
            ("split_cart", split),
            ("evict", evicted),
            ("expire", late),
            ("no_server", failed),
        ):
            if amount:
                events.append({"type": f"sessions.{name}", "count": amount})
        return events

    def _sweep(self, t: float) -> list[Event]:
        """Clear out sessions unused for longer than their lifetime."""
        cutoff = t - self.p["session_ttl_s"]
        expired = items = 0
        for store in [self.central, *self.mem]:
            # Each store is kept in order of last use, oldest first.
            while store:
                sid, session = next(iter(store.items()))
                if session[2] > cutoff:
                    break
                del store[sid]
                expired += 1
                items += session[1]
        self.totals["expired"] += expired
        self.totals["items_expired"] += items
        return [{"type": "sessions.expire", "count": expired}] if expired else []

    # Figures ----------------------------------------------------------------

    def reset_stats(self) -> None:
        self.since = self.now
        self.totals0 = dict(self.totals)
        self.latency0 = self.latency_total

    def metrics(self) -> dict[str, Any]:
        now = self.now
        elapsed = max(now - self.since, 1e-9)
        d = {k: v - self.totals0[k] for k, v in self.totals.items()}
        w = self.window
        recent = w.total("requests", now)
        span = w.seconds(now)
        servers = range(len(self.alive))
        return {
            "requests": d["requests"],
            "logins": d["logins"],
            "checkouts": d["checkouts"],
            "forced_logouts": d["forced"],
            "lost_carts": d["lost_carts"],
            "split_carts": d["split"],
            "mean_latency_ms": (self.latency_total - self.latency0) / d["requests"]
            if d["requests"]
            else 0.0,
            "store_reads_per_s": d["reads"] / elapsed,
            "store_writes_per_s": d["writes"] / elapsed,
            "move_ratio": d["moved"] / d["follow_ups"] if d["follow_ups"] else 0.0,
            "forced_logout_ratio": d["forced"] / d["session_requests"]
            if d["session_requests"]
            else 0.0,
            "lost_sessions": d["lost_sessions"],
            "items_lost": d["items_lost"],
            "items_stranded": d["items_stranded"],
            "items_bought": d["items_bought"],
            "expired_sessions": d["expired"],
            "evicted_sessions": d["evicted"],
            "failed_requests": d["failed"],
            "server_names": [f"s{s + 1}" for s in servers],
            "server_sessions": [len(m) for m in self.mem],
            "server_up": [1 if a else 0 for a in self.alive],
            "central_sessions": len(self.central),
            "users_logged_in": sum(
                1 for u in range(self.users_active) if self.phase[u] != OFFLINE
            ),
            "forced_logouts_per_s_recent": w.total("forced", now) / span,
            "requests_per_s_recent": recent / span,
            "latency_ms_recent": w.total("latency", now) / recent if recent else 0.0,
            "store": self.p["store"],
        }

    def picture(self) -> dict[str, Any]:
        """Return what the last kill or reboot of a running server destroyed: its
        sessions and their share of all sessions held (1/n expected, local)."""
        return {"last_loss": self.last_loss}

    def theory_key(self) -> tuple[Any, ...]:
        return (*super().theory_key(), len(self.live))

    def compute_theory(self) -> TheoryFigures:
        p = self.p
        names = tuple(self.theory_models)
        n = len(self.live)
        if not n:
            return dict.fromkeys(names, "no server is up: every request fails")
        store = STORES.index(p["store"])
        items = p["items_per_visit"]
        # Round robin meets the previous request's server with chance 1/n; a
        # sticky cookie or a shared store always finds the session.
        hit = 1.0 / n if store == LOCAL else 1.0
        op_ms = (
            p["cache_ms"]
            if store == CENTRAL_CACHE
            else p["db_ms"]
            if store == CENTRAL_DB
            else 0.0
        )
        rates = (p["users"], p["think_time_s"], p["offline_s"], items, hit)
        return {
            "mean_latency_ms": central_mean_latency_ms(p["app_ms"], op_ms, items),
            "move_ratio": 0.0 if store == STICKY else round_robin_move_probability(n),
            "forced_logout_ratio": 1.0 - hit,
            "requests_per_s_recent": user_request_rate(*rates),
            "forced_logouts_per_s_recent": forced_logout_rate(*rates),
        }

    # Commands ---------------------------------------------------------------

    def _target(self, command: str, server: int, ok: list[int], what: str) -> int:
        s = server - 1
        if s not in ok:
            allowed = ", ".join(str(i + 1) for i in ok) or "none"
            raise CommandError(
                f"{command}.server",
                f"{command}: server must be {what}: one of {allowed}; got {server}",
            )
        return s

    def _wipe(self, s: int) -> dict[str, int]:
        """Destroy server ``s``'s memory; return what was lost."""
        memory = self.mem[s]
        # A cart is lost only if it is the one its user would see next: named by
        # the cookie, in the store the current mode reads, not expired. Others
        # were already split off (and counted so) or abandoned.
        readable = STORES.index(self.p["store"]) < CENTRAL_CACHE
        fresh = self.now - self.p["session_ttl_s"]
        active, cookie = self.users_active, self.sid
        carts = items = destroyed = 0
        for sid, (u, n, used) in memory.items():
            destroyed += n
            if n and readable and u < active and cookie[u] == sid and used > fresh:
                carts += 1
                items += n
        lost = {"sessions_lost": len(memory), "carts_lost": carts, "items_lost": items}
        if self.alive[s]:
            held = len(self.central) + sum(len(m) for m in self.mem)
            self.last_loss = {
                "server": s + 1,
                "sessions": len(memory),
                "carts": carts,
                "share": len(memory) / held if held else 0.0,
            }
        self.totals["lost_sessions"] += len(memory)
        self.totals["lost_carts"] += carts
        self.totals["items_lost"] += items
        self.totals["items_destroyed"] += destroyed
        memory.clear()
        return lost

    def on_kill(self, server: int) -> list[Event]:
        running = [s for s in range(len(self.alive)) if self.alive[s]]
        s = self._target("kill", server, running, "a running server")
        lost = self._wipe(s)
        self.alive[s] = False
        self.live.remove(s)
        return [{"type": "sessions.kill", "t": self.now, "server": server} | lost]

    def on_restart(self, server: int) -> list[Event]:
        s = self._target("restart", server, list(range(len(self.alive))), "a server")
        lost = self._wipe(s)
        was_up = self.alive[s]
        if not was_up:
            self.alive[s] = True
            self.live.append(s)
            self.live.sort()
        return [
            {
                "type": "sessions.restart",
                "t": self.now,
                "server": server,
                "was_up": was_up,
            }
            | lost
        ]

    def on_add_server(self) -> list[Event]:
        if len(self.alive) >= MAX_SERVERS:
            raise CommandError(
                "add_server", f"add_server: at most {MAX_SERVERS} servers in a run"
            )
        s = self._new_server()
        return [{"type": "sessions.add", "t": self.now, "server": s + 1}]

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        value = self.p[name]
        if name == "users":
            self._resize_users(value)
        elif name == "servers":
            # More servers start empty; fewer means the highest-numbered ones are
            # shut down (their sessions go with them) and stay listed as dead.
            events: list[Event] = []
            while len(self.alive) < value:
                events += self.on_add_server()
            for s in range(value, len(self.alive)):
                if self.alive[s]:
                    events += self.on_kill(s + 1)
            return events
        elif name == "store":
            return [{"type": "sessions.store", "t": self.now, "store": value}]
        elif name == "memory_sessions":
            evicted = 0
            for memory in self.mem:
                while len(memory) > value:
                    _, session = memory.popitem(last=False)
                    evicted += 1
                    self.totals["items_evicted"] += session[1]
            self.totals["evicted"] += evicted
            if evicted:
                return [{"type": "sessions.evict", "count": evicted}]
        return None
