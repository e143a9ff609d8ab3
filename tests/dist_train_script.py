"Train the tiny text recipe and save the final weights; run alone or under torchrun (see test_distributed.py)."
import sys, torch
from pathlib import Path
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM
from audio_lm.train import fit, TrainConfig, Recipe, collate_rows, trainable_state

def main(out, micro):
    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
    rows = [{'input_ids': (ids := [(5*i + k) % 60 + 1 for k in range(12)]), 'labels': ids} for i in range(32)]
    recipe = Recipe('text', lm, collate=collate_rows, length=lambda e: len(e['input_ids']))
    cfg = TrainConfig(max_steps=6, micro_batch_size=micro, warmup_steps=1, learning_rate=5e-3, ckpt_every=0, eval_every=0)
    res = fit(recipe, rows, (), cfg, run_dir=Path(out)/'run', progress=False)
    if int(__import__('os').environ.get('RANK', '0')) == 0:
        save_file({k: v.contiguous() for k, v in trainable_state(recipe.model).items()}, str(Path(out)/'weights.safetensors'))
        print('world_size', res.world_size)
        print('losses', [h['loss'] for h in res.history])

if __name__ == '__main__': main(sys.argv[1], int(sys.argv[2]))
