"""Run siteplanner from a checkout: ``python cli.py rank data/helsinki/study.toml``."""

from siteplanner.cli import main

if __name__ == "__main__":
    main()
