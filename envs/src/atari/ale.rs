//! A safe owner of one ALE 0.6.0 emulator (through `ale-sys`).
//!
//! ALE calls `exit(1)` on a missing, unreadable or unsupported ROM, so everything `loadROM`
//! would reject is checked first (see [`super::games`]); nothing here can end the process.

use std::ffi::CString;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Once;

use ale_sys::{
    act, game_over, getLegalActionSet, getLegalActionSize, getMinimalActionSet,
    getMinimalActionSize, getScreen, getScreenGrayscale, getScreenHeight, getScreenWidth, lives,
    loadROM, reset_game, setBool, setFloat, setInt, setLoggerMode, ALEInterface, ALE_del, ALE_new,
};

use crate::{Error, Result};

/// Emulator settings applied before the ROM is loaded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct EmulatorSettings {
    /// Probability that the emulator repeats the previous action instead (sticky actions).
    pub repeat_action_probability: f32,
    /// Seed of the emulator's own random generator (sticky actions).
    pub seed: i32,
}

/// Marks a palette index whose grayscale value has not been on screen yet.
const UNSEEN: u16 = 0x100;

/// One emulator instance. Not `Sync`: one thread drives it at a time.
pub(crate) struct Ale {
    ptr: NonNull<ALEInterface>,
    width: usize,
    height: usize,
    /// ALE's grayscale value of each palette index (`UNSEEN` until the index is first on
    /// screen), learned from ALE's own conversion; see [`Ale::grayscale_into`].
    gray: Box<[u16; 256]>,
    /// The screen as palette indices.
    indices: Vec<u8>,
}

// SAFETY: an ALEInterface has no thread affinity; it is only ever used through `&mut self`.
unsafe impl Send for Ale {}

static QUIET: Once = Once::new();

impl Ale {
    /// Creates an emulator and loads `rom`, which the caller has validated (it exists, is a
    /// regular file of plausible size, and its stem is a game ALE 0.6.0 supports).
    pub(crate) fn load(rom: &Path, settings: EmulatorSettings) -> Result<Ale> {
        // Logger mode 2 = errors only: no banner, no "mismatched MD5" warning for the
        // ale-py ROMs (whose dumps differ from ALE 0.6's list but play identically).
        QUIET.call_once(|| unsafe { setLoggerMode(2) });
        let path = rom
            .to_str()
            .and_then(|s| CString::new(s).ok())
            .ok_or_else(|| Error::Rom {
                path: rom.to_owned(),
                reason: "the path is not valid UTF-8 or contains a NUL byte".into(),
            })?;
        // SAFETY: ALE_new returns a fresh heap object or null.
        let ptr = NonNull::new(unsafe { ALE_new() }).ok_or_else(|| Error::Rom {
            path: rom.to_owned(),
            reason: "ALE could not allocate an emulator".into(),
        })?;
        let ale = Ale {
            ptr,
            width: 0,
            height: 0,
            gray: Box::new([UNSEEN; 256]),
            indices: Vec::new(),
        };
        let key = |k: &str| CString::new(k).expect("static key");
        // SAFETY: the pointer is live and the keys are NUL-terminated.
        unsafe {
            setFloat(
                ale.raw(),
                key("repeat_action_probability").as_ptr(),
                settings.repeat_action_probability,
            );
            setInt(ale.raw(), key("random_seed").as_ptr(), settings.seed);
            // Frame skipping, pooling and the episode cap are done by the wrapper.
            setInt(ale.raw(), key("frame_skip").as_ptr(), 1);
            setInt(ale.raw(), key("max_num_frames_per_episode").as_ptr(), 0);
            setBool(ale.raw(), key("color_averaging").as_ptr(), false);
            loadROM(ale.raw(), path.as_ptr());
        }
        let mut ale = ale;
        // SAFETY: the ROM is loaded.
        unsafe {
            ale.width = getScreenWidth(ale.raw()) as usize;
            ale.height = getScreenHeight(ale.raw()) as usize;
        }
        ale.indices = vec![0; ale.width * ale.height];
        Ok(ale)
    }

    fn raw(&self) -> *mut ALEInterface {
        self.ptr.as_ptr()
    }

    /// Applies an ALE action code for one frame; returns the reward.
    pub(crate) fn act(&mut self, action: i32) -> i32 {
        // SAFETY: live pointer, loaded ROM.
        unsafe { act(self.raw(), action) }
    }

    pub(crate) fn reset(&mut self) {
        // SAFETY: live pointer, loaded ROM.
        unsafe { reset_game(self.raw()) }
    }

    pub(crate) fn game_over(&self) -> bool {
        // SAFETY: live pointer, loaded ROM.
        unsafe { game_over(self.raw()) }
    }

    pub(crate) fn lives(&self) -> i32 {
        // SAFETY: live pointer, loaded ROM.
        unsafe { lives(self.raw()) }
    }

    /// Screen size `(height, width)`: 210 x 160 for every game.
    pub(crate) fn screen_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    /// Writes ALE's grayscale screen into `out` (`height * width` bytes).
    ///
    /// ALE's own conversion reads a 32-bit palette entry per pixel (about 236k instructions a
    /// screen); a table lookup over the raw palette indices, copy included, about 200k. The table's
    /// entries come from ALE's conversion the first time an index is on screen (its grayscale
    /// value depends on the index alone), so the result is ALE's grayscale exactly.
    pub(crate) fn grayscale_into(&mut self, out: &mut [u8]) {
        assert_eq!(out.len(), self.indices.len(), "screen buffer size");
        // SAFETY: `indices` holds exactly width * height bytes, which ALE fills.
        unsafe { getScreen(self.raw(), self.indices.as_mut_ptr()) }
        let mut seen = 0;
        for (out, &index) in out.iter_mut().zip(&self.indices) {
            let gray = self.gray[usize::from(index)];
            seen |= gray;
            *out = gray as u8;
        }
        if seen & UNSEEN != 0 {
            self.ale_grayscale_into(out);
            for (&index, &gray) in self.indices.iter().zip(out.iter()) {
                self.gray[usize::from(index)] = u16::from(gray);
            }
        }
    }

    /// ALE's own grayscale conversion of the screen into `out`.
    pub(crate) fn ale_grayscale_into(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.width * self.height, "screen buffer size");
        // SAFETY: `out` holds exactly width * height bytes, which ALE fills.
        unsafe { getScreenGrayscale(self.raw(), out.as_mut_ptr()) }
    }

    /// ALE action codes: the game's minimal set, or all 18.
    pub(crate) fn action_set(&self, minimal: bool) -> Vec<i32> {
        // SAFETY: the buffer is sized by ALE's own count.
        unsafe {
            if minimal {
                let mut v = vec![0; getMinimalActionSize(self.raw()) as usize];
                getMinimalActionSet(self.raw(), v.as_mut_ptr());
                v
            } else {
                let mut v = vec![0; getLegalActionSize(self.raw()) as usize];
                getLegalActionSet(self.raw(), v.as_mut_ptr());
                v
            }
        }
    }
}

impl Drop for Ale {
    fn drop(&mut self) {
        // SAFETY: created by ALE_new, deleted once.
        unsafe { ALE_del(self.raw()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atari::games::{locate_rom, rom_dir};

    #[test]
    fn learned_grayscale_is_ales_own_on_every_frame() {
        for game in ["Breakout", "MsPacman", "SpaceInvaders", "Seaquest"] {
            let rom = locate_rom(game, &rom_dir()).expect("setup.sh installs the ROMs");
            let settings = EmulatorSettings {
                repeat_action_probability: 0.25,
                seed: 7,
            };
            let mut ale = Ale::load(&rom, settings).unwrap();
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
}
