"""Run one measurement in this fresh process: `python isolated.py MODULE FUNCTION 'JSON-KWARGS'`.

Imports bench/MODULE.py, calls FUNCTION(**kwargs) and prints its result as one JSON line that
common.run_isolated reads back.
"""

import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import RESULT_MARK  # noqa: E402


def main():
    module_name, function_name, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(**kwargs)
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
