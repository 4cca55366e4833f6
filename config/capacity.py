"""How the service's connections and check slots divide among the monitored databases."""

from __future__ import annotations

#: State-store connections besides the check jobs': metrics refresh, delivery, the gate and
#: retention loops, and the skip recorder, each one thread.
STATE_EXTRA = 5
#: A database's connections besides its check jobs': the gate's evidence reads.
DATABASE_EXTRA = 1
#: Leader-lock sessions per database (each on its own dedicated session).
LEADER_SESSIONS = 1


def check_slots(max_concurrent_checks: int, databases: int) -> int:
    """Check jobs one database may run at once: an equal share of the cap, at least one."""
    return max(1, max_concurrent_checks // max(1, databases))


def database_pool_size(slots: int) -> int:
    """Connections of one database's pool: one per check slot, plus the gate's."""
    return slots + DATABASE_EXTRA


def state_pool_size(max_concurrent_checks: int, databases: int) -> int:
    """Connections of the one state-store pool every database shares."""
    return check_slots(max_concurrent_checks, databases) * databases + STATE_EXTRA


def connections_needed(max_concurrent_checks: int, databases: int) -> int:
    """Every connection `dq-monitor run` may open: the state pool, each database's pool and
    leader-lock session."""
    per_database = database_pool_size(check_slots(max_concurrent_checks, databases))
    return state_pool_size(max_concurrent_checks, databases) + databases * (
        per_database + LEADER_SESSIONS
    )


def too_few_slots(max_concurrent_checks: int, databases: int) -> str | None:
    """Why the cap cannot give every database a slot of its own, or None."""
    if databases > max_concurrent_checks:
        return (
            f"max_concurrent_checks ({max_concurrent_checks}) must be at least the number of "
            f"databases ({databases}), so that a slow database never holds another's checks"
        )
    return None
