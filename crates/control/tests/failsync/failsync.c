/*
 * A test-only LD_PRELOAD shim: fsync(2) and fdatasync(2) fail with EIO while the file
 * named by $FAILSYNC_FLAG exists, and are the real calls otherwise. Used by
 * tests/fsync_error.rs to make a disk fail a commit without root (dm-flakey needs it).
 * Built by that test with the system C compiler (the one rusqlite's bundled SQLite
 * already needs).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void) {
  const char *flag = getenv("FAILSYNC_FLAG");
  return flag != NULL && access(flag, F_OK) == 0;
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (failing()) {
    errno = EIO;
    return -1;
  }
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  return real(fd);
}

int fsync(int fd) {
  static int (*real)(int);
  if (failing()) {
    errno = EIO;
    return -1;
  }
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  return real(fd);
}
