#!/usr/bin/python3
"""Start wg-endpointd; installed as /usr/bin/wg-endpointd.

The package keeps its code in /usr/lib/wg-endpointd (plain .py files, outside
any python3.X directory) so that one package serves every Python 3 version.
This script puts that directory, and /usr/lib/python3-icmplib when the
locally built python3-icmplib package is installed, in front of sys.path.
Both are found relative to this file's real path, so a copy installed under
another root (an image build, a test) runs its own code.
"""

import os
import sys

# Python would otherwise write __pycache__ directories into /usr/lib on the
# router's flash, where no package owns or removes them.
sys.dont_write_bytecode = True

_here = os.path.dirname(os.path.realpath(__file__))
if sys.path and os.path.realpath(sys.path[0] or os.curdir) == _here:
    del sys.path[0]  # /usr/bin itself is no place to import modules from
_lib = os.path.join(os.path.dirname(_here), "lib")
for _name in ("python3-icmplib", "wg-endpointd"):
    _dir = os.path.join(_lib, _name)
    if os.path.isdir(_dir):
        sys.path.insert(0, _dir)

from wg_endpointd.cli import main  # noqa: E402  (needs the path set above)

sys.exit(main())
