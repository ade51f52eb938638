import sys

from .cli import main

# (the console script `umview` exits through cli.console_main, without
# finalization; `python -m umview_py` exits normally, so that profilers and
# coverage tools that run it see the end)
sys.exit(main())
