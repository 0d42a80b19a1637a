"""How a migration run behaves: timeouts per statement, how long to wait for another run,
whether late files may run. Kept apart from the runner so the CLI can show the defaults
without importing a database driver."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from supagate.errors import BadInput

TIMEOUT = re.compile(r"\d+(ms|s|min|h)?\Z")  # what Postgres accepts for lock_timeout/statement_timeout


class OptionsError(BadInput):
    pass


@dataclass(frozen=True)
class Options:
    lock_timeout: str = "10s"  # how long one statement may queue for a table lock
    statement_timeout: str = "15min"
    lock_wait: float = 60.0  # seconds to wait for another run's advisory lock
    include_all: bool = False
    applied_by: str | None = None

    def __post_init__(self):
        if not isinstance(self.lock_wait, (int, float)) or not math.isfinite(self.lock_wait) or self.lock_wait < 0:
            raise OptionsError(f"invalid lock_wait {self.lock_wait!r}\n"
                               "Give the seconds to wait for another run as a number of 0 or more, e.g. 60.")
        for key in ("lock_timeout", "statement_timeout"):
            if not TIMEOUT.match(str(getattr(self, key))):
                raise OptionsError(f"invalid {key} {getattr(self, key)!r}\n"
                                   "Use a number with an optional unit: 500ms, 10s, 5min, 1h.")
