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

/// What write_direct writes.
enum salt_write_kind { SALT_WRITE_F16 = 0, SALT_WRITE_BF16 = 1, SALT_WRITE_F32 = 2 };

/// Arguments of write_direct: `length` bytes written at `offset` of one file, taken from a byte range
/// of another open file (fd_in >= 0) or encoded from n floats (fd_in = -1; F16/BF16 round to nearest,
/// ties to even; F32 as they are). The whole 4 KiB blocks inside [offset, offset + length) go
/// through fd_direct (the same file opened with O_DIRECT), bypassing the page cache; the partial
/// blocks at both ends go through fd. Without fd_direct (-1), or when the file system refuses direct
/// I/O (EINVAL), everything goes through fd.
typedef struct salt_direct_write_args {
  int32_t fd;           ///< the output, open for writing (its file offset is neither used nor moved)
  int32_t fd_direct;    ///< the same file opened with O_DIRECT for writing, or -1
  int64_t offset;       ///< where the bytes go (>= 0)
  int32_t fd_in;        ///< source file (>= 0), or -1: the floats f32
  int64_t offset_in;    ///< first byte of the source range
  int64_t length;       ///< bytes to write when copying (>= 0); for floats n times the kind's size
  const float* f32;     ///< floats to encode (fd_in = -1)
  int64_t n;            ///< how many
  int32_t kind;         ///< salt_write_kind (floats only); offset must be a multiple of its size
  int32_t writeback;    ///< nonzero: start writing the bytes that went through fd back to disk
  int32_t threads;      ///< encoding threads (0: all)
  int32_t* out_direct;  ///< set to 1 when some bytes went through fd_direct, else 0
} salt_direct_write_args;

#ifdef __cplusplus
}
#endif

#endif
