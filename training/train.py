"""SageMaker script-mode entry point (``entry_point="train.py"``): see lambdaserve.training.job."""

import sys

from lambdaserve.training.job import main

if __name__ == "__main__":
    sys.exit(main())
