"""Feature-extraction mode: run a backbone once over a dataset and cache its features as an .npz (jhash.features).

From a trained run (its latest checkpoint; the dataset is the run's):
  python experiments/extract_features.py --workdir runs/dpsh-cifar10 --out runs/feats/cifar10-cnn.npz

From a model with pretrained weights converted by experiments/convert_weights.py:
  python experiments/extract_features.py --model resnet50 --weights weights/resnet50.npz --resize 224 \
      --dataset cifar10 --data-dir ../shared/data --out runs/feats/cifar10-resnet50.npz

Then train any method's hash head on the file:
  jhash train --config 'experiments/configs/features.py:method=dpsh,features=runs/feats/cifar10-resnet50.npz,protocol=cifar10,bits=32' \
      --workdir runs/dpsh-resnet50-features

Prints the file's meta record (source, shape, seconds taken).
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the feature file to write (.npz)")
    p.add_argument("--workdir", help="a jhash run whose trained model extracts the features")
    p.add_argument("--model", help="a model name (alexnet, vgg16, resnet18, resnet50, cnn, mlp)")
    p.add_argument("--weights", default="", help="converted weights of --model (experiments/convert_weights.py)")
    p.add_argument("--resize", type=int, default=0, help="resize images to this size first (e.g. 224); 0 = as they are")
    p.add_argument("--dataset", help="with --model: a dataset name or .npz path (jhash.data.load)")
    p.add_argument("--data-dir", default="", help="with --model: local data folder (e.g. ../shared/data)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="initialisation of what the weights file does not set")
    args = p.parse_args(argv)

    from jhash import features

    model_config = None
    if args.model:
        model_config = {"name": args.model}
        if args.weights:
            model_config["weights"] = args.weights
        if args.resize:
            model_config["resize"] = args.resize
    try:
        meta = features.extract(args.out, workdir=args.workdir, model_config=model_config, dataset=args.dataset,
                                data_dir=args.data_dir, batch_size=args.batch_size, seed=args.seed)
    except (ValueError, FileNotFoundError) as e:
        print(f"extract_features: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(meta, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
