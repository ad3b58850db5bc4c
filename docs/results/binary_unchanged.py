"""Binary training unchanged by the k-group path: tiny runs of the six original methods in two
source trees, compared value for value (docs/RESULTS.md, "Beyond two groups").

    mkdir old && git archive dbe9fbe^ | tar -x -C old      # the tree before k-group training
    python docs/results/binary_unchanged.py old a.json      # each tree with its own fairviz
    python docs/results/binary_unchanged.py . b.json
    python docs/results/binary_unchanged.py --compare a.json b.json

Each run: the tiny binary set and tiny network of tests/test_train.py, 2 epochs, explicit weights
(so that later changes of a default do not count), one torch thread. Recorded: every history
value but the wall time, and every predicted score.
"""

import json
import sys

METHODS = ("vanilla", "balancing", "adversarial", "l2", "mmd", "ours")


def record(repo: str, out: str) -> None:
    sys.path.insert(0, repo)  # that tree's fairviz and tests
    import torch  # noqa: PLC0415 - after the path is set, like the fairviz imports below

    from fairviz.train import train  # noqa: PLC0415
    from tests.test_train import tiny_config, tiny_features  # noqa: PLC0415

    torch.set_num_threads(1)
    feats, runs = tiny_features(), {}
    for method in METHODS:
        run = train(tiny_config(method, lambda_w=0.3, lambda_l2=1.0, lambda_mmd=0.15, adv_weight=0.5), features=feats)
        runs[method] = {"history": [{k: v for k, v in h.items() if k != "seconds"} for h in run.history],
                        "scores": run.predictions["score"].tolist()}
    with open(out, "w") as fh:
        json.dump(runs, fh)


def compare(a_path: str, b_path: str) -> int:
    with open(a_path) as fa, open(b_path) as fb:
        a, b = json.load(fa), json.load(fb)
    differ = 0
    for method in METHODS:
        same = a[method] == b[method]
        differ += not same
        print(f"{method}: {'identical' if same else 'DIFFERENT'} ({len(a[method]['scores'])} scores, "
              f"{len(a[method]['history'])} epochs)")
    return 1 if differ else 0


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    record(sys.argv[1], sys.argv[2])
