/*
 * kcache_shm: the few POSIX calls Node lacks, for the shared host tier (src/host-tier/).
 *
 *   fallocate(fd, bytes)                 reserve a file's blocks now (tmpfs: its pages), so a full
 *                                        tmpfs fails here, at start-up, and never as SIGBUS mid-stream
 *   freeBytes(dir) -> number             statvfs: bytes an unprivileged writer can still use
 *   map(fd, offset, bytes, populate)     mmap(MAP_SHARED) -> an external ArrayBuffer over the mapping
 *                                        (no copy; munmap when the ArrayBuffer is collected)
 *   flock(fd, op) -> boolean             op 'ex' (blocking), 'exnb' (false when held elsewhere), 'un'
 *   monotonicMs() -> number              CLOCK_MONOTONIC in ms: one clock for every process of the node
 *   startHeartbeat(ab, byteOffset, intervalMs) -> handle
 *                                        a thread that stores monotonicMs() as a float64 at
 *                                        ab[byteOffset] every intervalMs, independent of the event loop
 *   stopHeartbeat(handle)
 *
 * Errors are JS Errors with `code` (errno name, e.g. ENOSPC) and `syscall`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>

#define CHECK_NAPI(env, call)                                   \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      napi_throw_error((env), NULL, "kcache_shm: N-API call failed: " #call); \
      return NULL;                                              \
    }                                                           \
  } while (0)

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s failed: %s", syscall, strerror(err));
  const char *code = NULL;
  switch (err) {
    case ENOSPC: code = "ENOSPC"; break;
    case EFBIG: code = "EFBIG"; break;
    case ENOMEM: code = "ENOMEM"; break;
    case EACCES: code = "EACCES"; break;
    case EPERM: code = "EPERM"; break;
    case EINVAL: code = "EINVAL"; break;
    case EBADF: code = "EBADF"; break;
    case ENOENT: code = "ENOENT"; break;
    case EOPNOTSUPP: code = "EOPNOTSUPP"; break;
    case EINTR: code = "EINTR"; break;
    case EWOULDBLOCK: code = "EWOULDBLOCK"; break;
    default: code = "EUNKNOWN"; break;
  }
  napi_value msg, error, code_value, syscall_value, errno_value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "code", code_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t expected, napi_value *argv) {
  size_t argc = expected;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < expected) {
    napi_throw_type_error(env, NULL, "kcache_shm: too few arguments");
    return 0;
  }
  return 1;
}

static int get_int(napi_env env, napi_value value, int64_t *out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok || d < 0 || d > 9007199254740991.0 || d != (double)(int64_t)d) {
    napi_throw_type_error(env, NULL, "kcache_shm: expected a non-negative safe integer");
    return 0;
  }
  *out = (int64_t)d;
  return 1;
}

static double monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static napi_value Fallocate(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t fd, bytes;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd) || !get_int(env, argv[1], &bytes)) return NULL;
  int err = posix_fallocate((int)fd, 0, (off_t)bytes);
  if (err != 0) return throw_errno(env, "posix_fallocate", err);
  return NULL;
}

static napi_value FreeBytes(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char path[4096];
  size_t length;
  CHECK_NAPI(env, napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length));
  struct statvfs st;
  if (statvfs(path, &st) != 0) return throw_errno(env, "statvfs", errno);
  napi_value result;
  CHECK_NAPI(env, napi_create_double(env, (double)st.f_bavail * (double)st.f_frsize, &result));
  return result;
}

typedef struct {
  void *address;
  size_t bytes;
} Mapping;

static void unmap_finalizer(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  Mapping *mapping = (Mapping *)hint;
  munmap(mapping->address, mapping->bytes);
  free(mapping);
}

static napi_value Map(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int64_t fd, offset, bytes;
  bool populate = false;
  if (!get_args(env, info, 4, argv) || !get_int(env, argv[0], &fd) || !get_int(env, argv[1], &offset) ||
      !get_int(env, argv[2], &bytes)) {
    return NULL;
  }
  CHECK_NAPI(env, napi_get_value_bool(env, argv[3], &populate));
  if (bytes == 0) {
    napi_throw_range_error(env, NULL, "kcache_shm: cannot map 0 bytes");
    return NULL;
  }
  int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
  void *address = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, flags, (int)fd, (off_t)offset);
  if (address == MAP_FAILED) return throw_errno(env, "mmap", errno);
  Mapping *mapping = malloc(sizeof *mapping);
  if (mapping == NULL) {
    munmap(address, (size_t)bytes);
    return throw_errno(env, "malloc", ENOMEM);
  }
  mapping->address = address;
  mapping->bytes = (size_t)bytes;
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, address, (size_t)bytes, unmap_finalizer, mapping, &buffer) != napi_ok) {
    munmap(address, (size_t)bytes);
    free(mapping);
    napi_throw_error(env, NULL, "kcache_shm: napi_create_external_arraybuffer failed (external buffers disabled?)");
    return NULL;
  }
  return buffer;
}

static napi_value Flock(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t fd;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd)) return NULL;
  char op_name[8];
  size_t length;
  CHECK_NAPI(env, napi_get_value_string_utf8(env, argv[1], op_name, sizeof op_name, &length));
  int op;
  if (strcmp(op_name, "ex") == 0) op = LOCK_EX;
  else if (strcmp(op_name, "exnb") == 0) op = LOCK_EX | LOCK_NB;
  else if (strcmp(op_name, "un") == 0) op = LOCK_UN;
  else {
    napi_throw_type_error(env, NULL, "kcache_shm: flock op must be 'ex', 'exnb' or 'un'");
    return NULL;
  }
  int rc;
  do rc = flock((int)fd, op);
  while (rc != 0 && errno == EINTR);
  napi_value result;
  if (rc != 0) {
    if ((op & LOCK_NB) && errno == EWOULDBLOCK) {
      CHECK_NAPI(env, napi_get_boolean(env, false, &result));
      return result;
    }
    return throw_errno(env, "flock", errno);
  }
  CHECK_NAPI(env, napi_get_boolean(env, true, &result));
  return result;
}

static napi_value MonotonicMs(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK_NAPI(env, napi_create_double(env, monotonic_ms(), &result));
  return result;
}

typedef struct {
  pthread_t thread;
  pthread_mutex_t mutex;
  pthread_cond_t wake;
  int stopping;
  int running;
  uint64_t *slot; /* float64 bits, 8-byte aligned, inside a mapping kept alive by `buffer_ref` */
  int64_t interval_ms;
  napi_env env;
  napi_ref buffer_ref;
} Heartbeat;

static void beat(Heartbeat *hb) {
  double now = monotonic_ms();
  uint64_t bits;
  memcpy(&bits, &now, sizeof bits);
  __atomic_store_n(hb->slot, bits, __ATOMIC_RELEASE);
}

static void *heartbeat_main(void *arg) {
  Heartbeat *hb = (Heartbeat *)arg;
  pthread_mutex_lock(&hb->mutex);
  while (!hb->stopping) {
    beat(hb);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    int64_t ns = deadline.tv_nsec + (hb->interval_ms % 1000) * 1000000;
    deadline.tv_sec += hb->interval_ms / 1000 + ns / 1000000000;
    deadline.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(&hb->wake, &hb->mutex, &deadline);
  }
  pthread_mutex_unlock(&hb->mutex);
  return NULL;
}

static void stop_heartbeat(Heartbeat *hb) {
  if (!hb->running) return;
  pthread_mutex_lock(&hb->mutex);
  hb->stopping = 1;
  pthread_cond_signal(&hb->wake);
  pthread_mutex_unlock(&hb->mutex);
  pthread_join(hb->thread, NULL);
  hb->running = 0;
}

static void cleanup_hook(void *arg) { stop_heartbeat((Heartbeat *)arg); }

static void heartbeat_finalizer(napi_env env, void *data, void *hint) {
  (void)hint;
  Heartbeat *hb = (Heartbeat *)data;
  stop_heartbeat(hb);
  napi_remove_env_cleanup_hook(env, cleanup_hook, hb);
  if (hb->buffer_ref != NULL) napi_delete_reference(env, hb->buffer_ref);
  pthread_mutex_destroy(&hb->mutex);
  pthread_cond_destroy(&hb->wake);
  free(hb);
}

static napi_value StartHeartbeat(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t offset, interval_ms;
  if (!get_args(env, info, 3, argv) || !get_int(env, argv[1], &offset) || !get_int(env, argv[2], &interval_ms)) return NULL;
  bool is_arraybuffer = false;
  CHECK_NAPI(env, napi_is_arraybuffer(env, argv[0], &is_arraybuffer));
  if (!is_arraybuffer) {
    napi_throw_type_error(env, NULL, "kcache_shm: startHeartbeat needs an ArrayBuffer");
    return NULL;
  }
  void *data;
  size_t bytes;
  CHECK_NAPI(env, napi_get_arraybuffer_info(env, argv[0], &data, &bytes));
  if (offset % 8 != 0 || (size_t)offset + 8 > bytes || interval_ms < 1) {
    napi_throw_range_error(env, NULL, "kcache_shm: heartbeat offset must be 8-aligned inside the buffer, interval >= 1 ms");
    return NULL;
  }
  Heartbeat *hb = calloc(1, sizeof *hb);
  if (hb == NULL) return throw_errno(env, "calloc", ENOMEM);
  pthread_mutex_init(&hb->mutex, NULL);
  pthread_cond_init(&hb->wake, NULL);
  hb->slot = (uint64_t *)((char *)data + offset);
  hb->interval_ms = interval_ms;
  hb->env = env;
  CHECK_NAPI(env, napi_create_reference(env, argv[0], 1, &hb->buffer_ref));
  beat(hb);
  int err = pthread_create(&hb->thread, NULL, heartbeat_main, hb);
  if (err != 0) {
    napi_delete_reference(env, hb->buffer_ref);
    free(hb);
    return throw_errno(env, "pthread_create", err);
  }
  hb->running = 1;
  napi_add_env_cleanup_hook(env, cleanup_hook, hb);
  napi_value handle;
  CHECK_NAPI(env, napi_create_external(env, hb, heartbeat_finalizer, NULL, &handle));
  return handle;
}

static napi_value StopHeartbeat(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  void *data;
  CHECK_NAPI(env, napi_get_value_external(env, argv[0], &data));
  Heartbeat *hb = (Heartbeat *)data;
  stop_heartbeat(hb);
  if (hb->buffer_ref != NULL) {
    napi_delete_reference(env, hb->buffer_ref);
    hb->buffer_ref = NULL;
  }
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"fallocate", NULL, Fallocate, NULL, NULL, NULL, napi_default, NULL},
      {"freeBytes", NULL, FreeBytes, NULL, NULL, NULL, napi_default, NULL},
      {"map", NULL, Map, NULL, NULL, NULL, napi_default, NULL},
      {"flock", NULL, Flock, NULL, NULL, NULL, napi_default, NULL},
      {"monotonicMs", NULL, MonotonicMs, NULL, NULL, NULL, napi_default, NULL},
      {"startHeartbeat", NULL, StartHeartbeat, NULL, NULL, NULL, napi_default, NULL},
      {"stopHeartbeat", NULL, StopHeartbeat, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK_NAPI(env, napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
