import sys

from crface.cli import main

sys.exit(main())
