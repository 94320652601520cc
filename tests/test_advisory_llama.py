"""The llama-cpp-python adapter (advisory/llama.py) on the real SmolLM2 GGUF: the internals it relies on
are still there and still mean what it takes them to mean. A library upgrade that moves them fails here,
not in the car."""

from __future__ import annotations

import pytest

from vehicle_assist import models
from vehicle_assist.advisory.llama import LlamaModel


@pytest.fixture(scope="module")
def model() -> LlamaModel:
    return LlamaModel(models.load_slm(n_threads=1, n_threads_batch=1))


def test_special_token_texts_come_from_the_vocabulary(model):
    llm = model.llm
    assert hasattr(llm, "_model") and callable(getattr(llm._model, "token_get_text", None))
    eos = model.eos_text()
    assert eos.startswith("<|") and eos.endswith("|>")  # SmolLM2's <|im_end|>, not an empty or byte string
    assert model.tokenize(eos) == [llm.token_eos()]  # the text maps back to the same special token
    assert model.bos_text() == (model.special_text(llm.token_bos()) if llm.token_bos() >= 0 else "")


def test_cached_tokens_follow_eval_reset_and_restored_state(model):
    prefix = model.tokenize("<|im_start|>system\nYou answer from the Highway Code.", add_bos=True)
    model.reset()
    assert model.cached_tokens() == []
    model.eval(prefix)
    assert model.cached_tokens() == prefix
    state = model.save_state()
    model.eval(model.tokenize(" More words."))
    assert model.cached_tokens()[: len(prefix)] == prefix and len(model.cached_tokens()) > len(prefix)
    model.load_state(state)
    assert model.cached_tokens() == prefix


def test_the_chat_template_formats_and_completion_streams(model):
    fmt = model.chat_formatter()
    prompt = fmt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}])
    assert "Be brief." in prompt and "Say hello." in prompt and model.eos_text() in prompt
    steps = list(model.stream(model.tokenize(prompt, add_bos=True), max_tokens=4))
    texts = [text for text, _ in steps]
    assert 1 <= len([t for t in texts if t]) <= 4 and steps[-1][1] == "length"  # cut by max_tokens, and says so
    stopped = list(model.stream(model.tokenize(prompt, add_bos=True), max_tokens=8, should_stop=lambda: True))
    assert len([t for t, _ in stopped if t]) <= 1 and stopped[-1][1] == "stop"  # checked on every token
