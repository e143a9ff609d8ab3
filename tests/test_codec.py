"Integration checks of the speech-token path that need more than one process: the cache of SNAC codes survives a restart."
import json, os, subprocess, sys, textwrap
from pathlib import Path

SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import numpy as np, soundfile as sf, torch
    from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast
    from audio_lm.codec import SpeechCodec, add_speech_tokens
    from audio_lm.corpus import Clip
    from audio_lm.speak import speech_rows
    torch.set_num_threads(1)
    tk = Tokenizer(models.BPE()); tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.train_from_iterator(["one two three", "four five"], trainers.BpeTrainer(vocab_size=280,
                           special_tokens=["<eos>"], show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>")
    spec = add_speech_tokens(tok)
    d = Path(sys.argv[1])
    clips = []
    for i, text in enumerate(["one two", "three four five"]):
        t = np.arange(int(0.3 * 22050)) / 22050
        sf.write(d / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 80 * i) * t)).astype(np.float32), 22050)
        clips.append(Clip(str(d / f"c{i}.wav"), text))
    clips.append(Clip(str(d / "nope.wav"), "gone"))
    codec = SpeechCodec.from_config(device="cpu", decoder_dim=64)
    rows, rep = speech_rows(clips, codec, tok, spec, auto_resample=True, verbose=False)
    print(json.dumps(dict(cached=rep.cached, encoded=rep.encoded, rows=rep.rows, dropped=rep.dropped, ids=[r["input_ids"] for r in rows],
                          vocab=spec.vocab_size, start=spec.audio_tokens_start)))
''')

def _run(tmp_path, home):
    env = {**os.environ, "AUDIO_LM_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])

def test_tts_cache_survives_restart(tmp_path):
    home = tmp_path / "home"
    first, second = _run(tmp_path, home), _run(tmp_path, home)
    assert (first["encoded"], first["cached"], second["encoded"], second["cached"]) == (2, 0, 0, 2)
    assert first["rows"] == second["rows"] == 2
    assert first["dropped"] == second["dropped"] == {"audio not found": 1}, first["dropped"]
    assert first["ids"] == second["ids"]
    assert all(first["start"] <= i < first["vocab"] for row in first["ids"] for i in row[-9:-2])
    assert len(list((home / "cache" / "snac").rglob("*"))) >= 2

def test_errors_and_layout():
    import audio_lm.codec as c
    from audio_lm.audio import AudioLmError
    assert issubclass(c.InvalidSpeechTokens, AudioLmError) and issubclass(c.CodecWeightsMissing, AudioLmError)
    assert c.SpeechTokens.from_tokenizer_length(128256).audio_tokens_start == 128266
