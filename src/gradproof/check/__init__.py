"""The checker (being written)."""


class Report:  # placeholder until the engine lands
    pass


def check_vjp(forward, backward, *inputs, **options):
    raise NotImplementedError("the checker is being written")


def check_grad(f, grad, x, **options):
    raise NotImplementedError("the checker is being written")
