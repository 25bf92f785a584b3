"""Testing a label by intervening: a unit's output zeroed, set to its mean or scaled at its dissected module,
and what that does to the model's classes, its predictions, the layers downstream and the label's agreement.

`modes` (what may be asked and `check_spec`; importable without torch, for the web server's checks), `batches`
(which images, how batched), `hooks` (the forward hook, mean maps), `effects` (one intervention's effect,
label–effect agreement), `sweep` (every unit of a layer), `single_image` (one uploaded image's reading).
Import from the modules: this package imports none of them, so importing `modes` never loads torch.
"""
