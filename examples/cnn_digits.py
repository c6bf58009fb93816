"""A small convolutional network on the 8x8 digits: two 3x3 convolutions with max pooling,
then a linear classifier; warm-up then cosine learning rate.

    python examples/cnn_digits.py           # about 98-99% test accuracy in seconds
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: one BLAS thread is faster,
os.environ.setdefault("OMP_NUM_THREADS", "1")       # and never fights other work for the cores

import chainrule as cr  # noqa: E402
from chainrule import data, nn, optim  # noqa: E402
from chainrule.optim import lr_scheduler  # noqa: E402
from chainrule.train import evaluate, fit  # noqa: E402


def make_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(),     # 16 x 8 x 8
        nn.MaxPool2d(2),                                            # 16 x 4 x 4
        nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(),    # 32 x 4 x 4
        nn.MaxPool2d(2),                                            # 32 x 2 x 2
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10))


def main(epochs=15, out="runs/cnn_digits"):
    cr.manual_seed(0)
    X, y = data.load_digits(flatten=False)           # (1797, 1, 8, 8)
    rest, test = data.random_split(data.TensorDataset(X, y), [0.8, 0.2], seed=0)
    train, val = data.train_val_split(rest, val_fraction=0.1, seed=1)

    model = make_cnn()
    opt = optim.Adam(model.parameters(), lr=3e-3)
    warm = min(2, epochs - 1)  # epochs of linear warm-up before the cosine decay
    sched = lr_scheduler.SequentialLR(opt, [
        lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=warm),
        lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs - warm))], milestones=[warm])
    history = fit(model, nn.CrossEntropyLoss(), opt,
                  data.DataLoader(train, batch_size=32, shuffle=True),
                  data.DataLoader(val, batch_size=256), epochs=epochs, scheduler=sched,
                  checkpoint_dir=out)
    result = evaluate(model, nn.CrossEntropyLoss(), data.DataLoader(test, batch_size=256))
    print(f"test accuracy {100 * result['accuracy']:.2f}%; checkpoint {history.checkpoint}; "
          f"curves {history.plot}")
    return result["accuracy"]


if __name__ == "__main__":
    main()
