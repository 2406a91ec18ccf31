//! A safe owner of one emulator of the ALE C++ core of ale-py 0.12.1, through our own C shim
//! (`ale_shim.cpp`, compiled by `build.rs`). All of the crate's `unsafe` code for ALE is here.
//!
//! Nothing here can end the process: the shim catches every C++ exception and hands its
//! message back as an [`Error`]; ALE's `loadROM`, which calls `exit(1)` on a ROM it does not
//! recognise, is reached only for a supported game's exact dump (checked by md5 in the shim);
//! and no setting is ever read by key (ALE's getters `exit` on an unknown key). ALE's logging
//! is set to errors only, once per process.

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Once;

use crate::{Error, Result};

/// The opaque C++ object (an `ale::ALEInterface`).
#[repr(C)]
struct FireAle {
    _private: [u8; 0],
}

extern "C" {
    fn fire_ale_quiet();
    fn fire_ale_identify(
        path: *const c_char,
        md5_out: *mut c_char,
        game_out: *mut c_char,
        game_len: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn fire_ale_game_md5(game: *const c_char, md5_out: *mut c_char) -> c_int;
    fn fire_ale_new(
        path: *const c_char,
        seed: c_int,
        repeat_action_probability: f32,
        mode: c_int,
        difficulty: c_int,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut FireAle;
    fn fire_ale_delete(ale: *mut FireAle);
    fn fire_ale_act(
        ale: *mut FireAle,
        action: c_int,
        paddle_strength: f32,
        reward: *mut c_int,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn fire_ale_reset(ale: *mut FireAle, err: *mut c_char, err_len: usize) -> c_int;
    fn fire_ale_game_over(ale: *const FireAle) -> c_int;
    fn fire_ale_lives(ale: *mut FireAle) -> c_int;
    fn fire_ale_frame_number(ale: *const FireAle) -> c_int;
    fn fire_ale_screen_size(ale: *const FireAle, height: *mut usize, width: *mut usize);
    fn fire_ale_screen(
        ale: *const FireAle,
        out: *mut u8,
        len: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn fire_ale_screen_grayscale(
        ale: *mut FireAle,
        out: *mut u8,
        len: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn fire_ale_screen_rgb(
        ale: *mut FireAle,
        out: *mut u8,
        len: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn fire_ale_ram(
        ale: *const FireAle,
        out: *mut u8,
        len: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn fire_ale_action_set(
        ale: *const FireAle,
        minimal: c_int,
        out: *mut c_int,
        cap: usize,
        count: *mut usize,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn fire_ale_clone_state(
        ale: *mut FireAle,
        include_rng: c_int,
        data: *mut *mut u8,
        len: *mut usize,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn fire_ale_free(data: *mut u8);
    fn fire_ale_restore_state(
        ale: *mut FireAle,
        data: *const u8,
        len: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
}

/// Room for an error message from the shim.
const ERR_LEN: usize = 512;

/// Calls `f` with an error buffer; a nonzero status becomes [`Error::Emulator`].
fn check(what: &str, f: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<()> {
    let mut err = [0 as c_char; ERR_LEN];
    if f(err.as_mut_ptr(), ERR_LEN) == 0 {
        return Ok(());
    }
    Err(Error::Emulator(format!("{what}: {}", message(&err))))
}

/// The NUL-terminated text in `buf`.
fn message(buf: &[c_char]) -> String {
    // SAFETY: the shim always NUL-terminates what it writes, and the buffer starts zeroed.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn c_path(path: &Path) -> Result<CString> {
    path.to_str()
        .and_then(|s| CString::new(s).ok())
        .ok_or_else(|| Error::Rom {
            path: path.to_owned(),
            reason: "the path is not valid UTF-8 or contains a NUL byte".into(),
        })
}

static QUIET: Once = Once::new();

fn quiet() {
    // SAFETY: sets a process-wide logging level; no other effect.
    QUIET.call_once(|| unsafe { fire_ale_quiet() });
}

/// What ALE makes of a file: its md5 and the supported game with exactly that md5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RomIdentity {
    /// The file's md5, 32 lowercase hex digits.
    pub md5: String,
    /// The ROM name (`breakout`, `beam_rider`) of the game whose supported dump has this md5.
    pub game: Option<String>,
}

/// Reads `path` and identifies it by md5 against ALE's list of supported ROMs.
pub fn identify_rom(path: &Path) -> Result<RomIdentity> {
    quiet();
    let c = c_path(path)?;
    let mut md5 = [0 as c_char; 33];
    let mut game = [0 as c_char; 128];
    let mut err = [0 as c_char; ERR_LEN];
    // SAFETY: every buffer is as long as the length passed with it (md5: 33 bytes).
    let status = unsafe {
        fire_ale_identify(
            c.as_ptr(),
            md5.as_mut_ptr(),
            game.as_mut_ptr(),
            game.len(),
            err.as_mut_ptr(),
            ERR_LEN,
        )
    };
    if status != 0 {
        return Err(Error::Rom {
            path: path.to_owned(),
            reason: message(&err),
        });
    }
    let game = message(&game);
    Ok(RomIdentity {
        md5: message(&md5),
        game: (!game.is_empty()).then_some(game),
    })
}

/// The md5 of the ROM ALE supports for the ROM name `game` (`breakout`), or `None` if ALE has
/// no such game.
pub fn supported_md5(game: &str) -> Option<String> {
    let c = CString::new(game).ok()?;
    let mut md5 = [0 as c_char; 33];
    // SAFETY: `md5` has the 33 bytes the shim writes at most.
    let known = unsafe { fire_ale_game_md5(c.as_ptr(), md5.as_mut_ptr()) };
    (known == 1).then(|| message(&md5))
}

/// Emulator settings applied when the ROM is loaded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmulatorSettings {
    /// Probability that the emulator repeats the previous action for a frame (sticky actions).
    pub repeat_action_probability: f32,
    /// Seed of the emulator's own random generator (sticky actions). ALE seeds from the clock
    /// when this is negative.
    pub seed: i32,
    /// Game mode (`None`: the game's default); must be one the game has.
    pub mode: Option<u32>,
    /// Difficulty (`None`: the game's default); must be one the game has.
    pub difficulty: Option<u32>,
}

impl Default for EmulatorSettings {
    /// No sticky actions, seed 0, default mode and difficulty.
    fn default() -> Self {
        Self {
            repeat_action_probability: 0.0,
            seed: 0,
            mode: None,
            difficulty: None,
        }
    }
}

/// The serialised state of an emulator ([`Ale::clone_state`]), for [`Ale::restore_state`] on
/// an emulator of the same game.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AleState {
    bytes: Vec<u8>,
}

impl AleState {
    /// The serialised bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A state from bytes [`as_bytes`](Self::as_bytes) returned (ALE checks them on restore).
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }
}

/// Marks a palette index whose grayscale value has not been on screen yet.
const UNSEEN: u16 = 0x100;

/// One emulator, one frame per [`act`](Ale::act) (frame skipping is the wrapper's). Not
/// `Sync`: one thread drives it at a time.
pub struct Ale {
    ptr: NonNull<FireAle>,
    rom: PathBuf,
    width: usize,
    height: usize,
    /// ALE's grayscale value of each palette index (`UNSEEN` until the index is first on
    /// screen), learned from ALE's own conversion; see [`Ale::grayscale_into`].
    gray: Box<[u16; 256]>,
    /// The screen as palette indices.
    indices: Vec<u8>,
}

// SAFETY: an ALEInterface has no thread affinity; it is only ever used through `&mut self`
// or, for the read-only getters, `&self` (and `Ale` is not `Sync`).
unsafe impl Send for Ale {}

impl Ale {
    /// Creates an emulator with the ROM at `rom`, which must be the exact dump (by md5) of a
    /// game ALE supports; anything else is an error, never an exit.
    pub fn load(rom: &Path, settings: EmulatorSettings) -> Result<Ale> {
        quiet();
        let path = c_path(rom)?;
        let int = |v: Option<u32>| v.map_or(-1, |v| c_int::try_from(v).unwrap_or(c_int::MAX));
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: the path is NUL-terminated and the error buffer is ERR_LEN bytes; the shim
        // returns a fresh heap object or null.
        let ptr = unsafe {
            fire_ale_new(
                path.as_ptr(),
                settings.seed,
                settings.repeat_action_probability,
                int(settings.mode),
                int(settings.difficulty),
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::Rom {
            path: rom.to_owned(),
            reason: message(&err),
        })?;
        let (mut height, mut width) = (0, 0);
        // SAFETY: live pointer with a loaded ROM.
        unsafe { fire_ale_screen_size(ptr.as_ptr(), &mut height, &mut width) };
        Ok(Ale {
            ptr,
            rom: rom.to_owned(),
            width,
            height,
            gray: Box::new([UNSEEN; 256]),
            indices: vec![0; width * height],
        })
    }

    fn raw(&self) -> *mut FireAle {
        self.ptr.as_ptr()
    }

    /// The ROM file this emulator was loaded from.
    pub fn rom(&self) -> &Path {
        &self.rom
    }

    /// Applies ALE action `code` (0..18) for one frame; returns the reward.
    ///
    /// # Panics
    ///
    /// If ALE throws (it does not for the codes of [`action_set`](Self::action_set)).
    pub fn act(&mut self, code: i32) -> i32 {
        let mut reward = 0;
        // SAFETY: live pointer; `reward` is a valid out pointer.
        check("act", |err, len| unsafe {
            fire_ale_act(self.raw(), code, 1.0, &mut reward, err, len)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        reward
    }

    /// Restarts the game (ALE's `reset_game`).
    ///
    /// # Panics
    ///
    /// If ALE throws (it does not once a ROM is loaded).
    pub fn reset(&mut self) {
        // SAFETY: live pointer.
        check("reset", |err, len| unsafe {
            fire_ale_reset(self.raw(), err, len)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The game is over (ALE's `game_over(with_truncation = false)`; this binding never sets
    /// ALE's own episode cap).
    pub fn game_over(&self) -> bool {
        // SAFETY: live pointer.
        unsafe { fire_ale_game_over(self.raw()) != 0 }
    }

    /// Lives left (0 for games without lives).
    pub fn lives(&self) -> i32 {
        // SAFETY: live pointer.
        unsafe { fire_ale_lives(self.raw()) }
    }

    /// Frames since the game was last reset.
    pub fn episode_frame_number(&self) -> i32 {
        // SAFETY: live pointer.
        unsafe { fire_ale_frame_number(self.raw()) }
    }

    /// Screen size `(height, width)`: 210 x 160 for every game.
    pub fn screen_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    /// Writes the screen as palette indices into `out` (`height * width` bytes).
    ///
    /// # Panics
    ///
    /// If `out` has the wrong size.
    pub fn screen_into(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.width * self.height, "screen buffer size");
        // SAFETY: `out` holds exactly the width * height bytes the shim copies.
        check("screen", |err, len| unsafe {
            fire_ale_screen(self.raw(), out.as_mut_ptr(), out.len(), err, len)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Writes ALE's grayscale screen into `out` (`height * width` bytes).
    ///
    /// ALE's own conversion reads a 32-bit palette entry per pixel; this is a table lookup over
    /// the palette indices whose entries come from ALE's conversion the first time an index is
    /// on screen (its grayscale value depends on the index alone), so the result is ALE's
    /// grayscale exactly.
    ///
    /// # Panics
    ///
    /// If `out` has the wrong size.
    pub fn grayscale_into(&mut self, out: &mut [u8]) {
        assert_eq!(out.len(), self.indices.len(), "screen buffer size");
        let mut indices = std::mem::take(&mut self.indices);
        self.screen_into(&mut indices);
        let mut seen = 0;
        for (out, &index) in out.iter_mut().zip(&indices) {
            let gray = self.gray[usize::from(index)];
            seen |= gray;
            *out = gray as u8;
        }
        if seen & UNSEEN != 0 {
            self.ale_grayscale_into(out);
            for (&index, &gray) in indices.iter().zip(out.iter()) {
                self.gray[usize::from(index)] = u16::from(gray);
            }
        }
        self.indices = indices;
    }

    /// ALE's own grayscale conversion of the screen into `out` (`height * width` bytes).
    ///
    /// # Panics
    ///
    /// If `out` has the wrong size.
    pub fn ale_grayscale_into(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.width * self.height, "screen buffer size");
        // SAFETY: `out` holds exactly the width * height bytes ALE fills.
        check("grayscale screen", |err, len| unsafe {
            fire_ale_screen_grayscale(self.raw(), out.as_mut_ptr(), out.len(), err, len)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Writes the screen as RGB (row-major, 3 bytes a pixel) into `out`.
    ///
    /// # Panics
    ///
    /// If `out` is not `3 * height * width` bytes.
    pub fn rgb_into(&self, out: &mut [u8]) {
        assert_eq!(out.len(), 3 * self.width * self.height, "RGB buffer size");
        // SAFETY: `out` holds exactly the 3 * width * height bytes ALE fills.
        check("RGB screen", |err, len| unsafe {
            fire_ale_screen_rgb(self.raw(), out.as_mut_ptr(), out.len(), err, len)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The console's 128 bytes of RAM.
    pub fn ram(&self) -> [u8; 128] {
        let mut ram = [0; 128];
        // SAFETY: `ram` holds the 128 bytes ALE copies.
        check("RAM", |err, len| unsafe {
            fire_ale_ram(self.raw(), ram.as_mut_ptr(), ram.len(), err, len)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        ram
    }

    /// ALE action codes: the game's minimal set, or all 18.
    pub fn action_set(&self, minimal: bool) -> Vec<i32> {
        let mut codes = vec![0; 18];
        let mut count = 0;
        // SAFETY: the shim writes at most `codes.len()` codes and the count.
        check("action set", |err, len| unsafe {
            fire_ale_action_set(
                self.raw(),
                c_int::from(minimal),
                codes.as_mut_ptr(),
                codes.len(),
                &mut count,
                err,
                len,
            )
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(count <= codes.len(), "ALE reports {count} actions");
        codes.truncate(count);
        codes
    }

    /// The emulator's state (with its random generator if `include_rng`), to restore later.
    pub fn clone_state(&mut self, include_rng: bool) -> Result<AleState> {
        let (mut data, mut size) = (std::ptr::null_mut(), 0);
        // SAFETY: live pointer and valid out pointers; the buffer is ours to free below.
        check("clone state", |err, len| unsafe {
            fire_ale_clone_state(
                self.raw(),
                c_int::from(include_rng),
                &mut data,
                &mut size,
                err,
                len,
            )
        })?;
        // SAFETY: on success `data` points at `size` bytes from malloc, freed once here.
        let bytes = unsafe {
            let bytes = std::slice::from_raw_parts(data, size).to_vec();
            fire_ale_free(data);
            bytes
        };
        Ok(AleState { bytes })
    }

    /// Restores a state cloned from an emulator of the same game (ALE checks the ROM's md5).
    pub fn restore_state(&mut self, state: &AleState) -> Result<()> {
        // SAFETY: live pointer; the slice is valid for its length.
        check("restore state", |err, len| unsafe {
            fire_ale_restore_state(
                self.raw(),
                state.bytes.as_ptr(),
                state.bytes.len(),
                err,
                len,
            )
        })
    }
}

impl Drop for Ale {
    fn drop(&mut self) {
        // SAFETY: created by fire_ale_new, deleted once.
        unsafe { fire_ale_delete(self.raw()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atari::games::{locate_rom, rom_dir};

    fn load(game: &str, settings: EmulatorSettings) -> Ale {
        let rom = locate_rom(game, &rom_dir()).expect("setup.sh installs the ROMs");
        Ale::load(&rom, settings).unwrap()
    }

    #[test]
    fn learned_grayscale_is_ales_own_on_every_frame() {
        for game in ["Breakout", "MsPacman", "SpaceInvaders", "Seaquest"] {
            let settings = EmulatorSettings {
                repeat_action_probability: 0.25,
                seed: 7,
                ..EmulatorSettings::default()
            };
            let mut ale = load(game, settings);
            let actions = ale.action_set(true);
            let (h, w) = ale.screen_size();
            let (mut ours, mut theirs) = (vec![0; h * w], vec![0; h * w]);
            for t in 0..600 {
                ale.act(actions[t * 5 % actions.len()]);
                if ale.game_over() {
                    ale.reset();
                }
                ale.grayscale_into(&mut ours);
                ale.ale_grayscale_into(&mut theirs);
                assert!(ours == theirs, "{game}: frame {t} differs");
            }
            let learned = ale.gray.iter().filter(|&&g| g != UNSEEN).count();
            assert!(learned >= 3, "{game}: {learned} colours");
        }
    }

    #[test]
    fn rgb_and_grayscale_follow_the_palette_indices() {
        let mut ale = load("MsPacman", EmulatorSettings::default());
        for _ in 0..200 {
            ale.act(0);
        }
        let (h, w) = ale.screen_size();
        assert_eq!((h, w), (210, 160));
        let (mut idx, mut gray, mut rgb) = (vec![0; h * w], vec![0; h * w], vec![0; 3 * h * w]);
        ale.screen_into(&mut idx);
        ale.ale_grayscale_into(&mut gray);
        ale.rgb_into(&mut rgb);
        // One palette index, one colour: same index, same RGB and gray everywhere.
        let mut colour = std::collections::HashMap::new();
        for p in 0..h * w {
            let c = (rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2], gray[p]);
            assert_eq!(*colour.entry(idx[p]).or_insert(c), c, "pixel {p}");
        }
        assert!(colour.len() >= 4, "{} colours on screen", colour.len());
        // Gray is the luminance of the RGB colour (ALE: 0.2989 R + 0.587 G + 0.114 B).
        for &(r, g, b, y) in colour.values() {
            let lum = 0.2989 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
            assert!((lum - f64::from(y)).abs() <= 1.0, "{r} {g} {b} -> {y}");
        }
    }

    #[test]
    fn restoring_a_state_replays_the_same_frames() {
        let mut ale = load("Breakout", EmulatorSettings::default());
        let actions = ale.action_set(true);
        for t in 0..100 {
            ale.act(actions[t % actions.len()]);
        }
        let state = ale.clone_state(false).unwrap();
        assert!(!state.as_bytes().is_empty());
        let run = |ale: &mut Ale| {
            let mut trace = Vec::new();
            for t in 0..300 {
                trace.push(ale.act(actions[t * 7 % actions.len()]));
                trace.push(ale.lives());
                trace.extend(ale.ram().iter().map(|&b| i32::from(b)));
            }
            trace
        };
        let first = run(&mut ale);
        let ram_after = ale.ram();
        ale.restore_state(&state).unwrap();
        assert_ne!(ale.ram(), ram_after, "the restore took the RAM back");
        assert_eq!(run(&mut ale), first);

        // A state of another game is refused, not applied.
        let mut pong = load("Pong", EmulatorSettings::default());
        let err = pong.restore_state(&state).unwrap_err();
        assert!(matches!(err, Error::Emulator(_)), "{err}");
    }

    #[test]
    fn modes_and_difficulties_are_checked() {
        // Breakout's modes are 0, 4, 8, ..., 44; its difficulties 0 and 1.
        let settings = |mode, difficulty| EmulatorSettings {
            mode,
            difficulty,
            ..EmulatorSettings::default()
        };
        let rom = locate_rom("Breakout", &rom_dir()).unwrap();
        let mut err_text = Vec::new();
        for (mode, difficulty) in [(Some(3), None), (None, Some(7))] {
            match Ale::load(&rom, settings(mode, difficulty)) {
                Err(Error::Rom { reason, .. }) => err_text.push(reason),
                other => panic!("{mode:?} {difficulty:?}: {:?}", other.map(|_| ())),
            }
        }
        assert!(
            err_text[0].contains("mode 3") && err_text[0].contains("4, 8"),
            "{err_text:?}"
        );
        assert!(err_text[1].contains("difficulty 7"), "{err_text:?}");
        // A valid mode changes the game: mode 4 and the default differ within a few frames.
        let trace = |mode| {
            let mut ale = Ale::load(&rom, settings(mode, Some(1))).unwrap();
            (0..400).map(|_| ale.act(1)).count();
            ale.ram()
        };
        assert_ne!(trace(Some(4)), trace(None));
    }

    #[test]
    fn a_file_that_is_no_supported_rom_is_an_error() {
        let dir = std::env::temp_dir().join(format!("fire-rl-ale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("breakout.bin");
        std::fs::write(&path, vec![0x5a; 4096]).unwrap();
        let err = Ale::load(&path, EmulatorSettings::default()).err().unwrap();
        assert!(err.to_string().contains("md5"), "{err}");
        let id = identify_rom(&path).unwrap();
        assert_eq!((id.md5.len(), id.game), (32, None));
        assert!(identify_rom(&dir.join("none.bin")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(supported_md5("no_such_game"), None);
        assert_eq!(supported_md5("breakout").map(|m| m.len()), Some(32));
    }
}
