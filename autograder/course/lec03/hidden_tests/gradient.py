"""Hidden tests: gradient(x, y, w, b) -> (∂E/∂w, ∂E/∂b), sums as on the slides."""
from otter.test_files import test_case

OK_FORMAT = False
name = "gradient"
points = 10
MEAN = "平均ではなく和で計算してください (E = ½ Σ …) / use sums, not means: E = ½ Σ (y − ŷ)²"
SIGN = "符号が逆になっていないか確認してください / the sign looks flipped: ∂E/∂w = Σ (y − w x − b)(−x)"
NO_X = "∂E/∂w に x_n が掛かっているか確認してください / ∂E/∂w needs the factor x_n"
SWAPPED = "返す順番は (dE_dw, dE_db) です / return (dE_dw, dE_db) in this order"


@test_case(points=None, hidden=True)
def gradient_values(gradient, ref, rng, check, config):
    for n in (2, 3, 5, 100):
        x = rng.uniform(0.5, 9, n)
        y = rng.uniform(-60, -20) * x + rng.uniform(500, 900) + rng.normal(0, 10, n)
        w, b = float(rng.uniform(-5, 5)), float(rng.uniform(-50, 50))
        dw, db = check.as_pair(gradient(x, y, w, b), "gradient")
        rdw, rdb = ref.gradient(x, y, w, b)
        opts = dict(rtol=config.RTOL, atol=config.ATOL)
        check.check_scalar("gradient (dE_dw)", rdw, dw, mistakes={
            MEAN: rdw / n, SIGN: -rdw, NO_X: rdb, SWAPPED: rdb}, **opts)
        check.check_scalar("gradient (dE_db)", rdb, db, mistakes={MEAN: rdb / n, SIGN: -rdb, SWAPPED: rdw}, **opts)
