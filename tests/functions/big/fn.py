from typing import Optional


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """Returns int(input) bytes of "x"."""
    return "x" * int(input or 0)
