import time
from typing import Optional


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """Sleeps float(input or 1) seconds, then prints that it did: the line in
    /logs tells a test that an asynchronous call ran to its end."""
    seconds = float(input or 1)
    time.sleep(seconds)
    print(f"slept {seconds}s", flush=True)
    return "slept"
