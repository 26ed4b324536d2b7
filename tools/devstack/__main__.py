import sys

from tools.devstack.stack import main

sys.exit(main())
