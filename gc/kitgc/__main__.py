import sys

from kitgc.cli import main

sys.exit(main())
