"""`logits_kd`: the student's output distribution on short text matched to the teacher's, KL(teacher ‖ student)."""
import torch
import torch.nn.functional as F


def output_kl(student_logits, teacher_logits, temperature=1.0):
    """Mean over tokens of KL(softmax(t/τ) ‖ softmax(s/τ)), times τ² so gradients keep their scale across τ."""
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    kl = F.kl_div(s, t, log_target=True, reduction="none").sum(-1)
    return kl.mean() * temperature**2


class Objective:
    def __init__(self, hp, ctx):
        self.ctx = ctx
        self.batch_size = hp["batch_size"]
        self.seq_len = hp["seq_len"] or ctx.native_len
        self.temperature = hp["temperature"]
        self.tokens_per_step = self.batch_size * self.seq_len

    def loss(self, step):
        ids = self.ctx.windows(step, 0, self.batch_size, self.seq_len)
        with torch.no_grad():
            teacher_logits = self.ctx.teacher(input_ids=ids).logits
        student_logits = self.ctx.student(input_ids=ids).logits
        kd = output_kl(student_logits, teacher_logits, self.temperature)
        return kd, {"kd": kd}
