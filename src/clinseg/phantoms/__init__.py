"""Procedural datasets behind a registry: ``generate_phantom("head-oar", out, cases=16)``.

Each phantom is one module registering its generator with :func:`register_phantom`; importing this
package registers the built-in ones.
"""

from clinseg.phantoms import abdomen_ct as _abdomen_ct  # noqa: F401  (registers "abdomen-ct")
from clinseg.phantoms import brain_tumour as _brain_tumour  # noqa: F401  (registers "brain-tumour")
from clinseg.phantoms import ct_bone as _ct_bone  # noqa: F401  (registers "ct-bone")
from clinseg.phantoms import head_oar as _head_oar  # noqa: F401  (registers "head-oar")
from clinseg.phantoms.abdomen_ct import generate_abdomen_ct
from clinseg.phantoms.brain_tumour import generate_brain_tumour
from clinseg.phantoms.ct_bone import generate_ct_bone
from clinseg.phantoms.head_oar import generate_head_oar
from clinseg.phantoms.registry import (
    generate_phantom,
    get_phantom,
    list_phantoms,
    register_phantom,
)

__all__ = [
    "generate_abdomen_ct",
    "generate_brain_tumour",
    "generate_ct_bone",
    "generate_head_oar",
    "generate_phantom",
    "get_phantom",
    "list_phantoms",
    "register_phantom",
]
