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
    assert callable(get_device), "get_device \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / get_device is not defined"
    device = get_device()
    assert isinstance(device, torch.device), \
        "get_device \u306f torch.device \u3092\u8fd4\u3057\u3066\u304f\u3060\u3055\u3044 / get_device must return a torch.device"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.type == expected, \
        f"\u3053\u306e\u74b0\u5883\u3067\u306f {expected} \u306e\u306f\u305a\u3067\u3059\u304c {device.type} \u3067\u3057\u305f / here it should be {expected}, got {device.type}"


@test_case(points=None, hidden=False)
def test_shapes(MLP):
    assert MLP is not None, "MLP \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / MLP is not defined"
    net = MLP()
    assert isinstance(net, torch.nn.Module), "MLP \u306f torch.nn.Module \u306e\u30b5\u30d6\u30af\u30e9\u30b9\u306b\u3057\u3066\u304f\u3060\u3055\u3044 / MLP must subclass torch.nn.Module"
    n_params = sum(p.numel() for p in net.parameters())
    expected = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert n_params == expected, \
        f"784-256-128-10 \u306e MLP \u306e\u30d1\u30e9\u30e1\u30fc\u30bf\u6570\u306f {expected} \u3067\u3059\u304c {n_params} \u3067\u3057\u305f / a 784-256-128-10 MLP has {expected} parameters, got {n_params}"
    for shape in [(3, 1, 28, 28), (3, 784)]:
        out = net(torch.zeros(shape))
        assert tuple(out.shape) == (3, 10), \
            f"\u5165\u529b {shape} \u306b\u5bfe\u3057\u3066\u51fa\u529b\u306f (3, 10) \u306e\u306f\u305a\u3067\u3059\u304c {tuple(out.shape)} \u3067\u3057\u305f / input {shape} must give output (3, 10), got {tuple(out.shape)}"


@test_case(points=None, hidden=False)
def test_train_one_epoch_averages_over_samples(MLP, train_one_epoch):
    torch.manual_seed(0)
    net = MLP()
    images, labels = torch.randn(8, 1, 28, 28), torch.arange(8) % 10
    frozen = torch.optim.SGD(net.parameters(), lr=0.0)          # lr = 0: the weights do not move
    value = train_one_epoch(net, _loader(images, labels), frozen, CPU)
    expected = torch.nn.functional.cross_entropy(net(images), labels).item()
    assert isinstance(value, float), "train_one_epoch \u306f float \u3092\u8fd4\u3057\u3066\u304f\u3060\u3055\u3044 / train_one_epoch must return a float"
    assert abs(value - expected) < 1e-4, (
        f"\u30b5\u30f3\u30d7\u30eb\u5e73\u5747\u306e\u640d\u5931\u306f {expected:.5f} \u3067\u3059\u304c {value:.5f} \u3067\u3057\u305f (loss.item() \u00d7 \u30d0\u30c3\u30c1\u306e\u5927\u304d\u3055 \u306e\u548c \u00f7 \u30b5\u30f3\u30d7\u30eb\u6570) / "
        f"the loss averaged over samples is {expected:.5f}, got {value:.5f} (sum of loss.item() \u00d7 batch size, divided by n)")


@test_case(points=None, hidden=False)
def test_evaluate_counts_samples(evaluate):
    assert callable(evaluate), "evaluate \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / evaluate is not defined"

    class AlwaysThree(torch.nn.Module):
        def forward(self, x):
            logits = torch.zeros(len(x), 10)
            logits[:, 3] = 1.0
            return logits

    labels = torch.tensor([3, 3, 0, 1, 2, 3, 4, 5])             # 3 of 8 are "3"
    value = evaluate(AlwaysThree(), _loader(torch.zeros(8, 1, 28, 28), labels), CPU)
    assert abs(float(value) - 3 / 8) < 1e-9, \
        f"\u6b63\u89e3\u7387\u306f 3/8 = 0.375 \u306e\u306f\u305a\u3067\u3059\u304c {value} \u3067\u3057\u305f / the accuracy should be 3/8 = 0.375, got {value}"


@test_case(points=None, hidden=False)
def test_trained_model(model):
    assert isinstance(model, torch.nn.Module), \
        "\u5b66\u7fd2\u6e08\u307f\u306e model \u304c\u3042\u308a\u307e\u305b\u3093: \u5b66\u7fd2\u306e\u30bb\u30eb\u3092\u5b9f\u884c\u3057\u3066\u304f\u3060\u3055\u3044 / there is no trained `model`: run the training cells"
    device = next(model.parameters()).device
    out = model(torch.zeros(2, 1, 28, 28, device=device))
    assert tuple(out.shape) == (2, 10), \
        f"model \u306e\u51fa\u529b\u306f (2, 10) \u306e\u306f\u305a\u3067\u3059\u304c {tuple(out.shape)} \u3067\u3057\u305f / model must output (2, 10), got {tuple(out.shape)}"
