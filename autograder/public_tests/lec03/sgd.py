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
    assert callable(train_sgd), "train_sgd が定義されていません / train_sgd is not defined"
    w, b, losses = train_sgd(X, Y, lr=0.5, batch_size=5, n_epochs=300, seed=0)
    assert len(losses) == 300, \
        f"losses はエポックごとに 1 つ (300 個) のはずですが {len(losses)} 個でした / losses must hold one value per epoch (300), got {len(losses)}"
    assert np.isclose(w, 3.0, atol=1e-3) and np.isclose(b, 2.0, atol=1e-3), \
        f"y = 3x + 2 の点なので (3, 2) に近づくはずですが {(w, b)} でした / on y = 3x + 2 SGD should reach (3, 2), got {(w, b)}"
    assert losses[-1] < losses[0], "損失が減っていません / the loss does not decrease"


@test_case(points=None, hidden=False)
def test_losses_and_seed(train_sgd):
    w1, b1, losses1 = train_sgd(X, Y, lr=0.1, batch_size=6, n_epochs=3, seed=5)
    w2, b2, losses2 = train_sgd(X, Y, lr=0.1, batch_size=6, n_epochs=3, seed=5)
    assert (w1, b1) == (w2, b2) and list(losses1) == list(losses2), \
        "同じ seed なら同じ結果になるはずです (np.random.default_rng(seed) を使ってください) / the same seed must give the same result (use np.random.default_rng(seed))"
    expected_last = 0.5 * np.sum((Y - w1 * X - b1) ** 2)
    assert np.isclose(losses1[-1], expected_last), (
        "losses[k] は k エポック目の後の訓練データ全体での損失 ½Σ(y − w x − b)² にしてください / "
        "losses[k] must be the loss ½Σ(y − w x − b)² on the whole training set after epoch k")
    w0, b0, _ = train_sgd(X, Y, lr=0.0, batch_size=6, n_epochs=1, seed=5)
    assert (w0, b0) == (1.0, 2.0), \
        f"lr = 0 なら初期値 (w0, b0) = (1, 2) のままのはずですが {(w0, b0)} でした / with lr = 0 the start (w0, b0) = (1, 2) must stay, got {(w0, b0)}"
