"""Public self-check for train_sgd (students see this file; grading uses other, hidden tests)."""
import numpy as np
from otter.test_files import test_case

OK_FORMAT = False

name = "sgd"
points = 10

X = np.linspace(0.0, 1.0, 20)
Y = 3.0 * X + 2.0          # an exact line: SGD must find w = 3, b = 2


@test_case(points=None, hidden=False)
def test_converges_on_a_line(train_sgd):
    assert callable(train_sgd), "train_sgd \u304c\u5b9a\u7fa9\u3055\u308c\u3066\u3044\u307e\u305b\u3093 / train_sgd is not defined"
    w, b, losses = train_sgd(X, Y, lr=0.5, batch_size=5, n_epochs=300, seed=0)
    assert len(losses) == 300, \
        f"losses \u306f\u30a8\u30dd\u30c3\u30af\u3054\u3068\u306b 1 \u3064 (300 \u500b) \u306e\u306f\u305a\u3067\u3059\u304c {len(losses)} \u500b\u3067\u3057\u305f / losses must hold one value per epoch (300), got {len(losses)}"
    assert np.isclose(w, 3.0, atol=1e-3) and np.isclose(b, 2.0, atol=1e-3), \
        f"y = 3x + 2 \u306e\u70b9\u306a\u306e\u3067 (3, 2) \u306b\u8fd1\u3065\u304f\u306f\u305a\u3067\u3059\u304c {(w, b)} \u3067\u3057\u305f / on y = 3x + 2 SGD should reach (3, 2), got {(w, b)}"
    assert losses[-1] < losses[0], "\u640d\u5931\u304c\u6e1b\u3063\u3066\u3044\u307e\u305b\u3093 / the loss does not decrease"


@test_case(points=None, hidden=False)
def test_losses_and_seed(train_sgd):
    w1, b1, losses1 = train_sgd(X, Y, lr=0.1, batch_size=6, n_epochs=3, seed=5)
    w2, b2, losses2 = train_sgd(X, Y, lr=0.1, batch_size=6, n_epochs=3, seed=5)
    assert (w1, b1) == (w2, b2) and list(losses1) == list(losses2), \
        "\u540c\u3058 seed \u306a\u3089\u540c\u3058\u7d50\u679c\u306b\u306a\u308b\u306f\u305a\u3067\u3059 (np.random.default_rng(seed) \u3092\u4f7f\u3063\u3066\u304f\u3060\u3055\u3044) / the same seed must give the same result (use np.random.default_rng(seed))"
    expected_last = 0.5 * np.sum((Y - w1 * X - b1) ** 2)
    assert np.isclose(losses1[-1], expected_last), (
        "losses[k] \u306f k \u30a8\u30dd\u30c3\u30af\u76ee\u306e\u5f8c\u306e\u8a13\u7df4\u30c7\u30fc\u30bf\u5168\u4f53\u3067\u306e\u640d\u5931 \u00bd\u03a3(y \u2212 w x \u2212 b)\u00b2 \u306b\u3057\u3066\u304f\u3060\u3055\u3044 / "
        "losses[k] must be the loss \u00bd\u03a3(y \u2212 w x \u2212 b)\u00b2 on the whole training set after epoch k")
    w0, b0, _ = train_sgd(X, Y, lr=0.0, batch_size=6, n_epochs=1, seed=5)
    assert (w0, b0) == (1.0, 2.0), \
        f"lr = 0 \u306a\u3089\u521d\u671f\u5024 (w0, b0) = (1, 2) \u306e\u307e\u307e\u306e\u306f\u305a\u3067\u3059\u304c {(w0, b0)} \u3067\u3057\u305f / with lr = 0 the start (w0, b0) = (1, 2) must stay, got {(w0, b0)}"
