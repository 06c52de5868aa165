"""`python -m mnist_cnn` is the same as the `mnist-cnn` command."""

import sys

from mnist_cnn.cli import main

sys.exit(main())
