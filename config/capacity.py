"""How the service's connections and check slots divide among the monitored databases."""

from __future__ import annotations

#: State-store connections besides the check jobs': metrics refresh, delivery, the gate and
#: retention loops, and the skip recorder, each one thread.
STATE_EXTRA = 5
#: A database's connections besides its check jobs': the gate's evidence reads (the gate loop
#: reads one database, and one server of it, at a time).
DATABASE_EXTRA = 1
#: Leader-lock sessions per database (each on its own dedicated session).
LEADER_SESSIONS = 1
#: Every replica's shared membership lock, on one more session.
MEMBER_SESSIONS = 1


def check_slots(max_concurrent_checks: int, databases: int) -> int:
    """Check jobs one database may have in flight: its share of the global cap, rounded up
    (ceil(cap / databases), so 1 once there are at least as many databases as slots)."""
    return max(1, -(-max_concurrent_checks // max(1, databases)))


def pooled(databases: int) -> bool:
    """Whether each monitored database keeps a pool of open connections: only with one
    database. With several, a database's connection lives as long as the check or gate read
    that uses it, so the global slots bound them and no server holds idle sessions."""
    return databases <= 1


def database_pool_size(slots: int) -> int:
    """Connections of one database's pool (one database): one per check slot, plus the
    gate's."""
    return slots + DATABASE_EXTRA


def state_pool_size(max_concurrent_checks: int) -> int:
    """Connections of the one state-store pool every database shares: at most
    max_concurrent_checks check jobs run at once, plus one per loop."""
    return max_concurrent_checks + STATE_EXTRA


def connections_needed(
    max_concurrent_checks: int, databases: int, *, standby_pool: bool = False,
    standby_reads: bool = False,
) -> int:
    """Every connection `dq-monitor run` may have open at once: the state pool, the monitored
    databases' (one database: its pool, a second one when its checks run on a standby, and
    the gate's standby read beside the idle pool; several: one per running check plus the
    gate's one read), and the lock sessions (one per database plus the membership's)."""
    if not databases:
        return 0
    cap = max_concurrent_checks
    if pooled(databases):
        pool = database_pool_size(check_slots(cap, databases))
        monitored = pool * (2 if standby_pool else 1) + (1 if standby_reads else 0)
    else:
        monitored = cap + DATABASE_EXTRA
    locks = databases * LEADER_SESSIONS + MEMBER_SESSIONS
    return state_pool_size(cap) + monitored + locks
