"""``python -m dexcost.cli``."""

from dexcost.cli import main

raise SystemExit(main())
