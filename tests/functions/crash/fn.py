import os
from typing import Optional


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """Kills the whole handler on input "crash", to test instance restarts."""
    if input == "crash":
        os._exit(3)
    return "alive"
