"""An MLP on scikit-learn's 8x8 handwritten digits with chainrule.train.fit: progress bar,
validation, a checkpoint per epoch and the learning curves in ./runs/mlp_digits/.

    python examples/mlp_digits.py           # about 97% test accuracy in a few seconds
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: one BLAS thread is faster,
os.environ.setdefault("OMP_NUM_THREADS", "1")       # and never fights other work for the cores

import chainrule as cr  # noqa: E402
from chainrule import data, nn, optim  # noqa: E402
from chainrule.train import evaluate, fit  # noqa: E402


def main(epochs=15, out="runs/mlp_digits"):
    cr.manual_seed(0)
    X, y = data.load_digits()                        # (1797, 64) in [0, 1], labels 0-9
    full = data.TensorDataset(X, y)
    rest, test = data.random_split(full, [0.8, 0.2], seed=0)
    train, val = data.train_val_split(rest, val_fraction=0.1, seed=1)

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.Adam(model.parameters(), lr=3e-3)
    history = fit(model, nn.CrossEntropyLoss(), opt,
                  data.DataLoader(train, batch_size=32, shuffle=True),
                  data.DataLoader(val, batch_size=256), epochs=epochs,
                  scheduler=optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
                  checkpoint_dir=out)
    result = evaluate(model, nn.CrossEntropyLoss(), data.DataLoader(test, batch_size=256))
    print(f"test accuracy {100 * result['accuracy']:.2f}%; checkpoint {history.checkpoint}; "
          f"curves {history.plot}")
    return result["accuracy"]


if __name__ == "__main__":
    main()
