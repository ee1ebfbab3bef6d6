"""`cpt`: continual pre-training, the language-model loss on long sequences at the target context."""


def lm_loss(model, ids, **kwargs):
    return model(input_ids=ids, labels=ids, **kwargs).loss


class Objective:
    def __init__(self, hp, ctx):
        self.ctx = ctx
        self.batch_size = hp["batch_size"]
        self.seq_len = hp["seq_len"] or ctx.target_len
        self.tokens_per_step = self.batch_size * self.seq_len

    def loss(self, step):
        ids = self.ctx.windows(step, 0, self.batch_size, self.seq_len)
        lm = lm_loss(self.ctx.student, ids)
        return lm, {"lm": lm}
