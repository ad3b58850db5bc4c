"""What the app's pages compute, one module per page concern, without Streamlit (tested directly):

- ``upload``: reading an uploaded table, guessing and checking its columns;
- ``budget``: how many bootstrap resamples and permutations an interactive audit runs;
- ``audit_view``: the Audit page's tables, captions and repair preview;
- ``compare``: the Compare page's table; ``tradeoff``: the Trade-off page's points and sentences;
- ``latent``: a run's latent code Z read without torch (the Representation page);
- ``train_form``: the Train page's form and the `TrainConfig` it makes (imports torch).

Submodules are imported by name (this package imports none of them, so torch stays unloaded).
"""
