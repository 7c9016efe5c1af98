"""The interactive viewer (``clinseg interact RUN IMAGE``): a person clicks, the network segments.

A local web page (standard-library HTTP server, one static page, no internet) shows a slice of the image —
in radiological orientation whatever its stored direction, through a grey-level window (CT presets for an
image in HU) — with every structure's mask in its colour. Left click marks foreground, right click (or
shift+click) background; the network redraws the structure from the clicks (seed 002 §2.3). A brush
corrects what clicks cannot. The corrections are saved into a dataset folder — only the structures touched
count as delineated — to fine-tune the network on them (``clinseg train NEWDATASET --out RUN2 --init ...``):
the corrective-annotation loop.

>>> from clinseg.interactive.viewer import ViewerSession, serve
"""

from clinseg.interactive.viewer.server import ViewerServer, serve
from clinseg.interactive.viewer.session import ViewerSession, case_id_of

__all__ = ["ViewerServer", "ViewerSession", "case_id_of", "serve"]
