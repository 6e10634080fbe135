from typing import Optional


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """Return the input unchanged (None stays None)."""
    return input
