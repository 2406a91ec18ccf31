#!/usr/bin/env python3
"""The project's gradient updates written out in PyTorch, for timing side by side with
`cargo bench -p dqn --bench update` and `cargo bench -p sac --bench update`.

Written for this repository from the networks and losses of `agents/dqn` and `agents/sac`
(docs/BENCHMARKS.md, "Update speed against PyTorch"); run it with the setup's torch:

    ~/.cache/fire-rl/torch-2.11.0/bin/python benchmarks/pytorch/update.py dqn-nature
    ... update.py sac-simba --optimizer-variant fused --bf16 --json

Networks (`NET`):

* `dqn-nature`: the Nature CNN on 4x84x84 uint8 frames scaled by 1/255, 4 actions, batch 32,
  Adam lr 6.25e-5 eps 1.5e-4, Huber loss (delta 1), a separate target network, no double DQN:
  `agents/dqn/benches/update.rs`.
* `dqn-cartpole`: `classic`'s CartPole-v1 DQN: MLP 4-64-64-2, batch 64, Adam lr 1e-3 eps 1e-8,
  MSE, double DQN with a target network.
* `dqn-minatar`: Young & Tian's MinAtar DQN (kenjyoung/MinAtar `examples/dqn.py`): conv 16 3x3
  stride 1 on 10x10xC (C = 4, breakout), FC 128, 6 actions, batch 32, smooth L1, centered
  RMSprop lr 2.5e-4 alpha 0.95 eps 0.01 (no momentum: the reference defines GRAD_MOMENTUM but
  does not pass it), a separate target network. The Rust side is issue 24's.
* `sac-simba`: the FIRE paper's SimBa SAC on h1-walk's sizes (51 observations, 19 actions),
  batch 256: actor 1 block x 128, two critics as one ensemble of 2 blocks x 512, AdamW lr 1e-4
  weight decay 1e-2, temperature from 0.01 with Adam lr 1e-4, target entropy -19/2, tau 0.005,
  normalised observations; the update order of `Sac::update` (actor with the critic's weights
  held fixed, temperature, critic with the new actor and temperature, Polyak step).
* `sac-mlp`: CleanRL's SAC sizes on Pendulum (3 observations, 1 action), batch 256.

Each update starts from host (numpy) arrays, as the Rust benches start from a replay `Batch`,
and sums its loss on the device as the agents do; nothing is read back inside the timed loop.
"""

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NETS = ["dqn-nature", "dqn-cartpole", "dqn-minatar", "sac-simba", "sac-mlp"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("net", choices=NETS)
    p.add_argument(
        "--optimizer-variant",
        choices=["foreach-false", "foreach-true", "fused"],
        default="foreach-false",
        help="torch.optim implementation: per-tensor loop (foreach=False), "
        "multi-tensor (foreach=True) or fused=True",
    )
    p.add_argument("--channels-last", action="store_true", help="channels-last convolutions")
    p.add_argument("--bf16", action="store_true", help="torch.autocast('cpu', bfloat16)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 2; 1 for MinAtar)")
    p.add_argument("--calls", type=int, default=None, help="timed updates (warm-up: calls / 5)")
    p.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def make_optimizer(cls, params, variant, **kw):
    if variant == "fused" and cls is torch.optim.RMSprop:
        # torch.optim.RMSprop has no fused implementation: its fastest is foreach=True.
        return cls(params, foreach=True, **kw)
    if variant == "fused":
        return cls(params, fused=True, **kw)
    return cls(params, foreach=(variant == "foreach-true"), **kw)


# ---------------------------------------------------------------------------------------------
# DQN


def xavier_(layer):
    nn.init.xavier_uniform_(layer.weight)  # bound sqrt(6 / (fan_in + fan_out)), as agents/dqn
    nn.init.zeros_(layer.bias)
    return layer


class NatureCnn(nn.Module):
    def __init__(self, frames, actions):
        super().__init__()
        self.conv1 = xavier_(nn.Conv2d(frames, 32, 8, 4))
        self.conv2 = xavier_(nn.Conv2d(32, 64, 4, 2))
        self.conv3 = xavier_(nn.Conv2d(64, 64, 3, 1))
        self.fc1 = xavier_(nn.Linear(64 * 7 * 7, 512))
        self.fc2 = xavier_(nn.Linear(512, actions))
        self.channels_last = False

    def forward(self, x):
        x = x.float() / 255.0
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class MinAtarNet(nn.Module):
    def __init__(self, channels, actions):
        super().__init__()
        self.conv = nn.Conv2d(channels, 16, 3, 1)
        self.fc = nn.Linear(16 * 8 * 8, 128)
        self.out = nn.Linear(128, actions)
        self.channels_last = False

    def forward(self, x):
        x = x.float()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.conv(x))
        x = F.relu(self.fc(x.flatten(1)))
        return self.out(x)


class Mlp(nn.Module):
    def __init__(self, d_in, hidden, actions):
        super().__init__()
        dims = [d_in] + hidden
        self.hidden = nn.ModuleList(xavier_(nn.Linear(a, b)) for a, b in zip(dims, dims[1:]))
        self.out = xavier_(nn.Linear(dims[-1], actions))
        self.channels_last = False

    def forward(self, x):
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x)


def dqn_case(name):
    """(network factory, observation shape, dtype, actions, batch, loss, double, optimizer)."""
    if name == "dqn-nature":
        adam = (torch.optim.Adam, dict(lr=6.25e-5, eps=1.5e-4))
        return (lambda: NatureCnn(4, 4)), (4, 84, 84), np.uint8, 4, 32, "huber", False, adam
    if name == "dqn-cartpole":
        adam = (torch.optim.Adam, dict(lr=1e-3, eps=1e-8))
        return (lambda: Mlp(4, [64, 64], 2)), (4,), np.float32, 2, 64, "mse", True, adam
    if name == "dqn-minatar":
        rms = (torch.optim.RMSprop, dict(lr=2.5e-4, alpha=0.95, eps=0.01, centered=True))
        return (lambda: MinAtarNet(4, 6)), (4, 10, 10), np.uint8, 6, 32, "huber", False, rms
    raise ValueError(name)


def dqn_bench(args, device):
    make, shape, dtype, actions, batch, loss_kind, double, (opt_cls, opt_kw) = dqn_case(args.net)
    online, target = make().to(device), make().to(device)
    target.load_state_dict(online.state_dict())
    for p in target.parameters():
        p.requires_grad_(False)
    if args.channels_last:
        for net in (online, target):
            net.to(memory_format=torch.channels_last)
            net.channels_last = True
    opt = make_optimizer(opt_cls, online.parameters(), args.optimizer_variant, **opt_kw)
    rng = np.random.default_rng(args.seed)

    def host_batch():
        if dtype == np.uint8:
            high = 256 if args.net == "dqn-nature" else 2
            obs = lambda: rng.integers(0, high, (batch, *shape), dtype=np.uint8)  # noqa: E731
        else:
            obs = lambda: rng.standard_normal((batch, *shape), dtype=np.float32)  # noqa: E731
        return dict(
            obs=obs(),
            next_obs=obs(),
            actions=(np.arange(batch) % actions).astype(np.float32),
            rewards=((np.arange(batch) % 3) - 1.0).astype(np.float32),
            discounts=np.full(batch, 0.99, np.float32),
        )

    batches = [host_batch() for _ in range(8)]
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    def update(b):
        obs = torch.as_tensor(b["obs"], device=device)
        next_obs = torch.as_tensor(b["next_obs"], device=device)
        acts = torch.as_tensor(b["actions"], device=device).long().unsqueeze(1)
        rewards = torch.as_tensor(b["rewards"], device=device)
        discounts = torch.as_tensor(b["discounts"], device=device)
        with torch.no_grad(), autocast:
            next_target = target(next_obs).float()
            if double:
                best = online(next_obs).argmax(-1, keepdim=True)
                next_value = next_target.gather(1, best).squeeze(1)
            else:
                next_value = next_target.amax(-1)
            # A zero discount selects the reward alone (agent::td_target).
            td = rewards + torch.where(discounts != 0, discounts * next_value, 0.0)
        with autocast:
            q = online(obs).float().gather(1, acts).squeeze(1)
        loss = F.huber_loss(q, td, delta=1.0) if loss_kind == "huber" else F.mse_loss(q, td)
        sums.add_(torch.stack([loss.detach(), q.detach().mean()]).double())
        opt.zero_grad()
        loss.backward()
        opt.step()

    default_calls = {"dqn-nature": 40, "dqn-cartpole": 400, "dqn-minatar": 400}[args.net]
    return time_calls(update, batches, args.calls or default_calls, device), sums


# ---------------------------------------------------------------------------------------------
# SAC


def he_normal(t, fan_in):
    with torch.no_grad():
        return t.normal_(0.0, math.sqrt(2.0 / fan_in))


def torch_default(t, fan_in):
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        return t.uniform_(-bound, bound)


class EnsembleLinear(nn.Module):
    """Every critic's dense layer at once: weight [E, out, in], bias [E, out]."""

    def __init__(self, members, d_in, d_out, init):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(members, d_out))
        for k in range(members):
            if init == "orthogonal":
                nn.init.orthogonal_(self.weight.data[k])
            elif init == "he":
                he_normal(self.weight.data[k], d_in)
            else:
                torch_default(self.weight.data[k], d_in)
                torch_default(self.bias.data[k], d_in)

    def forward(self, x):
        w = self.weight
        if x.dim() == 2:  # the same input for every member: one product for all of them
            e, d_out, d_in = w.shape
            y = (x @ w.reshape(e * d_out, d_in).t()).view(-1, e, d_out).transpose(0, 1)
            return y + self.bias.unsqueeze(1)
        return torch.baddbmm(self.bias.unsqueeze(1), x, w.transpose(1, 2))


class EnsembleNorm(nn.Module):
    def __init__(self, members, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, d))
        self.bias = nn.Parameter(torch.zeros(members, d))

    def forward(self, x):
        x = F.layer_norm(x, x.shape[-1:], eps=1e-6)
        return x * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)


class Critic(nn.Module):
    def __init__(self, simba, d_in, members=2, width=512, blocks=2, hidden=(256, 256)):
        super().__init__()
        self.simba = simba
        if simba:
            self.embed = EnsembleLinear(members, d_in, width, "orthogonal")
            self.blocks = nn.ModuleList(
                nn.ModuleList(
                    [
                        EnsembleNorm(members, width),
                        EnsembleLinear(members, width, 4 * width, "he"),
                        EnsembleLinear(members, 4 * width, width, "he"),
                    ]
                )
                for _ in range(blocks)
            )
            self.norm = EnsembleNorm(members, width)
            self.out = EnsembleLinear(members, width, 1, "orthogonal")
            nn.init.zeros_(self.out.bias)
        else:
            dims = [d_in, *hidden]
            self.layers = nn.ModuleList(
                EnsembleLinear(members, a, b, "default") for a, b in zip(dims, dims[1:])
            )
            self.out = EnsembleLinear(members, dims[-1], 1, "default")

    def forward(self, obs, act):
        x = torch.cat([obs, act], 1)
        if self.simba:
            x = self.embed(x)
            for norm, fc1, fc2 in self.blocks:
                x = x + fc2(F.relu(fc1(norm(x))))
            x = self.norm(x)
        else:
            for layer in self.layers:
                x = F.relu(layer(x))
        return self.out(x).squeeze(-1)  # [E, B]


class Actor(nn.Module):
    def __init__(self, simba, obs_dim, action_dim, width=128, blocks=1, hidden=(256, 256)):
        super().__init__()
        self.simba = simba
        if simba:
            self.embed = nn.Linear(obs_dim, width)
            nn.init.orthogonal_(self.embed.weight)
            nn.init.zeros_(self.embed.bias)
            self.blocks = nn.ModuleList()
            for _ in range(blocks):
                fc1, fc2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)
                he_normal(fc1.weight, width)
                he_normal(fc2.weight, 4 * width)
                nn.init.zeros_(fc1.bias)
                nn.init.zeros_(fc2.bias)
                self.blocks.append(nn.ModuleList([nn.LayerNorm(width, eps=1e-6), fc1, fc2]))
            self.norm = nn.LayerNorm(width, eps=1e-6)
            d = width
            self.log_std_range = (-10.0, 2.0)
        else:
            dims = [obs_dim, *hidden]
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
            d = dims[-1]
            self.log_std_range = (-5.0, 2.0)
        self.mean = nn.Linear(d, action_dim)
        self.log_std = nn.Linear(d, action_dim)
        if simba:
            for head in (self.mean, self.log_std):
                nn.init.orthogonal_(head.weight)
                nn.init.zeros_(head.bias)

    def forward(self, obs):
        x = obs
        if self.simba:
            x = self.embed(x)
            for norm, fc1, fc2 in self.blocks:
                x = x + fc2(F.relu(fc1(norm(x))))
            x = self.norm(x)
        else:
            for layer in self.layers:
                x = F.relu(layer(x))
        lo, hi = self.log_std_range
        mean, raw = self.mean(x), self.log_std(x)
        return mean, lo + (hi - lo) * (torch.tanh(raw) + 1.0) / 2.0


LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def sample(actor, obs, log_scale_sum):
    """tanh(mean + std eps) and its log-density (policy.rs's squashed_sample)."""
    mean, log_std = actor(obs)
    mean, log_std = mean.float(), log_std.float()
    eps = torch.randn_like(mean)
    u = mean + log_std.exp() * eps
    gaussian = (-0.5 * eps.square() - log_std - LOG_SQRT_2PI).sum(-1)
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return torch.tanh(u), gaussian - log_det.sum(-1) - log_scale_sum


def sac_bench(args, device):
    simba = args.net == "sac-simba"
    obs_dim, action_dim, batch = (51, 19, 256) if simba else (3, 1, 256)
    actor = Actor(simba, obs_dim, action_dim).to(device)
    critic = Critic(simba, obs_dim + action_dim).to(device)
    target = Critic(simba, obs_dim + action_dim).to(device)
    target.load_state_dict(critic.state_dict())
    for p in target.parameters():
        p.requires_grad_(False)
    if simba:
        net_opt = dict(lr=1e-4, weight_decay=1e-2)
        actor_opt = make_optimizer(torch.optim.AdamW, actor.parameters(), args.optimizer_variant, **net_opt)
        critic_opt = make_optimizer(torch.optim.AdamW, critic.parameters(), args.optimizer_variant, **net_opt)
        temp_lr, initial_temperature, target_entropy = 1e-4, 0.01, -0.5 * action_dim
    else:
        actor_opt = make_optimizer(torch.optim.Adam, actor.parameters(), args.optimizer_variant, lr=3e-4)
        critic_opt = make_optimizer(torch.optim.Adam, critic.parameters(), args.optimizer_variant, lr=1e-3)
        temp_lr, initial_temperature, target_entropy = 1e-3, 1.0, -1.0 * action_dim
    log_alpha = torch.tensor([math.log(initial_temperature)], device=device, requires_grad=True)
    temp_opt = make_optimizer(torch.optim.Adam, [log_alpha], args.optimizer_variant, lr=temp_lr)
    # The action box [-1, 1]^A (scale 1, centre 0) and the normaliser's statistics.
    scale = torch.ones(action_dim, device=device)
    center = torch.zeros(action_dim, device=device)
    log_scale_sum = float(scale.log().sum())
    norm_mean = torch.zeros(obs_dim, device=device)
    norm_inv_std = torch.ones(obs_dim, device=device)
    tau = 0.005
    rng = np.random.default_rng(args.seed)

    def host_batch():
        v = lambda *s: (rng.random(s, dtype=np.float32) * 2 - 1)  # noqa: E731
        return dict(
            obs=v(batch, obs_dim),
            actions=v(batch, action_dim),
            rewards=v(batch),
            next_obs=v(batch, obs_dim),
            discounts=np.full(batch, 0.99, np.float32),
        )

    batches = [host_batch() for _ in range(4)]
    sums = torch.zeros(6, dtype=torch.float64, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)
    critic_params = list(critic.parameters())

    def prepare(x):
        x = torch.as_tensor(x, device=device)
        return (x - norm_mean) * norm_inv_std if simba else x

    def update(b):
        obs, next_obs = prepare(b["obs"]), prepare(b["next_obs"])
        acts = (torch.as_tensor(b["actions"], device=device) - center) / scale
        rewards = torch.as_tensor(b["rewards"], device=device)
        discounts = torch.as_tensor(b["discounts"], device=device)

        # Actor, with the critic's weights held fixed (no gradient reaches them).
        alpha = log_alpha.exp().detach()
        for p in critic_params:
            p.requires_grad_(False)
        with autocast:
            a_pi, log_pi = sample(actor, obs, log_scale_sum)
            q_pi = critic(obs, a_pi).float().amin(0)
        for p in critic_params:
            p.requires_grad_(True)
        actor_loss = (alpha * log_pi - q_pi).mean()
        actor_opt.zero_grad()
        actor_loss.backward()
        actor_opt.step()
        entropy = -log_pi.detach().mean()

        # Temperature.
        alpha_loss = (log_alpha.exp() * (entropy - target_entropy)).sum()
        temp_opt.zero_grad()
        alpha_loss.backward()
        temp_opt.step()

        # Critic, with the new actor and temperature.
        with torch.no_grad(), autocast:
            alpha = log_alpha.exp()
            next_a, next_log_pi = sample(actor, next_obs, log_scale_sum)
            next_q = target(next_obs, next_a).float().amin(0) - alpha * next_log_pi
            td = rewards + torch.where(discounts != 0, discounts * next_q, 0.0)
        with autocast:
            q = critic(obs, acts).float()
        qf_loss = (q - td.unsqueeze(0)).square().mean(1).sum()
        critic_opt.zero_grad()
        qf_loss.backward()
        critic_opt.step()
        with torch.no_grad():
            for t, o in zip(target.parameters(), critic.parameters()):
                t.lerp_(o, tau)
            stats = [qf_loss, q.mean(), actor_loss, log_alpha.exp().sum(), alpha_loss, entropy]
            sums.add_(torch.stack([s.detach().reshape(()) for s in stats]).double())

    default_calls = {"sac-simba": 20, "sac-mlp": 100}[args.net]
    return time_calls(update, batches, args.calls or default_calls, device), sums


# ---------------------------------------------------------------------------------------------


def time_calls(update, batches, calls, device):
    """Milliseconds per update over `calls` back-to-back updates after `calls // 5` warm-up."""
    for i in range(max(calls // 5, 1)):
        update(batches[i % len(batches)])
    sync(device)
    start = time.perf_counter()
    for i in range(calls):
        update(batches[i % len(batches)])
    sync(device)
    return (time.perf_counter() - start) * 1e3 / calls


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv):
    args = parse_args(argv)
    threads = args.threads or (1 if args.net == "dqn-minatar" else 2)
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    device = torch.device("cpu")
    ms, sums = (dqn_bench if args.net.startswith("dqn") else sac_bench)(args, device)
    if not torch.isfinite(sums).all():
        sys.exit(f"{args.net}: a loss became non-finite")
    variant = args.optimizer_variant + (" channels-last" if args.channels_last else "") + (
        " bf16" if args.bf16 else ""
    )
    if args.json:
        print(
            json.dumps(
                dict(
                    side="pytorch",
                    net=args.net,
                    variant=variant,
                    threads=threads,
                    torch=torch.__version__,
                    update_ms=round(ms, 4),
                )
            )
        )
    else:
        print(f"torch {torch.__version__}, threads {threads}, {args.net}, {variant}")
        print(f"| update (back to back) | {ms:.3f} ms |")


if __name__ == "__main__":
    main(sys.argv[1:])
