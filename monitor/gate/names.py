"""The plans' and the reports' names, apart from the gate so the command line's help is cheap."""

from __future__ import annotations

DROP_COUNTER_COLUMNS = "drop_counter_columns"
PARTITION_FLAGS_EXCLUSIVE = "partition_flags_exclusive"
PLAN_NAMES = (DROP_COUNTER_COLUMNS, PARTITION_FLAGS_EXCLUSIVE)  # PLANS' keys, in its order
REPORT_FORMATS = ("text", "json", "markdown")  # RENDERERS' keys, in its order
