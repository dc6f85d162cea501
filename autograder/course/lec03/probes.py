"""Lecture 3's probes: what the hidden tests of the PyTorch question ask the sandboxed child.

This file is sent to the child as text with its set-up message and runs there, next to the student's code
(``autograder/execute/child/harness.py`` calls ``probe_<name>(harness, request)``). Nothing here is
trusted or secret: every answer is plain data that the parent checks itself.
"""


def probe_get_device(harness, request):
    """get_device() on a simulated machine: every torch.cuda / mps query a device choice can make
    answers as a machine with one CUDA GPU (or none) would. A cached answer is cleared first."""
    import torch

    fn = harness.function("get_device")
    cuda = bool(request["cuda"])
    fake = {
        (torch.cuda, "is_available"): lambda: cuda,
        (torch.cuda, "device_count"): lambda: 1 if cuda else 0,
        (torch.cuda, "current_device"): lambda: 0,
        (torch.cuda, "is_initialized"): lambda: cuda,
        (torch.cuda, "get_device_name"): lambda *a, **k: "Tesla T4",
        (torch.backends.mps, "is_available"): lambda: False,
        (torch.backends.mps, "is_built"): lambda: False,
    }
    saved = {key: getattr(*key) for key in fake}
    for (owner, attr), value in fake.items():
        setattr(owner, attr, value)
    try:
        if hasattr(fn, "cache_clear"):
            fn.cache_clear()
        with harness.patched({}):
            return str(fn())
    finally:
        for (owner, attr), value in saved.items():
            setattr(owner, attr, value)
        if hasattr(fn, "cache_clear"):
            fn.cache_clear()

def probe_mlp_shapes(harness, request):
    import torch

    cls = harness.function("MLP")
    with harness.patched({}):
        model = cls()
    model.eval()
    shapes = []
    with torch.no_grad():
        for shape in request["input_shapes"]:
            x = torch.randn(*[int(d) for d in shape])
            shapes.append(list(model(x).shape))
    return shapes

def _fixed_model(weights):
    import torch

    w1, b1, w2, b2 = (torch.tensor(w, dtype=torch.float32) for w in weights)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(w1.shape[1], w1.shape[0]),
                                torch.nn.ReLU(), torch.nn.Linear(w2.shape[1], w2.shape[0]))
    with torch.no_grad():
        model[1].weight.copy_(w1), model[1].bias.copy_(b1)
        model[3].weight.copy_(w2), model[3].bias.copy_(b2)
    return model

def _loader(request):
    import torch

    images = _normalise(request["images"])
    labels = torch.tensor(request["labels"], dtype=torch.long)
    dataset = torch.utils.data.TensorDataset(images, labels)
    return torch.utils.data.DataLoader(dataset, batch_size=int(request["batch_size"]), shuffle=False)

def probe_evaluate(harness, request):
    import torch

    model = _fixed_model(request["weights"])
    with harness.patched({}):
        return harness.function("evaluate")(model, _loader(request), torch.device("cpu"))

def probe_train_one_epoch(harness, request):
    """The loss train_one_epoch returns, the logits after the epoch, and the gradient left on the last
    layer's bias (the sum over all batches when zero_grad was forgotten)."""
    import torch

    model = _fixed_model(request["weights"])
    optimizer = torch.optim.SGD(model.parameters(), lr=float(request["lr"]))
    with harness.patched({}):
        value = harness.function("train_one_epoch")(model, _loader(request), optimizer, torch.device("cpu"))
    with torch.no_grad():
        logits = model(_normalise(request["images"]))
    grad = model[3].bias.grad
    return [value, logits, None if grad is None else grad.detach().cpu().numpy()]

def _trained_model(harness):
    model = harness.graded.get("model")
    if model is None:
        raise NameError("no trained `model` (a torch.nn.Module) was defined by the notebook")
    return model

def probe_model_weights(harness, request):
    """The trained model's parameters as plain arrays: the grader runs its own forward pass on them."""
    model = _trained_model(harness)
    return [[str(name), p.detach().cpu().double().numpy()] for name, p in model.named_parameters()]

def probe_model_logits(harness, request):
    """The trained model's own forward pass on images the sandbox has anyway (training images)."""
    import torch

    model = _trained_model(harness)
    images = _normalise(request["images"])
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    model.eval()
    with torch.no_grad(), harness.patched({}):
        return model(images.to(device)).detach().cpu().double().numpy()


def _normalise(images_uint8):
    """The lecture's preprocessing: ToTensor() then Normalize((0.1307,), (0.3081,)), shape (N, 1, 28, 28)."""
    import torch

    x = torch.tensor(images_uint8, dtype=torch.float32).div(255.0)
    return x.sub(0.1307).div(0.3081).reshape(-1, 1, 28, 28)
