"""The official PyTorch MobileNetV2 (with and without CA) trained on request, for train_throughput.py.

Runs as its own process, so PyTorch's and TensorFlow's thread pools and
allocators never share one: `train_throughput.py` starts it, sends one JSON
line per timed epoch (``{"name": ...}``) and reads back the seconds it took.
While one framework runs, the other waits on its pipe. The networks are the
official module layout as ``tests/torch_reference.py`` builds it for the
converter tests.
"""

import json
import os
import sys
import time

import numpy as np

CLASSES = 1000


def random_batches(image_size, batch_size, steps, seed=0):
    """uint8 images (N, H, W, 3) and labels; the same ones in both processes."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(batch_size * steps, image_size, image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, size=batch_size * steps)
    return images, labels


def torch_rows():
    """{row name: (attention, channels_last)}"""
    rows = {}
    for attention in (False, True):
        for channels_last in (False, True):
            name = (f"official PyTorch {'mbv2_ca' if attention else 'mbv2 (no CA)'}"
                    f"{', channels_last' if channels_last else ''}")
            rows[name] = (attention, channels_last)
    return rows


class Candidate:
    def __init__(self, torch, attention, channels_last, images, labels, batch_size, width):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
        from torch_reference import ReferenceMobileNetV2

        torch.manual_seed(0)
        self.torch = torch
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = ReferenceMobileNetV2("coordatt", width, CLASSES, attention=attention).train()
        self.model = model.to(memory_format=memory_format)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        tensors = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        self.batches = [
            (tensors[i:i + batch_size].contiguous(memory_format=memory_format),
             torch.from_numpy(labels[i:i + batch_size]))
            for i in range(0, len(images) - batch_size + 1, batch_size)
        ]
        self.steps(self.batches[:2])  # warm up

    def params(self):
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def steps(self, batches):
        for images, labels in batches:
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.torch.nn.functional.cross_entropy(self.model(images), labels)
            loss.backward()
            self.optimizer.step()


def main():
    import torch

    setup = json.loads(sys.stdin.readline())
    images, labels = random_batches(setup["image_size"], setup["batch_size"], setup["steps"])
    candidates = {}
    for name, (attention, channels_last) in torch_rows().items():
        if name in setup["names"]:
            candidates[name] = Candidate(torch, attention, channels_last, images, labels,
                                         setup["batch_size"], setup["alpha"])
    print(json.dumps({"params": {n: c.params() for n, c in candidates.items()},
                      "version": f"torch {torch.__version__} with {torch.get_num_threads()} threads"}),
          flush=True)
    for line in sys.stdin:
        candidate = candidates[json.loads(line)["name"]]
        start = time.perf_counter()
        candidate.steps(candidate.batches)
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
