"""Peak memory of a benchmarked process, read from /proc."""

from __future__ import annotations

import re
from pathlib import Path


def vm_hwm_kb(pid: int) -> int:
    """A process's peak resident set size so far, in kB (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0
