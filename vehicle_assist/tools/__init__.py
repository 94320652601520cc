"""Data and evaluation generators, outside the runtime lanes: nothing the car runs imports them.

- :mod:`.approach`: the NHTSA approach sequences (a real car composited into a real road, closing
  to a known TTC) with ground truth, for the ``approach_*`` replay scenarios and ``bench/perception.py``.
- :mod:`.evalset`: the spoken evaluation set of ``bench/speech.py`` (rendered utterances, references, WER).
"""
