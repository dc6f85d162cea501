"""Public self-check for the MNIST MLP: shapes, ReLU, bookkeeping and device choice; no training.

Students see this file; grading uses other, hidden tests that measure the accuracy of `model`.
train_one_epoch and evaluate are checked with small models defined here, not with your MLP, so a problem
in MLP fails the MLP checks only.
"""
import torch
from otter.test_files import test_case
from torch.utils.data import DataLoader, TensorDataset

OK_FORMAT = False

name = "mlp"
points = 10

CPU = torch.device("cpu")
SHAPES = ((256, 784), (128, 256), (10, 128))      # the weights of the 784-256-128-10 MLP, in order
NOT_AN_MLP = ("MLP() は 784→256→128→10 の全結合層 (nn.Linear) を持つ nn.Module を返してください / MLP() must "
              "return an nn.Module with the fully connected layers (nn.Linear) 784→256→128→10")


def _loader(images, labels):
    """8 samples in batches of 5 and 3: unequal on purpose, so that averaging over batches shows."""
    return DataLoader(TensorDataset(images, labels), batch_size=5, shuffle=False)


def _small_model(seed=0):
    """A small ReLU network of our own: train_one_epoch is checked with it, independently of your MLP."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 16), torch.nn.ReLU(),
                                   torch.nn.Linear(16, 10))


def _data(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(8, 1, 28, 28, generator=generator), torch.arange(8) % 10


def _layers(net):
    """The (weight, bias) of the three layers, found by their shapes (whatever the attributes are called)."""
    params = dict(net.named_parameters())
    found = []
    for shape in SHAPES:
        weight = [p for p in params.values() if tuple(p.shape) == shape]
        bias = [p for p in params.values() if tuple(p.shape) == (shape[0],)]
        assert len(weight) == 1 and len(bias) == 1, NOT_AN_MLP
        found.append((weight[0], bias[0]))
    return found


def _relu_mlp_predictions(net, images):
    """What the lecture's MLP (Linear, ReLU, Linear, ReLU, Linear) predicts with your weights."""
    h = images.reshape(len(images), -1).double()
    layers = _layers(net)
    for k, (weight, bias) in enumerate(layers):
        h = h @ weight.detach().cpu().double().T + bias.detach().cpu().double()
        if k < len(layers) - 1:
            h = torch.relu(h)
    return h.argmax(dim=1)


def _predictions(net, images):
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    try:
        with torch.set_grad_enabled(False):
            return net(images.to(device)).argmax(dim=1).cpu()
    finally:
        net.train(was_training)


def _disagreements(net, images):
    """On how many images your forward and the lecture's forward with your weights predict differently
    (one is allowed: float32 rounding can flip a near tie)."""
    return int((_predictions(net, images) != _relu_mlp_predictions(net, images)).sum())


def _fresh_mlp(MLP):
    assert MLP is not None, "MLP が定義されていません / MLP is not defined"
    assert callable(MLP), NOT_AN_MLP
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = MLP()
    assert isinstance(net, torch.nn.Module), \
        "MLP() は torch.nn.Module を返してください (クラスでも関数でも可) / MLP() must return a torch.nn.Module " \
        "(MLP may be a class or a function)"
    return net


@test_case(points=None, hidden=False)
def test_device(get_device):
    assert callable(get_device), "get_device が定義されていません / get_device is not defined"
    device = get_device()
    assert isinstance(device, torch.device), \
        "get_device は torch.device を返してください / get_device must return a torch.device"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.type == expected, \
        f"この環境では {expected} のはずですが {device.type} でした / here it should be {expected}, got {device.type}"


@test_case(points=None, hidden=False)
def test_device_on_other_machines(get_device):
    # a machine with one GPU and one without, simulated: get_device must ask torch each time it is called
    assert callable(get_device), "get_device が定義されていません / get_device is not defined"
    cached = "get_device は呼ばれるたびに torch.cuda.is_available() で判定してください (結果をキャッシュしない) / " \
             "get_device must ask torch.cuda.is_available() each time it is called (do not cache the answer)"
    mps = getattr(torch.backends, "mps", None)          # a Mac's GPU: not there on either simulated machine
    saved = torch.cuda.is_available, torch.cuda.device_count, getattr(mps, "is_available", None)
    got = {}
    try:
        for has_gpu in (True, False):
            torch.cuda.is_available = lambda has_gpu=has_gpu: has_gpu
            torch.cuda.device_count = lambda has_gpu=has_gpu: 1 if has_gpu else 0
            if saved[2] is not None:
                mps.is_available = lambda: False
            if hasattr(get_device, "cache_clear"):
                get_device.cache_clear()
            got[has_gpu] = torch.device(get_device()).type
    finally:
        torch.cuda.is_available, torch.cuda.device_count = saved[:2]
        if saved[2] is not None:
            mps.is_available = saved[2]
        if hasattr(get_device, "cache_clear"):
            get_device.cache_clear()
    assert got[True] == "cuda", f"GPU のある環境では cuda のはずですが {got[True]} でした。{cached}"
    assert got[False] == "cpu", f"GPU のない環境では cpu のはずですが {got[False]} でした。{cached}"


@test_case(points=None, hidden=False)
def test_shapes(MLP):
    net = _fresh_mlp(MLP)
    n_params = sum(p.numel() for p in net.parameters())
    expected = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert n_params == expected, \
        f"784-256-128-10 の MLP のパラメータ数は {expected} ですが {n_params} でした / a 784-256-128-10 MLP has {expected} parameters, got {n_params}"
    _layers(net)
    for shape in [(3, 1, 28, 28), (3, 784)]:
        with torch.set_grad_enabled(False):
            out = net(torch.zeros(shape))
        assert tuple(out.shape) == (3, 10), \
            f"入力 {shape} に対して出力は (3, 10) のはずですが {tuple(out.shape)} でした / input {shape} must give output (3, 10), got {tuple(out.shape)}"


@test_case(points=None, hidden=False)
def test_relu_between_layers(MLP):
    net = _fresh_mlp(MLP)
    net.eval()
    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.set_grad_enabled(False):
        f0, f1, f2 = net(torch.zeros_like(x)), net(x), net(2 * x)
    # an affine network (no activation) has f(2x) - f(0) = 2 (f(x) - f(0)) for every x
    assert not torch.allclose(f2 - f0, 2 * (f1 - f0), rtol=1e-3, atol=1e-4), \
        "層の間に ReLU が必要です / the MLP needs ReLU between its layers"
    assert _disagreements(net, x) <= 1, (
        "forward は 全結合層 → ReLU → 全結合層 → ReLU → 全結合層 の順に計算してください (採点はこの順で重みから正解率を"
        "計算します) / forward must compute Linear → ReLU → Linear → ReLU → Linear (the grader computes the "
        "accuracy from the weights in this order)")


@test_case(points=None, hidden=False)
def test_train_one_epoch_averages_over_samples(train_one_epoch):
    assert callable(train_one_epoch), "train_one_epoch が定義されていません / train_one_epoch is not defined"
    net = _small_model()
    images, labels = _data()
    frozen = torch.optim.SGD(net.parameters(), lr=0.0)          # lr = 0: the weights do not move
    value = train_one_epoch(net, _loader(images, labels), frozen, CPU)
    with torch.set_grad_enabled(False):
        expected = torch.nn.functional.cross_entropy(net(images), labels).item()
    assert isinstance(value, float), "train_one_epoch は float を返してください / train_one_epoch must return a float"
    assert abs(value - expected) < 1e-4, (
        f"サンプル平均の損失は {expected:.5f} ですが {value:.5f} でした。返す損失はサンプル数で平均した訓練損失にしてください "
        f"(loss.item() * バッチの大きさ の和 / サンプル数) / the loss averaged over samples is {expected:.5f}, got "
        f"{value:.5f}: return the training loss averaged over samples (sum of loss.item() * batch size, divided by the "
        f"number of samples)")


@test_case(points=None, hidden=False)
def test_train_one_epoch_zeroes_gradients(train_one_epoch):
    assert callable(train_one_epoch), "train_one_epoch が定義されていません / train_one_epoch is not defined"
    net = _small_model(1)
    images, labels = _data(1)
    frozen = torch.optim.SGD(net.parameters(), lr=0.0)
    train_one_epoch(net, _loader(images, labels), frozen, CPU)
    last = net[3].bias
    # the gradient of each batch's loss alone (5 and 3 samples), computed here with autograd
    per_batch = []
    for batch in (slice(0, 5), slice(5, 8)):
        probe = _small_model(1)
        torch.nn.functional.cross_entropy(probe(images[batch]), labels[batch]).backward()
        per_batch.append(probe[3].bias.grad.clone())
    accumulated = per_batch[0] + per_batch[1]
    if last.grad is not None and not torch.allclose(accumulated, per_batch[1], atol=1e-6):
        assert not torch.allclose(last.grad, accumulated, rtol=1e-4, atol=1e-6), (
            "各バッチで optimizer.zero_grad() を呼んでください / call optimizer.zero_grad() for every batch "
            "(gradients accumulate otherwise)")


@test_case(points=None, hidden=False)
def test_evaluate_counts_samples(evaluate):
    assert callable(evaluate), "evaluate が定義されていません / evaluate is not defined"

    class AlwaysThree(torch.nn.Module):
        def forward(self, x):
            logits = torch.zeros(len(x), 10)
            logits[:, 3] = 1.0
            return logits

    labels = torch.tensor([3, 3, 0, 1, 2, 3, 4, 5])             # 3 of 8 are "3"
    value = evaluate(AlwaysThree(), _loader(torch.zeros(8, 1, 28, 28), labels), CPU)
    assert abs(float(value) - 3 / 8) < 1e-9, \
        f"正解率は 3/8 = 0.375 のはずですが {value} でした / the accuracy should be 3/8 = 0.375, got {value}"


@test_case(points=None, hidden=False)
def test_trained_model(model):
    assert isinstance(model, torch.nn.Module), \
        "学習済みの model がありません: 学習のセルを実行してください / there is no trained `model`: run the training cells"
    device = next(model.parameters()).device
    with torch.set_grad_enabled(False):
        out = model(torch.zeros(2, 1, 28, 28, device=device))
    assert tuple(out.shape) == (2, 10), \
        f"model の出力は (2, 10) のはずですが {tuple(out.shape)} でした / model must output (2, 10), got {tuple(out.shape)}"
    _layers(model)
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    assert _disagreements(model, x) <= 1, (
        "model の予測が、その重みで計算した 784-256-128-10 の ReLU MLP の予測と一致しません (採点は重みから正解率を"
        "計算します) / model's predictions differ from those of the 784-256-128-10 ReLU MLP with its weights "
        "(the grader computes the accuracy from the weights)")
