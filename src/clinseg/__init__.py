"""clinseg: 3D medical image segmentation when expert annotations are scarce, incomplete or weak.

Conventions kept across the package
-----------------------------------
* Arrays are channel-first ``(C, Z, Y, X)``; a single volume is ``(Z, Y, X)``.
* Geometry objects hold spacing and origin in millimetres in ``(x, y, z)`` order (ITK order), so that
  ``spacing[0]`` is the spacing along the last array axis.
"""

__version__ = "0.1.0"
