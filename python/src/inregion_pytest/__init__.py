"""pytest fixtures for inregion, a local emulator of Cloudflare's DLS and Addressing APIs.

The plugin (:mod:`inregion_pytest.plugin`) is registered through the ``pytest11`` entry
point; this module re-exports its helper types for type annotations.
"""

from .plugin import Account, Inregion, InregionError

__all__ = ["Account", "Inregion", "InregionError"]
