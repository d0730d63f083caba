import sys

from kam_assets.cli import main

sys.exit(main())
