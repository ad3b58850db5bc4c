"""`python -m fairviz train --method ours --alpha 4 --lambda-w 0.3 --seed 0 --out models/ours-a4`

Trains one model (see `fairviz.train.TrainConfig` for every option), shows a tqdm progress bar,
prints the test metrics and saves the run folder atomically. An existing `--out` is refused
before training unless `--overwrite`; if another process takes the name while this one trains,
the run is saved under a free name (``<name>-2``, ...) and that path is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from tqdm.auto import tqdm

from fairviz.cli._common import fmt_num
from fairviz.methods import ALL_METHODS, BIAS_MODES, FAIRNESS_ROWS, VAL_LABELS, weight_warning
from fairviz.paths import models_dir
from fairviz.runs import RunMetrics, check_folder_name, check_replaceable, sanitize_run_name, save_run, save_unique

# The CLI must start without importing torch (every `python -m fairviz` command builds all
# parsers), so the choices and defaults shown in --help are spelled out here; a test checks them
# against fairviz.train (METHOD_NAMES, BIAS_MODES, TrainConfig()) and FRAME_SAMPLINGS.
METHOD_CHOICES = ALL_METHODS
BIAS_MODE_CHOICES = BIAS_MODES
VAL_LABEL_CHOICES = VAL_LABELS
FAIRNESS_ROWS_CHOICES = FAIRNESS_ROWS
W1_FORM_CHOICES = ("spdd", "pooled")
FRAME_SAMPLING_CHOICES = ("uniform", "consecutive")
FRAME_ENCODER_CHOICES = ("cnn", "efficientnet-lite0", "efficientnet-lite0-finetune")  # model.backbones.FRAME_ENCODERS
DEFAULTS = {
    "method": "ours", "alpha": 4.0, "bias_mode": "label", "lambda_w": 0.3, "adv_weight": 0.1,
    "lambda_l2": 1.0, "lambda_mmd": 0.15, "lambda_sw": 0.2, "val_labels": "true",
    "seed": 0, "epochs": 12, "batch_size": 64, "lr": 2e-3, "data": "synthetic", "device": "auto",
    "n_boot": 200, "fairness_rows": "auto",
}


def add_train_options(parser: argparse.ArgumentParser, *, method: bool = True, seed: bool = True) -> None:
    """The TrainConfig options shared by train / compare / sweep (unset ones keep TrainConfig's defaults)."""
    d = DEFAULTS
    if method:
        parser.add_argument("--method", choices=METHOD_CHOICES, default=None, help=f"training method (default {d['method']})")
    parser.add_argument("--alpha", type=float, default=d["alpha"], help=f"bias strength in the training split, >= 1 (default {d['alpha']:g})")
    parser.add_argument("--bias-mode", choices=BIAS_MODE_CHOICES, default=d["bias_mode"],
                        help="label: rater-biased training labels (the paper's Y~, default); sample: sampling bias")
    parser.add_argument("--adv-weight", type=float, default=None, help=f"adversary weight (adversarial, ours; default {d['adv_weight']:g})")
    parser.add_argument("--lambda-l2", type=float, default=None, help=f"weight of the l2 baseline's mean-gap term (default {d['lambda_l2']:g})")
    parser.add_argument("--lambda-mmd", type=float, default=None, help=f"weight of the mmd baseline's MMD term (default {d['lambda_mmd']:g})")
    parser.add_argument("--lambda-sw", type=float, default=None,
                        help=f"weight of fairoffset's scale-free W1 term (default {d['lambda_sw']:g})")
    parser.add_argument("--fairness-rows", choices=FAIRNESS_ROWS_CHOICES, default=None,
                        help="rows the fairness terms read: labelled (the training rows), pool (every training-split "
                             "row, labelled or not; differs under --bias-mode sample) or auto (pool for fairoffset, "
                             "default)")
    parser.add_argument("--target-spdd", type=float, default=None, metavar="EPS",
                        help="adjust the method's weight during training until validation SPDD <= EPS, and keep the "
                             "most accurate such epoch (the weight reached is stored in the run)")
    parser.add_argument("--val-labels", choices=VAL_LABEL_CHOICES, default=None,
                        help="labels model selection reads: true = an audited validation set (default); "
                             "biased = validation labels biased like the training split's")
    if seed:
        parser.add_argument("--seed", type=int, default=None, help=f"seed of init, split, bias and batches (default {d['seed']})")
    parser.add_argument("--epochs", type=int, default=None, help=f"epochs (default {d['epochs']})")
    parser.add_argument("--batch-size", type=int, default=None, help=f"batch size (default {d['batch_size']})")
    parser.add_argument("--lr", type=float, default=None, help=f"learning rate (default {d['lr']:g})")
    parser.add_argument("--data", default=None, help="'synthetic' (default) or a manifest CSV (video,label,group[,transcript,split])")
    parser.add_argument("--n-samples", type=int, default=None, help="synthetic candidates (default: the generator's default dataset)")
    parser.add_argument("--text-model", default=None, help="local folder of a BERT-like text model (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--device", default=None, help="auto (CUDA when present; default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--n-boot", type=int, default=None, help=f"bootstrap resamples for the test CIs (default {d['n_boot']})")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--group-shares", type=float, nargs="+", default=None, metavar="SHARE",
                        help="synthetic data with k = 2..8 groups of these shares, e.g. 0.1 0.2 0.3 0.4 "
                             "(default: the binary attribute)")
    parser.add_argument("--s-fraction", type=float, default=None,
                        help="share of training rows whose group the training may use, in (0, 1] (default 1)")
    parser.add_argument("--w1-form", choices=W1_FORM_CHOICES, default=None,
                        help="k > 2 groups: the W1 term of ours as spdd (max - min of selection rates, default) "
                             "or pooled (each group's W1 to the batch)")
    parser.add_argument("--dro-alpha", type=float, default=None,
                        help="dro: smallest group share the robust risk protects, in (0, 1] (default 0.2)")
    parser.add_argument("--frames", type=int, default=None, help="video frames per clip (default 8, the synthetic data's)")
    parser.add_argument("--size", type=int, default=None, help="frame side in pixels, frames are SIZE x SIZE (default 32)")
    parser.add_argument("--frame-sampling", choices=FRAME_SAMPLING_CHOICES, default=None,
                        help="manifest data: frames spread over the whole clip (uniform, default) or a run of consecutive frames from its middle")
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                        help="memory-map the feature cache and read it batch by batch (default: for manifest data)")
    parser.add_argument("--frame-encoder", choices=FRAME_ENCODER_CHOICES, default=None,
                        help="per-frame encoder: cnn (small CNN from scratch, default), efficientnet-lite0 (ImageNet-"
                             "pretrained, frozen: frame features computed once and cached) or efficientnet-lite0-finetune "
                             "(pretrained, trained with the model); the pretrained weights come from a pip package")


def config_kwargs(args) -> dict:
    """TrainConfig keyword arguments from parsed options (those present on `args`)."""
    keys = {
        "method": "method", "alpha": "alpha", "bias_mode": "bias_mode", "lambda_w": "lambda_w",
        "adv_weight": "adv_weight", "lambda_l2": "lambda_l2", "lambda_mmd": "lambda_mmd", "lambda_sw": "lambda_sw",
        "target_spdd": "target_spdd", "val_labels": "val_labels", "fairness_rows": "fairness_rows",
        "seed": "seed", "epochs": "epochs", "batch_size": "batch_size",
        "lr": "lr", "data": "data", "n_samples": "n_samples", "text_model": "text_model",
        "device": "device", "n_boot": "n_boot", "s_fraction": "s_fraction", "w1_form": "w1_form",
        "dro_alpha": "dro_alpha",
        "frames": "frames", "size": "size", "frame_sampling": "frame_sampling", "stream": "stream",
        "frame_encoder": "frame_encoder",
    }
    out = {k: getattr(args, a) for k, a in keys.items() if getattr(args, a, None) is not None}
    if getattr(args, "group_shares", None):
        out["data_params"] = {"group_shares": list(args.group_shares)}
    return out


def set_threads(args) -> None:
    if getattr(args, "threads", None):
        import torch  # noqa: PLC0415 - heavy: the CLI starts without it

        torch.set_num_threads(int(args.threads))


class TqdmProgress:
    """A `progress(event)` callback drawing tqdm bars: one for data preparation, one for training."""

    def __init__(self, desc: str = "train", leave: bool = True, position: int | None = None):
        self.desc, self.leave, self.position = desc, leave, position
        self.bar = None
        self.data_bar = None

    def __call__(self, event: dict) -> None:
        stage = event.get("stage")
        if stage == "data":
            if self.data_bar is None:
                self.data_bar = tqdm(total=event.get("total") or 1, desc="features", leave=False, file=sys.stderr)
            self.data_bar.total = event.get("total") or 1
            self.data_bar.n = event.get("done", 0)
            self.data_bar.set_postfix_str(str(event.get("what", "")), refresh=True)
            return
        if stage not in ("step", "epoch"):
            return
        total = event["epochs"] * event["steps"]
        desc = event.get("run") or self.desc
        if self.bar is None or self.bar.desc.rstrip(": ") != desc:
            self.close()
            self.bar = tqdm(total=total, desc=desc, leave=self.leave, unit="step", file=sys.stderr,
                            position=self.position)
        if stage == "step":
            self.bar.total = total
            self.bar.n = (event["epoch"] - 1) * event["steps"] + event["step"]
            self.bar.set_postfix(loss=f"{event['losses'].get('loss', float('nan')):.4f}", refresh=False)
            self.bar.refresh()
        else:
            self.bar.set_postfix(epoch=f"{event['epoch']}/{event['epochs']}",
                                 val_pcc=f"{event['val_pcc']:.3f}", val_spdd=f"{event['val_spdd']:.3f}")

    def close(self) -> None:
        for b in (self.data_bar, self.bar):
            if b is not None:
                b.close()
        self.bar = self.data_bar = None


def summary_lines(run, path=None) -> list[str]:
    """What `train` prints about a trained run: its config and test metrics (and where it is saved)."""
    m = RunMetrics.from_dict(run.metrics, f"run {run.name!r} metrics")
    cfg, floor = run.config, m.get("spdd_floor", "mean")
    weight = cfg.method_weight()
    lines = [
        f"{run.name}: method={cfg.method} alpha={cfg.alpha:g} bias_mode={cfg.bias_mode} "
        + (f"weight={weight:g} " if weight is not None else "") + f"seed={cfg.seed}",
        f"  test (n={m.n}): PCC {fmt_num(m.get('pcc'))}  SRCC {fmt_num(m.get('srcc'))}  SPDD {fmt_num(m.get('spdd'))}"
        + (f" (floor {floor:.3f})" if math.isfinite(floor) else "")
        + f"  SPEO {fmt_num(m.get('speo'))}  score std {m.get('score_std'):.3f}  | best epoch {m.best_epoch}, "
        f"{run.info.get('train_seconds', 0):.0f} s",
    ]
    target = run.info.get("target_spdd")
    if target:
        lines.append(f"  target SPDD {target['target']:g} on validation: "
                     + ("reached" if target["reached"] else "NOT reached (kept the fairest epoch)")
                     + f", weight {target['weight']:.4g}, validation SPDD {target['val_spdd']:.4f}")
    if path is not None:
        lines.append(f"  saved to {path}")
    return lines


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train one fair multimodal scoring model and save it as a run folder",
        description=(
            "Train the multimodal model (video CNN+LSTM, MFCC LSTM, frozen BERT) with one of the "
            "methods on data whose training split is biased with strength alpha; validation and "
            "test keep the true labels. Prints test PCC, SRCC, SPDD (with its permutation floor), "
            "SPEO and saves the run."
        ),
    )
    add_train_options(parser)
    parser.add_argument("--lambda-w", type=float, default=None,
                        help=f"lambda_W, weight of the W1 term of ours (default {DEFAULTS['lambda_w']:g})")
    parser.add_argument("--out", default=None, help="run folder (default: models/<method>-a<alpha>-<mode>-...-s<seed>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder (only a fairviz run folder)")
    parser.add_argument("--json", action="store_true", help="print the test metrics as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    from fairviz.train import TrainConfig, train  # noqa: PLC0415 - imports torch: only `train` needs it

    set_threads(args)
    kw = config_kwargs(args)
    if args.out:
        out = Path(args.out)
        kw["name"] = out.name
    cfg = TrainConfig(**kw)
    if not args.out:
        out = models_dir() / sanitize_run_name(cfg.default_name())
    check_folder_name(out)
    if out.exists() and not args.overwrite:
        raise ValueError(f"{out} already exists; pass --overwrite or choose another --out")
    check_replaceable(out)  # --overwrite replaces a run folder, nothing else
    # under torchrun every process trains; rank 0 alone shows progress, saves and prints
    is_main = int(os.environ.get("RANK", "0")) == 0
    warning = weight_warning(cfg.method, cfg.method_weight())
    if warning and is_main:
        print(f"warning: {warning}", file=sys.stderr)
    bar = None if args.no_progress or not is_main else TqdmProgress(desc=out.name)
    try:
        result = train(cfg, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if not is_main:
        return 0
    try:
        path = save_run(result, out, overwrite=args.overwrite)
    except FileExistsError:  # another process took the name while this one trained
        try:
            path = save_unique(result, out.parent, out.name, tries=100)
        except RuntimeError:
            raise ValueError(f"no free run name like {out.name!r} in {out.parent}; choose another --out") from None
        print(f"note: {out} appeared while training; saved as {path.name}", file=sys.stderr)
    if args.json:
        print(json.dumps({"path": str(path), **result.metrics}, indent=2))
    else:
        print("\n".join(summary_lines(result, path)))
    return 0
