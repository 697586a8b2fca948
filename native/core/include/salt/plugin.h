/// salt/plugin.h — the C ABI of an accelerator backend plugin (e.g. salt_cuda.so).
///
/// The CPU addon opens a plugin at run time with dlopen, so the addon loads (and the CPU path works)
/// on machines that lack the accelerator's libraries. A plugin exports one symbol,
/// `salt_plugin_entry`, returning a table whose `abi_version` must equal SALT_PLUGIN_ABI_VERSION.
#ifndef SALT_PLUGIN_H
#define SALT_PLUGIN_H

#include "salt/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SALT_PLUGIN_ABI_VERSION 1
#define SALT_PLUGIN_ENTRY_SYMBOL "salt_plugin_entry"

typedef struct salt_plugin_v1 {
  uint32_t abi_version;  ///< SALT_PLUGIN_ABI_VERSION
  const char* name;      ///< backend name, e.g. "cuda"
  /// Fills `out` (a JSON object, NUL-terminated, at most `cap` bytes) with the devices found and
  /// library versions. Returns SALT_OK, or an error when no usable device exists.
  salt_status (*describe)(char* out, size_t cap);
  salt_status (*topk_cosine)(const salt_topk_args* args);
  salt_status (*sparsemax)(const salt_sparsemax_args* args);
  salt_status (*solve_neighbourhoods)(const salt_solve_args* args);
  salt_status (*apply_weights)(const salt_apply_args* args);
} salt_plugin_v1;

typedef const salt_plugin_v1* (*salt_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif  // SALT_PLUGIN_H
