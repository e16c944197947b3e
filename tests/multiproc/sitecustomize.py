"""Loaded through PYTHONPATH by tests/test_parallel.py: in the process of rank $AUDIT_RANK, record every file
this Python process creates, writes, renames or removes (audit events, PEP 578) and dump them to $AUDIT_OUT at exit."""
import atexit
import json
import os
import sys

if os.environ.get("RANK") == os.environ.get("AUDIT_RANK"):
    _writes = []

    def _hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            mode, flags = args[1] or "", args[2] or 0
            if any(c in str(mode) for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                _writes.append(["open", os.fspath(args[0])])
        elif event in ("os.rename", "os.remove", "os.rmdir"):
            _writes.append([event, os.fspath(args[0])])
        elif event == "os.mkdir" and not os.path.isdir(args[0]):  # mkdir of an existing folder creates nothing
            _writes.append([event, os.fspath(args[0])])

    sys.addaudithook(_hook)

    def _dump():
        with open(os.environ["AUDIT_OUT"], "w") as f:  # lies outside the run folders the test checks
            json.dump(_writes, f)

    atexit.register(_dump)
