"""fairviz: fair multimodal scoring for video interviews, and threshold-free fairness audits.

The numeric core (`fairviz.metrics`, `fairviz.repair`) imports numpy only; torch-based modules
(`fairviz.losses`, `fairviz.model`, `fairviz.train`) are imported on demand.
"""

__version__ = "0.1.0"
