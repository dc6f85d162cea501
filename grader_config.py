"""Every number that decides a grade: points, tolerances, thresholds, limits.

This file is trusted configuration. It is read by the grading process only; the sandboxed child that runs
a student's notebook never sees it. Changing anything here changes ``grader_version`` and so makes
``batch`` regrade every submission.
"""

ASSIGNMENT = "lec03"
COURSE_SEED = 20261128          # seeds Python, numpy and torch once before a notebook runs
TORCH_THREADS = 1               # fixed so that grade and batch give the same number (1 is as fast as 2 here)

# --- points per question (all-or-nothing on the question's checks, except the MNIST accuracy band) -------
POINTS = {
    "normal_equation": 10,
    "loss": 10,
    "gradient": 10,
    "gd_step": 10,
    "minibatches": 10,
    "sgd": 10,
    "metrics": 10,
    "mlp": 10,
}
QUESTIONS = tuple(POINTS)
# --- partial credit per graded function (part) -------------------------------------------------------------
# Each part scores on its own checks; a question without an entry here is one part worth all its points.
# sgd stays whole: its checks (convergence, seed, reshuffle) judge one function whose parts depend on each
# other. The parts of a question sum to its POINTS (checked when the grader loads this file).
PARTS = {
    "loss": {"predict": 4, "loss": 6},
    "metrics": {"mse": 4, "rmse": 3, "mae": 3},
    "mlp": {"get_device": 1, "MLP": 2, "train_one_epoch": 2, "evaluate": 1, "accuracy": 4},
}

# --- numeric tolerances used by the trusted checks --------------------------------------------------------
RTOL = 1e-5                     # loss, gradient, steps, metrics: float32 arithmetic of sums stays inside this
ATOL = 1e-6
NORMAL_EQUATION_EXCESS = 1e-6  # fit_normal_equation passes when (E(w, b) − E_min) / ½Σ(y − ȳ)² is at most this.
                                # Measured (benchmarks/float32_normal_equation.py, 5,000 data sets): float32
                                # arithmetic of correct formulas at most 3.5e-9 (w, b up to 4.2e-5 off, beyond
                                # RTOL); the no-bias and swapped mistakes at least 2.1
SGD_RTOL = 2e-2                 # train_sgd must reach the normal-equation (w, b) this closely
SGD_TRAJECTORY_RTOL = 1e-4      # how closely a student's SGD run must match one of the enumerated orders (float32-safe;
                                # measured: no two of the 900 replayed trajectories are this close)

# --- MNIST accuracy band. Measured (reference MLP, 2 epochs, 1 torch thread, seeds 0-3): 97.15-97.38 % on the
# full test set, 97.46 % on the hidden half with the course seed; small profile: 95.2 %. Full marks sit
# about five standard errors of the hidden half (5,000 images: 0.24 %) below the lowest seed.
MNIST_PROFILE = "full"          # "full" for real grading; tests set AUTOGRADER_MNIST_PROFILE=small
ACCURACY = {
    # full marks at or above `full`, linear partial credit down to `floor`, 0 below
    "full": {"full": 0.96, "floor": 0.90},
    # the small checksummed subset used by most tests (fewer training images, so lower)
    "small": {"full": 0.90, "floor": 0.80},
}
MNIST_HIDDEN_FRACTION = 0.5     # share of the 10,000 test images the sandbox never sees (accuracy is measured there)
MNIST_SPLIT_SEED = 3            # fixed split of the test set into visible / hidden halves

# --- sandbox limits --------------------------------------------------------------------------------------
LIMITS = {
    "cell_timeout_s": 300,        # one notebook cell (wall clock); the cell is stopped, later cells still run
    "notebook_timeout_s": 900,    # all cells together
    "call_timeout_s": 20,         # one call of a student function by a hidden test
    "probe_timeout_s": 120,       # probe calls (lec03: those that train or run the student's model on MNIST)
    "memory_bytes": 4 * 1024**3,  # RLIMIT_DATA of the child
    "cpu_seconds": 1200,          # RLIMIT_CPU of the child
    "file_bytes": 64 * 1024**2,   # RLIMIT_FSIZE: largest file the child may write
    "tmpfs_bytes": 256 * 1024**2, # size of the child's writable home and /tmp
    "processes": 64,              # RLIMIT_NPROC (threads count too)
    "open_files": 256,
    "output_bytes": 64 * 1024,    # stdout/stderr kept per cell
    "message_bytes": 16 * 1024**2,# largest message the parent accepts from the child
    "restarts": 3,                # fresh children after a crash or hang before giving up
    # one wall-clock budget for everything a submission costs (cells, restarts, hidden tests' calls); after it,
    # what was recorded is scored and every later call is a timeout. The full solution grades in about 25 s
    # on the build machine (README, "Measured"); this is notebook_timeout_s plus 300 s for the hidden tests.
    "submission_budget_s": 1200,
    # each sandbox's cgroup (where the machine allows one; see autograder/execute/README.md):
    "cpu_cores": 1.0,             # CPU quota per sandbox; batch runs one worker per core by default
    "sandbox_memory_bytes": 5 * 1024**3,  # all processes and tmpfs files of one sandbox together
                                  # (above memory_bytes, so that one process meets its own MemoryError first)
    "cgroups": True,              # False: per-process rlimits only (as where cgroups are unavailable)
    # on a machine with NVIDIA GPUs: how many sandboxes share one GPU (a Dask worker machine advertises
    # --resources GPU=<GPUs x this>; batch --gpu asks one unit per notebook). Without a GPU nothing changes.
    "sandboxes_per_gpu": 4,
}

# --- late policy (applied by batch from Canvas's LATE marker) --------------------------------------------
# "none": no deduction; "fraction": multiply by (1 - LATE_FRACTION); "zero": late scores 0.
# If K-LMS itself has a late policy for this assignment, use "none" here or the deduction happens twice.
LATE_POLICY = "none"
LATE_FRACTION = 0.2

# --- batch ----------------------------------------------------------------------------------------------
MAX_ZIP_BYTES = 2 * 1024**3       # total uncompressed size of a submissions zip
MAX_ZIP_FILES = 5000
MAX_NOTEBOOK_BYTES = 50 * 1024**2
