"""Replay of recorded drives through the unchanged runtime: drive formats (folder + manifest, MCAP),
scenario checks, reference diffs, fault injection, HTML report, annotated video and MCAP output.

Replay differs from a live run only in its sources (frames, audio and telemetry read from a drive,
see :mod:`.drive`) and its clock (:class:`~vehicle_assist.clock.ReplayClock`).
"""
