"""The wall clock of a test run at another date (.ci/at-other-dates).

That script puts this folder first on PYTHONPATH, so Python imports this module at start-up in
every process of the run: pytest, its parallel workers, and each `hotline` process a test
starts. Each moves its wall clock (time.time, datetime.now, ...) by the same number of seconds,
TEST_CLOCK_SHIFT_S, from the real clock, and lets it tick on, so all of them agree on what time
it is. Monotonic clocks, which every wait and timeout uses, are left as they are.
"""

import os

_shift = os.environ.get("TEST_CLOCK_SHIFT_S")
if _shift:
    import time
    from datetime import UTC, datetime, timedelta

    import time_machine

    time_machine.travel(datetime.now(UTC) + timedelta(seconds=float(_shift)), tick=True).start()
    # time-machine starts its clock ticking at the first read, not at start(): read it now, or
    # a process that first asks the time a second later runs a second behind the others
    time.time()
