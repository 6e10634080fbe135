from typing import Optional

import six


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """Proves requirements.txt was installed next to fn.py."""
    return six.__version__
