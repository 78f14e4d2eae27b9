"""Converts a torchvision ImageNet state dict into a jhash weights file, once (jhash.models.convert).

  python experiments/convert_weights.py --arch resnet50 resnet50-0676ba61.pth weights/resnet50.npz

The source is a torchvision state dict, ``.pth`` (reading it needs torch) or ``.npz`` (one array
per state-dict key, written where torch is installed:
``np.savez('resnet50-sd.npz', **{k: v.numpy() for k, v in torch.load('resnet50-0676ba61.pth').items()})``).
A file of another architecture, or not a state dict, is refused with the keys that differ.

Getting torchvision's weights (on a machine online, once; jhash never downloads):
  python -c "import torchvision; torchvision.models.resnet50(weights='IMAGENET1K_V1')"
  # the file is then in ~/.cache/torch/hub/checkpoints/resnet50-0676ba61.pth
(alexnet-owt-7be5be79.pth, vgg16-397923af.pth, resnet18-f37072fd.pth likewise.)

Then point a config at the converted file:
  jhash train --config experiments/configs/dpsh.py:dataset=cifar10 --config.data_dir=../shared/data \
      --config.model='{"name": "resnet50", "weights": "weights/resnet50.npz", "resize": 224}' --workdir runs/dpsh-r50
or extract features once and train hash heads on them (experiments/extract_features.py).
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, help="alexnet, vgg16, resnet18 or resnet50")
    p.add_argument("source", help="torchvision state dict: .pth (needs torch) or .npz")
    p.add_argument("out", help="the jhash weights file to write (.npz)")
    args = p.parse_args(argv)

    from jhash.models import convert

    try:
        meta = convert.convert_file(args.source, args.out, arch=args.arch)
    except (ValueError, FileNotFoundError) as e:
        print(f"convert_weights: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
