"""Open queueing networks of M/M/c stations (Jackson networks), pure Python.

In an open Jackson network requests arrive from outside as a Poisson stream,
each station has ``c`` servers with exponential service times and one
first-come-first-served queue, and a request leaving a station moves to the
next one at random. Jackson's theorem (1957) says each station then behaves as
an M/M/c queue fed at its total arrival rate, so the mean time in the network
is the sum over stations of (visits per request) x (mean sojourn there).

Where one station serves requests whose mean service times differ (a database
master taking quick reads and slow writes), its service is a mixture of
exponentials; its wait is taken from the Allen-Cunneen approximation for
M/G/c, which is exact (Pollaczek-Khinchine) for one server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .erlang import mmc_mean_wait


def mgc_mean_wait(
    arrival_rate: float, mean_service: float, second_moment: float, servers: int
) -> float:
    """Return the mean wait before service at an M/G/c station.

    W_q = W_q(M/M/c) (1 + C_s^2) / 2, with C_s^2 = E[S^2] / E[S]^2 - 1 the
    squared coefficient of variation of the service time (Allen-Cunneen; exact
    for c = 1 and for exponential service). Infinite when the load is 1 or more.
    """
    if arrival_rate <= 0.0:
        return 0.0
    if arrival_rate * mean_service >= servers:
        return math.inf
    cv2 = second_moment / (mean_service * mean_service) - 1.0
    return mmc_mean_wait(arrival_rate, 1.0 / mean_service, servers) * (1.0 + cv2) / 2.0


@dataclass
class Station:
    """One station of a network: its servers and the work offered to it.

    ``add`` offers a stream of ``rate`` requests a second whose service times
    are exponential with mean ``mean``; the station's service time is then the
    mixture of every stream's.
    """

    servers: int
    rate: float = 0.0
    work: float = 0.0  # sum of rate x mean
    square: float = 0.0  # sum of rate x E[S^2] (2 mean^2 for an exponential)

    def add(self, rate: float, mean: float) -> None:
        self.rate += rate
        self.work += rate * mean
        self.square += rate * 2.0 * mean * mean

    @property
    def utilization(self) -> float:
        """Return the offered load per server, lambda E[S] / c (may exceed 1)."""
        return self.work / self.servers if self.servers else math.inf

    def wait(self) -> float:
        """Return the mean wait before service (infinite at load 1 or more)."""
        if self.rate <= 0.0:
            return 0.0
        mean = self.work / self.rate
        return mgc_mean_wait(self.rate, mean, self.square / self.rate, self.servers)
