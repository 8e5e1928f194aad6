/* LD_PRELOAD shim for profiling under valgrind 3.19, which dies (internal SIGSEGV) when libdispatch's signal
 * thread calls sigsuspend(2). Same effect for that caller: install the mask, wait for a signal, restore, EINTR.
 * A signal that lands between the mask change and pause() is handled at once but does not end this wait; libdispatch
 * calls sigsuspend in an endless loop, so nothing is lost there. Used by scripts/bench.sh only. */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t old;
    sigprocmask(SIG_SETMASK, mask, &old);
    pause();
    sigprocmask(SIG_SETMASK, &old, NULL);
    errno = EINTR;
    return -1;
}
