import sys

from supagate.cli import main

sys.exit(main())
