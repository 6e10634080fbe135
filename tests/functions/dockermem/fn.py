from typing import Optional

hog = []


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """On "alloc", allocates (and touches) far more than a 64 MiB memory
    limit allows, so the kernel kills the instance; otherwise answers "ok"."""
    if input == "alloc":
        for _ in range(64):
            hog.append(bytearray(8 << 20))  # zero-filled: every page is touched
        return "allocated {} MiB".format(8 * len(hog))
    return "ok"
