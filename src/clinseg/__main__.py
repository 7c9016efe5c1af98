"""``python -m clinseg ...``: the command line, as the ``clinseg`` script (also what ``torchrun -m`` runs)."""

from clinseg.cli.main import app

if __name__ == "__main__":
    app(prog_name="clinseg")
