/// salt/file_copy.h — copying a byte range of one open file to another without passing it through
/// the caller's memory: the writer of a transferred model copies the unchanged tensors of a shard it
/// must rewrite (in Llama-3-8B, the 4 GB of layers next to the embedding) this way.
#ifndef SALT_FILE_COPY_H
#define SALT_FILE_COPY_H

#include <stdint.h>

#include "salt/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Arguments of copy_file_range_all.
typedef struct salt_file_copy_args {
  int32_t fd_in;        ///< open for reading
  int64_t offset_in;    ///< first byte to copy (>= 0); fd_in's own file offset is not used or moved
  int32_t fd_out;       ///< open for writing
  int64_t offset_out;   ///< where the bytes go in fd_out (>= 0; its file offset is not used or moved),
                        ///< or -1: at fd_out's current file offset, which advances
  int64_t length;       ///< bytes to copy (>= 0)
  int32_t writeback;    ///< nonzero: start writing the copied range back to disk when done (Linux
                        ///< sync_file_range WRITE: not a flush, no durability promise)
  int32_t* out_kernel;  ///< set to 1 when the kernel copied everything (copy_file_range), 0 otherwise
} salt_file_copy_args;

/// Arguments of start_writeback.
typedef struct salt_writeback_args {
  int32_t fd;      ///< open file
  int64_t offset;  ///< first byte (>= 0)
  int64_t length;  ///< bytes (>= 0; 0: to the end of the file)
} salt_writeback_args;

#ifdef __cplusplus
}
#endif

#endif
