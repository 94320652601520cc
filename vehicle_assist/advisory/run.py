"""AdvisoryRun: retrieve -> route -> generate -> validate -> speak, each stage emitting start/end/error.

Every stage has its own timeout and the whole run has one. A failed stage degrades to a simpler
answer (SLM or remote -> extractive; retrieval failure -> a short apology), never to a crash.
The SLM route streams: each sentence is validated against the cited passages and the scene before
it is spoken; the first sentence that fails stops generation, and if nothing was spoken yet the
extractive answer is spoken instead (the event log says why). Pre-emption: the audio arbiter's
``cancel_event`` stops the SLM within one token and no further sentence is queued.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from vehicle_assist import clock
from vehicle_assist.advisory import extractive, facts, remote, rerank, router, timing, validate
from vehicle_assist.advisory import scene as scenes
from vehicle_assist.advisory.text import shorten
from vehicle_assist.clock import Clock
from vehicle_assist.config import AdvisorySettings
from vehicle_assist.errors import CodedError
from vehicle_assist.messages import (
    Advisory,
    AdvisoryEvent,
    Passage,
    Scene,
)
from vehicle_assist.speech.tts import split_sentences

log = logging.getLogger(__name__)
UNAVAILABLE = "Sorry, I can't look that up right now."
"""Said when retrieval failed (no index, a broken one)."""
STAGES = ("retrieve", "route", "generate", "validate", "speak")
_RUN_IDS = itertools.count(1)


class AdvisoryError(CodedError):
    """A stage failed: a stable ``code`` and a clear message."""


class Retriever(Protocol):
    """What the run needs of the knowledge lane (vehicle_assist.knowledge.retrieve.Retriever)."""

    def search(self, text: str, scene: Scene | None = None, k: int = 5) -> Any: ...


Speaker = Callable[[str], object]
"""Speaks one sentence (renders it and hands it to the audio arbiter; :class:`vehicle_assist.speech.speak.Speaker`)
and returns once it is queued."""


@dataclass
class RunReport:
    """Everything one run decided: the advisory, how it got there, and its timings (ms)."""

    advisory: Advisory
    route: str
    """The route chosen by the router (``advisory.route`` is the one that produced the text)."""
    passages: tuple[Passage, ...] = ()
    answerable: bool = False
    support: float = 0.0
    fallback: str = ""
    """Why the chosen route's answer was replaced ('' when it was not)."""
    verdict: validate.Verdict | None = None
    spoken: list[str] = field(default_factory=list)
    preempted: bool = False
    dropped: bool = False
    """The driver stayed busy until the advisory's time-to-live passed: nothing was said."""
    timings: dict[str, float] = field(default_factory=dict)
    slm: Any = None
    """The SLM's :class:`~vehicle_assist.advisory.slm.Generated`, when the SLM ran."""
    ranked: list = field(default_factory=list, repr=False)
    retrieval: Any = field(default=None, repr=False)
    """The knowledge lane's Retrieval (None when retrieval failed or was not needed)."""


def _with_passages(res: Any, passages: tuple[Passage, ...]) -> Any:
    """A retrieval result (a stand-in, not the knowledge lane's dataclass) with other passages."""
    res.passages = passages
    return res


def whole_rules(retriever: Any, passages: tuple[Passage, ...]) -> tuple[Passage, ...]:
    """Each retrieved chunk replaced by its whole rule (same id and score), when the retriever has it
    (``advisory.whole_rules``), and a rule's figure (the Rule 126 stopping distances) after it."""
    lookup = getattr(retriever, "passage", None)
    if lookup is None:
        return passages
    out = []
    for p in passages:
        full = lookup(p.id)
        out.append(dataclasses.replace(full, score=p.score) if full is not None else p)
    for p in list(out):  # a rule's figure comes with its rule
        fig = lookup(f"{p.id}-figure")
        if fig is not None and all(q.id != fig.id for q in out):
            out.append(dataclasses.replace(fig, score=p.score))
    return tuple(out)


class AdvisoryRun:
    """One configured advisory lane; ``execute`` answers one question or scene."""

    def __init__(self, settings: AdvisorySettings, retriever: Retriever | None, *, slm: Any = None,
                 speaker: Speaker | None = None, on_event: Callable[[AdvisoryEvent], None] | None = None,
                 cancel_event: threading.Event | None = None, k: int = 5,
                 similarity: extractive.Similarity | None = None, clock: Clock | None = None,
                 situation: timing.Situation | None = None) -> None:
        self.settings, self.retriever, self.slm, self.similarity = settings, retriever, slm, similarity
        self.clock, self.situation = clock, situation
        """With both, a non-urgent advisory waits while the driver is busy and is dropped after its TTL."""
        self.speaker, self.on_event, self.k = speaker, on_event, k
        self.cancel_event = cancel_event or threading.Event()
        self.reranker = self._reranker()

    async def execute(self, question: str | None, scene: Scene | None, t_ns: int, *, route: str | None = None) -> Advisory:
        """Answer ``question`` (and/or ``scene``); returns the spoken Advisory."""
        return (await self.execute_report(question, scene, t_ns, route=route)).advisory

    async def execute_report(self, question: str | None, scene: Scene | None, t_ns: int, *,
                             route: str | None = None) -> RunReport:
        """Like :meth:`execute`, with the full report (route, fallback, verdict, timings)."""
        ctx = _Ctx(next(_RUN_IDS), clock.perf_ns(), self.on_event)
        ctx.emit("start", "run", question=question, scene=scenes.describe(scene))
        self.cancel_event.clear()  # a new advisory starts: an old pre-emption no longer applies
        try:
            async with asyncio.timeout(self.settings.run_timeout_s):
                report = await self._stages(ctx, question, scene, t_ns, route)
        except TimeoutError:
            self.cancel_event.set()
            ctx.emit("error", "run", code="timeout", message=f"run exceeded {self.settings.run_timeout_s} s")
            report = RunReport(Advisory(t_ns, "Sorry, that took too long.", router.REFUSAL, refused=True,
                                        question=question), router.REFUSAL, fallback="run-timeout")
        report.timings["total_ms"] = ctx.ms()
        ctx.emit("end", "run", ms=report.timings["total_ms"], route=report.advisory.route,
                 cited=list(report.advisory.cited), refused=report.advisory.refused)
        return report

    async def _stages(self, ctx: "_Ctx", question: str | None, scene: Scene | None, t_ns: int,
                      forced: str | None) -> RunReport:
        s = self.settings
        text = question or ""
        ask = text or scenes.describe(scene) or ""
        timings: dict[str, float] = {}
        ttl = s.workload.ttl_s

        # retrieve
        passages: tuple[Passage, ...] = ()
        answerable = False
        retrieval = None
        try:
            retrieval = await ctx.stage("retrieve", s.retrieve_timeout_s, self._retrieve, text, scene)
            passages, answerable = tuple(retrieval.passages), bool(retrieval.answerable)
            if s.whole_rules:
                passages = self._whole(passages)
            if not text and getattr(retrieval, "query", ""):
                ask = retrieval.query  # a scene: the knowledge lane's scene query says what matters in words
        except AdvisoryError as err:
            log.warning("retrieval failed: %s", err)
        timings["retrieve_ms"] = ctx.last_ms

        # route
        ctx.emit("start", "route")
        t0 = clock.perf_ns()
        # a question's normalised form adds the Code's own words ("blues on" -> emergency vehicle)
        norm = getattr(retrieval, "normalized", "") if text and s.rank_query != "raw" else ""
        norm = norm if isinstance(norm, str) else ""
        rank_ask = norm or ask
        ranked = extractive.rank_sentences(rank_ask, passages, scene, similarity=self.similarity, alpha=s.semantic_weight,
                                           asked=text, cue_weight=s.cue_weight,
                                           expand=norm if s.rank_query == "normalised" else "") if passages else []
        support = max((r.lexical for r in ranked), default=0.0)
        best_sim = max((r.similarity for r in ranked if r.similarity is not None), default=None)
        item: Any = text or scene or ""
        chosen = router.route(item, retrieval if passages else None, s, support=support, similarity=best_sim)
        if forced and chosen != router.REFUSAL:
            chosen = forced
        timings["route_ms"] = (clock.perf_ns() - t0) / 1e6
        ctx.emit("end", "route", ms=timings["route_ms"], route=chosen, support=round(support, 3),
                 similarity=None if best_sim is None else round(best_sim, 3), answerable=answerable,
                 reason=getattr(retrieval, "reason", ""))
        rep = RunReport(Advisory(t_ns, "", chosen, question=question, ttl_s=ttl), chosen, passages, answerable, support)
        rep.ranked, rep.retrieval = ranked, retrieval

        if chosen == router.REFUSAL:
            msg = s.refusal_text if retrieval is not None else UNAVAILABLE
            rep.advisory = Advisory(t_ns, msg, router.REFUSAL, refused=True, question=question, ttl_s=ttl)
            await self._speak(ctx, rep, [msg], timings)
        elif chosen == router.SLM and self.slm is not None:
            await self._slm_route(ctx, rep, ask, scene, t_ns, timings)
        else:
            if chosen == router.SLM:
                rep.fallback = "slm-unavailable"
            answer = None
            if chosen == router.REMOTE:
                answer = await self._remote(ctx, rep, ask, scene, timings)
            if answer is None:
                answer = await self._extractive(ctx, rep, rank_ask, scene, timings)
            rep.advisory = answer
            await self._speak(ctx, rep, split_sentences(answer.text), timings)
        rep.timings.update(timings)
        return rep

    def _whole(self, passages: tuple[Passage, ...]) -> tuple[Passage, ...]:
        return whole_rules(self.retriever, passages)

    def _reranker(self) -> Any:
        """The learned rule re-ranker (advisory/rerank.yaml) when configured and fitted for this index's
        embedder (it needs the sentence similarity's vectors); else None: the retriever's order."""
        s = self.settings
        if getattr(s, "rerank", "retriever") != "model" or self.similarity is None or self.retriever is None \
                or not hasattr(self.similarity, "vectors"):
            return None
        model = rerank.load(Path(s.rerank_model) if s.rerank_model else rerank.MODEL_PATH)
        index = getattr(self.retriever, "index", None)
        if model is not None and index is not None and model.model_id != getattr(index, "model_id", model.model_id):
            log.warning("re-ranker fitted for embedder %s, index has %s: keeping the retriever's order",
                        model.model_id[:12], str(index.model_id)[:12])
            return None
        return model

    def _retrieve(self, text: str, scene: Scene | None) -> Any:
        if self.retriever is None:
            raise AdvisoryError("retrieve-unavailable", "no retriever configured")
        model = self.reranker if text.strip() else None
        try:
            # a question is retrieved for what it asks; the scene steers only a scene or a vague question
            res = self.retriever.search(text, scene=scene if scenes.steers(text) else None,
                                        k=max(self.k, self.settings.rerank_pool) if model is not None else self.k)
        except Exception as err:  # the knowledge lane's own errors, or a broken index
            raise AdvisoryError("retrieve-failed", str(err)) from err
        if model is None or not res.passages:
            return res
        # a question's top rules re-ordered by the learned re-ranker (scenes keep the retriever's order)
        order = rerank.rerank(model, text, res.passages, self.similarity.query(text), self.similarity.vectors)
        kept = tuple(order[:self.k])
        return dataclasses.replace(res, passages=kept) if dataclasses.is_dataclass(res) else _with_passages(res, kept)

    async def _extractive(self, ctx: "_Ctx", rep: RunReport, ask: str, scene: Scene | None,
                          timings: dict[str, float]) -> Advisory:
        s = self.settings
        ex = await ctx.stage("generate", s.generate_timeout_s, lambda: self._answer(ask, rep, scene),
                             route=router.EXTRACTIVE)
        timings["generate_ms"] = timings.get("generate_ms", 0.0) + ctx.last_ms
        if ex is None:
            return Advisory(rep.advisory.t_ns, self.settings.refusal_text, router.REFUSAL, refused=True,
                            question=rep.advisory.question, ttl_s=rep.advisory.ttl_s)
        rep.verdict = await self._validate(ctx, ex.text, ex.cited, rep, scene, timings)
        if not rep.verdict.ok:  # say only the sentences that hold on their own (never an ungrounded one)
            kept = validate.supported_part(ex.text, ex.cited, [p.id for p in rep.passages],
                                           validate.support_texts(rep.passages), scenes.facts(scene), rep.advisory.question or "")
            rep.fallback = "extractive answer partly unsupported: " + "; ".join(rep.verdict.reasons)
            if not kept:
                return Advisory(rep.advisory.t_ns, self.settings.refusal_text, router.REFUSAL, refused=True,
                                question=rep.advisory.question, ttl_s=rep.advisory.ttl_s)
            ex = dataclasses.replace(ex, text=kept)
            rep.verdict = await self._validate(ctx, ex.text, ex.cited, rep, scene, timings)
        return Advisory(rep.advisory.t_ns, ex.text, router.EXTRACTIVE, ex.cited, question=rep.advisory.question,
                        ttl_s=rep.advisory.ttl_s)

    def _answer(self, ask: str, rep: RunReport, scene: Scene | None) -> extractive.Extract | None:
        """The extractive answer; a number question is answered from the fact whose slots match it."""
        s = self.settings
        ex = extractive.answer(ask, rep.passages, scene, s.max_answer_words, ranked=rep.ranked or None,
                               sentences=s.extractive_sentences, asked=rep.advisory.question or "",
                               complete=s.complete_window, redundancy=s.redundancy, tries=s.second_tries)
        question = rep.advisory.question or ""
        fact = facts.best(question, rep.passages, min_score=s.facts_min_score) if s.facts != "off" else None
        if fact is None or (not fact.row and ex is not None and validate.quantities(ex.text)):
            return ex  # a numeric sentence only stands in for an answer that states no number
        said = shorten(facts.spoken(fact, question), s.max_answer_words)
        text, cited = said, (fact.rule_id,)
        if s.facts == "with_sentence" and ex is not None:
            first = ex.text if len(ex.text.split()) <= s.max_answer_words else ""
            if first and fact.text not in ex.sentence and len(said.split()) + len(first.split()) <= s.max_answer_words + 8:
                text, cited = f"{said} {first}", tuple(dict.fromkeys(cited + ex.cited))
        return extractive.Extract(text, cited, said, ex.score if ex else 0.0)

    async def _remote(self, ctx: "_Ctx", rep: RunReport, ask: str, scene: Scene | None,
                      timings: dict[str, float]) -> Advisory | None:
        try:
            ans = await ctx.stage("generate", self.settings.remote.timeout_s + 0.5, remote.ask, ask, rep.passages,
                                  self.settings.remote, route=router.REMOTE)
        except AdvisoryError as err:
            rep.fallback = f"remote failed ({err.code}): local answer instead"
            timings["generate_ms"] = ctx.last_ms
            return None
        timings["generate_ms"] = ctx.last_ms
        verdict = await self._validate(ctx, ans.text, ans.cited, rep, scene, timings)
        if not verdict.ok:
            rep.fallback = "remote answer not grounded: " + "; ".join(verdict.reasons)
            return None
        rep.verdict = verdict
        return Advisory(rep.advisory.t_ns, ans.text, router.REMOTE, ans.cited, question=rep.advisory.question,
                        ttl_s=rep.advisory.ttl_s)

    async def _validate(self, ctx: "_Ctx", text: str, cited: tuple[str, ...], rep: RunReport, scene: Scene | None,
                        timings: dict[str, float]) -> validate.Verdict:
        ctx.emit("start", "validate")
        t0 = clock.perf_ns()
        instructions = getattr(self.slm, "system", "") if rep.route == router.SLM else ""
        verdict = validate.check(text, cited, [p.id for p in rep.passages], validate.support_texts(rep.passages),
                                 scenes.facts(scene), instructions=instructions, question=rep.advisory.question or "")
        ms = (clock.perf_ns() - t0) / 1e6
        timings["validate_ms"] = timings.get("validate_ms", 0.0) + ms
        ctx.emit("end", "validate", ms=ms, ok=verdict.ok, reasons=list(verdict.reasons))
        return verdict

    async def _speak(self, ctx: "_Ctx", rep: RunReport, sentences: list[str], timings: dict[str, float]) -> None:
        for sentence in sentences:
            await self._speak_one(ctx, rep, sentence, timings)

    async def _speak_one(self, ctx: "_Ctx", rep: RunReport, sentence: str, timings: dict[str, float]) -> bool:
        """Speak one sentence (unless pre-empted or dropped); records time to first audio."""
        if self.cancel_event.is_set():
            rep.preempted = True
            return False
        if rep.dropped:
            return False
        if not rep.spoken and self.clock is not None and self.situation is not None:
            ctx.emit("start", "hold")
            t0 = clock.perf_ns()
            decision = await timing.hold(rep.advisory, self.clock, self.situation, self.settings.workload)
            ctx.emit("end", "hold", ms=(clock.perf_ns() - t0) / 1e6, action=decision.action, reason=decision.reason)
            if decision.action == timing.DROP:
                rep.dropped = True
                return False
        if self.speaker is not None:
            try:
                await ctx.stage("speak", self.settings.speak_timeout_s, self.speaker, sentence, text=sentence)
            except AdvisoryError as err:
                log.warning("speak failed: %s", err)
                return False
            timings["speak_ms"] = timings.get("speak_ms", 0.0) + ctx.last_ms
        rep.spoken.append(sentence)
        if "first_audio_ms" not in timings:  # audio starts when the first part is queued (its rest may render after)
            queued = getattr(self.speaker, "queued_ns", None)
            timings["first_audio_ms"] = (queued - ctx.start_ns) / 1e6 if queued else ctx.ms()
        return True

    async def _slm_route(self, ctx: "_Ctx", rep: RunReport, ask: str, scene: Scene | None, t_ns: int,
                         timings: dict[str, float]) -> None:
        """Stream the SLM: validate each sentence, speak it, stop at the first unsupported one."""
        s = self.settings
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, tuple[str, ...]] | None] = asyncio.Queue()
        stop = threading.Event()
        cancel = _AnyEvent(self.cancel_event, stop)
        deadline = clock.perf_ns() + int(s.generate_timeout_s * 1e9)

        def on_sentence(sentence: str, cited: tuple[str, ...]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (sentence, cited))

        def work() -> Any:
            try:
                return self.slm.generate(ask, rep.passages, scene, max_tokens=s.slm_max_tokens,
                                         prompt_max_tokens=s.prompt_max_tokens, prompt_passages=s.prompt_passages,
                                         prompt_sentences=s.prompt_sentences, cancel=cancel, deadline_ns=deadline,
                                         on_sentence=on_sentence)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        ctx.emit("start", "generate", route=router.SLM)
        t0 = clock.perf_ns()
        task = asyncio.ensure_future(asyncio.to_thread(work))
        cited_all: list[str] = []
        failed: validate.Verdict | None = None
        while True:
            item = await queue.get()
            if item is None:
                break
            sentence, cited = item
            if failed is not None or self.cancel_event.is_set():
                continue
            verdict = await self._validate(ctx, sentence, cited, rep, scene, timings)
            if not verdict.ok:
                failed = verdict
                stop.set()
                continue
            cited_all.extend(c for c in cited if c not in cited_all)
            if not await self._speak_one(ctx, rep, sentence, timings):
                stop.set()
        try:
            gen = await task
        except Exception as err:  # SLMError or llama.cpp failure: degrade to extractive
            ctx.emit("error", "generate", code=getattr(err, "code", "slm-failed"), message=str(err))
            gen = None
        timings["generate_ms"] = (clock.perf_ns() - t0) / 1e6
        rep.slm = gen
        ctx.emit("end", "generate", ms=timings["generate_ms"], route=router.SLM,
                 stop=getattr(gen, "stop", "error"), tokens=getattr(gen, "tokens", 0))
        if self.cancel_event.is_set():
            rep.preempted = True
        if gen is not None and failed is None and gen.stop == "done" and rep.spoken:
            whole = await self._validate(ctx, " ".join(rep.spoken), tuple(cited_all), rep, scene, timings)
            rep.verdict = whole
            rep.advisory = Advisory(t_ns, " ".join(rep.spoken), router.SLM, tuple(cited_all),
                                    question=rep.advisory.question, ttl_s=rep.advisory.ttl_s)
            return
        if failed is not None:
            rep.fallback = "slm answer not grounded: " + "; ".join(failed.reasons)
        elif gen is None:
            rep.fallback = "slm failed"
        elif gen.stop != "done":
            rep.fallback = f"slm stopped: {gen.stop}"
        else:
            rep.fallback = "slm gave no answer"
        if rep.preempted:
            rep.advisory = Advisory(t_ns, " ".join(rep.spoken), router.SLM, tuple(cited_all),
                                    question=rep.advisory.question, ttl_s=rep.advisory.ttl_s)
            return
        log.info("advisory fallback to extractive: %s", rep.fallback)
        if rep.spoken:  # part of a validated answer is already out: keep it, say no more
            rep.verdict = await self._validate(ctx, " ".join(rep.spoken), tuple(cited_all), rep, scene, timings)
            rep.advisory = Advisory(t_ns, " ".join(rep.spoken), router.SLM, tuple(cited_all),
                                    question=rep.advisory.question, ttl_s=rep.advisory.ttl_s)
            return
        answer = await self._extractive(ctx, rep, ask, scene, timings)
        rep.advisory = answer
        await self._speak(ctx, rep, split_sentences(answer.text), timings)


class _AnyEvent:
    """Looks like a threading.Event that is set when any of its events is."""

    def __init__(self, *events: threading.Event) -> None:
        self._events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


class _Ctx:
    """Per-run event emitter and stage runner (timing, timeouts, error events)."""

    def __init__(self, run_id: int, start_ns: int, on_event: Callable[[AdvisoryEvent], None] | None) -> None:
        self.run_id, self.start_ns, self.on_event = run_id, start_ns, on_event
        self.last_ms = 0.0

    def ms(self) -> float:
        return (clock.perf_ns() - self.start_ns) / 1e6

    def emit(self, type_: str, stage: str, **data: Any) -> None:
        if self.on_event is not None:
            try:
                self.on_event(AdvisoryEvent(type_, stage, clock.perf_ns(), data, self.run_id))
            except Exception:  # a broken listener must not break the run
                log.exception("advisory event listener failed")

    async def stage(self, name: str, timeout_s: float, fn: Callable[..., Any], *args: Any, **data: Any) -> Any:
        """Run ``fn(*args)`` in a worker thread as stage ``name`` with a timeout; errors become AdvisoryError."""
        self.emit("start", name, **data)
        t0 = clock.perf_ns()
        try:
            result = await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout_s)
        except TimeoutError as err:
            self.last_ms = (clock.perf_ns() - t0) / 1e6
            self.emit("error", name, code=f"{name}-timeout", message=f"{name} took over {timeout_s} s", ms=self.last_ms)
            raise AdvisoryError(f"{name}-timeout", f"{name} took over {timeout_s} s") from err
        except Exception as err:
            self.last_ms = (clock.perf_ns() - t0) / 1e6
            code = getattr(err, "code", f"{name}-failed")
            self.emit("error", name, code=code, message=str(err), ms=self.last_ms)
            raise AdvisoryError(code, str(err)) from err
        self.last_ms = (clock.perf_ns() - t0) / 1e6
        self.emit("end", name, ms=self.last_ms)
        return result
