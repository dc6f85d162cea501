"""Hidden tests: the PyTorch practical (get_device, MLP, evaluate, train_one_epoch, the trained `model`).

The trained model's accuracy is measured by the trusted side: the sandbox gets test images it has never
seen (the half of the MNIST test set that is not in its data folder) without labels, returns one predicted
class per image, and the grader counts. Full points at or above the threshold, linear partial credit down
to the floor, 0 below (grader_config.ACCURACY).
"""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "mlp"
points = 10


def _normalise(images):
    return ((images.astype(np.float64) / 255.0 - 0.1307) / 0.3081).reshape(len(images), -1)


def _fixed_model(rng, hidden=32):
    w1 = rng.normal(0, 0.05, (hidden, 784)).astype(np.float32)
    b1 = rng.normal(0, 0.05, hidden).astype(np.float32)
    w2 = rng.normal(0, 0.3, (10, hidden)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 10).astype(np.float32)
    return [w1, b1, w2, b2]


def _logits(weights, images):
    w1, b1, w2, b2 = (w.astype(np.float64) for w in weights)
    return np.maximum(_normalise(images) @ w1.T + b1, 0) @ w2.T + b2


def _cross_entropy(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def _probe_set(rng, mnist, n=300):
    pick = rng.choice(len(mnist.probe_images), n, replace=False)
    return mnist.probe_images[pick], mnist.probe_labels[pick]


@test_case(points=None, hidden=True)
def get_device_follows_cuda_availability(probe, check):
    with_cuda = str(probe("get_device", "get_device", cuda=True))
    without = str(probe("get_device", "get_device", cuda=False))
    if not (with_cuda == "cuda" or with_cuda.startswith("cuda:")) or without != "cpu":
        raise check.CheckFailed(
            "get_device: GPU が使えるときは cuda、使えないときは cpu を返してください / get_device must return "
            "torch.device('cuda') when torch.cuda.is_available() and torch.device('cpu') otherwise")


@test_case(points=None, hidden=True)
def mlp_output_shape(probe, check):
    shapes = probe("mlp_shapes", "MLP()", input_shapes=[[5, 1, 28, 28], [5, 784]])
    if not isinstance(shapes, list) or [list(s) if isinstance(s, (list, tuple)) else s for s in shapes] != [[5, 10], [5, 10]]:
        raise check.CheckFailed(
            "MLP: MLP() の出力は (N, 10) のロジットにしてください (入力は (N,1,28,28) でも (N,784) でも) / MLP()(x) must "
            "return (N, 10) logits for inputs of shape (N, 1, 28, 28) and (N, 784)")


@test_case(points=None, hidden=True)
def evaluate_counts_accuracy(probe, rng, check, mnist):
    images, labels = _probe_set(rng, mnist)
    weights = _fixed_model(rng)
    expected = float(np.mean(_logits(weights, images).argmax(axis=1) == labels))
    got = check.as_float(probe("evaluate", "evaluate", weights=weights, images=images, labels=labels,
                               batch_size=64), "evaluate")
    if abs(got - expected) > 1.0 / len(labels) + 1e-9:
        raise check.CheckFailed(
            "evaluate: 正解率 (正解数 / サンプル数、0〜1) が一致しません / evaluate must return the accuracy: correct "
            "predictions / number of samples, between 0 and 1")


@test_case(points=None, hidden=True)
def train_one_epoch_averages_over_samples(probe, rng, check, mnist):
    images, labels = _probe_set(rng, mnist)
    weights = _fixed_model(rng)
    per_sample = _cross_entropy(_logits(weights, images), labels)
    order = np.argsort(per_sample)          # the short last batch gets the largest losses
    value, _ = probe("train_one_epoch", "train_one_epoch", weights=weights, images=images[order],
                     labels=labels[order], batch_size=64, lr=0.0)
    value = check.as_float(value, "train_one_epoch")
    if not check.close(float(per_sample.mean()), value, 2e-3, 1e-6):
        raise check.CheckFailed(
            "train_one_epoch: 返す損失はサンプル数で平均した訓練損失にしてください (loss.item() * バッチの大きさ の和 / "
            "サンプル数) / return the training loss averaged over samples (sum of loss.item() * batch size, divided "
            "by the number of samples)")
    # in the original order and with a small step, one epoch lowers the loss for every draw
    # (measured: 300 of 300 draws, by at least 1.18 nats)
    value, logits = probe("train_one_epoch", "train_one_epoch", weights=weights, images=images, labels=labels,
                          batch_size=32, lr=0.02)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape != (len(labels), 10) or not np.all(np.isfinite(logits)) or \
            not _cross_entropy(logits, labels).mean() < per_sample.mean() - 1e-3:
        raise check.CheckFailed(
            "train_one_epoch: 1 エポック後にモデルが学習していません (zero_grad → backward → step) / the model did "
            "not learn during the epoch: each batch needs optimizer.zero_grad(), loss.backward(), optimizer.step()")


@test_case(points=None, hidden=True)
def trained_model_accuracy(probe, check, mnist, band, measurements, config):
    preds = probe("predict", "model", timeout=config.LIMITS["mlp_call_timeout_s"], images=mnist.hidden_images)
    preds = check.as_vector(preds, "model の予測 / the model's predictions", length=len(mnist.hidden_labels))
    accuracy = float(np.mean(preds == mnist.hidden_labels))
    measurements["mnist_accuracy"] = round(accuracy, 5)
    credit = check.accuracy_credit(accuracy, band["full"], band["floor"])
    if credit == 0.0:
        raise check.CheckFailed(
            f"model: 未知のテスト画像での正解率 {accuracy:.2%} は {band['floor']:.0%} 以下です / accuracy on unseen test "
            f"images is {accuracy:.2%}, at or below {band['floor']:.0%}")
    return credit
