"""The one builder of the advisory lane, for the car, ``ask``, replay and the benchmarks.

:func:`load` loads what the configured lane needs once (retriever, sentence similarity, SLM with
its output mode); :meth:`AdvisoryParts.bind` makes an :class:`AdvisoryRun` over them for one
speaker, event listener, pre-emption flag, clock and situation (the last two give the workload
hold and the advisory's time-to-live). :func:`build` is ``ask``'s lane with its own speaker.
:func:`ask_record` turns a run's report into the ``ask`` record (extending
``knowledge.record.ask_record``, never changing it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from vehicle_assist.advisory import timing
from vehicle_assist.advisory.run import AdvisoryRun, Retriever, RunReport, Speaker
from vehicle_assist.clock import Clock
from vehicle_assist.config import AdvisorySettings, AppConfig
from vehicle_assist.messages import AdvisoryEvent


@dataclass
class AdvisoryParts:
    """The loaded lane: settings, retriever, sentence similarity (None: word match only), SLM (None: not routed to)."""

    settings: AdvisorySettings
    retriever: Retriever | None
    similarity: Any = None
    slm: Any = None
    notes: list[str] = field(default_factory=list)
    """What could not be set up as configured (the SLM would not load: extractive route instead)."""

    def bind(self, speaker: Speaker | None = None, on_event: Callable[[AdvisoryEvent], None] | None = None,
             cancel_event: threading.Event | None = None, clock: Clock | None = None,
             situation: timing.Situation | None = None, route: str | None = None) -> AdvisoryRun:
        """An AdvisoryRun over these parts (``route`` overrides the configured one)."""
        settings = self.settings if route is None else self.settings.model_copy(update={"route": route})
        return AdvisoryRun(settings, self.retriever, slm=self.slm, speaker=speaker, on_event=on_event,
                           cancel_event=cancel_event, similarity=self.similarity, clock=clock, situation=situation)

    def close(self) -> None:
        """Persist newly embedded sentences."""
        if self.similarity is not None:
            self.similarity.save()


def load(cfg: AppConfig, *, route: str | None = None, retriever: Any = None, progress: Any = None) -> AdvisoryParts:
    """Load what the configured (or ``route``-overridden) lane needs."""
    from vehicle_assist.advisory.semantic import SentenceSimilarity
    from vehicle_assist.knowledge.retrieve import Retriever as KnowledgeRetriever

    settings = cfg.advisory if route is None else cfg.advisory.model_copy(update={"route": route})
    retriever = retriever or KnowledgeRetriever.load(cfg.knowledge, progress=progress, threads=cfg.runtime.threads.embedder)
    similarity = SentenceSimilarity.for_retriever(retriever) if settings.semantic_weight > 0 else None
    slm, notes = None, []
    if settings.route == "slm":
        slm, why = load_slm(cfg)
        notes += [why] if why else []
    return AdvisoryParts(settings, retriever, similarity, slm, notes)


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


def answer_openings(parts: AdvisoryParts) -> list[str]:
    """The first sentence of every answer the extractive route can give, as :class:`AdvisoryRun` speaks it, plus
    the lane's fixed phrases (refusal, apology), in a stable order. Pure over the loaded index.

    An extractive answer is sentences of one rule (``whole_rules``: the whole rule of a retrieved chunk, or its
    figure; else the chunk), each :func:`~vehicle_assist.advisory.text.shorten`-ed to ``max_answer_words``; a
    number question's answer opens with the rule's fact (:func:`~vehicle_assist.advisory.facts.spoken`: the
    fact, or its context sentence then the fact). The spoken first sentence is the first of
    :func:`~vehicle_assist.speech.tts.split_sentences` of that text. SLM and remote answers are generated
    text and have no fixed opening."""
    from vehicle_assist.advisory import facts
    from vehicle_assist.advisory.dispatch import APOLOGY
    from vehicle_assist.advisory.run import UNAVAILABLE, whole_rules
    from vehicle_assist.advisory.text import passage_sentences, shorten
    from vehicle_assist.messages import Passage
    from vehicle_assist.speech.tts import split_sentences

    s = parts.settings
    out: dict[str, None] = dict.fromkeys((s.refusal_text, UNAVAILABLE, APOLOGY))
    retriever = parts.retriever
    index = getattr(retriever, "index", None)
    if index is None:
        return list(out)
    passages: dict[tuple[str, str], Passage] = {}
    for c in index.chunks:  # each chunk as the answer path widens a retrieved one (its whole rule and figure)
        chunk = (Passage(c.rule_id, c.section, c.title, c.text, 0.0, c.source),)
        for p in whole_rules(retriever, chunk) if s.whole_rules else chunk:
            passages.setdefault((p.id, p.text), p)
    for p in passages.values():
        said = [shorten(x.text, s.max_answer_words) for x in passage_sentences(p)]
        texts = list(said)
        if s.facts != "off":
            for fact in facts.facts(p):
                texts += [shorten(t, s.max_answer_words) for t in [fact.text] + ([f"{fact.context} {fact.text}"] if fact.context else [])]
        for text in texts:
            first = split_sentences(text)
            if first:
                out.setdefault(first[0])
        if s.extractive_sentences > 1:  # two sentences of a rule, in the rule's order, whose boundary is no sentence end
            for i, a in enumerate(said):  # ("... lights on." + "you should ..." is one spoken sentence)
                alone = split_sentences(a)
                for b in said[i + 1:]:
                    joined = split_sentences(f"{a} {b}")
                    if joined and alone and joined[0] != alone[0]:
                        out.setdefault(joined[0])
    return list(out)


@dataclass
class Lane:
    """``ask``'s lane: a ready AdvisoryRun, its parts and its own speaker (closed with :meth:`close`)."""

    run: AdvisoryRun
    parts: AdvisoryParts
    arbiter: Any = None

    @property
    def retriever(self) -> Any:
        return self.parts.retriever

    @property
    def notes(self) -> list[str]:
        """What the lane could not set up as configured, for the user."""
        return self.parts.notes

    def close(self) -> None:
        """Persist newly embedded sentences and release the speaker."""
        self.parts.close()
        if self.arbiter is not None:
            self.arbiter.wait_idle(30)
            self.arbiter.close()


def build(cfg: AppConfig, *, route: str | None = None, sink: str | None = None, retriever: Any = None,
          progress: Any = None, on_event: Callable[[AdvisoryEvent], None] | None = None) -> Lane:
    """:func:`load`, and with ``sink`` ('null', 'wav:PATH', 'device') speech through the audio arbiter."""
    parts = load(cfg, route=route, retriever=retriever, progress=progress)
    speaker = arbiter = None
    if sink:
        from vehicle_assist.audio_out import AudioArbiter, open_sink
        from vehicle_assist.speech import speak
        from vehicle_assist.speech.tts import load_tts

        arbiter = AudioArbiter(open_sink(sink)).start()
        speaker = speak.Speaker(arbiter, load_tts(), first_chunk_words=cfg.speech.tts.first_chunk_words,
                                    nice=cfg.speech.tts.nice)
    run = parts.bind(speaker, on_event, arbiter.cancel_event if arbiter else None)
    return Lane(run, parts, arbiter)


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
