import os
from typing import Optional


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """Return the value of the environment variable named by the input."""
    return os.environ.get(input or "", "")
