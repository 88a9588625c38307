"""The official PyTorch MobileNetV2 (with and without CA) trained on request, for the throughput benchmarks.

Runs as its own process, so PyTorch's and the other framework's thread pools,
allocators and GPU contexts never share one: a benchmark starts it through
``TorchProcess``, sends one JSON line per timed round (``{"name": ...}``) and
reads back the seconds it took. While one framework runs, the other waits on
its pipe. The networks are the official module layout as
``tests/torch_reference.py`` builds it for the converter tests. On a GPU
(``device="cuda"``) the batches live on the GPU, cuDNN picks its fastest
kernels (``cudnn.benchmark``) and each round ends with a synchronize;
``precision="bfloat16"`` trains under ``torch.autocast`` in bfloat16.
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


def torch_rows(precisions=None):
    """{row name: (attention, channels_last, precision)}; names carry the precision only when asked."""
    rows = {}
    for precision in precisions or ("float32",):
        for attention in (False, True):
            for channels_last in (False, True):
                name = (f"official PyTorch {'mbv2_ca' if attention else 'mbv2 (no CA)'}"
                        f"{', channels_last' if channels_last else ''}"
                        f"{f', {precision}' if precisions else ''}")
                rows[name] = (attention, channels_last, precision)
    return rows


class Candidate:
    def __init__(self, torch, row, images, labels, setup):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
        from torch_reference import ReferenceMobileNetV2

        attention, channels_last, precision = row
        torch.manual_seed(0)
        self.torch, self.device = torch, torch.device(setup.get("device", "cpu"))
        self.dtype = {"float32": None, "bfloat16": torch.bfloat16}[precision]
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = ReferenceMobileNetV2("coordatt", setup["alpha"], CLASSES, attention=attention).train()
        self.model = model.to(self.device, memory_format=memory_format)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        tensors = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        batch_size = setup["batch_size"]
        self.batches = [
            (tensors[i:i + batch_size].to(self.device).contiguous(memory_format=memory_format),
             torch.from_numpy(labels[i:i + batch_size]).to(self.device))
            for i in range(0, len(images) - batch_size + 1, batch_size)
        ]
        self.steps(self.batches[:2])  # warm up (and let cuDNN choose its kernels)

    def params(self):
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def steps(self, batches):
        torch = self.torch
        for images, labels in batches:
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
                loss = torch.nn.functional.cross_entropy(self.model(images), labels)
            loss.backward()
            self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()


class TorchProcess:
    """The client side: starts this file as a process and asks it to time rows by name."""

    def __init__(self, names, image_size, batch_size, steps, alpha, device="cpu", precisions=None):
        import subprocess

        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.send({"names": names, "image_size": image_size, "batch_size": batch_size,
                   "steps": steps, "alpha": alpha, "device": device, "precisions": precisions})
        reply = self.receive()
        self.params, self.version = reply["params"], reply["version"]
        self.images_per_round = batch_size * steps

    def send(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def receive(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the PyTorch worker stopped; see its error above")
        return json.loads(line)

    def seconds(self, name):
        self.send({"name": name})
        return self.receive()["seconds"]

    def row(self, name):
        return TorchRow(self, name)


class TorchRow:
    def __init__(self, process, name):
        self.process, self.name = process, name

    def params(self):
        return self.process.params[self.name]

    def seconds(self):
        return self.process.seconds(self.name)

    def images_per_second(self):
        return self.process.images_per_round / self.seconds()


def main():
    import torch

    setup = json.loads(sys.stdin.readline())
    device = setup.get("device", "cpu")
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        images, labels = random_batches(setup["image_size"], setup["batch_size"], 1)
        images = np.concatenate([images] * setup["steps"])  # one batch on the GPU, used each step
        labels = np.concatenate([labels] * setup["steps"])
    else:
        images, labels = random_batches(setup["image_size"], setup["batch_size"], setup["steps"])
    candidates = {}
    for name, row in torch_rows(setup.get("precisions")).items():
        if name in setup["names"]:
            candidates[name] = Candidate(torch, row, images, labels, setup)
    where = torch.cuda.get_device_name(0) if device == "cuda" else f"{torch.get_num_threads()} threads"
    print(json.dumps({"params": {n: c.params() for n, c in candidates.items()},
                      "version": f"torch {torch.__version__} on {where}"}), flush=True)
    for line in sys.stdin:
        candidate = candidates[json.loads(line)["name"]]
        start = time.perf_counter()
        candidate.steps(candidate.batches)
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    main()
