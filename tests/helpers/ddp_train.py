"""A tiny training run through mlkit.tensors.distributed: run plainly (1 process) or under
torchrun (N processes); rank 0 writes the final weights to argv[1] (.npz)."""

import sys

import numpy as np
import torch

from mlkit.codecs import arrays
from mlkit.tensors import distributed, seed_everything


def main(out: str) -> None:
    seed_everything(0)
    torch.set_num_threads(1)
    x = torch.randn(64, 5, dtype=torch.float64)
    y = (x @ torch.arange(1.0, 6.0, dtype=torch.float64) + 0.1 * torch.randn(64, dtype=torch.float64))[:, None]
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    with distributed("cpu") as dist:
        net = dist.wrap(model)
        loader = dist.loader(torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=True, seed=3)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        for epoch in range(3):
            dist.set_epoch(epoch)
            for xb, yb in loader:
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(net(xb), yb)
                loss.backward()
                opt.step()
        if dist.is_main:
            state = dist.unwrap(net).state_dict()
            arrays.write({k: v.numpy() for k, v in state.items()} | {"world": np.array(dist.world_size)}, out)


if __name__ == "__main__":
    main(sys.argv[1])
