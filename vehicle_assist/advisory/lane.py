"""Assemble the advisory lane from the config (retriever, sentence similarity, SLM, speaker) and turn
its report into the ``ask`` record (extending ``knowledge.record.ask_record``, never changing it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vehicle_assist.advisory.run import AdvisoryRun, ArbiterSpeaker, RunReport
from vehicle_assist.config import AppConfig


@dataclass
class Lane:
    """A ready AdvisoryRun and the resources it owns (closed with :meth:`close`)."""

    run: AdvisoryRun
    retriever: Any
    similarity: Any = None
    arbiter: Any = None
    notes: list[str] = field(default_factory=list)
    """What the lane could not set up as configured (e.g. the SLM would not load), for the user."""

    def close(self) -> None:
        """Persist newly embedded sentences and release the speaker."""
        if self.similarity is not None:
            self.similarity.save()
        if self.arbiter is not None:
            self.arbiter.wait_idle(30)
            self.arbiter.close()


@dataclass
class Resources:
    """What every advisory run of one configuration shares: loaded once, by ``ask``, the bench and the car."""

    settings: Any
    retriever: Any
    similarity: Any = None
    slm: Any = None
    notes: list[str] = field(default_factory=list)
    """What could not be set up as configured (the SLM would not load: extractive route instead)."""

    def run(self, *, speaker=None, on_event=None, cancel_event=None) -> AdvisoryRun:
        """An AdvisoryRun over these resources (the one way the CLI, the bench and the runtime make one)."""
        return AdvisoryRun(self.settings, self.retriever, slm=self.slm, speaker=speaker, on_event=on_event,
                           similarity=self.similarity, cancel_event=cancel_event)


def resources(cfg: AppConfig, *, route: str | None = None, retriever: Any = None, progress: bool = False) -> Resources:
    """Load the retriever, the sentence similarity and (when routed to) the SLM for the configured lane."""
    from vehicle_assist.advisory.semantic import SentenceSimilarity
    from vehicle_assist.knowledge.retrieve import Retriever

    settings = cfg.advisory if route is None else cfg.advisory.model_copy(update={"route": route})
    retriever = retriever or Retriever.load(cfg.knowledge, progress=progress, threads=cfg.runtime.threads.embedder)
    similarity = SentenceSimilarity.for_retriever(retriever) if settings.semantic_weight > 0 else None
    slm, notes = None, []
    if settings.route == "slm":
        slm, why = load_slm(cfg)
        notes += [why] if why else []
    return Resources(settings, retriever, similarity, slm, notes)


def load_slm(cfg: AppConfig) -> tuple[Any, str | None]:
    """The configured SLM, or ``(None, why)`` when its file cannot be loaded (not a GGUF, no chat
    template): the lane then answers on the extractive route, each answer marked ``slm-unavailable``.
    A model that is not there at all (:class:`~vehicle_assist.models.ModelNotFound`) is raised: the
    configuration names a file that does not exist, which must be fixed, not papered over."""
    from vehicle_assist.advisory.slm import SLM, SLMError

    try:
        return SLM.load(threads=cfg.runtime.threads.slm, output=cfg.advisory.slm_output), None
    except SLMError as err:
        return None, f"[{err.code}] {err.message}; answering on the extractive route instead"


def build(cfg: AppConfig, *, route: str | None = None, sink: str | None = None, retriever: Any = None,
          progress: bool = False, on_event=None) -> Lane:
    """Load what the configured (or ``route``-overridden) lane needs; ``sink`` ('null', 'wav:PATH',
    'device') adds speech through the audio arbiter."""
    res = resources(cfg, route=route, retriever=retriever, progress=progress)
    speaker = arbiter = None
    if sink:
        from vehicle_assist import models
        from vehicle_assist.audio_out import AudioArbiter, open_sink

        arbiter = AudioArbiter(open_sink(sink)).start()
        speaker = ArbiterSpeaker(arbiter, models.load_tts())
    run = res.run(speaker=speaker, on_event=on_event, cancel_event=arbiter.cancel_event if arbiter else None)
    return Lane(run, res.retriever, res.similarity, arbiter, res.notes)


def ask_record(report: RunReport) -> dict:
    """The knowledge lane's ask record for this run, with answer, cited, route, refused and timings added."""
    from vehicle_assist.knowledge.record import ask_record as base

    if report.retrieval is not None:
        rec = base(report.retrieval)
    else:
        rec = {"question": report.advisory.question or "", "passages": [], "answerable": False, "answer": None,
               "cited": [], "route": None, "timings": {}}
    adv = report.advisory
    rec["answer"] = adv.text
    rec["cited"] = list(adv.cited)
    rec["route"] = adv.route
    rec["refused"] = adv.refused
    rec["fallback"] = report.fallback or None
    rec["grounded"] = None if report.verdict is None else report.verdict.ok
    rec["timings"] = {**rec["timings"], **{("run_ms" if k == "total_ms" else k): round(v, 3)
                                          for k, v in report.timings.items() if k != "retrieve_ms"}}
    return rec
