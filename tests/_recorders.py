"""Callbacks that record what training did, shared by the tests of learned strengths."""

from skorch.callbacks import Callback


class StrengthsInForce(Callback):
    """The priors' strengths (in the loss's units) at the end of every training step."""

    def initialize(self):
        self.strengths_ = []
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.strengths_.append(dict(zip(net.priors_.names,
                                            net.priors_.strengths.tolist(), strict=True)))
