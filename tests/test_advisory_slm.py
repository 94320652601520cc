"""The real SLM (SmolLM2-135M GGUF through llama.cpp): plain or schema-constrained, deterministic, pre-emptible."""

from __future__ import annotations

import asyncio
import json

import pytest

from vehicle_assist.advisory import prompt as prompts
from vehicle_assist.advisory.run import AdvisoryRun
from vehicle_assist.advisory import validate
from vehicle_assist.advisory.slm import SLM, AnswerStream, PlainStream
from vehicle_assist.config import AdvisorySettings
from vehicle_assist.messages import Passage

P126 = Passage("126", "General rules", "Stopping distances",
               "You should\n- allow at least a two-second gap between you and the vehicle in front on high-speed roads "
               "and in tunnels where visibility is reduced. The gap should be at least doubled on wet roads and up to "
               "ten times greater on icy roads")
P163 = Passage("163", "Using the road", "Overtaking",
               "You should\n- leave at least 1.5 metres when overtaking cyclists at speeds of up to 30mph, and give "
               "them more space when overtaking at higher speeds")
QUESTION = "how much room should I give a cyclist when I overtake"


# --- pure: streaming parser and prompt --------------------------------------------------------


def test_answer_stream_yields_sentences_as_they_complete():
    st = AnswerStream()
    out = []
    for piece in ['{ "cited": ["1', '63"], "ans', 'wer": "Leave 1.5 me', 'tres. Give mo', 're room when \\"fast\\". ', 'Ok"}']:
        out += st.feed(piece)
    out += st.finish()
    assert out == ["Leave 1.5 metres.", 'Give more room when "fast".', "Ok"]
    assert st.cited() == ("163",)


def test_plain_stream_yields_sentences_as_they_complete():
    st = PlainStream()
    out = []
    for piece in ["Leave 1.5 me", "tres. Give more", " room when fast. ", "Ok"]:
        out += st.feed(piece)
    out += st.finish()
    assert out == ["Leave 1.5 metres.", "Give more room when fast.", "Ok"]
    assert st.answer == "Leave 1.5 metres. Give more room when fast. Ok"
    marked = PlainStream()  # rule markers copied from the prompt's "[163] ..." are not spoken
    assert marked.feed("[163] Leave 1.5 metres. ") + marked.finish() == ["Leave 1.5 metres."]


def test_citations_are_picked_among_the_offered_ids_by_support():
    support = validate.support_texts([P163, P126])
    assert validate.pick_citations("Leave at least 1.5 metres when overtaking cyclists.", ("126", "163"), support) == ("163",)
    assert validate.pick_citations("Keep a two-second gap, doubled on wet roads.", ("163", "126"), support) == ("126",)
    # an unsupported number: the closest rule is still cited, and validation says why it fails
    ids = validate.pick_citations("Leave 9 metres for cyclists when overtaking.", ("126", "163"), support)
    assert ids == ("163",) and not validate.check("Leave 9 metres for cyclists.", ids, ("126", "163"), support).ok
    assert validate.pick_citations("anything", ("999",), support) == ()


def test_plain_prompt_ends_with_the_answer_cue_and_json_prompt_asks_for_json():
    plain = prompts.build(QUESTION, [P163, P126], max_tokens=180)
    js = prompts.build(QUESTION, [P163, P126], max_tokens=300, output="json")
    assert plain.user.endswith(prompts.ANSWER_CUE) and "JSON" not in plain.system
    assert "JSON" in js.system and not js.user.endswith(prompts.ANSWER_CUE)
    with pytest.raises(ValueError, match="plain or json"):
        prompts.system_prompt("xml")


def test_prompt_fits_its_budget_and_keeps_the_relevant_sentence():
    long = Passage("999", "s", "t", " ".join(f"Sentence number {i} says nothing useful here." for i in range(60)))
    p = prompts.build(QUESTION, [P163, long, P126], max_tokens=300)
    assert p.tokens <= 300 and p.ids[0] == "163" and "1.5 metres" in p.user
    assert prompts.answer_schema(p.ids)["properties"]["cited"]["items"]["enum"] == list(p.ids)


# --- the real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slm():
    return SLM.load(threads=1)


@pytest.fixture(scope="module")
def first(slm):
    """One generation, shared by the checks below (the model is slow on shared cores)."""
    seen = []
    g = slm.generate(QUESTION, [P163, P126], max_tokens=MAX_TOKENS, on_sentence=lambda s, c: seen.append((s, c)))
    return g, seen


MAX_TOKENS = 56


class CountingEvent:
    """A cancel flag that becomes set after it has been checked ``after`` times (one check per token)."""

    def __init__(self, after: int) -> None:
        self.after, self.checks = after, 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks > self.after


@pytest.mark.slow
def test_plain_output_is_one_line_citing_only_retrieved_ids(slm, first):
    g, _ = first
    assert slm.output == "plain" and g.tokens > 0 and g.prompt_tokens <= 150 + 20
    assert g.stop in ("done", "length") and g.text and "\n" not in g.raw
    assert g.cited and set(g.cited) <= {"163", "126"}


@pytest.mark.slow
def test_json_output_is_schema_json_citing_only_retrieved_ids(slm):
    js = SLM(slm.llm, slm.model_name, output="json")  # same weights, its own system prompt and KV state
    js.warm()
    g = js.generate(QUESTION, [P163, P126], max_tokens=MAX_TOKENS, prompt_max_tokens=300)
    assert g.tokens > 0 and g.prompt_tokens <= 300 + 20
    if g.stop == "done":
        data = json.loads(g.raw)
        assert set(data) == {"cited", "answer"} and g.text == data["answer"].strip()
    else:  # cut by max_tokens: still a JSON prefix whose ids are retrieved ones
        assert g.stop == "length" and g.raw.lstrip().startswith("{")
    assert g.cited and set(g.cited) <= {"163", "126"}


@pytest.mark.slow
def test_decoding_is_deterministic_and_prefix_cache_changes_nothing(slm, first):
    again = slm.generate(QUESTION, [P163, P126], max_tokens=MAX_TOKENS, reuse_prefix=False)
    assert again.raw == first[0].raw


@pytest.mark.slow
def test_stop_hook_preempts_within_one_token(slm):
    g = slm.generate(QUESTION, [P163, P126], cancel=CountingEvent(after=3))
    assert g.stop == "cancelled" and g.tokens <= 4


@pytest.mark.slow
def test_sentences_stream_to_the_callback(first):
    g, seen = first
    spoken = " ".join(s for s, _ in seen).strip()
    assert seen and (spoken == g.text if g.stop == "done" else g.text.startswith(spoken))
    assert all(set(c) <= {"163", "126"} for _, c in seen)


@pytest.mark.slow
def test_run_with_the_real_slm_is_validated_or_falls_back(slm):
    class Ret:
        passages, answerable, reason, timings = (P163, P126), True, "", {}

    class Retriever:
        def search(self, text, scene=None, k=5):
            return Ret()

    spoken = []
    lane = AdvisoryRun(AdvisorySettings(route="slm", semantic_weight=0.0, slm_max_tokens=MAX_TOKENS), Retriever(), slm=slm,
                       speaker=spoken.append)
    rep = asyncio.run(lane.execute_report(QUESTION, None, 0))
    assert spoken and rep.advisory.text and rep.advisory.cited
    assert set(rep.advisory.cited) <= {"163", "126"}
    if rep.advisory.route == "slm":
        assert rep.verdict.ok and not rep.fallback
    else:
        assert rep.advisory.route == "extractive" and rep.fallback
