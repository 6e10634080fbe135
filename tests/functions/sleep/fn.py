import os
import time
from typing import Optional


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """Sleep float(input or 1) seconds, then touch $MARKER_FILE if set."""
    time.sleep(float(input or 1))
    marker = os.environ.get("MARKER_FILE")
    if marker:
        with open(marker, "w") as f:
            f.write("slept\n")
    return "slept"
