"""Public self-check for the MNIST MLP: shapes and bookkeeping only, no training.

Students see this file; grading uses other, hidden tests that measure the accuracy of `model`.
"""
import torch
from otter.test_files import test_case
from torch.utils.data import DataLoader, TensorDataset

OK_FORMAT = False

name = "mlp"
points = 10

CPU = torch.device("cpu")


def _loader(images, labels):
    """8 samples in batches of 5 and 3: unequal on purpose, so that averaging over batches shows."""
    return DataLoader(TensorDataset(images, labels), batch_size=5, shuffle=False)


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
def test_shapes(MLP):
    assert MLP is not None, "MLP が定義されていません / MLP is not defined"
    net = MLP()
    assert isinstance(net, torch.nn.Module), "MLP は torch.nn.Module のサブクラスにしてください / MLP must subclass torch.nn.Module"
    n_params = sum(p.numel() for p in net.parameters())
    expected = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert n_params == expected, \
        f"784-256-128-10 の MLP のパラメータ数は {expected} ですが {n_params} でした / a 784-256-128-10 MLP has {expected} parameters, got {n_params}"
    for shape in [(3, 1, 28, 28), (3, 784)]:
        out = net(torch.zeros(shape))
        assert tuple(out.shape) == (3, 10), \
            f"入力 {shape} に対して出力は (3, 10) のはずですが {tuple(out.shape)} でした / input {shape} must give output (3, 10), got {tuple(out.shape)}"


@test_case(points=None, hidden=False)
def test_train_one_epoch_averages_over_samples(MLP, train_one_epoch):
    torch.manual_seed(0)
    net = MLP()
    images, labels = torch.randn(8, 1, 28, 28), torch.arange(8) % 10
    frozen = torch.optim.SGD(net.parameters(), lr=0.0)          # lr = 0: the weights do not move
    value = train_one_epoch(net, _loader(images, labels), frozen, CPU)
    expected = torch.nn.functional.cross_entropy(net(images), labels).item()
    assert isinstance(value, float), "train_one_epoch は float を返してください / train_one_epoch must return a float"
    assert abs(value - expected) < 1e-4, (
        f"サンプル平均の損失は {expected:.5f} ですが {value:.5f} でした (loss.item() × バッチの大きさ の和 ÷ サンプル数) / "
        f"the loss averaged over samples is {expected:.5f}, got {value:.5f} (sum of loss.item() × batch size, divided by n)")


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
    out = model(torch.zeros(2, 1, 28, 28, device=device))
    assert tuple(out.shape) == (2, 10), \
        f"model の出力は (2, 10) のはずですが {tuple(out.shape)} でした / model must output (2, 10), got {tuple(out.shape)}"
