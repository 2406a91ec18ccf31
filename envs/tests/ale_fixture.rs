//! The emulator against ale-py 0.12.1 itself, step for step: a fixed action sequence on five
//! games, compared with trajectories that `data/record_ale.py` recorded from the ale-py wheel
//! (per step: reward, lives, game over, and a CRC-32 of the screen as palette indices,
//! grayscale and RGB). See the script for the protocol.

use envs::atari::ale::{Ale, EmulatorSettings};
use envs::atari::games::{locate_rom, rom_dir};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Fixture {
    ale_py: String,
    steps: usize,
    frame_skip: usize,
    games: BTreeMap<String, Game>,
}

#[derive(Deserialize)]
struct Game {
    rom: String,
    actions: Vec<i32>,
    reward: Vec<i32>,
    lives: Vec<i32>,
    game_over_steps: Vec<usize>,
    screen_crc32: String,
}

/// CRC-32 (IEEE, zlib's), continued from `crc` over `data`.
fn crc32(crc: u32, data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !crc;
    for &b in data {
        c = table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[test]
fn crc32_is_zlibs() {
    assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(crc32(0, b"12345"), b"6789"), 0xCBF4_3926);
}

struct Screens {
    idx: Vec<u8>,
    gray: Vec<u8>,
    rgb: Vec<u8>,
}

impl Screens {
    fn crc(&mut self, ale: &mut Ale) -> u32 {
        ale.screen_into(&mut self.idx);
        // The wrapper's table-driven grayscale, which must equal ALE's own.
        ale.grayscale_into(&mut self.gray);
        ale.rgb_into(&mut self.rgb);
        crc32(crc32(crc32(0, &self.idx), &self.gray), &self.rgb)
    }
}

#[test]
fn replays_ale_py_0_12_1_step_for_step() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ale_0.12.1_trajectories.json"
    );
    let fixture: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(fixture.ale_py, "0.12.1");
    let names: Vec<&str> = fixture.games.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["Asterix", "BeamRider", "Breakout", "DemonAttack", "Pong"]
    );
    for (name, game) in &fixture.games {
        let rom = locate_rom(name, &rom_dir()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let settings = EmulatorSettings {
            repeat_action_probability: 0.0,
            seed: 0,
            mode: None,
            difficulty: None,
        };
        let mut ale = Ale::load(&rom, settings).unwrap();
        assert!(rom.ends_with(format!("{}.bin", game.rom)));
        ale.reset();
        assert_eq!(
            ale.action_set(true),
            game.actions,
            "{name}: minimal action set"
        );
        let (h, w) = ale.screen_size();
        let mut screens = Screens {
            idx: vec![0; h * w],
            gray: vec![0; h * w],
            rgb: vec![0; 3 * h * w],
        };
        let expected_crc = |i: usize| {
            u32::from_str_radix(&game.screen_crc32[8 * i..8 * i + 8], 16).expect("hex CRC")
        };
        assert_eq!(game.screen_crc32.len(), 8 * (fixture.steps + 1));
        assert_eq!(
            screens.crc(&mut ale),
            expected_crc(0),
            "{name}: first screen"
        );
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut game_overs = Vec::new();
        let mut total_reward = 0;
        for t in 0..fixture.steps {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let action = game.actions[((x >> 33) % game.actions.len() as u64) as usize];
            let mut reward = 0;
            for _ in 0..fixture.frame_skip {
                reward += ale.act(action);
                if ale.game_over() {
                    break;
                }
            }
            let over = ale.game_over();
            let at = format!("{name}, step {t}");
            assert_eq!(reward, game.reward[t], "{at}: reward");
            assert_eq!(ale.lives(), game.lives[t], "{at}: lives");
            assert_eq!(screens.crc(&mut ale), expected_crc(t + 1), "{at}: screen");
            total_reward += reward.abs();
            if over {
                game_overs.push(t);
                ale.reset();
            }
        }
        assert_eq!(game_overs, game.game_over_steps, "{name}: game overs");
        // The fixture exercises what it claims: rewards happen in every game.
        assert!(
            total_reward > 0,
            "{name}: no reward in {} steps",
            fixture.steps
        );
    }
}
