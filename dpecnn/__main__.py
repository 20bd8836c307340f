import sys

from dpecnn.cli import main

sys.exit(main())
