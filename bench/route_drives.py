"""Synthetic drives along real roads: moved to :mod:`vehicle_assist.route.synth` (the replay
scenarios generate their drives from it too); kept here for the bench's imports."""

from vehicle_assist.route.synth import *  # noqa: F401,F403
from vehicle_assist.route.synth import Drive, drive, extend_path, random_path, shortest_path  # noqa: F401
