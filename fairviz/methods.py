"""The catalogue of training methods and training options, without torch.

One list that the CLI, the app and the experiment drivers read; `fairviz.train` attaches each
method's loss terms to these names (and checks at import that the two agree). Kept free of torch
so that a page or command that only lists or validates names never loads it.
"""

#: The methods of the default comparison and the shipped runs: the paper's six and fairoffset.
COMPARED_METHODS = ("vanilla", "balancing", "adversarial", "l2", "mmd", "ours", "fairoffset")
#: Every method `train` accepts; the last two never read the sensitive attribute in training.
ALL_METHODS = COMPARED_METHODS + ("dro", "arl")
#: How training bias is injected: "label" = raters' biased labels, "sample" = biased sampling.
BIAS_MODES = ("label", "sample")
#: Which validation labels model selection reads: "true" = an audited validation set with the
#: true labels; "biased" = validation labels biased like the training split's (what a team whose
#: raters are biased has).
VAL_LABELS = ("true", "biased")
# rows the fairness terms read: "auto" (the method's choice), the labelled training rows, or
# the whole training split (labelled or not; differs from the labelled rows under sampling bias)
FAIRNESS_ROWS = ("auto", "labelled", "pool")
#: Each method's own fairness weight: the `TrainConfig` field its distribution term reads, which a
#: sweep sets (λ_W for ours, λ for l2 and mmd); methods without one are absent.
WEIGHT_FIELDS = {"l2": "lambda_l2", "mmd": "lambda_mmd", "ours": "lambda_w", "fairoffset": "lambda_sw"}
#: `TrainConfig`'s default number of epochs (what a form starts with before torch is loaded).
DEFAULT_EPOCHS = 12
#: The largest weight measured not to collapse the scores, per method (docs/RESULTS.md, "The knob
#: with the weak encoder"): fairoffset holds up to 0.3 with every encoder measured and collapses at
#: 1 with a weak one. The target controller never goes past it; the CLI and the Train page warn
#: when a user sets more.
SAFE_WEIGHT_MAX = {"fairoffset": 0.3}


def weight_warning(method: str, weight: float | None) -> str | None:
    """A one-line warning when `weight` is past `method`'s measured safe range, else None."""
    top = SAFE_WEIGHT_MAX.get(method)
    if top is None or weight is None or not weight > top:
        return None
    return (f"{method}'s weight {weight:g} is above {top:g}, the largest measured not to collapse the scores: "
            f"with a weak text encoder the scores collapsed at 1 (spread 0.04-0.39x vanilla's)")
