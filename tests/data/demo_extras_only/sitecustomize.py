"""Put on PYTHONPATH by tests/demo_install.py: every Python process of the run (the demo and
the ``modelward`` commands it starts) refuses to import the top-level modules listed in the
file named by MODELWARD_TEST_BLOCKED_MODULES, as if the distributions providing them were
not installed. So a run in the full development environment shows what a ``make demo``
install, with only the demo's extras, would lack."""

import json
import os
import sys


class _NotInstalled:
    def __init__(self, blocked: set[str]):
        self.blocked = blocked

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the demo's install)",
                                      name=name)
        return None


_path = os.environ.get("MODELWARD_TEST_BLOCKED_MODULES")
if _path:
    with open(_path) as _f:
        sys.meta_path.insert(0, _NotInstalled(set(json.load(_f))))
