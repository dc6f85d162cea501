"""Hidden tests: the PyTorch practical (get_device, MLP, evaluate, train_one_epoch, the trained `model`).

Each graded function is a part of its own (grader_config.PARTS["mlp"]). The accuracy part is computed here,
in the trusted process, from the trained `model`'s *weights*: they must be the 784-256-128-10 MLP the task
asks for, the student's own forward must agree with this file's forward pass on images the sandbox has
anyway, and then this file's forward pass classifies the held-out half of the MNIST test set, which never
enters the sandbox. A model that looks images up, or is not such an MLP, gains nothing. Full points at or
above the band's threshold, linear partial credit down to its floor, 0 below (grader_config.ACCURACY).
"""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False
name = "mlp"
points = 10
PART_OF = {
    "get_device_follows_cuda_availability": "get_device", "mlp_output_shape": "MLP",
    "evaluate_counts_accuracy": "evaluate", "train_one_epoch_averages_over_samples": "train_one_epoch",
    "trained_model_accuracy": "accuracy",
}
LAYERS = ((256, 784), (128, 256), (10, 128))    # (out, in) of the task's three fully connected layers
ZERO_GRAD = ("train_one_epoch: 勾配がバッチをまたいで足し合わされています。各バッチで optimizer.zero_grad() を呼んでください / "
             "gradients accumulate across batches: call optimizer.zero_grad() for every batch")
NO_RELU = ("層の間に活性化関数 (ReLU) がなく、MLP が 1 次関数になっています / there is no activation (ReLU) between "
           "the layers, so the MLP is a linear model")


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
    value, _, grad = probe("train_one_epoch", "train_one_epoch", weights=weights, images=images[order],
                           labels=labels[order], batch_size=64, lr=0.0)
    if _accumulated(weights, images[order], labels[order], 64, grad):
        raise check.CheckFailed(ZERO_GRAD)
    value = check.as_float(value, "train_one_epoch")
    if not check.close(float(per_sample.mean()), value, 2e-3, 1e-6):
        raise check.CheckFailed(
            "train_one_epoch: 返す損失はサンプル数で平均した訓練損失にしてください (loss.item() * バッチの大きさ の和 / "
            "サンプル数) / return the training loss averaged over samples (sum of loss.item() * batch size, divided "
            "by the number of samples)")
    # in the original order and with a small step, one epoch lowers the loss for every draw
    # (measured: 300 of 300 draws, by at least 1.18 nats)
    value, logits, _ = probe("train_one_epoch", "train_one_epoch", weights=weights, images=images, labels=labels,
                             batch_size=32, lr=0.02)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape != (len(labels), 10) or not np.all(np.isfinite(logits)) or \
            not _cross_entropy(logits, labels).mean() < per_sample.mean() - 1e-3:
        raise check.CheckFailed(
            "train_one_epoch: 1 エポック後にモデルが学習していません (zero_grad → backward → step) / the model did "
            "not learn during the epoch: each batch needs optimizer.zero_grad(), loss.backward(), optimizer.step()")


def _accumulated(weights, images, labels, batch_size, grad) -> bool:
    """Whether the gradient left on the last layer's bias after an epoch at lr = 0 is the sum over all
    batches (zero_grad forgotten) rather than the last batch's (or nothing: zeroed after the step)."""
    if grad is None:
        return False
    grad = np.asarray(grad, dtype=np.float64).ravel()
    logits = _logits(weights, images)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    per_batch = [p[i:i + batch_size] for i in range(0, len(labels), batch_size)]
    for scale in (lambda b: b.mean(axis=0), lambda b: b.sum(axis=0)):   # mean or sum reduction
        batches = [scale(b) for b in per_batch]
        total, last = np.sum(batches, axis=0), batches[-1]
        if grad.shape == total.shape and np.allclose(grad, total, rtol=1e-3, atol=1e-5) and \
                not np.allclose(grad, last, rtol=1e-3, atol=1e-5):
            return True
    return False


def _activations():
    try:
        from scipy.special import erf
    except ImportError:  # pragma: no cover - scipy is pinned in requirements.txt
        import math

        erf = np.vectorize(math.erf)
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))  # noqa: E731
    return {
        "relu": lambda z: np.maximum(z, 0.0),
        "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
        "gelu": lambda z: 0.5 * z * (1.0 + erf(z / np.sqrt(2.0))),
        "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
        "silu": lambda z: z * sigmoid(z),
        "tanh": np.tanh,
        "sigmoid": sigmoid,
        "identity": lambda z: z,
    }


def _outputs():
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    return {"logits": lambda z: z, "log_softmax": log_softmax, "softmax": lambda z: np.exp(log_softmax(z))}


def _mlp_layers(check, params):
    """The three (W, b) pairs of a 784-256-128-10 MLP found among the model's parameters by shape (W as
    (out, in); a transposed matrix and a missing bias are accepted), or CheckFailed saying why not."""
    arrays = []
    for item in params if isinstance(params, list) else []:
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], np.ndarray):
            arrays.append(np.asarray(item[1], dtype=np.float64))
    shapes = [tuple(a.shape) for a in arrays]
    unused = list(range(len(arrays)))
    layers = []
    for out, inp in LAYERS:
        w = next((i for i in unused if shapes[i] in ((out, inp), (inp, out))), None)
        if w is None:
            break
        unused.remove(w)
        weight = arrays[w] if shapes[w] == (out, inp) else arrays[w].T
        b = next((i for i in unused if shapes[i] == (out,)), None)
        if b is not None:
            unused.remove(b)
        layers.append((weight, arrays[b] if b is not None else np.zeros(out)))
    if len(layers) != len(LAYERS) or unused:
        raise check.CheckFailed(
            "model: 784-256-128-10 の MLP (全結合 3 層) ではありません。学習した MLP を model に入れてください / model is "
            f"not the 784-256-128-10 MLP the task asks for (its parameters have shapes {shapes[:12]})")
    return layers


def _forward(layers, x, activation, output):
    for k, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if k < len(layers) - 1:
            x = activation(x)
    return output(x)


def _pixels(images, normalised):
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    return (x - 0.1307) / 0.3081 if normalised else x


@test_case(points=None, hidden=True)
def trained_model_accuracy(probe, check, mnist, band, measurements, config):
    timeout = config.LIMITS["probe_timeout_s"]
    layers = _mlp_layers(check, probe("model_weights", "model", timeout=timeout))
    images, labels = mnist.probe_images[:500], mnist.probe_labels[:500]
    own = np.asarray(probe("model_logits", "model", timeout=timeout, images=images), dtype=np.float64)
    if own.shape != (len(images), 10) or not np.all(np.isfinite(own)):
        raise check.CheckFailed(f"model: 出力は (N, 10) にしてください / model must output (N, 10), got {own.shape}")
    x = _pixels(images, normalised=True)
    match = None
    for act_name, act in _activations().items():
        for out_name, out in _outputs().items():
            mine = _forward(layers, x, act, out)
            if np.allclose(own, mine, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(mine).max()))):
                match = (act_name, act, out)
                break
        if match:
            break
    if match is None:
        raise check.CheckFailed(
            "model: model の出力が、そのパラメータで計算した 784-256-128-10 の MLP の出力と一致しません / the model's "
            "output is not what a 784-256-128-10 MLP computes from its own parameters")
    act_name, act, out = match
    measurements["mlp_activation"] = act_name
    # the lecture's preprocessing, or plain ToTensor() if the student trained on that (chosen on visible images)
    normalised = max((True, False), key=lambda n: np.mean(
        _forward(layers, _pixels(images, n), act, out).argmax(axis=1) == labels))
    hidden = _forward(layers, _pixels(mnist.hidden_images, normalised), act, out).argmax(axis=1)
    accuracy = float(np.mean(hidden == mnist.hidden_labels))
    measurements["mnist_accuracy"] = round(accuracy, 5)
    credit = check.accuracy_credit(accuracy, band["full"], band["floor"])
    rule = (f"{band['full']:.0%} 以上で満点、{band['floor']:.0%} 以下で 0 点、その間は直線的に部分点 / full marks at "
            f"{band['full']:.0%} or more, 0 at {band['floor']:.0%} or less, linear in between")
    causes = NO_RELU if act_name == "identity" else (
        "よくある原因: 学習のエポック数や学習率、前処理が講義と違う、学習後の model を上書きした / usual causes: too few "
        "epochs or a learning rate far from Adam's 1e-3, preprocessing other than the lecture's, `model` rebound "
        "after training")
    if credit == 0.0:
        raise check.CheckFailed(f"model: 未知のテスト画像での正解率 {accuracy:.2%} / accuracy on unseen test images "
                                f"{accuracy:.2%}. {rule}. {causes}")
    if credit < 1.0:
        return check.Credit(credit, f"部分点 / partial credit {credit:.2f}: 正解率 / accuracy {accuracy:.2%}. {rule}. "
                                    f"{causes}")
    return credit
