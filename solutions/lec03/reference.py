"""Reference solution of the numpy part of lec03. GENERATED FILE: do not edit.

Written by ``python -m autograder build`` from the cells tagged "reference" in source/lec03/lec03.ipynb.
"""
import numpy as np


def fit_normal_equation(x, y):
    """正規方程式を解いて (w, b) を返す / solve the normal equation and return (w, b)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    A = np.array([[np.sum(x * x), np.sum(x)], [np.sum(x), len(x)]])
    c = np.array([np.sum(x * y), np.sum(y)])
    w, b = np.linalg.solve(A, c)
    return float(w), float(b)


def predict(x, w, b):
    """ŷ = w x + b"""
    return w * np.asarray(x, dtype=float) + b


def loss(x, y, w, b):
    """E(w, b) = ½ Σ_n (y_n − w x_n − b)²  (和 / a sum)"""
    residual = np.asarray(y, dtype=float) - predict(x, w, b)
    return float(0.5 * np.sum(residual ** 2))


def gradient(x, y, w, b):
    """(∂E/∂w, ∂E/∂b): 和 / sums"""
    x = np.asarray(x, dtype=float)
    residual = np.asarray(y, dtype=float) - predict(x, w, b)
    return float(np.sum(-residual * x)), float(np.sum(-residual))


def gd_step(x, y, w, b, lr):
    """勾配降下法の 1 ステップ / one step of gradient descent: (w, b) − lr · gradient / N"""
    dE_dw, dE_db = gradient(x, y, w, b)
    n = len(x)
    return w - lr * dE_dw / n, b - lr * dE_db / n


def minibatch_indices(n_samples, batch_size, rng):
    """1 エポック分のミニバッチのインデックス / the indices of one epoch's minibatches"""
    perm = rng.permutation(n_samples)
    return [perm[i:i + batch_size] for i in range(0, n_samples, batch_size)]


def train_sgd(x, y, lr, batch_size, n_epochs, seed, w0=1.0, b0=2.0):
    """ミニバッチ SGD / minibatch SGD: returns (w, b, losses)"""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    w, b = float(w0), float(b0)
    losses = []
    for _ in range(n_epochs):
        for idx in minibatch_indices(len(x), batch_size, rng):
            w, b = gd_step(x[idx], y[idx], w, b, lr)
        losses.append(loss(x, y, w, b))
    return w, b, losses


def mse(y, y_hat):
    """平均二乗誤差 / mean squared error"""
    error = np.asarray(y, dtype=float) - np.asarray(y_hat, dtype=float)
    return float(np.mean(error ** 2))


def rmse(y, y_hat):
    """平均二乗誤差の平方根 / root mean squared error"""
    return float(np.sqrt(mse(y, y_hat)))


def mae(y, y_hat):
    """平均絶対誤差 / mean absolute error"""
    error = np.asarray(y, dtype=float) - np.asarray(y_hat, dtype=float)
    return float(np.mean(np.abs(error)))
