from typing import Optional


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    raise ValueError("boom")
