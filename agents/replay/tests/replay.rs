//! Replay: stacks at episode boundaries, n-step sums, memory, save and load.

use replay::{Error, FrameReplay, NStep, VectorReplay};

/// A 1-byte "frame" whose value names it, so stacks can be read back.
fn f(v: u8) -> [u8; 1] {
    [v]
}

/// One stream: episode A = frames 1, 2, 3, 4 (three steps, terminated), episode B = 10, 11, 12.
fn two_episodes(capacity: usize) -> FrameReplay {
    let mut r = FrameReplay::new(capacity, 1, 1, 4, 7).unwrap();
    r.start_episode(0, &f(1)).unwrap();
    r.add_step(0, 0, 1.0, false, &f(2), false).unwrap();
    r.add_step(0, 1, 2.0, false, &f(3), false).unwrap();
    r.add_step(0, 2, 4.0, true, &f(4), true).unwrap();
    r.start_episode(0, &f(10)).unwrap();
    r.add_step(0, 3, 8.0, false, &f(11), false).unwrap();
    r.add_step(0, 4, 16.0, false, &f(12), false).unwrap();
    r
}

/// Samples until every action was seen; returns (obs, reward, next_obs, discount) per action.
fn by_action(
    r: &mut FrameReplay,
    nstep: NStep,
) -> std::collections::BTreeMap<u8, (Vec<u8>, f32, Vec<u8>, f32)> {
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..50 {
        let b = r.sample(16, nstep).unwrap();
        for i in 0..b.size {
            seen.insert(
                b.actions[i] as u8,
                (
                    b.obs[i * 4..i * 4 + 4].to_vec(),
                    b.rewards[i],
                    b.next_obs[i * 4..i * 4 + 4].to_vec(),
                    b.discounts[i],
                ),
            );
        }
    }
    seen
}

#[test]
fn stacks_never_cross_an_episode_start() {
    let mut r = two_episodes(100);
    assert_eq!(r.len(), 5);
    let seen = by_action(&mut r, NStep::one(0.5));
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[&0].0, vec![1, 1, 1, 1], "the first frame repeats");
    assert_eq!(seen[&2].0, vec![1, 1, 2, 3]);
    assert_eq!(seen[&2].2, vec![1, 2, 3, 4], "the terminal next state");
    assert_eq!(
        seen[&3].0,
        vec![10, 10, 10, 10],
        "episode B never sees episode A"
    );
    assert_eq!(seen[&4].2, vec![10, 10, 11, 12]);
}

#[test]
fn one_step_and_n_step_targets() {
    let mut r = two_episodes(100);
    let one = by_action(&mut r, NStep::one(0.5));
    assert_eq!((one[&0].1, one[&0].3), (1.0, 0.5));
    assert_eq!(
        (one[&2].1, one[&2].3),
        (4.0, 0.0),
        "terminated: no bootstrap"
    );

    let three = by_action(&mut r, NStep { n: 3, gamma: 0.5 });
    // From frame 1: 1 + 0.5*2 + 0.25*4, then the episode terminated.
    assert_eq!((three[&0].1, three[&0].3), (3.0, 0.0));
    assert_eq!(three[&0].2, vec![1, 2, 3, 4]);
    // From frame 2: 2 + 0.5*4, terminated after two steps.
    assert_eq!((three[&1].1, three[&1].3), (4.0, 0.0));
    // From frame 10: 8 + 0.5*16, then no more data: bootstrap from frame 12 with 0.25.
    assert_eq!((three[&3].1, three[&3].3), (16.0, 0.25));
    assert_eq!(three[&3].2, vec![10, 10, 11, 12]);
}

#[test]
fn truncated_episodes_bootstrap_from_their_final_frame() {
    let mut r = FrameReplay::new(100, 1, 1, 4, 1).unwrap();
    r.start_episode(0, &f(1)).unwrap();
    r.add_step(0, 0, 1.0, false, &f(2), true).unwrap(); // truncated: over, not terminated
    r.start_episode(0, &f(5)).unwrap();
    r.add_step(0, 1, 1.0, false, &f(6), false).unwrap();
    let seen = by_action(&mut r, NStep { n: 3, gamma: 0.9 });
    assert_eq!(seen[&0].1, 1.0);
    assert!(
        (seen[&0].3 - 0.9).abs() < 1e-6,
        "bootstraps from the final frame"
    );
    assert_eq!(seen[&0].2, vec![1, 1, 1, 2]);
}

#[test]
fn streams_of_several_environments_do_not_mix() {
    let mut r = FrameReplay::new(100, 2, 1, 2, 3).unwrap();
    r.start_episode(0, &f(1)).unwrap();
    r.start_episode(1, &f(101)).unwrap();
    for t in 0..5u8 {
        r.add_step(0, t, 0.0, false, &f(2 + t), false).unwrap();
        r.add_step(1, 10 + t, 0.0, false, &f(102 + t), false)
            .unwrap();
    }
    let b = r.sample(200, NStep::one(0.9)).unwrap();
    for i in 0..b.size {
        let (a, obs) = (b.actions[i] as u8, &b.obs[i * 2..i * 2 + 2]);
        let base = if a >= 10 { 100 } else { 0 };
        assert!(
            obs.iter().all(|&v| (v >= 100) == (base == 100)),
            "{obs:?} for action {a}"
        );
    }
}

#[test]
fn wraps_around_and_accounts_memory() {
    let mut r = FrameReplay::new(10, 1, 7056, 4, 0).unwrap();
    let frame = vec![3u8; 7056];
    r.start_episode(0, &frame).unwrap();
    for i in 0..25 {
        r.add_step(0, (i % 4) as u8, 1.0, false, &frame, false)
            .unwrap();
    }
    assert_eq!(
        r.len(),
        9,
        "ten slots: nine transitions and the newest frame"
    );
    assert!(
        r.bytes_per_transition() <= 7_200,
        "{}",
        r.bytes_per_transition()
    );
    assert!(r.memory_bytes() <= 10 * 7_200, "{}", r.memory_bytes());
    let b = r.sample(8, NStep::one(0.99)).unwrap();
    assert_eq!(b.obs.len(), 8 * 4 * 7056);
}

#[test]
fn misuse_is_an_error() {
    let mut r = FrameReplay::new(100, 1, 1, 4, 0).unwrap();
    assert!(matches!(
        r.add_step(0, 0, 0.0, false, &f(1), false),
        Err(Error::Insert(_))
    ));
    assert!(matches!(
        r.sample(4, NStep::one(0.9)),
        Err(Error::NotEnough { .. })
    ));
    r.start_episode(0, &f(1)).unwrap();
    assert!(matches!(r.start_episode(0, &[1, 2]), Err(Error::Insert(_))));
    assert!(matches!(
        r.add_step(3, 0, 0.0, false, &f(1), false),
        Err(Error::Insert(_))
    ));
    assert!(FrameReplay::new(3, 1, 1, 4, 0).is_err());
}

#[test]
fn save_and_load_round_trip_including_the_sampler() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.bin");
    let mut r = two_episodes(100);
    r.save(&path).unwrap();
    let mut loaded = FrameReplay::load(&path).unwrap();
    assert_eq!(loaded.len(), r.len());
    assert_eq!(
        r.sample(32, NStep::one(0.9)).unwrap(),
        loaded.sample(32, NStep::one(0.9)).unwrap()
    );

    let mut v = VectorReplay::new(10, 2, 1, 5).unwrap();
    for i in 0..15 {
        let x = i as f32;
        v.add(&[x, -x], &[1.0], x, &[x + 1.0, 0.0], i % 5 == 4)
            .unwrap();
    }
    let vpath = dir.path().join("vector.bin");
    v.save(&vpath).unwrap();
    let mut vl = VectorReplay::load(&vpath).unwrap();
    assert_eq!(
        v.sample(16, NStep::one(0.9)).unwrap(),
        vl.sample(16, NStep::one(0.9)).unwrap()
    );
    assert!(
        matches!(FrameReplay::load(&vpath), Err(Error::Format { .. })),
        "kind is checked"
    );

    // A file of another format version says so.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] = 99;
    std::fs::write(&path, &bytes).unwrap();
    let err = FrameReplay::load(&path).unwrap_err();
    assert!(matches!(err, Error::Version { found: 99, .. }), "{err}");
    std::fs::write(&path, &bytes[..20]).unwrap();
    assert!(FrameReplay::load(&path).is_err());
}

/// Draws from a caller's generator (a plasticity probe) leave the training batches as they
/// would have been: the buffer's own generator does not move.
#[test]
fn sampling_with_a_caller_generator_leaves_the_buffer_generator_alone() {
    use rand::SeedableRng;
    let nstep = NStep::one(0.9);
    let (mut a, mut b) = (two_episodes(100), two_episodes(100));
    let mut probe_rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let probe = a.sample_with(64, nstep, &mut probe_rng).unwrap();
    let again = a
        .sample_with(64, nstep, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3))
        .unwrap();
    assert_eq!(probe, again, "same generator state, same draw");
    assert_eq!(a.sample(64, nstep).unwrap(), b.sample(64, nstep).unwrap());

    let mut v = VectorReplay::new(10, 2, 1, 5).unwrap();
    for i in 0..15 {
        let x = i as f32;
        v.add(&[x, -x], &[1.0], x, &[x + 1.0, 0.0], false).unwrap();
    }
    let mut w = v.clone();
    let _ = v.sample_with(16, nstep, &mut probe_rng).unwrap();
    assert_eq!(v.sample(16, nstep).unwrap(), w.sample(16, nstep).unwrap());
}
