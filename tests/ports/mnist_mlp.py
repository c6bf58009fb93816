"""A pytorch/examples-style MNIST training script (an MLP instead of the CNN, the 8x8 digits
instead of MNIST), written for PyTorch. tests/test_ports.py runs this very text on PyTorch and,
with only its import lines changed, on chainrule, from the same initial weights."""
import argparse
import io

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, Subset, TensorDataset


class Net(nn.Module):
    def __init__(self, hidden=64, dropout=0.25):
        super(Net, self).__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.dropout1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout1(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(args, model, device, train_loader, optimizer, epoch, log):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        log["train_loss"].append(loss.item())
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))


def test(model, device, test_loader, log):
    model.eval()
    test_loss = 0
    correct = 0
    confidence = 0.0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()
            confidence += output.exp().max(1)[0].sum().item()
    test_loss /= len(test_loader.dataset)
    log["test_loss"].append(test_loss)
    log["accuracy"].append(correct / len(test_loader.dataset))
    log["confidence"].append(confidence / len(test_loader.dataset))
    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)))


def main(args, images, labels, init_state=None):
    use_cuda = not args.no_cuda and torch.cuda.is_available()
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if use_cuda else "cpu")

    dataset = TensorDataset(torch.from_numpy(images).float(), torch.from_numpy(labels).long())
    n_train = int(len(dataset) * 0.8)
    train_set = Subset(dataset, range(n_train))
    test_set = Subset(dataset, range(n_train, len(dataset)))
    g = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=args.shuffle,
                              generator=g)
    test_loader = DataLoader(test_set, batch_size=args.test_batch_size)

    model = Net(dropout=args.dropout).to(device)
    if init_state is not None:
        model.load_state_dict({k: torch.tensor(v) for k, v in init_state.items()})
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)

    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    log = {"train_loss": [], "test_loss": [], "accuracy": [], "confidence": [], "lr": []}
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch, log)
        test(model, device, test_loader, log)
        scheduler.step()
        log["lr"].append(scheduler.get_last_lr()[0])

    if args.save_model:
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        restored = Net(dropout=args.dropout)
        restored.load_state_dict(torch.load(buffer))
        restored.eval()
        with torch.no_grad():
            same = torch.allclose(restored(dataset[:5][0]), model(dataset[:5][0]))
        log["restored_matches"] = same
    log["n_params"] = sum(p.nelement() for p in model.parameters())
    return model, log


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='PyTorch digits example')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--test-batch-size', type=int, default=1000)
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--lr', type=float, default=1.0)
    parser.add_argument('--gamma', type=float, default=0.7)
    parser.add_argument('--dropout', type=float, default=0.25)
    parser.add_argument('--no-shuffle', dest='shuffle', action='store_false')
    parser.add_argument('--no-cuda', action='store_true', default=False)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--log-interval', type=int, default=10)
    parser.add_argument('--save-model', action='store_true', default=False)
    return parser.parse_args(argv)


if __name__ == '__main__':
    from sklearn.datasets import load_digits
    digits = load_digits()
    main(parse_args(), (digits.data / 16.0).astype('float32'), digits.target)
