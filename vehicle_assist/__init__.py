"""vehicle_assist: an offline onboard driving assistant.

Importing the package switches every model library to offline mode first, so that no library
downloads anything at run time unasked (see :mod:`vehicle_assist.offline`).
"""

from vehicle_assist import offline as _offline

_offline.enforce()

__version__ = "0.1.0"
