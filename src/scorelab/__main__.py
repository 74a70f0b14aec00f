"""``python -m scorelab`` runs the command line."""

from scorelab.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
