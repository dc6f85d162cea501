"""Hidden tests: gd_step(x, y, w, b, lr) = (w, b) − lr · gradient(x, y, w, b) / len(x).

gd_step is right when its step is right with the reference's `gradient` (computed in the trusted process
while gd_step runs) or with the student's own (grade.CALLS, runner): a wrong gradient costs the gradient
question only, and a gd_step that compensates for it in the student's own notebook is not charged again.
"""
from otter.test_files import test_case

OK_FORMAT = False
name = "gd_step"
points = 10
NOT_MEAN = ("ミニバッチの平均勾配 (勾配 / len(x)) で更新してください / update with the mean gradient of the "
            "(mini)batch: divide the gradient by len(x)")
SIGN = "勾配の逆方向に進んでいるか確認してください / step against the gradient: w ← w − η ∂E/∂w"


@test_case(points=None, hidden=True)
def one_step(gd_step, ref, rng, check, config):
    for n in (2, 3, 5, 64):
        x = rng.uniform(0.5, 9, n)
        y = rng.uniform(-60, -20) * x + rng.uniform(500, 900) + rng.normal(0, 10, n)
        w, b, lr = float(rng.uniform(-5, 5)), float(rng.uniform(-50, 50)), float(rng.choice([1e-3, 1e-2]))
        got = check.as_pair(gd_step(x, y, w, b, lr), "gd_step")
        rw, rb = ref.gd_step(x, y, w, b, lr)
        dw, db = ref.gradient(x, y, w, b)
        opts = dict(rtol=config.RTOL, atol=config.ATOL)
        check.check_scalar("gd_step (w)", rw, got[0], mistakes={NOT_MEAN: w - lr * dw, SIGN: w + lr * dw / n}, **opts)
        check.check_scalar("gd_step (b)", rb, got[1], mistakes={NOT_MEAN: b - lr * db, SIGN: b + lr * db / n}, **opts)
