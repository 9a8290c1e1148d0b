"""`python -m quicklane module:app`: the same as the `quicklane` command."""
import sys

from ._cli import main

sys.exit(main())
