/* fileio.c: the file I/O of model files, which knows nothing of what is in them. Save replaces a file
 * atomically: a temporary file in the same folder with the old file's permissions from the start, the
 * bytes, fsync, rename over the target, fsync of the folder, so that whenever the process dies the old
 * file or the new one is there, never half of one. The target is found first: symbolic links followed (up
 * to MG_FILE_MAX_LINKS), only a regular file replaced (checked again just before the rename), its owner
 * and mode kept. Load reads a regular file whole, never blocking on a FIFO or a device, up to
 * MG_FILE_MAX_BYTES. Every failure of a system call is MG_ERR_IO with errno kept for the bindings. */
#define _POSIX_C_SOURCE 200809L
#include "modelfile_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* errno kept for the bindings to report (FileNotFoundError...) */
mg_status mg__file_fail_io(const char *what, const char *path) {
    int saved = errno;
    mg__fail(MG_ERR_IO, "cannot %s %s: %s", what, path, strerror(saved));
    errno = saved;
    return MG_ERR_IO;
}

mg_status mg__file_write_all(int fd, const void *data, size_t size, const char *path) {
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) errno = EIO; /* write() made no progress and said nothing */
        if (n <= 0) return mg__file_fail_io("write", path);
        p += n;
        size -= (size_t)n;
    }
    return MG_OK;
}

/* ---- saving: where the file goes ---- */

typedef struct {
    char *path; /* the file to replace: the caller's path with its symbolic links followed */
    size_t capacity;
    int exists;
    struct stat st; /* when it exists */
} save_target;

static const char *file_kind(mode_t mode) {
    return S_ISCHR(mode)    ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
                            : "something other than a file";
}

static mg_status set_target_path(save_target *t, const char *dir, size_t dir_len, const char *name) {
    size_t capacity = dir_len + strlen(name) + 2;
    char *path = mg__alloc(capacity);
    if (!path) return mg__fail(MG_ERR_NOMEM, "out of memory saving a model");
    snprintf(path, capacity, "%.*s%s", (int)dir_len, dir, name);
    mg__free(t->path, t->capacity);
    t->path = path;
    t->capacity = capacity;
    return MG_OK;
}

/* t->path becomes the target of the link at t->path: an absolute path, or one relative to the link's folder */
static mg_status follow_link(save_target *t, const char *path) {
    size_t size = t->st.st_size > 0 ? (size_t)t->st.st_size + 1 : 256;
    for (;;) {
        char *target = mg__alloc(size);
        if (!target) return mg__fail(MG_ERR_NOMEM, "out of memory saving a model");
        ssize_t n = readlink(t->path, target, size);
        if (n < 0 || (size_t)n >= size) {
            int saved = errno;
            mg__free(target, size);
            errno = saved;
            if (n < 0) return mg__file_fail_io("follow the symbolic link", path);
            if (size > 65536) {
                errno = ENAMETOOLONG;
                return mg__file_fail_io("follow the symbolic link", path);
            }
            size *= 2; /* the link changed since lstat, or its size was not reported: try again larger */
            continue;
        }
        target[n] = '\0';
        const char *slash = strrchr(t->path, '/');
        size_t dir_len = target[0] == '/' || !slash ? 0 : (size_t)(slash - t->path) + 1;
        mg_status status = set_target_path(t, t->path, dir_len, target);
        mg__free(target, size);
        return status;
    }
}

/* Only a regular file is replaced, or a new one made; a folder is an I/O error as for open() (EISDIR) */
static mg_status check_replaceable(const struct stat *st, const char *path) {
    if (S_ISREG(st->st_mode)) return MG_OK;
    if (S_ISDIR(st->st_mode)) {
        mg__fail(MG_ERR_IO, "cannot save to %s: it is a folder", path);
        errno = EISDIR;
        return MG_ERR_IO;
    }
    return mg__fail(MG_ERR_ARG, "cannot save to %s: it is %s, not a regular file, and save replaces only regular files",
                    path, file_kind(st->st_mode));
}

static mg_status resolve_target(const char *path, save_target *t) {
    if (!*path) {
        errno = ENOENT; /* as open("") */
        return mg__file_fail_io("save to", "''");
    }
    mg_status status = set_target_path(t, "", 0, path);
    for (int links = 0; status == MG_OK; links++) {
        if (lstat(t->path, &t->st) != 0) {
            if (errno == ENOENT) return MG_OK; /* a new file (a dangling link's target too, as open() makes) */
            return mg__file_fail_io("save to", path);
        }
        if (!S_ISLNK(t->st.st_mode)) {
            t->exists = 1;
            return check_replaceable(&t->st, path);
        }
        if (links == MG_FILE_MAX_LINKS) {
            errno = ELOOP;
            return mg__file_fail_io("save to", path);
        }
        status = follow_link(t, path);
    }
    return status;
}

/* ---- saving: the new file in place of the old ---- */

/* the temporary file next to the target; a replaced file's permissions from the start, so the data is
 * never readable by more people than before. A new file: 0666 less the umask, as for any file the program
 * writes (mkstemp's would be 0600). */
static int create_temp(const save_target *t, char *tmp, size_t tmp_size) {
    static _Atomic unsigned long counter;
    mode_t mode = t->exists ? t->st.st_mode & 0777 : 0666;
    const char *slash = strrchr(t->path, '/');
    int dir_len = slash ? (int)(slash - t->path) + 1 : 0;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        /* the target's name, cut so that the temporary name stays within NAME_MAX (255) */
        snprintf(tmp, tmp_size, "%.*s%.200s.tmp.%ld.%lu", dir_len, t->path, t->path + dir_len, (long)getpid(),
                 (unsigned long)++counter);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST) break;
    }
    return fd;
}

/* A replaced file keeps its owner and group where the process may set them (root may; others keep
 * their own) and then its mode, which the umask may have cut and a chown clears the set-id bits of. */
static mg_status keep_owner_and_mode(int fd, const save_target *t, const char *path) {
    if (!t->exists) return MG_OK;
    struct stat now;
    if (fstat(fd, &now) == 0 && (now.st_uid != t->st.st_uid || now.st_gid != t->st.st_gid))
        if (fchown(fd, t->st.st_uid, t->st.st_gid) != 0 && fchown(fd, (uid_t)-1, t->st.st_gid) != 0)
            errno = 0; /* not allowed: the new file is the saver's, as with any save by rename */
    if (fchmod(fd, t->st.st_mode & 07777) != 0) return mg__file_fail_io("keep the permissions of", path);
    return MG_OK;
}

/* make the rename itself durable: sync the folder (tmp is cut to the folder's name) */
static void sync_folder(char *tmp) {
    char *slash = strrchr(tmp, '/');
    if (slash) *(slash == tmp ? slash + 1 : slash) = '\0';
    int dir = open(slash ? tmp : ".", O_RDONLY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
}

/* Just before the rename, the target once more: something not a regular file put there meanwhile stays. */
static mg_status still_replaceable(const save_target *t, const char *path) {
    struct stat st;
    if (lstat(t->path, &st) != 0) return errno == ENOENT ? MG_OK : mg__file_fail_io("save to", path);
    if (S_ISLNK(st.st_mode))
        return mg__fail(MG_ERR_IO, "cannot save to %s: it was replaced by a symbolic link while saving", path);
    return check_replaceable(&st, path);
}

/* temporary file, data, sync, rename over the target, sync the folder: the old file or the new, never half */
static mg_status write_and_replace(const save_target *t, mg__file_writer writer, const void *context,
                                   const char *path) {
    size_t tmp_size = strlen(t->path) + 48;
    char *tmp = mg__alloc(tmp_size);
    if (!tmp) return mg__fail(MG_ERR_NOMEM, "out of memory saving a model");
    int fd = create_temp(t, tmp, tmp_size);
    if (fd < 0) {
        mg_status failed = mg__file_fail_io("create a file next to", t->path);
        mg__free(tmp, tmp_size);
        return failed;
    }
    mg_status status = writer(fd, context, path);
    if (status == MG_OK) status = keep_owner_and_mode(fd, t, path);
    if (status == MG_OK && fsync(fd) != 0) status = mg__file_fail_io("sync", path);
    if (close(fd) != 0 && status == MG_OK) status = mg__file_fail_io("write", path);
    if (status == MG_OK) status = still_replaceable(t, path);
    if (status == MG_OK && rename(tmp, t->path) != 0) status = mg__file_fail_io("replace", path);
    if (status != MG_OK) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
    } else {
        sync_folder(tmp);
    }
    mg__free(tmp, tmp_size);
    return status;
}

mg_status mg__file_replace(const char *path, mg__file_writer writer, const void *context) {
    save_target target = {0};
    mg_status status = resolve_target(path, &target);
    if (status == MG_OK) status = write_and_replace(&target, writer, context, path);
    int saved = errno; /* for the bindings: FileNotFoundError, IsADirectoryError, ... */
    mg__free(target.path, target.capacity);
    errno = saved;
    return status;
}

/* ---- loading ---- */

/* non-blocking, so a FIFO or a device cannot hang us before we see it is not a regular file */
static mg_status open_regular(const char *path, int *fd_out, size_t *size) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return mg__file_fail_io("open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        mg_status failed = mg__file_fail_io("examine", path);
        close(fd);
        return failed;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mg__fail(MG_ERR_ARG, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > MG_FILE_MAX_BYTES) {
        close(fd);
        return mg__fail(MG_ERR_ARG, "%s is %lld bytes, over the 4 GiB limit for a model file", path,
                        (long long)st.st_size);
    }
    *fd_out = fd;
    *size = (size_t)st.st_size;
    return MG_OK;
}

mg_status mg__file_read(const char *path, unsigned char **data, size_t *size) {
    int fd = -1;
    mg_status status = open_regular(path, &fd, size);
    if (status != MG_OK) return status;
    size_t got = 0;
    if (!(*data = mg__alloc(*size ? *size : 1))) {
        close(fd);
        return mg__fail(MG_ERR_NOMEM, "out of memory reading %s", path);
    }
    while (got < *size) {
        ssize_t n = read(fd, *data + got, *size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    if (got != *size) status = mg__file_fail_io("read", path);
    close(fd);
    if (status != MG_OK) mg__file_data_free(*data, *size);
    return status;
}

void mg__file_data_free(unsigned char *data, size_t size) { mg__free(data, size ? size : 1); }
