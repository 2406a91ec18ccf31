// A C interface to the ALE C++ core of ale-py 0.12.1 for envs/src/atari/ale.rs.
//
// Every function catches every C++ exception and reports it through `err` (a NUL-terminated
// message, truncated to `err_len`) and a nonzero return value. Nothing here may end the
// process: `loadROM` calls `std::exit(1)` on a ROM it does not recognise, so `fire_ale_new`
// loads only ROMs that `isSupportedROM` accepts (a supported game's exact md5), and no
// `getInt`/`getFloat`/`getBool`/`getString` is called (they `exit` on unknown keys).

#include <ale/ale_interface.hpp>
#include <ale/emucore/MD5.hxx>
#include <ale/games/Roms.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace {

void write_message(const std::string& message, char* out, size_t out_len) {
  if (out == nullptr || out_len == 0) return;
  size_t n = message.size() < out_len - 1 ? message.size() : out_len - 1;
  std::memcpy(out, message.data(), n);
  out[n] = '\0';
}

// Runs `body`; on an exception writes its message to `err` and returns -1, else 0.
template <typename F>
int guarded(char* err, size_t err_len, F&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    write_message(e.what(), err, err_len);
  } catch (...) {
    write_message("unknown C++ exception in ALE", err, err_len);
  }
  return -1;
}

// The RomSettings of the game with this exact md5, if any (caller owns it).
std::unique_ptr<ale::RomSettings> game_of_md5(const std::string& md5) {
  // An empty stem matches no game's name, so only the md5 decides.
  std::unique_ptr<ale::RomSettings> wrapper(ale::buildRomRLWrapper(fs::path(), md5));
  if (wrapper && md5 == wrapper->md5()) return wrapper;
  return nullptr;
}

template <typename T>
std::string join(const std::vector<T>& values) {
  std::string s;
  for (size_t i = 0; i < values.size(); i++) {
    if (i > 0) s += ", ";
    s += std::to_string(values[i]);
  }
  return s;
}

}  // namespace

struct FireAle {
  ale::ALEInterface ale;
};

extern "C" {

// Process-wide: errors only (no banner, no info lines). Call before creating an emulator.
void fire_ale_quiet(void) { ale::Logger::setMode(ale::Logger::Error); }

// The md5 (32 hex digits, into `md5_out`, 33 bytes) of the file at `path`, and the ROM name
// of the supported game with that md5 into `game_out` ("" if none).
int fire_ale_identify(const char* path, char* md5_out, char* game_out, size_t game_len,
                      char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    std::ifstream file(path, std::ios::binary);
    if (!file.good()) throw std::runtime_error("cannot open the file");
    std::vector<uint8_t> rom((std::istreambuf_iterator<char>(file)),
                             std::istreambuf_iterator<char>());
    std::string md5 = ale::stella::MD5(rom.data(), static_cast<uint32_t>(rom.size()));
    write_message(md5, md5_out, 33);
    auto wrapper = game_of_md5(md5);
    write_message(wrapper ? wrapper->rom() : "", game_out, game_len);
  });
}

// Whether `game` (a ROM name such as "breakout") is a game ALE supports; if so its ROM's md5
// goes to `md5_out` (33 bytes).
int fire_ale_game_md5(const char* game, char* md5_out) {
  char err[8];
  int known = 0;
  guarded(err, sizeof err, [&] {
    // The md5 "-" matches no game, so only the name decides.
    std::unique_ptr<ale::RomSettings> wrapper(
        ale::buildRomRLWrapper(fs::path(std::string(game) + ".bin"), "-"));
    if (wrapper && std::string(game) == wrapper->rom()) {
      write_message(wrapper->md5(), md5_out, 33);
      known = 1;
    }
  });
  return known;
}

// Creates an emulator with the ROM at `path` (a supported game's exact dump). `mode` and
// `difficulty` below 0 keep the game's defaults. Null on failure, with the reason in `err`.
FireAle* fire_ale_new(const char* path, int seed, float repeat_action_probability, int mode,
                      int difficulty, char* err, size_t err_len) {
  FireAle* out = nullptr;
  guarded(err, err_len, [&] {
    if (!ale::ALEInterface::isSupportedROM(fs::path(path))) {
      throw std::runtime_error("not the ROM of a game ALE supports (md5 not recognised)");
    }
    std::unique_ptr<FireAle> a(new FireAle());
    a->ale.setInt("random_seed", seed);
    a->ale.setFloat("repeat_action_probability", repeat_action_probability);
    // Frame skipping, pooling and the episode cap are done by the Rust wrapper.
    a->ale.setInt("frame_skip", 1);
    a->ale.setInt("max_num_frames_per_episode", 0);
    a->ale.setBool("color_averaging", false);
    a->ale.loadROM(fs::path(path));
    if (mode >= 0) {
      auto modes = a->ale.getAvailableModes();
      if (std::find(modes.begin(), modes.end(), static_cast<ale::game_mode_t>(mode)) ==
          modes.end()) {
        throw std::runtime_error("mode " + std::to_string(mode) +
                                 " is not one of the game's modes (" + join(modes) + ")");
      }
      a->ale.setMode(static_cast<ale::game_mode_t>(mode));
    }
    if (difficulty >= 0) {
      auto levels = a->ale.getAvailableDifficulties();
      if (std::find(levels.begin(), levels.end(),
                    static_cast<ale::difficulty_t>(difficulty)) == levels.end()) {
        throw std::runtime_error("difficulty " + std::to_string(difficulty) +
                                 " is not one of the game's difficulties (" + join(levels) +
                                 ")");
      }
      a->ale.setDifficulty(static_cast<ale::difficulty_t>(difficulty));
    }
    if (mode >= 0 || difficulty >= 0) a->ale.reset_game();
    out = a.release();
  });
  return out;
}

void fire_ale_delete(FireAle* a) {
  try {
    delete a;
  } catch (...) {
  }
}

int fire_ale_act(FireAle* a, int action, float paddle_strength, int* reward, char* err,
                 size_t err_len) {
  return guarded(err, err_len, [&] {
    *reward = a->ale.act(static_cast<ale::Action>(action), paddle_strength);
  });
}

int fire_ale_reset(FireAle* a, char* err, size_t err_len) {
  return guarded(err, err_len, [&] { a->ale.reset_game(); });
}

// Cheap getters that do not throw once a ROM is loaded (no guard needed, but kept noexcept).
int fire_ale_game_over(const FireAle* a) noexcept {
  try {
    return a->ale.game_over(false) ? 1 : 0;
  } catch (...) {
    return 1;
  }
}

int fire_ale_lives(FireAle* a) noexcept {
  try {
    return a->ale.lives();
  } catch (...) {
    return 0;
  }
}

int fire_ale_frame_number(const FireAle* a) noexcept {
  try {
    return a->ale.getEpisodeFrameNumber();
  } catch (...) {
    return -1;
  }
}

// Screen height and width.
void fire_ale_screen_size(const FireAle* a, size_t* height, size_t* width) noexcept {
  try {
    const ale::ALEScreen& s = a->ale.getScreen();
    *height = s.height();
    *width = s.width();
  } catch (...) {
    *height = 0;
    *width = 0;
  }
}

// The screen as palette indices (`len` = height * width bytes).
int fire_ale_screen(const FireAle* a, uint8_t* out, size_t len, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    const ale::ALEScreen& s = a->ale.getScreen();
    if (len != s.height() * s.width()) throw std::runtime_error("screen buffer size");
    std::memcpy(out, s.getArray(), len);
  });
}

// The screen in ALE's grayscale (`len` = height * width bytes).
int fire_ale_screen_grayscale(FireAle* a, uint8_t* out, size_t len, char* err,
                              size_t err_len) {
  return guarded(err, err_len, [&] {
    const ale::ALEScreen& s = a->ale.getScreen();
    if (len != s.height() * s.width()) throw std::runtime_error("screen buffer size");
    a->ale.theOSystem->colourPalette().applyPaletteGrayscale(out, s.getArray(), len);
  });
}

// The screen as RGB, row-major, 3 bytes a pixel (`len` = 3 * height * width bytes).
int fire_ale_screen_rgb(FireAle* a, uint8_t* out, size_t len, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    const ale::ALEScreen& s = a->ale.getScreen();
    if (len != 3 * s.height() * s.width()) throw std::runtime_error("screen buffer size");
    a->ale.theOSystem->colourPalette().applyPaletteRGB(out, s.getArray(),
                                                        s.height() * s.width());
  });
}

// The 128 bytes of RAM.
int fire_ale_ram(const FireAle* a, uint8_t* out, size_t len, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    const ale::ALERAM& ram = a->ale.getRAM();
    if (len != ram.size()) throw std::runtime_error("RAM buffer size");
    std::memcpy(out, ram.array(), len);
  });
}

// Number of actions in the minimal (or full) set; with `out` non-null, writes up to `cap`.
int fire_ale_action_set(const FireAle* a, int minimal, int* out, size_t cap, size_t* count,
                        char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    ale::ActionVect set = minimal ? a->ale.getMinimalActionSet() : a->ale.getLegalActionSet();
    *count = set.size();
    for (size_t i = 0; i < set.size() && i < cap && out != nullptr; i++) {
      out[i] = static_cast<int>(set[i]);
    }
  });
}

// The emulator's state, serialised, into a buffer from `malloc` (free it with fire_ale_free).
int fire_ale_clone_state(FireAle* a, int include_rng, uint8_t** data, size_t* len, char* err,
                         size_t err_len) {
  *data = nullptr;
  *len = 0;
  return guarded(err, err_len, [&] {
    std::string bytes = a->ale.cloneState(include_rng != 0).serialize();
    uint8_t* buffer = static_cast<uint8_t*>(std::malloc(bytes.size() ? bytes.size() : 1));
    if (buffer == nullptr) throw std::bad_alloc();
    std::memcpy(buffer, bytes.data(), bytes.size());
    *data = buffer;
    *len = bytes.size();
  });
}

void fire_ale_free(uint8_t* data) { std::free(data); }

// Restores a state that fire_ale_clone_state produced for the same game.
int fire_ale_restore_state(FireAle* a, const uint8_t* data, size_t len, char* err,
                           size_t err_len) {
  return guarded(err, err_len, [&] {
    ale::ALEState state(std::string(reinterpret_cast<const char*>(data), len));
    a->ale.restoreState(state);
  });
}

}  // extern "C"
