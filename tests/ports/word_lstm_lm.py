"""A word-level LSTM language model in the manner of the word_language_model example written
for PyTorch: a Dictionary, batchify into columns, get_batch with bptt, Embedding -> 2-layer
LSTM -> Dropout -> Linear decoder with tied weights, repackage_hidden, gradient clipping, a
hand-written SGD update on p.data, and perplexity under torch.no_grad(). tests/test_ports.py
runs this very text on PyTorch and, with only its import lines changed, on chainrule."""
import math
import random

import torch
import torch.nn as nn


def make_corpus(n_sentences=60, seed=7):
    """A few hundred words of simple generated English, the same text on any library."""
    rnd = random.Random(seed)
    subjects = ["the cat", "a dog", "the model", "my friend", "the teacher", "a bird"]
    verbs = ["sees", "likes", "follows", "learns", "finds", "reads"]
    objects = ["the ball", "a book", "the gradient", "the river", "a song", "the weights"]
    tails = ["today", "again", "slowly", "at night", "with care", ""]
    lines = []
    for _ in range(n_sentences):
        words = [rnd.choice(subjects), rnd.choice(verbs), rnd.choice(objects), rnd.choice(tails)]
        lines.append(" ".join(w for w in words if w))
    return lines


class Dictionary:
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus:
    def __init__(self, lines, valid_fraction=0.2):
        self.dictionary = Dictionary()
        split = int(len(lines) * (1 - valid_fraction))
        self.train = self.tokenize(lines[:split])
        self.valid = self.tokenize(lines[split:])

    def tokenize(self, lines):
        ids = []
        for line in lines:
            for word in line.split() + ["<eos>"]:
                ids.append(self.dictionary.add_word(word))
        return torch.tensor(ids, dtype=torch.int64)


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp=32, nhid=32, nlayers=2, dropout=0.2, tie_weights=True):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError("tied weights need nhid == ninp")
            self.decoder.weight = self.encoder.weight
        self.nhid, self.nlayers = nhid, nlayers
        self.init_weights()

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return torch.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid))


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def evaluate(model, criterion, data_source, ntokens, bptt, eval_batch_size):
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i, bptt)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def main(init_state=None, epochs=8, lr=5.0, clip=0.25, bptt=8, batch_size=4, dropout=0.2,
         log=print):
    torch.manual_seed(1111)
    corpus = Corpus(make_corpus())
    ntokens = len(corpus.dictionary)
    train_data = batchify(corpus.train, batch_size)
    val_data = batchify(corpus.valid, 2)
    model = RNNModel(ntokens, dropout=dropout)
    if init_state is not None:
        model.load_state_dict({k: torch.tensor(v) for k, v in init_state.items()})
    criterion = nn.NLLLoss()
    tied = model.decoder.weight is model.encoder.weight
    losses, val_losses = [], []
    for epoch in range(1, epochs + 1):
        model.train()
        hidden = model.init_hidden(batch_size)
        for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
            data, targets = get_batch(train_data, i, bptt)
            model.zero_grad()
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            losses.append(loss.item())
        val_loss = evaluate(model, criterion, val_data, ntokens, bptt, 2)
        val_losses.append(val_loss)
        log(f"| end of epoch {epoch:3d} | valid loss {val_loss:5.2f} | "
            f"valid ppl {math.exp(val_loss):8.2f}")
    return {"losses": losses, "val_losses": val_losses, "ntokens": ntokens, "tied": tied,
            "n_params": sum(p.numel() for p in model.parameters()),
            "perplexity": math.exp(val_losses[-1])}


if __name__ == "__main__":
    main()
