"""The ``clinseg`` command line: parse, call the library, print. No science here."""

from __future__ import annotations

import typer

from clinseg import __version__
from clinseg.cli._common import console, setup_logging
from clinseg.cli.dicom import import_dicom
from clinseg.cli.evaluate import evaluate, report
from clinseg.cli.interact import interact
from clinseg.cli.phantom import phantom
from clinseg.cli.plan import plan
from clinseg.cli.predict import predict
from clinseg.cli.pretrain import pretrain
from clinseg.cli.study import study_app
from clinseg.cli.train import train
from clinseg.cli.validate import validate
from clinseg.cli.vote import vote

# Help is click's plain layout (rich_markup_mode=None): it wraps at the terminal's width (at most 80 columns)
# and never cuts an option name, where rich's boxed tables cut them ('--largest-compon…') on 80 columns.
app = typer.Typer(
    name="clinseg",
    help="3D medical image segmentation from scarce, incomplete or weak annotations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"clinseg {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """3D medical image segmentation from scarce, incomplete or weak annotations."""
    setup_logging(verbose)


app.command("validate")(validate)
app.command("phantom")(phantom)
app.command("plan")(plan)
app.command("train")(train)
app.command("predict")(predict)
app.command("evaluate")(evaluate)
app.command("report")(report)
app.command("interact")(interact)
app.command("pretrain")(pretrain)
app.command("vote")(vote)
app.command("import-dicom")(import_dicom)
app.add_typer(study_app, name="study")
