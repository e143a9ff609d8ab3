"Checks of audio_lm.widgets that the notebook cannot make: import cost, and widgets outside any kernel."
import json, subprocess, sys, time
import numpy as np
import pytest
from audio_lm.widgets import BatchInspector, TrainingMonitor, WidgetError, headless_widgets

def test_import_is_light():
    "Importing the module loads neither ipywidgets nor matplotlib, nor the training chapter (imported when a run is drawn)."
    code = ("import sys, audio_lm.widgets; "
            "print(json.dumps(sorted(m for m in ('ipywidgets', 'matplotlib', 'audio_lm.train') if m in sys.modules)))")
    out = subprocess.run([sys.executable, '-c', 'import json; ' + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []

def test_monitor_follows_a_file_written_in_pieces(tmp_path):
    f = tmp_path/'metrics.jsonl'
    mon = TrainingMonitor(tmp_path)
    assert len(mon) == 0
    recs = [{'step': i, 'loss': 1 / i, 'lr': 1e-3} for i in range(1, 11)] + [{'eval': {'step': 10, 'eval_loss': 0.2, 'wer': 0.5}}]
    text = ''.join(json.dumps(r) + '\n' for r in recs)
    for cut in range(0, len(text), 37):  # append in odd-sized pieces, refreshing between them
        with open(f, 'a') as fh: fh.write(text[cut:cut + 37])
        mon.refresh()
    assert (len(mon.train), len(mon.evals), mon.bad_lines) == (10, 1, 0)
    np.testing.assert_allclose(mon.curve('loss')[1], [1 / i for i in range(1, 11)])
    assert mon.curve('wer')[0].tolist() == [10]
    f.unlink(); assert mon.refresh() and len(mon) == 0

def test_batch_inspector_headless_widget():
    b = {'input_ids': np.array([[7, 2, 2, 5, 0]]), 'labels': np.array([[-100, -100, -100, 5, -100]]),
         'attention_mask': np.array([[1, 1, 1, 1, 0]])}
    bi = BatchInspector(b, placeholder_id=2)
    assert bi.kinds().tolist() == [[1, 3, 3, 2, 0]]
    with headless_widgets(): box = bi.widget()
    assert type(bi.ui.row.comm).__name__ == 'DummyComm' and bi.ui.tokens.value.count('al-tok al-trained') == 1
    with pytest.raises(WidgetError, match="the batch has no 'labels'"): BatchInspector({'input_ids': b['input_ids']})

def test_monitor_polls_a_widget_and_leaves_no_pyplot_figures(tmp_path):
    "The polling thread redraws the widget with `plot_run` (a pyplot figure) and leaves nothing in pyplot behind."
    import matplotlib.pyplot as plt
    f = tmp_path/'metrics.jsonl'
    f.write_text(json.dumps({'step': 1, 'loss': 2.0}) + '\n')
    mon = TrainingMonitor(tmp_path)
    with headless_widgets(): mon.widget(every=0.02)
    with open(f, 'a') as fh: fh.write(json.dumps({'eval': {'step': 1, 'eval_loss': 1.5, 'wer': 0.5, 'cer': 0.2}}) + '\n')
    for _ in range(250):
        if 'eval wer' in mon.ui.body.value: break
        time.sleep(0.02)
    mon.stop()
    assert 'eval wer' in mon.ui.body.value and mon.error is None
    assert plt.get_fignums() == []
