"""``python -m shared.cli``."""

from shared.cli import main

raise SystemExit(main())
