import json
from typing import Optional


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """Return the request headers this function received, as JSON."""
    return json.dumps(headers)
