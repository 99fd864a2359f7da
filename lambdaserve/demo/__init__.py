"""The story ``lambdaserve demo`` tells: the whole local lifecycle in one run."""
