"""Give freed heap memory back to the system when a session's runs go.

glibc keeps freed memory in its arenas for reuse, so a server whose sessions all closed stays as large as
at its busiest (five sessions: the workers kept 68 MB of the 250 MB they grew by). `malloc_trim(0)` returns
what is free; elsewhere (no glibc) there is nothing to do.
"""

from __future__ import annotations

import ctypes
import gc


def release_memory() -> None:
    gc.collect()  # models and their optimisers sit in reference cycles: free them before trimming
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
