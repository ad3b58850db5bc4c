"""Monitoring a deployed scorer: running fairness gaps of a stream of decisions, with confidence
sequences and alarms that stay valid however often they are looked at.

    from fairviz import monitor
    state = monitor.MonitorState(monitor.MonitorConfig(groups=("F", "M"), epsilon=0.05, taus=(0.5,)))
    gaps = state.update(scores, groups)            # a day's decisions; any subset of the groups
    monitor.save(state, "state.json")              # atomic; `monitor.load` refuses edited files
    state.rejected                                 # H0 "gap ≤ ε" rejected at some update (sticky)

The gaps are SPDD (= W1 for two groups), the selection-rate gap DP(τ) at chosen τ and, from
labelled rows (labels may arrive later: ``update(..., labels, labels_only=True)``), the
equal-opportunity gap EO(τ) at chosen τ. Their
confidence sequences hold jointly, at every update, with probability ≥ 1 − α, for streams that are
i.i.d. within each group (`_bounds` explains the construction; docs/MONITORING.md the simulations).
"""

from fairviz.monitor._bounds import dkw_radius
from fairviz.monitor._replay import MAX_LOOKS, example_stream, look_slices, replay, time_values
from fairviz.monitor._state import HISTORY_MAX, Gap, MonitorConfig, MonitorState
from fairviz.monitor._store import FORMAT, VERSION, check_settings, dumps, load, loads, save

__all__ = [
    "FORMAT", "HISTORY_MAX", "MAX_LOOKS", "VERSION", "Gap", "MonitorConfig", "MonitorState",
    "check_settings", "dkw_radius", "dumps", "example_stream", "load", "loads", "look_slices",
    "replay", "save", "time_values",
]
