"""A character-level LSTM language model, as teaching notebooks write it for PyTorch: embed,
LSTM, project to the vocabulary, truncated backpropagation through time with detached hidden
state, gradient clipping, a schedule, then sampling with torch.multinomial. tests/test_ports.py
runs this very text on PyTorch and, with only its import lines changed, on chainrule."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

TEXT = (
    "the chain rule says that the derivative of a composition is the product of the "
    "derivatives of its parts. backpropagation applies the chain rule from the loss back to "
    "every weight, one layer at a time, reusing the products it has already computed. "
    "a recurrent network applies the same weights at every step, so its gradient is a sum "
    "over the steps of the sequence, and the hidden state carries what it has read so far. "
)


class CharLSTM(nn.Module):
    def __init__(self, vocab_size, embed=16, hidden=32, layers=1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, x, hidden=None):
        self.lstm.flatten_parameters()
        out, hidden = self.lstm(self.embed(x), hidden)
        return self.head(out), hidden


def batches(data, seq_len, batch_size):
    """Consecutive windows, one stream per batch row, so hidden state carries over."""
    n = (data.size(0) - 1) // (batch_size * seq_len) * (batch_size * seq_len)
    inputs = data[:n].view(batch_size, -1)
    targets = data[1:n + 1].view(batch_size, -1)
    for i in range(0, inputs.size(1), seq_len):
        yield inputs[:, i:i + seq_len], targets[:, i:i + seq_len]


def train(init_state=None, epochs=4, seq_len=16, batch_size=4, lr=0.01, sample_len=40):
    torch.manual_seed(0)
    chars = sorted(set(TEXT))
    stoi = {c: i for i, c in enumerate(chars)}
    itos = {i: c for c, i in stoi.items()}
    data = torch.tensor([stoi[c] for c in TEXT], dtype=torch.long)
    model = CharLSTM(len(chars))
    if init_state is not None:
        model.load_state_dict({k: torch.tensor(v) for k, v in init_state.items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 3], gamma=0.5)
    losses, accuracies = [], []
    for epoch in range(epochs):
        model.train()
        hidden = None
        for x, y in batches(data, seq_len, batch_size):
            logits, hidden = model(x, hidden)
            hidden = tuple(h.detach() for h in hidden)
            loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            losses.append(loss.item())
            accuracies.append((logits.argmax(-1) == y).float().mean().item())
        scheduler.step()

    model.eval()
    with torch.no_grad():
        logits, _ = model(data[:-1].unsqueeze(0))
        eval_loss = F.cross_entropy(logits.squeeze(0), data[1:]).item()
        g = torch.Generator().manual_seed(1234)
        idx = torch.tensor([[stoi["t"]]])
        hidden, out = None, []
        for _ in range(sample_len):
            logits, hidden = model(idx, hidden)
            probs = F.softmax(logits[:, -1] / 0.8, dim=-1)
            idx = torch.multinomial(probs, num_samples=1, generator=g)
            out.append(itos[idx.item()])
    return {"losses": losses, "accuracies": accuracies, "eval_loss": eval_loss,
            "perplexity": math.exp(eval_loss), "sample": "".join(out), "vocab": chars}


if __name__ == "__main__":
    result = train()
    print(f"perplexity {result['perplexity']:.2f}; sample: {result['sample']!r}")
