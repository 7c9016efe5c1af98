"""``clinseg interact RUN IMAGE``: segment an image by clicking, in a local web page.

Opens the viewer of :mod:`clinseg.interactive.viewer` in the browser: left click on the structure
(foreground), right click or shift+click around it (background), the network redraws it; a brush corrects
the rest. "Save prediction" writes ``OUT/<case>/<structure>.nii.gz`` (``--out``, default ``RUN/interact``);
"Save corrections to dataset" adds the image and the touched structures to ``--dataset`` (default
``RUN/corrections``) for fine-tuning: ``clinseg train DATASET --out RUN2 --init ...``. Where files go and the
case id are fixed here, never by the page. Serves on 127.0.0.1 until Ctrl-C (or SIGTERM); the printed
address holds the session's access token (``?token=...``), which every request must carry. The browser is
opened on a private (0600) redirect page, deleted when the command ends, so the token never appears on the
browser's command line (:mod:`clinseg.interactive.viewer.launch`).
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import typer

from clinseg.cli._common import console, handle_errors


@handle_errors
def interact(
    run: Path = typer.Argument(..., help="Interactive run folder (clinseg train --method interactive)."),
    image: Path = typer.Argument(..., help="Image to segment: one file, or the _0000 file of a multi-channel case."),
    out: Path = typer.Option(None, "--out", help="Folder 'Save prediction' writes OUT/<case>/<structure>.nii.gz "
                             "into (default RUN/interact)."),
    dataset: Path = typer.Option(None, "--dataset", help="Dataset folder the corrections are saved into "
                                 "(created if missing; default RUN/corrections). A case of it that holds "
                                 "another image is never overwritten: the corrections get <case>_2 …"),
    case: str = typer.Option(None, "--case", help="Case id of the saved files (default: from the image "
                             "file name)."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: a free one)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the address; do not open a browser."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best | last."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
) -> None:
    """Segment IMAGE interactively with the clicks of a person (a local web page)."""
    from clinseg.interactive.network import InteractiveNetwork
    from clinseg.interactive.viewer import ViewerSession, serve

    network = InteractiveNetwork.from_run(run, checkpoint, device)
    session = ViewerSession(network, image, case_id=case, run_dir=run, dataset_dir=dataset, prediction_dir=out)
    server = serve(session, port=port)
    console.print(f"viewer for [bold]{session.case_id}[/] — Ctrl-C to stop", highlight=False)
    console.print(f"  predictions: {session.default_prediction_path('<structure>')}", highlight=False,
                  markup=False, soft_wrap=True)
    console.print(f"  corrections: {session.default_dataset_dir()}", highlight=False, markup=False,
                  soft_wrap=True)
    console.print("  open (the address holds this session's access token; do not share it):", highlight=False)
    console.print(f"  {server.url}", highlight=False, markup=False, soft_wrap=True)
    previous = signal.signal(signal.SIGTERM, _stop)  # a terminated viewer cleans up as after Ctrl-C
    try:
        if not no_browser:
            server.open_browser()
        while True:
            server.wait(0.5)
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.shutdown()  # also deletes the redirect page
        signal.signal(signal.SIGTERM, previous)


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler: stop like Ctrl-C, so the server shuts down and the redirect page is deleted."""
    raise KeyboardInterrupt
