import sys
import time
from typing import Optional


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """Sleeps float(input or 1) seconds, then prints that it did: the line in
    /logs tells a test that an asynchronous call ran to its end."""
    seconds = float(input or 1)
    time.sleep(seconds)
    # One write per line: print() writes the text and the newline separately,
    # so lines of concurrent calls could interleave.
    sys.stdout.write(f"slept {seconds}s\n")
    sys.stdout.flush()
    return "slept"
