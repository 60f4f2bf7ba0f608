"""The engine's checkpoint and partial-result files: ``jaxunc.engine.checkpoint``.

This module only re-exports it (the command line, the studies and user code import
``jaxunc.checkpoint``).
"""

from jaxunc.engine.checkpoint import (
    FORMAT_VERSION,
    PartialResults,
    PartialState,
    check_checkpoint_folder,
    covering_order,
    describe_mismatch,
    identity_hash,
    open_checkpoint,
    read_json,
    read_state,
    run_folder_name,
    write_json_atomic,
    write_state,
)

__all__ = [
    "FORMAT_VERSION",
    "PartialResults",
    "PartialState",
    "check_checkpoint_folder",
    "covering_order",
    "describe_mismatch",
    "identity_hash",
    "open_checkpoint",
    "read_json",
    "read_state",
    "run_folder_name",
    "write_json_atomic",
    "write_state",
]
