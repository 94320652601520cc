"""The driver's voice lane: audio sources, activation, VAD, ASR, intents, and TTS rendering."""
